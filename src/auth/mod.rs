//! Auth routes: signup, login, refresh, logout, me.

pub mod model;
pub mod service;
mod store;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use utoipa::OpenApi;

use crate::db::Db;
use crate::error::ApiError;
use crate::http::auth::AuthUser;
use crate::http::rate_limit::{Limits, Policy};
use crate::http::{parse_id, Json, OptionalJson};
use crate::module::{Build, Context, Served};
use crate::http::auth::Accounts;
use crate::http::oidc::Identity;
use crate::ports::{Contact, Locale, OidcUser, Ports, UserDirectory};
use model::{
    parse_name, ChangeRequest, Email, ForgotRequest, LoginRequest, Origin, Password,
    LeaveRequest, RefreshRequest, ResetRequest, Session, SignupRequest, TokenPair, TokenRequest,
    UpdateMe, User, VerifyPhone,
};
pub use service::{AuthService, Directory};
/// Auth, as the registry ([`crate::MODULES`]) starts it.
pub const BUILD: Build = Build {
    api: || AuthApi::openapi(),
    internal_api: || InternalApi::openapi(),
    provide,
    serve: |ctx| Box::pin(serve(ctx)),
    reads_cars: false,
};

/// Auth as this process serves it.
pub async fn serve(ctx: &Context) -> anyhow::Result<Served> {
    let (db, ports, jwt, metrics, settings, link_base) = (
        ctx.db.clone(),
        ctx.ports.clone(),
        ctx.jwt.clone(),
        ctx.metrics.clone(),
        ctx.settings.auth.clone(),
        ctx.settings.link_base(),
    );
    let service = tokio::task::spawn_blocking(move || {
        AuthService::new(db, ports, jwt, metrics, &settings, link_base)
    })
    .await??;
    Ok(Served::new(
        web::Data::new(service),
        routes,
        internal_routes,
    ))
}

/// Answers the user directory in-process.
pub fn provide(ports: &mut Ports, db: &Db) {
    ports.users = Arc::new(Directory::new(db.clone()));
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/signup").route(web::post().to(signup)))
        .service(web::resource("/auth/login").route(web::post().to(login)))
        .service(web::resource("/auth/refresh").route(web::post().to(refresh)))
        .service(web::resource("/auth/logout").route(web::post().to(logout)))
        .service(web::resource("/auth/logout-all").route(web::post().to(logout_all)))
        .service(web::resource("/auth/verify-email").route(web::post().to(verify_email)))
        .service(web::resource("/auth/verify-email/resend").route(web::post().to(resend)))
        .service(web::resource("/auth/password/forgot").route(web::post().to(forgot)))
        .service(web::resource("/auth/password/reset").route(web::post().to(reset)))
        .service(web::resource("/auth/password/change").route(web::post().to(change)))
        .service(web::resource("/auth/sessions").route(web::get().to(sessions)))
        .service(web::resource("/auth/sessions/{id}").route(web::delete().to(revoke_session)))
        .service(web::resource("/auth/me/export").route(web::get().to(export)))
        .service(
            web::resource("/auth/me")
                .route(web::get().to(me))
                .route(web::patch().to(update_me))
                .route(web::delete().to(leave)),
        )
        .service(
            web::resource("/auth/me/phone/verify").route(web::post().to(verify_phone)),
        );
}

/// The routes other modules' processes call (under `/internal`).
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users/admins").route(web::get().to(admins)))
        .service(web::resource("/users/{id}/contact").route(web::get().to(contact)))
        .service(web::resource("/users/{id}/accepts").route(web::get().to(accepts)))
        .service(web::resource("/users/oidc").route(web::post().to(oidc_user)))
        .service(
            web::resource("/users/{id}/phone-unreachable").route(web::post().to(phone_unreachable)),
        );
}

#[derive(OpenApi)]
#[openapi(paths(contact, admins, accepts, oidc_user, phone_unreachable),
    components(schemas(Contact, OidcUser, Identity, UnreachablePhone)))]
