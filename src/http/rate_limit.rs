//! Rate limits. Every route but the operations ones allows `RATE_LIMIT_MAX` requests per
//! `RATE_LIMIT_WINDOW` per client (0: no such limit); signup and login also allow
//! `AUTH_RATE_LIMIT_MAX` per `AUTH_RATE_LIMIT_WINDOW` per client and per email (the handlers
//! count the email, once they have read it). Fixed windows, counted by
//! actix-extensible-rate-limit's stores: in process memory, or in Redis with
//! `RATE_LIMIT_REDIS_URL` so that every replica shares them. A Redis that cannot be reached
//! lets requests through (logged and counted): the limits fail open, the API stays up.
//!
//! Its own middleware stays small: it skips the operations routes and the requests another
//! process of this deployment forwarded (they were counted where they arrived), and applies
//! two policies where the crate's applies one.
//!
//! The client is the TCP peer; `X-Forwarded-For` is believed only from `TRUSTED_PROXIES`.
//! IPv6 clients count by their /64, which one client usually holds whole.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use actix_extensible_rate_limit::backend::memory::InMemoryBackend;
use actix_extensible_rate_limit::backend::redis::RedisBackend;
use actix_extensible_rate_limit::backend::{Backend, SimpleInput};
use actix_extensible_rate_limit::HeaderCompatibleOutput;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use ipnet::IpNet;

use super::ForwardedHere;
use crate::config::RateLimitSettings;
use crate::error::ApiError;
use crate::telemetry::Metrics;

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// How long one call to Redis may take before the request goes through uncounted.
const STORE_TIMEOUT: Duration = Duration::from_millis(250);

/// One limit: so many requests per window.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub name: &'static str,
    pub max: u64,
    pub window: Duration,
}

/// What a policy said of a request: answered in the `RateLimit*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub policy: &'static str,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset: u64,
    pub window: u64,
    pub allowed: bool,
}

impl Quota {
    /// Writes the IETF draft's `RateLimit-Policy` and `RateLimit` fields (one policy item
    /// for each of `all`; `RateLimit` names the tightest) and the widely read
    /// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` of the tightest.
    pub fn write(all: &[Quota], headers: &mut HeaderMap) {
        let Some(tightest) = all.iter().min_by_key(|q| (q.allowed, q.remaining)) else {
            return;
        };
        let policies: Vec<String> = all
            .iter()
            .map(|q| format!("\"{}\";q={};w={}", q.policy, q.limit, q.window))
            .collect();
        let pairs = [
            (RATELIMIT_POLICY, policies.join(", ")),
            (
                RATELIMIT,
                format!(
                    "\"{}\";r={};t={}",
                    tightest.policy, tightest.remaining, tightest.reset
                ),
            ),
            (RATELIMIT_LIMIT, tightest.limit.to_string()),
            (RATELIMIT_REMAINING, tightest.remaining.to_string()),
            (RATELIMIT_RESET, tightest.reset.to_string()),
        ];
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        if !tightest.allowed {
            headers.insert(RETRY_AFTER, HeaderValue::from(tightest.reset.max(1)));
        }
    }

    /// The 429 of a request past `all`'s limits, with their headers.
    pub fn refusal(all: &[Quota]) -> ApiError {
        let mut headers = HeaderMap::new();
        Quota::write(all, &mut headers);
        ApiError::RateLimited(headers)
    }
}

/// Where the counters live.
#[derive(Clone)]
enum Store {
    /// Built on the first HTTP worker: its garbage collector runs on an actix runtime.
    Memory(Arc<OnceLock<InMemoryBackend>>),
    /// `None` until Redis answers; a background task keeps trying.
    Redis(Arc<RwLock<Option<RedisBackend>>>),
}

/// The limits of this process.
pub struct Limits {
    general: Option<Policy>,
    auth: Policy,
    trusted: Vec<IpNet>,
    store: Store,
    metrics: web::Data<Metrics>,
    last_warning: Mutex<Option<Instant>>,
}

