//! Access tokens of an external OpenID Provider (`AUTH_PROVIDER=oidc`), verified against the
//! issuer's keys, which every process fetches and caches itself.
//!
//! The keys come from the `jwks_uri` that the issuer's discovery document names. They are
//! kept for the `max-age` the issuer's answer gives (at most an hour; five minutes when it
//! gives none) and fetched again before that only for a token naming a `kid` the cache does
//! not know, at most once per `oidc_refetch_interval`. An issuer that cannot be reached
//! leaves the cached keys working; a token that needs a key the cache lacks is then a 503.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use crate::config::AuthSettings;
use crate::error::ApiError;

const BAD_TOKEN: &str = "Invalid or expired token";
/// Only asymmetric signatures: a symmetric algorithm would make the public key a secret.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::PS256];
const LONGEST_CACHE: Duration = Duration::from_secs(3600);
const DEFAULT_CACHE: Duration = Duration::from_secs(300);
const LEEWAY_SECS: u64 = 60;

/// Who a provider's token speaks for, as its claims say.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    /// The `email` claim, when `email_verified` is true.
    pub email: Option<String>,
    pub name: Option<String>,
}

/// A verified token: the identity, whether its groups make an admin, and its `iat`.
#[derive(Debug, Clone)]
pub struct Verified {
    pub identity: Identity,
    pub admin: bool,
    pub issued_at: i64,
}

struct Keys {
    set: Vec<Jwk>,
    fetched: Instant,
    max_age: Duration,
}

pub struct OidcVerifier {
    issuer: String,
    audience: String,
    roles_claim: String,
    admin_group: String,
    refetch_interval: Duration,
    http: reqwest::Client,
    jwks_uri: RwLock<Option<String>>,
    keys: RwLock<Option<Keys>>,
    /// When keys were last fetched or tried (fetches are one at a time).
    last_fetch: Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    iat: Option<i64>,
    #[serde(default)]
    aud: Audience,
    client_id: Option<String>,
    email: Option<String>,
    #[serde(default)]
    email_verified: Verification,
    name: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

/// `email_verified` as providers send it: a boolean, or (Cognito) the string "true".
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Verification {
    #[default]
    None,
    Flag(bool),
    Text(String),
}

impl OidcVerifier {
    pub fn new(settings: &AuthSettings, http: reqwest::Client) -> Self {
        OidcVerifier {
            issuer: settings.oidc_issuer.trim().to_owned(),
            audience: settings.oidc_audience.trim().to_owned(),
            roles_claim: settings.oidc_roles_claim.clone(),
            admin_group: settings.oidc_admin_group.clone(),
            refetch_interval: settings.oidc_refetch_interval,
            http,
            jwks_uri: RwLock::new(None),
            keys: RwLock::new(None),
            last_fetch: Mutex::new(None),
        }
    }

    /// Whether `token` claims to come from this issuer (read without checking anything:
    /// it only chooses the verifier).
    pub fn claims_issuer(&self, token: &str) -> bool {
        #[derive(Deserialize)]
        struct Issuer {
            iss: Option<String>,
        }
        jsonwebtoken::dangerous::insecure_decode::<Issuer>(token)
            .ok()
            .and_then(|data| data.claims.iss)
            .is_some_and(|iss| iss == self.issuer)
    }