pub struct InternalApi;

#[derive(serde::Deserialize, utoipa::IntoParams)]
struct TokenFacts {
    /// The token's `iat`.
    iat: i64,
    /// The token's `sid`, when it has one.
    sid: Option<String>,
}

/// The account of an identity provider's user (made on first sight); `null` when closed.
#[utoipa::path(post, path = "/internal/users/oidc", tag = "internal", request_body = OidcUser,
    security(("bearer" = [])), responses((status = 200, body = Option<String>)))]
async fn oidc_user(
    auth: web::Data<AuthService>,
    web::Json(asked): web::Json<OidcUser>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        auth.directory()
            .oidc_user(&asked.identity, asked.admin)
            .await?,
    ))
}

/// `POST /internal/users/{id}/phone-unreachable`: the number an SMS provider refused for good.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UnreachablePhone {
    pub phone: String,
}

/// The number stops counting as verified when it is still the user's (an SMS provider
/// refused it for good).
#[utoipa::path(post, path = "/internal/users/{id}/phone-unreachable", tag = "internal",
    params(("id" = String, Path)), request_body = UnreachablePhone,
    security(("bearer" = [])), responses((status = 200, body = bool, description = "Whether it was the user's")))]
async fn phone_unreachable(
    auth: web::Data<AuthService>,
    id: web::Path<String>,
    web::Json(body): web::Json<UnreachablePhone>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(auth.directory().phone_unreachable(id, &body.phone).await?))
}

/// Whether a validly signed access token of the user still stands (see [`Accounts`]).
#[utoipa::path(get, path = "/internal/users/{id}/accepts", tag = "internal",
    params(("id" = String, Path), TokenFacts),
    security(("bearer" = [])), responses((status = 200, body = bool)))]
async fn accepts(
    auth: web::Data<AuthService>,
    id: web::Path<String>,
    facts: web::Query<TokenFacts>,
) -> Result<HttpResponse, ApiError> {
    let token = AuthUser {
        id: parse_id(&id)?,
        role: crate::http::auth::Role::Customer,
        session: facts.sid.as_deref().map(parse_id).transpose()?,
        issued_at: facts.iat,
    };
    Ok(HttpResponse::Ok().json(auth.directory().accepts(&token).await?))
}

/// Every admin, as `[userId, contact]` pairs.
#[utoipa::path(get, path = "/internal/users/admins", tag = "internal",
    security(("bearer" = [])), responses((status = 200, body = Vec<Object>)))]
async fn admins(auth: web::Data<AuthService>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(auth.directory().admins().await?))
}

/// How to reach a user (`null` when there is no such user).
#[utoipa::path(get, path = "/internal/users/{id}/contact", tag = "internal", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Option<Contact>)))]
async fn contact(
    auth: web::Data<AuthService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(auth.directory().contact(id).await?))
}

#[derive(OpenApi)]
#[openapi(
    paths(signup, login, refresh, logout, logout_all, verify_email, resend, forgot, reset, change,
          sessions, revoke_session, me, update_me, verify_phone, leave, export),
    components(schemas(SignupRequest, LoginRequest, RefreshRequest, TokenPair, User, Session,
                       TokenRequest, ForgotRequest, ResetRequest, ChangeRequest, Accepted,
                       LeaveRequest, UpdateMe, VerifyPhone, Locale)),
    tags((name = "auth", description = "Accounts and tokens"))
)]
pub struct AuthApi;

/// Create an account.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", operation_id = "signup", request_body = SignupRequest,
    responses((status = 201, body = TokenPair, description = "The account, signed in"),
              (status = 409, body = crate::error::ErrorBody, description = "The email is taken")))]
