//! Settings: `config/default.toml` < `config/{APP_ENV}.toml` < `APP__SECTION__KEY` < flat names.
//!
//! Each file is read from the config directory (`APP_CONFIG_DIR`, default `config`) when it is
//! there, and otherwise from the copy built into the binary, so the binary runs from anywhere.

mod node;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Deserializer};

const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../config/default.toml")),
    ("development", include_str!("../../config/development.toml")),
    ("test", include_str!("../../config/test.toml")),
    ("staging", include_str!("../../config/staging.toml")),
    ("production", include_str!("../../config/production.toml")),
];

/// Secrets shipped in `config/default.toml`; production refuses them.
const DEVELOPMENT_SECRETS: &[&str] = &["dev-jwt-secret-change-me", "dev-refresh-secret-change-me"];
const MIN_SECRET_LEN: usize = 32;

/// Flat variable names a deployment already uses, and the setting each one sets.
const FLAT_NAMES: &[(&str, &str)] = &[
    ("PORT", "server.port"),
    ("HOST", "server.host"),
    ("DATABASE_URL", "database.url"),
    ("JWT_SECRET", "auth.jwt_secret"),
    ("JWT_SECRET_PREVIOUS", "auth.jwt_secret_previous"),
    ("REFRESH_SECRET", "auth.refresh_secret"),
    ("JWT_EXPIRY", "auth.jwt_expiry"),
    ("REFRESH_EXPIRY", "auth.refresh_expiry"),
    ("BCRYPT_ROUNDS", "auth.bcrypt_rounds"),
    ("ADMIN_EMAILS", "auth.admin_emails"),
    ("VERIFY_EMAIL_TTL", "auth.verify_email_ttl"),
    ("RESET_PASSWORD_TTL", "auth.reset_password_ttl"),
    ("APP_LINK_BASE", "auth.link_base"),
    ("AUTH_PROVIDER", "auth.provider"),
    ("OIDC_ISSUER", "auth.oidc_issuer"),
    ("OIDC_AUDIENCE", "auth.oidc_audience"),
    ("OIDC_ROLES_CLAIM", "auth.oidc_roles_claim"),
    ("OIDC_ADMIN_GROUP", "auth.oidc_admin_group"),
    ("REQUIRE_VERIFIED_EMAIL", "bookings.require_verified_email"),
    ("LOG_LEVEL", "log.level"),
    ("FRONTEND_URL", "http.frontend_url"),
    ("METRICS_TOKEN", "http.metrics_token"),
    ("INTERNAL_TOKEN", "http.internal_token"),
    ("MODULES", "modules"),
    ("NOTIFICATION_PROVIDER", "notifications.provider"),
    ("SMTP_URL", "notifications.smtp_url"),
    ("SMTP_FROM", "notifications.smtp_from"),
    ("NOTIFY_MAX_ATTEMPTS", "notifications.max_attempts"),
    ("NOTIFY_BACKOFF", "notifications.backoff"),
    ("SMS_PROVIDER", "notifications.sms_provider"),
    ("TWILIO_ACCOUNT_SID", "notifications.twilio_account_sid"),
    ("TWILIO_AUTH_TOKEN", "notifications.twilio_auth_token"),
    ("TWILIO_FROM", "notifications.twilio_from"),
    ("TWILIO_API_BASE", "notifications.twilio_api_base"),
    ("VAPID_PUBLIC_KEY", "notifications.vapid_public_key"),
    ("VAPID_PRIVATE_KEY", "notifications.vapid_private_key"),
    ("VAPID_SUBJECT", "notifications.vapid_subject"),
    ("REMINDER_BEFORE_PICKUP", "bookings.reminder_before_pickup"),
    ("REMINDER_BEFORE_RETURN", "bookings.reminder_before_return"),
    ("OVERDUE_AFTER", "bookings.overdue_after"),
    ("TRUSTED_PROXIES", "http.trusted_proxies"),
    ("SHUTDOWN_DRAIN_DELAY", "server.drain_delay"),
    ("RATE_LIMIT_MAX", "rate_limit.max"),
    ("RATE_LIMIT_WINDOW", "rate_limit.window"),
    ("AUTH_RATE_LIMIT_MAX", "rate_limit.auth_max"),
    ("AUTH_RATE_LIMIT_WINDOW", "rate_limit.auth_window"),
    ("RATE_LIMIT_REDIS_URL", "rate_limit.redis_url"),
    ("BCRYPT_CONCURRENCY", "auth.bcrypt_concurrency"),
    (
        "MAX_UPCOMING_BOOKINGS_PER_USER",
        "bookings.max_upcoming_per_user",
    ),
    ("PICKUP_EARLY_WINDOW", "bookings.pickup_early_window"),
    (
        "REQUIRE_VERIFIED_LICENCE",
        "bookings.require_verified_licence",
    ),
    ("PAYMENT_PROVIDER", "payments.provider"),
    ("PAYMENT_HOLD", "payments.hold"),
    (
        "CANCELLATION_FREE_HOURS",
        "payments.cancellation_free_hours",
    ),
    (
        "LATE_CANCELLATION_FEE_PERCENT",
        "payments.late_cancellation_fee_percent",
    ),
    ("STRIPE_API_BASE", "payments.stripe_api_base"),
    ("STRIPE_SECRET_KEY", "payments.stripe_secret_key"),
    ("STRIPE_WEBHOOK_SECRET", "payments.stripe_webhook_secret"),
    ("STORAGE_PROVIDER", "storage.provider"),
    ("MEDIA_DIR", "storage.media_dir"),
    ("MEDIA_MAX_BYTES", "storage.max_bytes"),
    ("MEDIA_PUBLIC_BASE_URL", "storage.public_base_url"),
    ("PUBLIC_URL", "storage.public_url"),
    ("S3_BUCKET", "storage.s3_bucket"),
    ("S3_REGION", "storage.s3_region"),
    ("S3_ENDPOINT", "storage.s3_endpoint"),
    ("S3_ACCESS_KEY_ID", "storage.s3_access_key_id"),
    ("S3_SECRET_ACCESS_KEY", "storage.s3_secret_access_key"),
    ("S3_FORCE_PATH_STYLE", "storage.s3_force_path_style"),
    ("CAR_CACHE_SIZE", "cache.cars"),
    ("ELASTICSEARCH_URL", "search.url"),
    ("OPENSEARCH_URL", "search.url"),
    ("OPENSEARCH_INDEX", "search.index"),
    ("OPENSEARCH_CA_CERT", "search.ca_cert"),
    ("OPENSEARCH_USERNAME", "search.username"),
    ("OPENSEARCH_PASSWORD", "search.password"),
    ("OPENSEARCH_API_KEY", "search.api_key"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    Development,
    Test,
    Staging,
    Production,
}

impl AppEnv {
    fn parse(s: &str) -> Result<Self, SettingsError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "staging" => Ok(Self::Staging),
            "production" | "prod" => Ok(Self::Production),
            other => Err(SettingsError(format!(
                "APP_ENV: unknown environment {other:?} (expected development, test, staging or production)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(skip_deserializing, default = "default_env")]
    pub env: AppEnv,
    /// `MODULES` as given: `None` for `all` (every module the binary was built with), else
    /// the names in lower case, each once (`gateway` or nothing: none). Start-up checks them
    /// against the registry ([`crate::select`]).
    #[serde(deserialize_with = "modules_list")]
    pub modules: Option<Vec<String>>,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub search: SearchSettings,
    pub notifications: NotificationSettings,
    pub services: ServiceSettings,
    pub rate_limit: RateLimitSettings,
    pub bookings: BookingSettings,
    pub payments: PaymentSettings,
    pub storage: StorageSettings,
    pub cache: CacheSettings,
    /// What start-up should warn about in the settings given (logged once, at start).
    #[serde(skip)]
    pub notices: Vec<String>,
}

fn default_env() -> AppEnv {
    AppEnv::Development
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub body_limit: usize,
    /// How long a request body may stop arriving before the request ends with a 408.
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// After SIGTERM: how long the server keeps serving (reporting not-ready) so that load
    /// balancers stop sending before it stops taking connections.
    #[serde(deserialize_with = "duration")]
    pub drain_delay: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    pub connect_retries: u32,
    pub migrate_on_start: bool,
}

#[derive(Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: String,
    /// The access-token secret before a rotation, still accepted for verification.
    pub jwt_secret_previous: String,
    pub refresh_secret: String,
    #[serde(deserialize_with = "duration")]
    pub jwt_expiry: Duration,
    #[serde(deserialize_with = "duration")]
    pub refresh_expiry: Duration,
    pub bcrypt_rounds: u32,
    /// Password hashes computed at once; 0: one less than the cores, at least one.
    pub bcrypt_concurrency: usize,
    /// How long a login or signup waits for a turn before it is a 503.
    #[serde(deserialize_with = "duration")]
    pub bcrypt_wait: Duration,
    /// Promoted to admin when a password reset for the address is completed.
    #[serde(deserialize_with = "comma_list")]
    pub admin_emails: Vec<String>,
    /// How long an email-verification link works.
    #[serde(deserialize_with = "duration")]
    pub verify_email_ttl: Duration,
    /// How long a password-reset link works.
    #[serde(deserialize_with = "duration")]
    pub reset_password_ttl: Duration,
    /// Where links in emails point (`APP_LINK_BASE`); empty: the first `FRONTEND_URL`.
    pub link_base: String,
    /// Who signs people in: `local`, `oidc`, or both (`local,oidc`).
    #[serde(deserialize_with = "comma_list")]
    pub provider: Vec<String>,
    /// The identity provider's issuer (`OIDC_ISSUER`), exactly as its tokens' `iss`.
    pub oidc_issuer: String,
    /// The client id its tokens must name in `aud` (or `client_id`).
    pub oidc_audience: String,
    /// The claim holding the user's groups.
    pub oidc_roles_claim: String,
    /// The group that makes an admin.
    pub oidc_admin_group: String,
    /// The least time between two fetches of the issuer's keys for an unknown `kid`.
    #[serde(deserialize_with = "duration")]
    pub oidc_refetch_interval: Duration,
}

impl AuthSettings {
    /// Whether this server's own accounts (signup, login, passwords) are on.
    pub fn local(&self) -> bool {
        self.provider
            .iter()
            .any(|p| p.eq_ignore_ascii_case("local"))
    }

    /// Whether tokens of an external identity provider are accepted.
    pub fn oidc(&self) -> bool {
        self.provider.iter().any(|p| p.eq_ignore_ascii_case("oidc"))
    }
}

impl AuthSettings {
    /// Password hashes computed at once: the setting, or one less than the cores.
    pub fn bcrypt_turns(&self) -> usize {
        match self.bcrypt_concurrency {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1),
            n => n,
        }
    }
}

// Hand-written so that secrets never reach a log line through `{:?}`.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &"<redacted>")
            .field("jwt_secret_previous", &!self.jwt_secret_previous.is_empty())
            .field("refresh_secret", &"<redacted>")
            .field("jwt_expiry", &self.jwt_expiry)
            .field("refresh_expiry", &self.refresh_expiry)
            .field("bcrypt_rounds", &self.bcrypt_rounds)
            .field("bcrypt_concurrency", &self.bcrypt_concurrency)
            .field("admin_emails", &self.admin_emails)
            .field("verify_email_ttl", &self.verify_email_ttl)
            .field("reset_password_ttl", &self.reset_password_ttl)
            .field("link_base", &self.link_base)
            .field("provider", &self.provider)
            .field("oidc_issuer", &self.oidc_issuer)
            .field("oidc_audience", &self.oidc_audience)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
pub struct HttpSettings {
    #[serde(deserialize_with = "comma_list")]
    pub frontend_url: Vec<String>,
    pub metrics_token: String,
    pub internal_token: String,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDRs).
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("frontend_url", &self.frontend_url)
            .field("metrics_token", &(!self.metrics_token.is_empty()))
            .field("internal_token", &(!self.internal_token.is_empty()))
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
pub struct SearchSettings {
    /// OpenSearch (or Elasticsearch-compatible) endpoint; empty means the database engine.
    pub url: String,
    /// The alias searches go through; each rebuild creates a new index behind it.
    pub index: String,
    /// One search request.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Index creation, alias moves, counts and bulk writes.
    #[serde(deserialize_with = "duration")]
    pub maintenance_timeout: Duration,
    /// How often the index is compared with the database (and filled when it misses cars).
    #[serde(deserialize_with = "duration")]
    pub check_every: Duration,
    /// A PEM file of the CA that signed the cluster's certificate (self-signed clusters).
    pub ca_cert: String,
    pub username: String,
    pub password: String,
    /// An Elasticsearch API key: `id:key`, or the base64 `encoded` form.
    pub api_key: String,
}

/// The URL with any password in it masked.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparsable>".to_owned(),
    }
}