impl Limits {
    pub fn new(
        settings: &RateLimitSettings,
        trusted: Vec<IpNet>,
        metrics: web::Data<Metrics>,
    ) -> Arc<Limits> {
        let store = if settings.redis_url.is_empty() {
            Store::Memory(Arc::new(OnceLock::new()))
        } else {
            let slot = Arc::new(RwLock::new(None));
            tokio::spawn(connect_redis(
                settings.redis_url.clone(),
                settings.redis_prefix.clone(),
                slot.clone(),
            ));
            Store::Redis(slot)
        };
        Arc::new(Limits {
            general: (settings.max > 0).then_some(Policy {
                name: "general",
                max: settings.max,
                window: settings.window,
            }),
            auth: Policy {
                name: "auth",
                max: settings.auth_max,
                window: settings.auth_window,
            },
            trusted,
            store,
            metrics,
            last_warning: Mutex::new(None),
        })
    }

    /// Called by every HTTP worker as it starts: the first builds the in-memory store.
    pub fn start_worker(&self) {
        if let Store::Memory(cell) = &self.store {
            cell.get_or_init(|| InMemoryBackend::builder().build());
        }
    }

    /// Counts one request against `policy` under `key`. `None` when it could not be counted
    /// (the store is unreachable): the request goes through.
    pub async fn count(&self, policy: Policy, key: &str) -> Option<Quota> {
        let input = SimpleInput {
            interval: policy.window,
            max_requests: policy.max,
            key: format!("{}:{key}", policy.name),
        };
        let (decision, output) = match &self.store {
            Store::Memory(cell) => match cell.get() {
                Some(memory) => memory.request(input).await.ok().map(|(d, o, _)| (d, o)),
                None => None,
            },
            Store::Redis(slot) => {
                let redis = slot.read().ok().and_then(|r| r.clone());
                match redis {
                    Some(redis) => {
                        match tokio::time::timeout(STORE_TIMEOUT, redis.request(input)).await {
                            Ok(Ok((d, o, _))) => Some((d, o)),
                            Ok(Err(e)) => self.store_failed(&e.to_string()),
                            Err(_) => self.store_failed("timed out"),
                        }
                    }
                    None => self.store_failed("not connected"),
                }
            }
        }?;
        Some(Quota {
            policy: policy.name,
            limit: output.limit(),
            remaining: output.remaining(),
            reset: output.seconds_until_reset(),
            window: policy.window.as_secs().max(1),
            allowed: decision.is_allowed(),
        })
    }

    fn store_failed<T>(&self, reason: &str) -> Option<T> {
        self.metrics.rate_limit_errors.inc();
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(%reason, "rate-limit store unreachable: requests go through uncounted");
        }
        None
    }

    /// The auth limit for one email (signup, login, password reset), counted by their
    /// handlers.
    pub async fn check_email(&self, email: &str) -> Result<(), ApiError> {
        self.check(self.auth, &format!("email:{email}")).await
    }

    /// Counts one request against `policy` under `key`; 429 past it.
    pub async fn check(&self, policy: Policy, key: &str) -> Result<(), ApiError> {
        match self.count(policy, key).await {
            Some(q) if !q.allowed => {
                self.metrics
                    .rate_limited
                    .with_label_values(&[policy.name])
                    .inc();
                Err(Quota::refusal(&[q]))
            }
            _ => Ok(()),
        }
    }

    /// The client a request counts against.
    pub fn client(&self, req: &HttpRequest) -> IpAddr {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        client_address(peer, req.headers(), &self.trusted)
    }
}

/// The peer, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not one of them.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    chain
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(chain.first())
        .copied()
        .unwrap_or(peer)
}

/// The counting key of an address: itself, or its /64 for IPv6.
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Probes, scrapes and payment providers' webhooks (verified by their signature; a
/// provider's burst must not be turned away).
fn is_exempt(path: &str) -> bool {
    path == "/health"
        || path.starts_with("/health/")
        || path == "/metrics"
        || path.starts_with("/payments/webhooks/")
}