async fn signup(
    req: HttpRequest,
    auth: web::Data<AuthService>,
    limits: web::Data<Limits>,
    Json(body): Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.local_accounts()?;
    limits.check_email(&Email::normalize(&body.email)).await?;
    let (email, password, name) = match (
        Email::parse(&body.email),
        Password::parse(&body.password),
        body.name.as_deref().map(parse_name).transpose(),
    ) {
        (Ok(email), Ok(password), Ok(name)) => (email, password, name),
        (email, password, name) => {
            let errors = [email.err(), password.err(), name.err()];
            return Err(ApiError::Validation(errors.into_iter().flatten().collect()));
        }
    };
    // The language of the messages: the one the client prefers, when it is one we write.
    let locale = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Locale::from_accept_language)
        .unwrap_or_default();
    let pair = auth
        .signup(email, password, name, locale, origin(&req, &limits))
        .await?;
    Ok(tokens(HttpResponse::Created(), &pair))
}

/// Log in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", operation_id = "login", request_body = LoginRequest,
    responses((status = 200, body = TokenPair, description = "Signed in"),
              (status = 401, body = crate::error::ErrorBody, description = "Wrong email or password")))]
async fn login(
    req: HttpRequest,
    auth: web::Data<AuthService>,
    limits: web::Data<Limits>,
    Json(body): Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.local_accounts()?;
    limits.check_email(&Email::normalize(&body.email)).await?;
    let pair = auth
        .login(&body.email, body.password, origin(&req, &limits))
        .await?;
    Ok(tokens(HttpResponse::Ok(), &pair))
}

/// Where a login comes from: the client's address and its `User-Agent` (at most 255
/// characters, control characters dropped), kept with the session.
fn origin(req: &HttpRequest, limits: &Limits) -> Origin {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().filter(|c| !c.is_control()).take(255).collect::<String>())
        .filter(|ua| !ua.is_empty());
    Origin {
        user_agent,
        ip: Some(limits.client(req).to_string()),
    }
}

/// An answer carrying tokens, which no cache may keep (RFC 6749, 5.1).
fn tokens(mut answer: HttpResponseBuilder, pair: &TokenPair) -> HttpResponse {
    answer
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(pair)
}


/// Trade a refresh token for a new pair; the old token stops working.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", operation_id = "refreshTokens", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair, description = "A new pair, without `user`"),
              (status = 401, body = crate::error::ErrorBody,
               description = "Unknown, expired or revoked; a token presented again after its rotation revokes its whole session")))]
async fn refresh(
    auth: web::Data<AuthService>,
    Json(body): Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.local_accounts()?;
    Ok(tokens(
        HttpResponse::Ok(),
        &auth.refresh(&body.refresh_token).await?,
    ))
}

/// End the login session of a refresh token: the token and the session's access tokens
/// stop working.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout", request_body = RefreshRequest,
    responses((status = 204, description = "Revoked, or was not known")))]
async fn logout(
    auth: web::Data<AuthService>,
    Json(body): Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.logout(&body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's account.
#[utoipa::path(get, path = "/auth/me", tag = "auth", operation_id = "getMe", security(("bearer" = [])),
    responses((status = 200, body = User)))]
async fn me(auth: web::Data<AuthService>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(auth.me(user.id).await?))
}

/// Change the caller's language or phone number (only the fields sent change). A new number
/// is stored unverified and a 6-digit code goes to it by SMS; SMS go only to verified numbers.
#[utoipa::path(patch, path = "/auth/me", tag = "auth", operation_id = "updateMe", security(("bearer" = [])),
    request_body = UpdateMe,
    responses((status = 200, body = User, description = "The account as changed"),
              (status = 429, body = crate::error::ErrorBody, description = "A 4th code within an hour: nothing changed")))]
async fn update_me(
    auth: web::Data<AuthService>,
    user: AuthUser,
    Json(body): Json<UpdateMe>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.validate().map_err(ApiError::Validation)?;
    Ok(HttpResponse::Ok().json(auth.update_me(user.id, changes).await?))
}

