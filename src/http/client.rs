//! Calls to another module's service in a split deployment: every call has a timeout, reads
//! are retried with backoff, and a circuit breaker per service turns a dead module into a
//! fast 503 instead of a pile of requests waiting on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::ServiceSettings;
use crate::error::ApiError;

/// Consecutive failures that open the breaker.
const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls before it lets one through to try.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(5);

/// The HTTP client every cross-process call shares (one connection pool).
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Why a call failed, before it becomes the caller's error.
#[derive(Debug)]
pub enum CallError {
    /// Refused, reset, or answered 502/503/504: worth another try.
    Unreachable(String),
    TimedOut,
    /// An answer that retrying will not change.
    Refused(StatusCode, String),
}

impl CallError {
    fn retryable(&self) -> bool {
        matches!(self, CallError::Unreachable(_))
    }

    /// Whether it says the service is down (what the breaker counts).
    fn is_outage(&self) -> bool {
        matches!(self, CallError::Unreachable(_) | CallError::TimedOut)
    }

    pub fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            CallError::TimedOut
        } else if e.is_decode() {
            CallError::Refused(StatusCode::OK, format!("unreadable answer: {e}"))
        } else {
            CallError::Unreachable(e.to_string())
        }
    }
}

/// Opens after [`BREAKER_THRESHOLD`] outages in a row; after [`BREAKER_COOLDOWN`] one call
/// goes through to try, and its outcome closes or reopens it.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<BreakerState>,
}

#[derive(Debug, Clone, Copy)]
enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is out; it started at `since`.
    Trying {
        since: Instant,
    },
}

impl Default for BreakerState {
    fn default() -> Self {
        BreakerState::Closed { failures: 0 }
    }
}

impl Breaker {
    /// Whether a call may go out now. `limit` bounds how long a trial call may stay out
    /// before another is allowed (a trial whose request was dropped never reports).
    pub fn allow(&self, limit: Duration) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let blocked = match *state {
            BreakerState::Closed { .. } => return true,
            BreakerState::Open { until } => now < until,
            BreakerState::Trying { since } => now < since + limit,
        };
        if !blocked {
            *state = BreakerState::Trying { since: now };
        }
        !blocked
    }

    /// A call ended without telling anything of the service (the client gave up on its
    /// own request): a trial call it was lets the next one try at once.
    pub fn abandon(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let BreakerState::Trying { .. } = *state {
            *state = BreakerState::Open {
                until: Instant::now(),
            };
        }
    }

    pub fn record(&self, outage: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = match (*state, outage) {
            (_, false) => BreakerState::Closed { failures: 0 },
            (BreakerState::Closed { failures }, true) if failures + 1 < BREAKER_THRESHOLD => {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            (_, true) => BreakerState::Open {
                until: Instant::now() + BREAKER_COOLDOWN,
            },
        };
    }
}

/// One client per module's service, shared by the ports and the gateway.
#[derive(Clone)]
pub struct Services {
    clients: Arc<HashMap<&'static str, Arc<ServiceClient>>>,
}

impl Services {
    /// Clients of the services of `modules`, each a name and the variable holding its URL.
    pub fn new(
        modules: impl IntoIterator<Item = (&'static str, &'static str)>,
        settings: &ServiceSettings,
        internal_token: &str,
        http: reqwest::Client,
    ) -> Self {
        let clients = modules
            .into_iter()
            .map(|(name, url_variable)| {
                let client = ServiceClient::new(
                    name,
                    url_variable,
                    settings.url(url_variable),
                    http.clone(),
                    internal_token,
                    settings.internal_timeout,
                );
                (name, Arc::new(client))
            })
            .collect();
        Services {
            clients: Arc::new(clients),
        }
    }

    /// The client of the service of the module called `name`.
    pub fn client(&self, name: &str) -> Arc<ServiceClient> {
        self.clients
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("Services were made without the {name} module"))
    }
}