/// The public routes that take credentials or send mail: the auth limit counts them per
/// client.
fn is_auth(path: &str) -> bool {
    matches!(
        path,
        "/auth/login"
            | "/auth/signup"
            | "/auth/verify-email"
            | "/auth/password/forgot"
            | "/auth/password/reset"
    )
}

/// Counts the request against the limits that apply to it and answers 429 past any.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limits = req.app_data::<web::Data<Limits>>().cloned();
    let Some(limits) =
        limits.filter(|_| !is_exempt(req.path()) && !req.extensions().contains::<ForwardedHere>())
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let client = client_key(limits.client(req.request()));
    let mut quotas = Vec::new();
    let policies = limits
        .general
        .into_iter()
        .chain(is_auth(req.path()).then_some(limits.auth));
    for policy in policies {
        if let Some(q) = limits.count(policy, &format!("client:{client}")).await {
            quotas.push(q);
        }
    }
    if let Some(denied) = quotas.iter().find(|q| !q.allowed) {
        limits
            .metrics
            .rate_limited
            .with_label_values(&[denied.policy])
            .inc();
        let error = Quota::refusal(&quotas);
        return Ok(req.error_response(error).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    // A handler's own limit (the email's) already wrote its headers.
    if !res.headers().contains_key(RATELIMIT) {
        Quota::write(&quotas, res.headers_mut());
    }
    Ok(res.map_into_left_body())
}

/// Connects to Redis, retrying until it answers; the connection then reconnects by itself.
async fn connect_redis(url: String, prefix: String, slot: Arc<RwLock<Option<RedisBackend>>>) {
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    let client = match redis::Client::open(url.as_str()) {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "RATE_LIMIT_REDIS_URL: limits stay uncounted");
            return;
        }
    };
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(STORE_TIMEOUT)
        .set_number_of_retries(1);
    let mut wait = Duration::from_millis(500);
    loop {
        match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
            Ok(manager) => {
                let backend = RedisBackend::builder(manager)
                    .key_prefix(Some(&prefix))
                    .build();
                if let Ok(mut s) = slot.write() {
                    *s = Some(backend);
                }
                tracing::info!("rate limits counted in Redis");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "Redis for rate limits not reachable yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_str(xff).unwrap(),
        );
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let h = headers("198.51.100.7, 10.9.9.9");
        assert_eq!(
            client_address(stranger, &h, &trusted),
            stranger,
            "not a proxy"
        );
        assert_eq!(client_address(peer, &h, &[]), peer, "no trusted proxies");
        assert_eq!(
            client_address(peer, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the nearest untrusted hop"
        );
        // A client that writes its own header cannot choose an address past the proxies.
        let h = headers("1.1.1.1, 198.51.100.7");
        assert_eq!(
            client_address(peer, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(peer, &HeaderMap::new(), &trusted), peer);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(
            client_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(client_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(client_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn headers_name_every_policy_and_the_tightest() {
        let get = |h: &HeaderMap, name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned());
        let general = Quota {
            policy: "general",
            limit: 100,
            remaining: 40,
            reset: 30,
            window: 60,
            allowed: true,
        };
        let auth = Quota {
            policy: "auth",
            limit: 10,
            remaining: 2,
            reset: 12,
            window: 60,
            allowed: true,
        };
        let mut h = HeaderMap::new();
        Quota::write(&[general, auth], &mut h);
        assert_eq!(
            get(&h, "ratelimit-policy").unwrap(),
            "\"general\";q=100;w=60, \"auth\";q=10;w=60"
        );
        assert_eq!(get(&h, "ratelimit").unwrap(), "\"auth\";r=2;t=12");
        assert_eq!(get(&h, "ratelimit-limit").unwrap(), "10");
        assert_eq!(get(&h, "ratelimit-remaining").unwrap(), "2");
        assert_eq!(get(&h, "ratelimit-reset").unwrap(), "12");
        assert!(get(&h, "retry-after").is_none());
        let denied = Quota {
            remaining: 0,
            allowed: false,
            ..auth
        };
        let mut h = HeaderMap::new();
        Quota::write(&[general, denied], &mut h);
        assert_eq!(get(&h, "retry-after").unwrap(), "12");
    }
}