/// Prove the phone number with the code sent to it.
#[utoipa::path(post, path = "/auth/me/phone/verify", tag = "auth", operation_id = "verifyPhone",
    security(("bearer" = [])), request_body = VerifyPhone,
    responses((status = 200, body = User, description = "The account, `phoneVerified` true"),
              (status = 400, body = crate::error::ErrorBody,
               description = "`VALIDATION_ERROR` naming `code` for wrong digits; `INVALID_TOKEN` when no code is live: none sent, expired (10 minutes), used, or dead after 5 wrong ones")))]
async fn verify_phone(
    auth: web::Data<AuthService>,
    user: AuthUser,
    Json(body): Json<VerifyPhone>,
) -> Result<HttpResponse, ApiError> {
    let code = body.validate().map_err(ApiError::Validation)?;
    Ok(HttpResponse::Ok().json(auth.verify_phone(user.id, code).await?))
}

/// The answer of a request whose work goes on after it (an email on its way, or not).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Accepted {
    #[schema(example = "If an account uses this address, an email is on its way")]
    message: &'static str,
}

fn accepted(message: &'static str) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Accepted { message })
}

/// Prove the account's email address with the token of the emailed link.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", operation_id = "verifyEmail",
    request_body = TokenRequest,
    responses((status = 200, body = User, description = "The account, its email verified"),
              (status = 400, body = crate::error::ErrorBody,
               description = "`INVALID_TOKEN`: unknown, used, expired, or sent to an address the account no longer has")))]
async fn verify_email(
    auth: web::Data<AuthService>,
    Json(body): Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.local_accounts()?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(auth.verify_email(&body.token).await?))
}

/// At most 3 verification emails an hour per account.
const RESEND: Policy = Policy {
    name: "verify_email",
    max: 3,
    window: std::time::Duration::from_secs(3600),
};

/// Send a new verification link (the earlier one stops working). An address already
/// verified gets nothing.
#[utoipa::path(post, path = "/auth/verify-email/resend", tag = "auth", operation_id = "resendVerification",
    security(("bearer" = [])),
    responses((status = 202, body = Accepted, description = "A new link is on its way (none when the address is verified already)"),
              (status = 429, body = crate::error::ErrorBody, description = "More than 3 in an hour")))]
async fn resend(
    auth: web::Data<AuthService>,
    limits: web::Data<Limits>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    auth.local_accounts()?;
    limits.check(RESEND, &format!("verify:{}", user.id)).await?;
    auth.resend_verification(user.id).await?;
    Ok(accepted("A new verification link is on its way"))
}

const FORGOT: &str = "If an account uses this address, a reset link is on its way";

/// Ask for a password-reset link. The answer is the same, and as quick, whether or not an
/// account uses the address.
#[utoipa::path(post, path = "/auth/password/forgot", tag = "auth", operation_id = "forgotPassword",
    request_body = ForgotRequest,
    responses((status = 202, body = Accepted, description = "The same answer whether or not the account exists")))]
async fn forgot(
    auth: web::Data<AuthService>,
    limits: web::Data<Limits>,
    Json(body): Json<ForgotRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.local_accounts()?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::Validation(vec![e]))?;
    limits.check_email(email.as_str()).await?;
    let email = email.as_str().to_owned();
    actix_web::rt::spawn(async move {
        if let Err(error) = auth.forgot_password(email).await {
            tracing::warn!(%error, "password reset email not queued");
        }
    });
    Ok(accepted(FORGOT))
}

/// Choose a new password with the token of the emailed link: a new session; every other
/// session and every earlier access token stop working.
#[utoipa::path(post, path = "/auth/password/reset", tag = "auth", operation_id = "resetPassword",
    request_body = ResetRequest,
    responses((status = 200, body = TokenPair, description = "The account, signed in on a new session"),
              (status = 400, body = crate::error::ErrorBody,
               description = "`INVALID_TOKEN` (unknown, used or expired), or `VALIDATION_ERROR` naming `password`")))]