// Hand-written: the URL, the password and the API key are secrets.
impl std::fmt::Debug for SearchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchSettings")
            .field("url", &redact_url(&self.url))
            .field("index", &self.index)
            .field("timeout", &self.timeout)
            .field("maintenance_timeout", &self.maintenance_timeout)
            .field("check_every", &self.check_every)
            .field("ca_cert", &self.ca_cert)
            .field("username", &self.username)
            .field("password", &(!self.password.is_empty()))
            .field("api_key", &(!self.api_key.is_empty()))
            .finish()
    }
}

/// Requests per client per window; `max = 0` turns the general limit off (the auth limit
/// always applies).
#[derive(Clone, Deserialize)]
pub struct RateLimitSettings {
    pub max: u64,
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
    pub auth_max: u64,
    #[serde(deserialize_with = "duration")]
    pub auth_window: Duration,
    /// Shared counters for every replica; empty: in process memory.
    pub redis_url: String,
    /// Prefix of the counters' keys, so that deployments can share one Redis.
    pub redis_prefix: String,
}

// Hand-written: the Redis URL may hold a password.
impl std::fmt::Debug for RateLimitSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitSettings")
            .field("max", &self.max)
            .field("window", &self.window)
            .field("auth_max", &self.auth_max)
            .field("auth_window", &self.auth_window)
            .field("redis", &!self.redis_url.is_empty())
            .field("redis_prefix", &self.redis_prefix)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BookingSettings {
    /// Confirmed bookings still to come a customer may hold (admins are exempt).
    pub max_upcoming_per_user: i64,
    /// How long before its pickup time a booking may be picked up.
    #[serde(deserialize_with = "duration")]
    pub pickup_early_window: Duration,
    /// A pickup needs the customer's driving licence verified by the desk.
    pub require_verified_licence: bool,
    /// Booking needs the customer's email verified.
    pub require_verified_email: bool,
    /// How long before a confirmed booking's pickup its `pickup_reminder` goes out.
    #[serde(deserialize_with = "duration")]
    pub reminder_before_pickup: Duration,
    /// How long before an active booking's dropoff its `return_reminder` goes out.
    #[serde(deserialize_with = "duration")]
    pub reminder_before_return: Duration,
    /// How long after a dropoff not returned its `overdue_return` goes out.
    #[serde(deserialize_with = "duration")]
    pub overdue_after: Duration,
}

