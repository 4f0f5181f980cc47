//! Access tokens, verified locally by every module (shared secret, no call to auth).

use std::time::Duration;

use crate::ids::{SessionId, UserId};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{http::header, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::http::oidc::{Identity, OidcVerifier};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Role {
    Customer,
    Admin,
}

impl super::Choice for Role {
    const ALL: &'static [(&'static str, Self)] =
        &[("customer", Self::Customer), ("admin", Self::Admin)];
}

crate::stored_as_name!(Role);

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// The login session the token belongs to (tokens from before sessions have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Signs and verifies access tokens (HS256).
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The secret before the last rotation (`JWT_SECRET_PREVIOUS`): tokens it signed are
    /// still accepted, none is signed with it.
    previous: Option<DecodingKey>,
    validation: Validation,
    expiry: Duration,
}

impl Jwt {
    pub fn new(secret: &str, expiry: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Jwt {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            previous: None,
            validation,
            expiry,
        }
    }

    pub fn from_settings(auth: &crate::config::AuthSettings) -> Self {
        let jwt = Jwt::new(&auth.jwt_secret, auth.jwt_expiry);
        match auth.jwt_secret_previous.as_str() {
            "" => jwt,
            previous => jwt.accepting(previous),
        }
    }

    /// Also accepts tokens signed with `previous` (during a rotation).
    pub fn accepting(mut self, previous: &str) -> Self {
        self.previous = Some(DecodingKey::from_secret(previous.as_bytes()));
        self
    }

    pub fn expires_in_secs(&self) -> u64 {
        self.expiry.as_secs()
    }

    pub fn issue(
        &self,
        user_id: UserId,
        role: Role,
        session: SessionId,
    ) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let exp = now.saturating_add(i64::try_from(self.expiry.as_secs()).unwrap_or(i64::MAX));
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iat: now,
            exp,
            sid: Some(session.to_string()),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("signing token: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let data = match (
            decode::<Claims>(token, &self.decoding, &self.validation),
            &self.previous,
        ) {
            (Err(e), Some(previous)) if *e.kind() == ErrorKind::InvalidSignature => {
                decode::<Claims>(token, previous, &self.validation)
            }
            (decoded, _) => decoded,
        }
        .map_err(|_| ApiError::Auth("Invalid or expired token"))?;
        let bad = |_| ApiError::Auth("Invalid or expired token");
        let id: UserId = data.claims.sub.parse().map_err(bad)?;
        let session = data
            .claims
            .sid
            .map(|sid| sid.parse::<SessionId>())
            .transpose()
            .map_err(bad)?;
        Ok(AuthUser {
            id,
            role: data.claims.role,
            session,
            issued_at: data.claims.iat,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        _ => None,
    }
}

/// Compares a secret in constant time (for equal lengths), so timing tells nothing of it.
pub fn same_secret(given: &[u8], expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.ct_eq(expected.as_bytes()))
}

/// The bearer token the `/internal/` routes require.
pub struct InternalToken(pub String);

/// Guards the `/internal/` scope: 401 unless the caller presents the internal token.
pub async fn internal_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let allowed = req
        .app_data::<web::Data<InternalToken>>()
        .zip(bearer_token(req.request()))
        .is_some_and(|(expected, given)| same_secret(given.as_bytes(), &expected.0));
    if !allowed {
        let error = ApiError::Auth("Internal routes need the internal token");
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The caller, from a valid `Authorization: Bearer` access token; 401 otherwise.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: UserId,
    pub role: Role,
    /// The login session of the token (`sid`).
    pub session: Option<SessionId>,
    /// The token's `iat`, in seconds since the epoch.
    pub issued_at: i64,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    fn from_req(req: &HttpRequest) -> Result<Self, ApiError> {
        let jwt = req
            .app_data::<web::Data<Jwt>>()
            .ok_or_else(|| ApiError::internal("Jwt is not registered"))?;
        let token = bearer_token(req).ok_or(ApiError::Auth("Missing bearer token"))?;
        jwt.verify(token)
    }
}

/// Tells whether a validly signed token still stands: its account exists and has not left,
/// it was issued after the account's last password reset or change, and its session was
/// not revoked. Answered by auth, wherever it runs, on every authenticated request.
#[async_trait::async_trait]
pub trait Accounts: Send + Sync {
    async fn accepts(&self, token: &AuthUser) -> Result<bool, ApiError>;
    /// The account of an identity provider's user, found by (`iss`, `sub`) and made on
    /// their first token, its role set to what the token says; `None` when it was closed.
    async fn oidc_user(&self, identity: &Identity, admin: bool)
        -> Result<Option<UserId>, ApiError>;
}

type Extracted<T> = LocalBoxFuture<'static, Result<T, ApiError>>;

/// Permission is checked before the body is validated (API.md, Conventions): extractors run
/// side by side, so a route's authenticating extractor leaves this gate in the request and
/// opens it when the caller passes, and the body extractors wait on it.
pub struct AuthGate(Option<tokio::sync::oneshot::Receiver<()>>);

impl AuthGate {
    /// The gate the request's authentication left, if the route has one.
    pub fn take(req: &HttpRequest) -> AuthGate {
        AuthGate(
            req.extensions_mut()
                .remove::<AuthGate>()
                .and_then(|gate| gate.0),
        )
    }