    /// Verifies a token of the issuer: an allowed algorithm, a key of the issuer's set
    /// chosen by `kid`, the signature, `iss`, the audience, and `exp` with 60 s of leeway.
    pub async fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        let header = decode_header(token).map_err(|_| ApiError::Auth(BAD_TOKEN))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(ApiError::Auth(BAD_TOKEN));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        if !fits(&jwk, header.alg) {
            return Err(ApiError::Auth(BAD_TOKEN));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| ApiError::Auth(BAD_TOKEN))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|_| ApiError::Auth(BAD_TOKEN))?
            .claims;
        let audience_named = match &claims.aud {
            Audience::One(a) => *a == self.audience,
            Audience::Many(all) => all.contains(&self.audience),
            Audience::None => false,
        } || claims.client_id.as_deref() == Some(self.audience.as_str());
        if !audience_named || claims.sub.is_empty() {
            return Err(ApiError::Auth(BAD_TOKEN));
        }
        let verified = matches!(&claims.email_verified, Verification::Flag(true))
            || matches!(&claims.email_verified, Verification::Text(t) if t == "true");
        let admin = match claims.rest.get(&self.roles_claim) {
            Some(serde_json::Value::Array(groups)) => groups
                .iter()
                .any(|g| g.as_str() == Some(self.admin_group.as_str())),
            Some(serde_json::Value::String(groups)) => {
                groups.split([' ', ',']).any(|g| g == self.admin_group)
            }
            _ => false,
        };
        Ok(Verified {
            identity: Identity {
                issuer: self.issuer.clone(),
                subject: claims.sub,
                email: claims
                    .email
                    .filter(|_| verified)
                    .map(|e| e.trim().to_lowercase()),
                name: claims.name,
            },
            admin,
            issued_at: claims.iat.unwrap_or_default(),
        })
    }

    /// The issuer's key for `kid`, from the cache or, when it is stale or lacks the key,
    /// from the issuer.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, ApiError> {
        let cached = {
            let keys = self.keys.read().await;
            keys.as_ref()
                .map(|k| (pick(&k.set, kid), k.fetched.elapsed() < k.max_age))
        };
        match cached {
            Some((Some(jwk), true)) => return Ok(jwk),
            Some((found, false)) => {
                // Stale: try for fresh keys, keep the old ones if the issuer is away.
                if self.fetch(false).await.is_err() {
                    return found.ok_or(ApiError::Unavailable);
                }
            }
            Some((None, true)) => {
                if self.fetch(true).await.is_err() {
                    return Err(ApiError::Unavailable);
                }
            }
            None => self.fetch(false).await.map_err(|_| ApiError::Unavailable)?,
        }
        let keys = self.keys.read().await;
        keys.as_ref()
            .and_then(|k| pick(&k.set, kid))
            .ok_or(ApiError::Auth(BAD_TOKEN))
    }

    /// Fetches the keys; for an unknown `kid` (`limited`), not again within the refetch
    /// interval of the last try (what the cache holds is then the answer).
    async fn fetch(&self, limited: bool) -> Result<(), String> {
        let mut last = self.last_fetch.lock().await;
        if limited && last.is_some_and(|t| t.elapsed() < self.refetch_interval) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let fetched = self.download().await;
        if let Err(error) = &fetched {
            tracing::warn!(%error, issuer = %self.issuer, "the identity provider's keys could not be fetched");
        }
        let (set, max_age) = fetched?;
        *self.keys.write().await = Some(Keys {
            set,
            fetched: Instant::now(),
            max_age,
        });
        Ok(())
    }

    async fn download(&self) -> Result<(Vec<Jwk>, Duration), String> {
        // Read into a local first: a guard in the match would still be held by the write below.
        let known = self.jwks_uri.read().await.clone();
        let uri = match known {
            Some(uri) => uri,
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.issuer.trim_end_matches('/')
                );
                let found: Discovery = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| format!("discovery: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("discovery: {e}"))?;
                *self.jwks_uri.write().await = Some(found.jwks_uri.clone());
                found.jwks_uri
            }
        };
        let res = self
            .http
            .get(&uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("jwks: {e}"))?;
        let max_age = res
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .map_or(DEFAULT_CACHE, |age| age.min(LONGEST_CACHE));
        let set: serde_json::Value = res.json().await.map_err(|e| format!("jwks: {e}"))?;
        // A key of a kind this server does not know is skipped, not a failure of the set.
        let keys = set["keys"]
            .as_array()
            .ok_or("jwks: no keys")?
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect();
        Ok((keys, max_age))
    }
}

/// The key named by `kid`; without a `kid`, the set's only key.
fn pick(set: &[Jwk], kid: Option<&str>) -> Option<Jwk> {
    match (kid, set) {
        (Some(kid), _) => set
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned(),
        (None, [only]) => Some(only.clone()),
        (None, _) => None,
    }
}

/// Whether the key is of the algorithm's kind (and of that algorithm, when it says).
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let kind = matches!(
        (&jwk.algorithm, alg),
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256 | Algorithm::PS256
        ) | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
    );
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok().and_then(|v| v.as_str().map(str::to_owned))
    };
    let said = jwk
        .common
        .key_algorithm
        .and_then(|a| name(serde_json::to_value(a)));
    kind && said.is_none_or(|said| Some(said) == name(serde_json::to_value(alg)))
}

/// `max-age` of a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|part| {
        let (name, secs) = part.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| secs.trim().parse().ok().map(Duration::from_secs))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_gives_the_max_age() {
        assert_eq!(
            max_age("public, max-age=120"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(max_age("Max-Age=5"), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=x"), None);
    }
}