/// Taking money for bookings (API.md, Payments).
#[derive(Clone, Deserialize)]
pub struct PaymentSettings {
    /// `none` (no online payment), `mock` (in-process) or `stripe`.
    pub provider: String,
    /// How long an unpaid booking holds its slot.
    #[serde(deserialize_with = "duration")]
    pub hold: Duration,
    /// A paid booking cancelled at least this many hours before pickup is refunded in full.
    pub cancellation_free_hours: i64,
    /// The share of the rental kept when it is cancelled later (but before pickup).
    pub late_cancellation_fee_percent: i64,
    pub stripe_api_base: String,
    pub stripe_secret_key: String,
    pub stripe_webhook_secret: String,
    /// One call to the provider.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// How often intents still open after `reconcile_after` are asked about.
    #[serde(deserialize_with = "duration")]
    pub reconcile_every: Duration,
    #[serde(deserialize_with = "duration")]
    pub reconcile_after: Duration,
    /// A deposit held this long is authorised anew (processors let one lapse after 7 days).
    #[serde(deserialize_with = "duration")]
    pub reauthorize_after: Duration,
}

impl std::fmt::Debug for PaymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field("provider", &self.provider)
            .field("hold", &self.hold)
            .field("stripe_api_base", &self.stripe_api_base)
            .field("stripe_secret_key", &!self.stripe_secret_key.is_empty())
            .field(
                "stripe_webhook_secret",
                &!self.stripe_webhook_secret.is_empty(),
            )
            .finish_non_exhaustive()
    }
}