    /// Resolves once the caller passed; an error when it did not (that error is answered
    /// by the authenticating extractor itself).
    pub async fn passed(self) -> Result<(), ApiError> {
        match self.0 {
            Some(gate) => gate
                .await
                .map_err(|_| ApiError::Auth("Authentication failed")),
            None => Ok(()),
        }
    }
}

/// `check`, opening the request's [`AuthGate`] when it passes. The answer of a route that
/// needs a caller depends on the caller.
fn gated<T: 'static>(req: &HttpRequest, check: Extracted<T>) -> Extracted<T> {
    super::per_caller(req);
    let (open, gate) = tokio::sync::oneshot::channel();
    req.extensions_mut().insert(AuthGate(Some(gate)));
    Box::pin(async move {
        let outcome = check.await;
        if outcome.is_ok() {
            let _ = open.send(());
        }
        outcome
    })
}

/// The token's user, when it still exists. A token that names the identity provider as its
/// issuer is verified against the provider's keys; any other against this server's secret.
fn authenticate(req: &HttpRequest) -> Extracted<AuthUser> {
    let accounts = req.app_data::<web::Data<dyn Accounts>>().cloned();
    let oidc = req.app_data::<web::Data<OidcVerifier>>().cloned();
    if let (Some(oidc), Some(token)) = (oidc, bearer_token(req)) {
        if oidc.claims_issuer(token) {
            let token = token.to_owned();
            return Box::pin(async move {
                let verified = oidc.verify(&token).await?;
                let accounts =
                    accounts.ok_or_else(|| ApiError::internal("Accounts is not registered"))?;
                let id = accounts
                    .oidc_user(&verified.identity, verified.admin)
                    .await?
                    .ok_or(ApiError::Auth("The account was closed"))?;
                Ok(AuthUser {
                    id,
                    role: if verified.admin {
                        Role::Admin
                    } else {
                        Role::Customer
                    },
                    session: None,
                    issued_at: verified.issued_at,
                })
            });
        }
    }
    let verified = AuthUser::from_req(req);
    Box::pin(async move {
        let user = verified?;
        let accounts = accounts.ok_or_else(|| ApiError::internal("Accounts is not registered"))?;
        if accounts.accepts(&user).await? {
            Ok(user)
        } else {
            Err(ApiError::Auth(
                "The token was revoked or its account no longer exists",
            ))
        }
    })
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        gated(req, authenticate(req))
    }
}

/// The caller when a valid token came with the request; on public routes a missing or bad
/// token (or one whose user is gone) just means an anonymous caller.
#[derive(Debug, Clone, Copy)]
pub struct MaybeUser(pub Option<AuthUser>);

impl FromRequest for MaybeUser {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if bearer_token(req).is_none() {
            return Box::pin(std::future::ready(Ok(MaybeUser(None))));
        }
        let user = authenticate(req);
        Box::pin(async move {
            match user.await {
                Ok(user) => Ok(MaybeUser(Some(user))),
                Err(ApiError::Auth(_)) => Ok(MaybeUser(None)),
                Err(other) => Err(other),
            }
        })
    }
}

/// An authenticated admin; a customer gets 403.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = authenticate(req);
        gated(
            req,
            Box::pin(async move {
                let user = user.await?;
                if user.is_admin() {
                    Ok(AdminUser(user))
                } else {
                    Err(ApiError::Forbidden)
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let jwt = Jwt::new("secret-one", Duration::from_secs(60));
        let id = UserId::random();
        let token = jwt.issue(id, Role::Admin, SessionId::random()).unwrap();
        let user = jwt.verify(&token).unwrap();
        assert_eq!(user.id, id);
        assert_eq!(user.role, Role::Admin);

        let other = Jwt::new("secret-two", Duration::from_secs(60));
        assert!(other.verify(&token).is_err());

        let expired = Jwt::new("secret-one", Duration::ZERO)
            .issue(id, Role::Customer, SessionId::random())
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(jwt.verify(&expired).is_err());
    }

    #[test]
    fn a_rotation_keeps_the_previous_secrets_tokens() {
        let id = UserId::random();
        let old = Jwt::new("secret-one", Duration::from_secs(60));
        let issued_before = old.issue(id, Role::Customer, SessionId::random()).unwrap();
        let rotated = Jwt::new("secret-two", Duration::from_secs(60)).accepting("secret-one");
        assert_eq!(rotated.verify(&issued_before).unwrap().id, id);
        let issued_after = rotated
            .issue(id, Role::Customer, SessionId::random())
            .unwrap();
        assert!(
            old.verify(&issued_after).is_err(),
            "signed with the new secret"
        );
        assert_eq!(rotated.verify(&issued_after).unwrap().id, id);
        // Once the previous secret is dropped, its tokens are refused.
        let done = Jwt::new("secret-two", Duration::from_secs(60));
        assert!(done.verify(&issued_before).is_err());
        assert!(rotated.verify("not.a.token").is_err());
        let stranger = Jwt::new("secret-three", Duration::from_secs(60));
        assert!(rotated
            .verify(
                &stranger
                    .issue(id, Role::Admin, SessionId::random())
                    .unwrap()
            )
            .is_err());
    }
}