async fn reset(
    req: HttpRequest,
    auth: web::Data<AuthService>,
    limits: web::Data<Limits>,
    Json(body): Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.local_accounts()?;
    let password = Password::parse(&body.password).map_err(|e| ApiError::Validation(vec![e]))?;
    let pair = auth
        .reset_password(&body.token, password, origin(&req, &limits))
        .await?;
    Ok(tokens(HttpResponse::Ok(), &pair))
}

/// Change the password: every session and every earlier access token stop working, and the
/// caller goes on in a new session, whose pair is the answer.
#[utoipa::path(post, path = "/auth/password/change", tag = "auth", operation_id = "changePassword",
    request_body = ChangeRequest, security(("bearer" = [])),
    responses((status = 200, body = TokenPair, description = "A new pair, without `user`"),
              (status = 400, body = crate::error::ErrorBody,
               description = "`currentPassword` is wrong, or `newPassword` breaks the password rules"),
              (status = 409, body = crate::error::ErrorBody,
               description = "The account signs in through its identity provider and has no password")))]
async fn change(
    req: HttpRequest,
    auth: web::Data<AuthService>,
    limits: web::Data<Limits>,
    user: AuthUser,
    Json(body): Json<ChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.local_accounts()?;
    let new = Password::parse(&body.new_password)
        .map_err(|e| ApiError::field("newPassword", e.message))?;
    let pair = auth
        .change_password(user, body.current_password, new, origin(&req, &limits))
        .await?;
    Ok(tokens(HttpResponse::Ok(), &pair))
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", operation_id = "listSessions",
    security(("bearer" = [])), responses((status = 200, body = Vec<Session>)))]
async fn sessions(auth: web::Data<AuthService>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(auth.sessions(user).await?))
}

/// Revoke one of the caller's sessions: its refresh token and its access tokens stop
/// working at once.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", operation_id = "revokeSession",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204, description = "Revoked"),
              (status = 404, body = crate::error::ErrorBody, description = "No such session of the caller's")))]
async fn revoke_session(
    auth: web::Data<AuthService>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.revoke_session(user.id, parse_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revoke every session of the caller, this one included.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", operation_id = "logoutAll",
    security(("bearer" = [])), responses((status = 204, description = "Every session revoked")))]
async fn logout_all(auth: web::Data<AuthService>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    auth.logout_all(user.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Close the caller's account: it is anonymised (email, name and licence removed, sessions
/// revoked, push subscriptions deleted) and can no longer sign in; its bookings stay, under
/// its anonymous id.
#[utoipa::path(delete, path = "/auth/me", tag = "auth", operation_id = "deleteMe",
    request_body(content = Option<LeaveRequest>, description = "The password (accounts of the identity provider send none)"),
    security(("bearer" = [])),
    responses((status = 204, description = "Closed"),
              (status = 400, body = crate::error::ErrorBody, description = "`password` is missing or wrong"),
              (status = 409, body = crate::error::ErrorBody,
               description = "A booking still holds a car (`pending_payment`, `active`, or `confirmed` with its dropoff ahead), a deposit is held or a balance is due")))]
async fn leave(
    auth: web::Data<AuthService>,
    user: AuthUser,
    OptionalJson(body): OptionalJson<LeaveRequest>,
) -> Result<HttpResponse, ApiError> {
    let password = body.and_then(|b| b.password);
    auth.leave(user.id, password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Everything stored about the caller: profile, sessions, bookings with their lines,
/// payment records, messages (a security message without its body) and push subscriptions.
#[utoipa::path(get, path = "/auth/me/export", tag = "auth", operation_id = "exportMe",
    security(("bearer" = [])), responses((status = 200, body = Object, description = "The caller's data")))]
async fn export(auth: web::Data<AuthService>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"carrental-export.json\""))
        .json(auth.export(user.id).await?))
}