/// Where photos and documents are kept (API.md, Photos and documents).
#[derive(Clone, Deserialize)]
pub struct StorageSettings {
    /// `local` (files under `media_dir`, served here) or `s3`.
    pub provider: String,
    pub media_dir: String,
    /// The largest upload accepted, in bytes.
    pub max_bytes: u64,
    /// Where clients reach this server (the `local` provider's links); empty:
    /// `http://localhost:{PORT}`.
    pub public_url: String,
    /// Where public objects are read with `s3` (a CDN in front of the bucket); empty: the
    /// bucket's own URL.
    pub public_base_url: String,
    pub s3_bucket: String,
    pub s3_region: String,
    /// Empty: AWS; set for MinIO, R2, Spaces and the like.
    pub s3_endpoint: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    pub s3_force_path_style: bool,
    /// One call to the store.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Uploads not completed this long after they were offered are deleted.
    #[serde(deserialize_with = "duration")]
    pub abandon_after: Duration,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("provider", &self.provider)
            .field("media_dir", &self.media_dir)
            .field("max_bytes", &self.max_bytes)
            .field("public_url", &self.public_url)
            .field("public_base_url", &self.public_base_url)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_region", &self.s3_region)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_access_key_id", &!self.s3_access_key_id.is_empty())
            .field(
                "s3_secret_access_key",
                &!self.s3_secret_access_key.is_empty(),
            )
            .finish_non_exhaustive()
    }
}

impl StorageSettings {
    fn check(&self) -> Result<(), SettingsError> {
        match self.provider.as_str() {
            "local" => {
                if self.media_dir.trim().is_empty() {
                    return Err(SettingsError("MEDIA_DIR must not be empty".into()));
                }
            }
            "s3" => {
                for (name, value) in [
                    ("S3_BUCKET", &self.s3_bucket),
                    ("S3_ACCESS_KEY_ID", &self.s3_access_key_id),
                    ("S3_SECRET_ACCESS_KEY", &self.s3_secret_access_key),
                ] {
                    if value.trim().is_empty() {
                        return Err(SettingsError(format!(
                            "{name} must be set when STORAGE_PROVIDER=s3"
                        )));
                    }
                }
                for (name, value) in [
                    ("S3_ENDPOINT", &self.s3_endpoint),
                    ("MEDIA_PUBLIC_BASE_URL", &self.public_base_url),
                ] {
                    check_http_url(name, value)?;
                }
            }
            other => {
                return Err(SettingsError(format!(
                    "STORAGE_PROVIDER: unknown provider {other:?} (expected local or s3)"
                )))
            }
        }
        check_http_url("PUBLIC_URL", &self.public_url)?;
        if self.max_bytes == 0 {
            return Err(SettingsError("MEDIA_MAX_BYTES must be at least 1".into()));
        }
        if self.timeout.is_zero() || self.abandon_after.is_zero() {
            return Err(SettingsError(
                "storage.timeout and storage.abandon_after must be longer than 0".into(),
            ));
        }
        Ok(())
    }
}

/// An optional setting that, when given, must be an http(s) URL.
fn check_http_url(name: &str, value: &str) -> Result<(), SettingsError> {
    if value.is_empty() {
        return Ok(());
    }
    let url =
        url::Url::parse(value).map_err(|e| SettingsError(format!("{name}: not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SettingsError(format!(
            "{name} must be an http:// or https:// URL"
        )));
    }
    Ok(())
}

/// The in-process read cache of cars and listing pages.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    /// Cars kept in memory; 0 turns the cache off.
    pub cars: usize,
    /// Listing pages kept in memory.
    pub pages: usize,
    /// How often this process looks for car writes made by other processes.
    #[serde(deserialize_with = "duration")]
    pub version_poll: Duration,
}

/// Where the modules this process does not serve are reached (split deployment).
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings {
    /// Every `*_SERVICE_URL` variable set, by name (`CAR_SERVICE_URL`).
    #[serde(skip)]
    pub urls: BTreeMap<String, String>,
    /// How long a forwarded request may take, answer included.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// How long one call between modules may take.
    #[serde(deserialize_with = "duration")]
    pub internal_timeout: Duration,
}