/// A module's service as this process reaches it: its `/internal/` routes for the ports,
/// its public routes for the gateway.
pub struct ServiceClient {
    name: &'static str,
    url_variable: &'static str,
    base: Option<String>,
    http: reqwest::Client,
    token: String,
    timeout: Duration,
    breaker: Breaker,
}

impl ServiceClient {
    pub fn new(
        name: &'static str,
        url_variable: &'static str,
        base: Option<&str>,
        http: reqwest::Client,
        token: &str,
        timeout: Duration,
    ) -> Self {
        ServiceClient {
            name,
            url_variable,
            base: base.map(|b| b.trim_end_matches('/').to_owned()),
            http,
            token: token.to_owned(),
            timeout,
            breaker: Breaker::default(),
        }
    }

    /// The module's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The variable holding the module's URL.
    pub fn url_variable(&self) -> &'static str {
        self.url_variable
    }

    pub fn base(&self) -> Option<&str> {
        self.base.as_deref()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The error a failed call becomes for the request that needed it.
    pub fn error(&self, e: CallError) -> ApiError {
        let name = self.name;
        match e {
            CallError::TimedOut => ApiError::ModuleTimeout(name),
            CallError::Unreachable(reason) => {
                tracing::warn!(module = name, %reason, "module unreachable");
                ApiError::ModuleUnavailable(name)
            }
            CallError::Refused(StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND, _) => {
                tracing::error!(
                    module = name,
                    "the {name} service refused this process's INTERNAL_TOKEN (or has none set)"
                );
                ApiError::ModuleUnavailable(name)
            }
            CallError::Refused(status, body) => {
                ApiError::internal(format!("{name} service answered {status}: {body}"))
            }
        }
    }

    /// GET an internal route. (Internal routes answer "no such thing" with `null`, so a 404
    /// always means the route is not there: a misconfigured URL or token.)
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(|| self.http.get(self.url(path))).await
    }

    /// POST a read to an internal route (a body too large for a query string). Reads are
    /// safe to retry.
    pub async fn read<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.call(|| self.http.post(self.url(path)).json(body))
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_deref().unwrap_or_default())
    }

    /// Every internal call is a read, so every one is retried.
    async fn call<T: DeserializeOwned>(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        if self.base.is_none() {
            tracing::warn!(
                module = self.name,
                "{} is not set: the {} module cannot be reached",
                self.url_variable,
                self.name
            );
            return Err(ApiError::ModuleUnavailable(self.name));
        }
        let attempt = || async {
            if !self.breaker.allow(self.timeout) {
                return Err(CallError::Unreachable("circuit open".into()));
            }
            let outcome = self.once(request()).await;
            self.breaker
                .record(outcome.as_ref().is_err_and(CallError::is_outage));
            outcome
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_times(2);
        attempt
            .retry(backoff)
            .when(CallError::retryable)
            .await
            .map_err(|e| self.error(e))
    }

    async fn once<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        let res = request
            .bearer_auth(&self.token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| CallError::from_reqwest(&e))?;
        match res.status() {
            s if s.is_success() => res.json().await.map_err(|e| CallError::from_reqwest(&e)),
            s @ (StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT) => Err(CallError::Unreachable(format!("answered {s}"))),
            s => Err(CallError::Refused(s, res.text().await.unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_outages_and_tries_again_later() {
        let b = Breaker::default();
        for _ in 0..BREAKER_THRESHOLD - 1 {
            assert!(b.allow(Duration::from_secs(1)));
            b.record(true);
        }
        assert!(b.allow(Duration::from_secs(1)));
        b.record(false);
        for _ in 0..BREAKER_THRESHOLD {
            b.record(true);
        }
        assert!(!b.allow(Duration::from_secs(1)), "open after the threshold");
        // After the cool-down one trial goes out, and only one.
        *b.state.lock().unwrap() = BreakerState::Open {
            until: Instant::now() - Duration::from_millis(1),
        };
        assert!(b.allow(Duration::from_secs(1)));
        assert!(!b.allow(Duration::from_secs(1)));
        b.record(false);
        assert!(b.allow(Duration::from_secs(1)), "a good trial closes it");
    }
}