impl ServiceSettings {
    /// The URL the variable `name` sets, when it is set.
    pub fn url(&self, name: &str) -> Option<&str> {
        self.urls
            .get(name)
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Log,
    Smtp,
}

#[derive(Clone, Deserialize)]
pub struct NotificationSettings {
    pub provider: Provider,
    /// lettre's form: `smtp://user:pass@host:587?tls=required`, `smtps://…`, `smtp://host:2525`.
    pub smtp_url: String,
    pub smtp_from: String,
    pub max_attempts: i32,
    /// Wait after the first failed attempt; doubles after each further one.
    #[serde(deserialize_with = "duration")]
    pub backoff: Duration,
    #[serde(deserialize_with = "duration")]
    pub max_backoff: Duration,
    #[serde(deserialize_with = "duration")]
    pub poll: Duration,
    /// How long a claimed message is its worker's: another worker tries it only after this,
    /// should the first die in the middle of a delivery.
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// `log` or `twilio`.
    pub sms_provider: SmsProvider,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub twilio_from: String,
    pub twilio_api_base: String,
    /// base64url of the uncompressed P-256 point; empty: no Web Push.
    pub vapid_public_key: String,
    /// base64url of the raw 32-byte scalar.
    pub vapid_private_key: String,
    /// `mailto:` or `https:`: whom push services may contact about this sender.
    pub vapid_subject: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    Log,
    Twilio,
}

// Hand-written: SMTP_URL, TWILIO_AUTH_TOKEN and VAPID_PRIVATE_KEY are secrets.
impl std::fmt::Debug for NotificationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationSettings")
            .field("provider", &self.provider)
            .field("smtp_url", &(!self.smtp_url.is_empty()))
            .field("smtp_from", &self.smtp_from)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("lease", &self.lease)
            .field("sms_provider", &self.sms_provider)
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &(!self.twilio_auth_token.is_empty()))
            .field("twilio_api_base", &self.twilio_api_base)
            .field("vapid_public_key", &self.vapid_public_key)
            .field("vapid_private_key", &(!self.vapid_private_key.is_empty()))
            .field("vapid_subject", &self.vapid_subject)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// A setting that is missing or wrong; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Where links in emails point: `APP_LINK_BASE`, else the first `FRONTEND_URL`, without
    /// a trailing slash.
    pub fn link_base(&self) -> String {
        let base = match self.auth.link_base.trim() {
            "" => self.http.frontend_url.first().map_or("", String::as_str),
            set => set,
        };
        base.trim_end_matches('/').to_owned()
    }

    fn check_auth_provider(&self) -> Result<(), SettingsError> {
        let auth = &self.auth;
        if auth.provider.is_empty()
            || auth
                .provider
                .iter()
                .any(|p| !p.eq_ignore_ascii_case("local") && !p.eq_ignore_ascii_case("oidc"))
        {
            return Err(SettingsError(format!(
                "AUTH_PROVIDER: {:?} (expected local, oidc or local,oidc)",
                auth.provider.join(",")
            )));
        }
        if auth.oidc() {
            let issuer = url::Url::parse(&auth.oidc_issuer).map_err(|e| {
                SettingsError(format!(
                    "OIDC_ISSUER must be the issuer's URL with AUTH_PROVIDER=oidc ({e})"
                ))
            })?;
            if !matches!(issuer.scheme(), "http" | "https") {
                return Err(SettingsError(
                    "OIDC_ISSUER must be an http:// or https:// URL".into(),
                ));
            }
            if auth.oidc_audience.trim().is_empty() {
                return Err(SettingsError(
                    "OIDC_AUDIENCE must be set with AUTH_PROVIDER=oidc (the client id tokens name)"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// Settings from the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Settings from the given variables instead of the process environment (tests use this).
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Self, SettingsError> {
        let mut notices = Vec::new();
        let env = node::environment(&vars, &mut notices)?;
        let dir = PathBuf::from(vars.get("APP_CONFIG_DIR").map_or("config", String::as_str));

        let mut builder = Config::builder();
        for name in ["default", env.name()] {
            let path = dir.join(format!("{name}.toml"));
            builder = if path.is_file() {
                builder.add_source(File::from(path))
            } else {
                let text = BUILT_IN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or("", |(_, t)| t);
                builder.add_source(File::from_str(text, FileFormat::Toml))
            };
        }
        let app_vars: HashMap<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("APP__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .source(Some(app_vars)),
        );
        for (flat, key) in FLAT_NAMES {
            builder = builder
                .set_override_option(*key, vars.get(*flat).cloned())
                .map_err(|e| SettingsError(format!("{flat}: {e}")))?;
        }
        let mut settings: Settings = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| SettingsError(format!("invalid settings: {e}")))?;
        settings.env = env;
        settings.services.urls = vars
            .iter()
            .filter(|(k, _)| k.ends_with(SERVICE_URL))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if settings.database.url.starts_with("postgres") {
            let url = settings.database.url.clone();
            settings.database.url = node::prisma_url(&url, &mut settings.database, &mut notices)?;
        }
        notices.sort();
        settings.notices = notices;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if !(4..=31).contains(&self.auth.bcrypt_rounds) {
            return Err(SettingsError(format!(
                "BCRYPT_ROUNDS must be between 4 and 31, got {}",
                self.auth.bcrypt_rounds
            )));
        }
        if self.notifications.max_attempts < 1 {
            return Err(SettingsError(
                "NOTIFY_MAX_ATTEMPTS must be at least 1".into(),
            ));
        }
        if self.notifications.lease.is_zero() {
            return Err(SettingsError(
                "APP__NOTIFICATIONS__LEASE must be longer than 0".into(),
            ));
        }
        if self.notifications.provider == Provider::Smtp && self.notifications.smtp_url.is_empty() {
            return Err(SettingsError(
                "SMTP_URL must be set when NOTIFICATION_PROVIDER=smtp".into(),
            ));
        }
        let n = &self.notifications;
        if n.sms_provider == SmsProvider::Twilio
            && [&n.twilio_account_sid, &n.twilio_auth_token, &n.twilio_from]
                .iter()
                .any(|v| v.is_empty())
        {
            return Err(SettingsError(
                "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM must be set when SMS_PROVIDER=twilio"
                    .into(),
            ));
        }
        if n.vapid_public_key.is_empty() != n.vapid_private_key.is_empty() {
            return Err(SettingsError(
                "VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY go together: set both or neither".into(),
            ));
        }
        let contact =
            n.vapid_subject.starts_with("mailto:") || n.vapid_subject.starts_with("https:");
        if !n.vapid_public_key.is_empty() && !contact {
            return Err(SettingsError(
                "VAPID_SUBJECT must be a mailto: or https: URL".into(),
            ));
        }
        if self.server.body_limit == 0 || self.database.pool_size == 0 {
            return Err(SettingsError(
                "server.body_limit and database.pool_size must be positive".into(),
            ));
        }
        for name in self.services.urls.keys() {
            if let Some(url) = self.services.url(name) {
                let parsed = url::Url::parse(url)
                    .map_err(|e| SettingsError(format!("{name}: not a URL ({e})")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(SettingsError(format!(
                        "{name} must be an http:// or https:// URL"
                    )));
                }
            }
        }
        for origin in &self.http.frontend_url {
            check_origin(origin)?;
        }
        self.check_auth_provider()?;
        if !self.auth.link_base.trim().is_empty() {
            let parsed = url::Url::parse(self.auth.link_base.trim())
                .map_err(|e| SettingsError(format!("APP_LINK_BASE: not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(SettingsError(
                    "APP_LINK_BASE must be an http:// or https:// URL".into(),
                ));
            }
        }
        if self.rate_limit.window.is_zero() || self.rate_limit.auth_window.is_zero() {
            return Err(SettingsError(
                "RATE_LIMIT_WINDOW and AUTH_RATE_LIMIT_WINDOW must be longer than 0".into(),
            ));
        }
        if self.rate_limit.auth_max == 0 {
            return Err(SettingsError(
                "AUTH_RATE_LIMIT_MAX must be at least 1".into(),
            ));
        }
        if !self.rate_limit.redis_url.is_empty() {
            let url = url::Url::parse(&self.rate_limit.redis_url)
                .map_err(|e| SettingsError(format!("RATE_LIMIT_REDIS_URL: not a URL ({e})")))?;
            if !matches!(url.scheme(), "redis" | "rediss") {
                return Err(SettingsError(
                    "RATE_LIMIT_REDIS_URL must be a redis:// or rediss:// URL".into(),
                ));
            }
        }
        if self.cache.version_poll.is_zero() {
            return Err(SettingsError(
                "cache.version_poll must be longer than zero".into(),
            ));
        }
        self.payments.check()?;
        self.storage.check()?;
        if self.bookings.max_upcoming_per_user < 1 {
            return Err(SettingsError(
                "MAX_UPCOMING_BOOKINGS_PER_USER must be at least 1".into(),
            ));
        }
        if matches!(self.env, AppEnv::Production | AppEnv::Staging) {
            let env = self.env.name();
            check_secret(env, "JWT_SECRET", &self.auth.jwt_secret)?;
            check_secret(env, "REFRESH_SECRET", &self.auth.refresh_secret)?;
            if !self.auth.jwt_secret_previous.is_empty() {
                check_secret(env, "JWT_SECRET_PREVIOUS", &self.auth.jwt_secret_previous)?;
            }
        }
        if self.env == AppEnv::Production && self.http.frontend_url.is_empty() {
            return Err(SettingsError(
                "FRONTEND_URL must be set in production (the origins CORS allows, comma separated)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A process that serves only some modules calls the others with `INTERNAL_TOKEN`: in
    /// staging and production it must be a real secret.
    pub fn check_internal_token(&self) -> Result<(), SettingsError> {
        match self.env {
            AppEnv::Production | AppEnv::Staging => {
                check_secret(self.env.name(), "INTERNAL_TOKEN", &self.http.internal_token)
            }
            _ => Ok(()),
        }
    }
}

impl PaymentSettings {
    fn check(&self) -> Result<(), SettingsError> {
        match self.provider.as_str() {
            "none" | "mock" => {}
            "stripe" => {
                for (name, value) in [
                    ("STRIPE_SECRET_KEY", &self.stripe_secret_key),
                    ("STRIPE_WEBHOOK_SECRET", &self.stripe_webhook_secret),
                ] {
                    if value.trim().is_empty() {
                        return Err(SettingsError(format!(
                            "{name} must be set when PAYMENT_PROVIDER=stripe"
                        )));
                    }
                }
                let url = url::Url::parse(&self.stripe_api_base)
                    .map_err(|e| SettingsError(format!("STRIPE_API_BASE: not a URL ({e})")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(SettingsError(
                        "STRIPE_API_BASE must be an http:// or https:// URL".into(),
                    ));
                }
            }
            other => {
                return Err(SettingsError(format!(
                    "PAYMENT_PROVIDER: unknown provider {other:?} (expected none, mock or stripe)"
                )))
            }
        }
        for (name, value) in [
            ("PAYMENT_HOLD", self.hold),
            ("APP__PAYMENTS__TIMEOUT", self.timeout),
            ("APP__PAYMENTS__RECONCILE_EVERY", self.reconcile_every),
            ("APP__PAYMENTS__REAUTHORIZE_AFTER", self.reauthorize_after),
        ] {
            if value.is_zero() {
                return Err(SettingsError(format!("{name} must be longer than 0")));
            }
        }
        if self.cancellation_free_hours < 0 {
            return Err(SettingsError(
                "CANCELLATION_FREE_HOURS must be 0 or more".into(),
            ));
        }
        if !(0..=100).contains(&self.late_cancellation_fee_percent) {
            return Err(SettingsError(
                "LATE_CANCELLATION_FEE_PERCENT must be from 0 to 100".into(),
            ));
        }
        Ok(())
    }
}

/// The ending of the variables naming a module's service (`CAR_SERVICE_URL`).
const SERVICE_URL: &str = "_SERVICE_URL";

fn check_secret(env: &str, name: &str, value: &str) -> Result<(), SettingsError> {
    if value.is_empty() {
        Err(SettingsError(format!("{name} must be set in {env}")))
    } else if value.chars().count() < MIN_SECRET_LEN {
        Err(SettingsError(format!(
            "{name} must be at least {MIN_SECRET_LEN} characters in {env}"
        )))
    } else if DEVELOPMENT_SECRETS.contains(&value) {
        Err(SettingsError(format!(
            "{name} is a development default; set a real secret in {env}"
        )))
    } else {
        Ok(())
    }
}

/// A CORS origin: `*`, or `scheme://host[:port]` and nothing more.
fn check_origin(origin: &str) -> Result<(), SettingsError> {
    if origin == "*" {
        return Ok(());
    }
    let bad = |why: &str| {
        SettingsError(format!(
            "FRONTEND_URL: {origin:?} is not an origin ({why}); expected e.g. https://app.example.com"
        ))
    };
    let url = url::Url::parse(origin).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("it needs http:// or https:// and a host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it has credentials"));
    }
    Ok(())
}

/// Addresses and CIDRs, comma separated (an address alone is a /32 or /128).
fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    comma_list(d)?
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "TRUSTED_PROXIES: {s:?} is not an address or a CIDR"
                    ))
                })
        })
        .collect()
}

/// Parses `15m`, `7d`, `30s`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok(s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// `all` means every module this binary was built with (`None`); `gateway` (or nothing)
/// means none: the process only forwards.
fn modules_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let names = comma_list(d)?;
    if names.iter().any(|n| n.eq_ignore_ascii_case("all")) {
        return Ok(None);
    }
    let mut modules: Vec<String> = Vec::new();
    for name in names.iter().filter(|n| !n.eq_ignore_ascii_case("gateway")) {
        let name = name.to_ascii_lowercase();
        if !modules.contains(&name) {
            modules.push(name);
        }
    }
    Ok(Some(modules))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const GOOD: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_load_in_development() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.env, AppEnv::Development);
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.auth.jwt_expiry, Duration::from_secs(900));
        assert_eq!(s.auth.refresh_expiry, Duration::from_secs(7 * 86400));
        assert_eq!(s.modules, None, "every module");
    }

    #[test]
    fn flat_names_override_prefixed_and_files() {
        let s = Settings::from_vars(vars(&[
            ("APP__SERVER__PORT", "9000"),
            ("PORT", "9100"),
            ("JWT_EXPIRY", "30s"),
            ("APP__AUTH__BCRYPT_ROUNDS", "5"),
            ("ADMIN_EMAILS", " a@x.io, b@x.io ,"),
        ]))
        .unwrap();
        assert_eq!(s.server.port, 9100);
        assert_eq!(s.auth.jwt_expiry, Duration::from_secs(30));
        assert_eq!(s.auth.bcrypt_rounds, 5);
        assert_eq!(s.auth.admin_emails, vec!["a@x.io", "b@x.io"]);
    }

    #[test]
    fn production_requires_strong_secrets_and_names_them() {
        let err = Settings::from_vars(vars(&[("APP_ENV", "production")])).unwrap_err();
        assert!(err.0.contains("JWT_SECRET"), "{err}");

        let err = Settings::from_vars(vars(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", GOOD),
            ("REFRESH_SECRET", "short"),
        ]))
        .unwrap_err();
        assert!(
            err.0.contains("REFRESH_SECRET") && err.0.contains("32"),
            "{err}"
        );

        let err = Settings::from_vars(vars(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "dev-jwt-secret-change-me"),
            ("REFRESH_SECRET", GOOD),
        ]))
        .unwrap_err();
        assert!(err.0.contains("JWT_SECRET"), "{err}");

        let ok = Settings::from_vars(vars(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", GOOD),
            ("REFRESH_SECRET", &GOOD.repeat(2)),
            ("FRONTEND_URL", "https://app.example.com"),
        ]));
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn staging_refuses_development_secrets_too() {
        let err = Settings::from_vars(vars(&[("APP_ENV", "staging")])).unwrap_err();
        assert!(
            err.0.contains("JWT_SECRET") && err.0.contains("staging"),
            "{err}"
        );
        let err = Settings::from_vars(vars(&[
            ("APP_ENV", "staging"),
            ("JWT_SECRET", "dev-jwt-secret-change-me"),
            ("REFRESH_SECRET", GOOD),
        ]))
        .unwrap_err();
        assert!(err.0.contains("JWT_SECRET"), "{err}");
        assert!(Settings::from_vars(vars(&[
            ("APP_ENV", "staging"),
            ("JWT_SECRET", GOOD),
            ("REFRESH_SECRET", GOOD)
        ]))
        .is_ok());
    }

    #[test]
    fn production_needs_a_frontend_url_and_every_origin_must_be_one() {
        let prod = |extra: &[(&str, &str)]| {
            let mut v = vars(&[
                ("APP_ENV", "production"),
                ("JWT_SECRET", GOOD),
                ("REFRESH_SECRET", GOOD),
            ]);
            v.extend(vars(extra));
            Settings::from_vars(v)
        };
        assert!(prod(&[]).unwrap_err().0.contains("FRONTEND_URL"));
        assert!(prod(&[("FRONTEND_URL", "https://app.example.com")]).is_ok());
        for bad in [
            "app.example.com",
            "https://app.example.com/path",
            "ftp://x.io",
            "https://",
        ] {
            let err = Settings::from_vars(vars(&[("FRONTEND_URL", bad)])).unwrap_err();
            assert!(err.0.contains("FRONTEND_URL"), "{bad}: {err}");
        }
        let s = Settings::from_vars(vars(&[(
            "FRONTEND_URL",
            "https://a.io, http://localhost:5173,*",
        )]));
        assert!(s.is_ok());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let s =
            Settings::from_vars(vars(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")])).unwrap();
        assert_eq!(s.http.trusted_proxies.len(), 3);
        assert!(
            s.http.trusted_proxies[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap())
        );
        let err = Settings::from_vars(vars(&[("TRUSTED_PROXIES", "10.0.0.0/33")])).unwrap_err();
        assert!(err.0.contains("TRUSTED_PROXIES"), "{err}");
    }

    #[test]
    fn limits_and_gates_have_their_defaults() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(
            (s.rate_limit.auth_max, s.rate_limit.auth_window),
            (10, Duration::from_secs(60))
        );
        assert_eq!(s.bookings.max_upcoming_per_user, 10);
        assert!(s.auth.bcrypt_turns() >= 1);
        assert_eq!(s.server.drain_delay, Duration::ZERO);
        let err = Settings::from_vars(vars(&[("RATE_LIMIT_REDIS_URL", "http://x")])).unwrap_err();
        assert!(err.0.contains("RATE_LIMIT_REDIS_URL"), "{err}");
    }

    #[test]
    fn split_production_needs_internal_token() {
        let production = |token: &str| {
            Settings::from_vars(vars(&[
                ("APP_ENV", "production"),
                ("JWT_SECRET", GOOD),
                ("REFRESH_SECRET", GOOD),
                ("FRONTEND_URL", "https://app.example.com"),
                ("MODULES", "bookings"),
                ("INTERNAL_TOKEN", token),
            ]))
            .unwrap()
        };
        let err = production("").check_internal_token().unwrap_err();
        assert!(err.0.contains("INTERNAL_TOKEN"), "{err}");
        assert!(production(GOOD).check_internal_token().is_ok());
        let dev = Settings::from_vars(vars(&[("MODULES", "gateway")])).unwrap();
        assert!(dev.check_internal_token().is_ok());
    }

    #[test]
    fn modules_all_some_or_none() {
        let modules = |v: &str| {
            Settings::from_vars(vars(&[("MODULES", v)]))
                .unwrap()
                .modules
        };
        assert_eq!(modules("all"), None);
        assert_eq!(modules("gateway"), Some(vec![]));
        assert_eq!(modules(""), Some(vec![]));
        assert_eq!(
            modules("notifications, AUTH,auth"),
            Some(vec!["notifications".to_owned(), "auth".to_owned()])
        );
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.modules, None, "unset means every module");
    }

    #[test]
    fn service_urls_are_checked_and_named() {
        let s =
            Settings::from_vars(vars(&[("BOOKING_SERVICE_URL", "http://bookings:8080")])).unwrap();
        assert_eq!(
            s.services.url("BOOKING_SERVICE_URL"),
            Some("http://bookings:8080")
        );
        assert_eq!(s.services.url("CAR_SERVICE_URL"), None);
        let err = Settings::from_vars(vars(&[("CAR_SERVICE_URL", "cars:8080")])).unwrap_err();
        assert!(err.0.contains("CAR_SERVICE_URL"), "{err}");
    }

    #[test]
    fn opensearch_url_wins_over_elasticsearch_url() {
        let s = Settings::from_vars(vars(&[("ELASTICSEARCH_URL", "http://es:9200")])).unwrap();
        assert_eq!(s.search.url, "http://es:9200");
        let s = Settings::from_vars(vars(&[
            ("ELASTICSEARCH_URL", "http://es:9200"),
            ("OPENSEARCH_URL", "http://os:9200"),
        ]))
        .unwrap();
        assert_eq!(s.search.url, "http://os:9200");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Settings::from_vars(vars(&[("JWT_EXPIRY", "soon")])).unwrap_err();
        assert!(err.0.contains("jwt_expiry"), "{err}");
        let err = Settings::from_vars(vars(&[("APP_ENV", "prodution")])).unwrap_err();
        assert!(err.0.contains("APP_ENV"), "{err}");
    }
}
