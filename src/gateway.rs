//! Every process is a gateway: a request for a route of a module this process does not
//! serve is forwarded to that module's service and its answer passed back unchanged.
//!
//! Kept on the way: method, path, query, body (streamed) and the end-to-end headers, with
//! `X-Request-ID` the same end to end, `X-Forwarded-For` and `X-Forwarded-Proto` added. The
//! answer's status, headers and body (streamed) come back as they are. Rate limits and CORS
//! apply at the process that first received the request: the forwarded request carries
//! [`FORWARDED_BY`] (the internal token), and a process that sees it with the right token
//! does not count or check it again.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody, SizedStream};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use crate::error::ApiError;
use crate::http::client::{CallError, ServiceClient, Services};
use crate::http::middleware::X_REQUEST_ID;
use crate::http::{BodyConfig, ForwardedHere, RequestId};
use crate::module::Module;
use crate::ops::{CheckFuture, CheckState, ReadinessCheck};

/// Marks a request forwarded by another process of this deployment; its value is the
/// internal token.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-carrental-forwarded");

/// Which modules this process serves, and how it reaches the others.
pub struct Gateway {
    served: Vec<&'static Module>,
    services: Services,
    timeout: Duration,
    internal_token: String,
}

impl Gateway {
    pub fn new(
        served: Vec<&'static Module>,
        services: Services,
        timeout: Duration,
        internal_token: &str,
    ) -> Self {
        Gateway {
            served,
            services,
            timeout,
            internal_token: internal_token.to_owned(),
        }
    }

    /// The modules whose routes this process forwards.
    pub fn forwarded(&self) -> impl Iterator<Item = &'static Module> + '_ {
        crate::MODULES.iter().filter(|m| !self.served.contains(m))
    }

    /// Whether the request came from another process of this deployment (it carries the
    /// internal token, compared in constant time).
    fn is_trusted(&self, req: &ServiceRequest) -> bool {
        !self.internal_token.is_empty()
            && req
                .headers()
                .get(FORWARDED_BY)
                .is_some_and(|v| crate::http::auth::same_secret(v.as_bytes(), &self.internal_token))
    }

    /// Readiness entries: whether each forwarded module's service answers.
    pub fn checks(self: &Arc<Self>) -> Vec<Arc<dyn ReadinessCheck>> {
        self.forwarded()
            .map(|module| {
                Arc::new(Upstream {
                    client: self.services.client(module.name),
                }) as Arc<dyn ReadinessCheck>
            })
            .collect()
    }
}

/// Headers that belong to one connection, not to the request (RFC 9110, 7.6.1): the fixed
/// ones, and those the `Connection` header names (`listed`, lower case).
fn hop_by_hop(name: &str, listed: &[String]) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    ) || listed.iter().any(|l| l == name)
}

/// The header names a `Connection` header lists, lower case.
fn connection_listed<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Outside CORS and the rate limit: a request forwarded by a trusted process was checked
/// there, so its `Origin` is hidden from this process's CORS and it is marked for the limit.
/// From anyone else, every `X-Carrental-*` header is removed.
pub async fn trust_forwarded(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let trusted = req
        .app_data::<web::Data<Gateway>>()
        .is_some_and(|g| g.is_trusted(&req));
    if trusted {
        req.headers_mut().remove(header::ORIGIN);
        req.extensions_mut().insert(ForwardedHere);
    } else {
        // Headers of ours are for the processes of this deployment only.
        let ours: Vec<HeaderName> = req
            .headers()
            .keys()
            .filter(|name| name.as_str().starts_with("x-carrental-"))
            .cloned()
            .collect();
        for name in ours {
            req.headers_mut().remove(name);
        }
    }
    next.call(req).await
}

/// The default service: forwards a route of a module not served here, and answers 404 for
/// anything else (the internal routes included: they are never forwarded).
pub async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let Some(module) = crate::owning(req.path()).filter(|m| !gateway.served.contains(m)) else {
        return Err(ApiError::NotFound);
    };
    let client = gateway.services.client(module.name);
    let Some(base) = client.base() else {
        tracing::warn!(
            module = module.name,
            "{} is not set: cannot forward",
            module.url_variable
        );
        return Err(ApiError::ModuleUnavailable(module.name));
    };
    if req.headers().contains_key(FORWARDED_BY) {
        // Forwarded to us, yet not served here: the URL points at the wrong process.
        tracing::error!(
            module = module.name,
            "a forwarded request reached a process that does not serve its module: check {}",
            module.url_variable
        );
        return Err(ApiError::ModuleUnavailable(module.name));
    }
    if !client.breaker().allow(gateway.timeout) {
        return Err(ApiError::ModuleUnavailable(module.name));
    }
    let path = req
        .uri()
        .path_and_query()
        .map_or(req.path(), |pq| pq.as_str());
    let mut out = client
        .http()
        .request(method(&req)?, format!("{base}{path}"))
        .timeout(gateway.timeout);
    let listed = connection_listed(
        req.headers()
            .get_all(header::CONNECTION)
            .map(HeaderValue::as_bytes),
    );
    for (name, value) in req.headers() {
        let ours = [&FORWARDED_BY, &X_REQUEST_ID, &X_FORWARDED_FOR];
        if !hop_by_hop(name.as_str(), &listed) && !ours.contains(&name) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    out = out
        .header(X_REQUEST_ID.as_str(), RequestId::of(&req))
        .header(X_FORWARDED_FOR.as_str(), forwarded_for(&req));
    if !req.headers().contains_key(X_FORWARDED_PROTO) {
        out = out.header(
            X_FORWARDED_PROTO.as_str(),
            req.connection_info().scheme().to_owned(),
        );
    }
    if !gateway.internal_token.is_empty() {
        out = out.header(FORWARDED_BY.as_str(), &gateway.internal_token);
    }
    let upload = Arc::new(Upload::default());
    if has_body(&req) {
        let idle = BodyConfig::of(&req).idle_timeout;
        out = out.body(reqwest::Body::wrap_stream(relay(
            payload,
            idle,
            upload.clone(),
        )));
    } else {
        upload.set(Upload::DONE);
    }
    let res = match out.send().await {
        Ok(res) => {
            client.breaker().record(false);
            res
        }
        Err(e) => {
            // A body the client broke off or stopped sending ends this request only: the
            // module is not to blame, and its breaker does not count it.
            if let Some(fault) = (!e.is_connect()).then(|| upload.client_fault()).flatten() {
                client.breaker().abandon();
                return Err(fault);
            }
            client.breaker().record(true);
            return Err(client.error(CallError::from_reqwest(&e)));
        }
    };
    Ok(answer(res))
}

/// Where the client's side of a forwarded body stands, so that a forward that fails is
/// blamed on the client or on the module rightly.
#[derive(Debug, Default)]
struct Upload(AtomicU8);

impl Upload {
    /// Waiting for the client's next bytes.
    const READING: u8 = 0;
    /// Waiting for the module to take the bytes read.
    const SENDING: u8 = 1;
    const DONE: u8 = 2;
    /// The client broke the body off.
    const BROKEN: u8 = 3;
    /// The client stopped sending for the idle timeout.
    const STALLED: u8 = 4;

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::SeqCst);
    }

    /// The client's error, when the body is why the forward failed: it was broken off, or
    /// the forward was still waiting for the client's bytes.
    fn client_fault(&self) -> Option<ApiError> {
        match self.0.load(Ordering::SeqCst) {
            Self::BROKEN => Some(crate::http::body_cut_off()),
            Self::STALLED | Self::READING => Some(ApiError::RequestTimeout),
            _ => None,
        }
    }
}
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The client's chain with this hop's peer added.
fn forwarded_for(req: &HttpRequest) -> String {
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    match req
        .headers()
        .get(X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(chain) if !chain.trim().is_empty() => format!("{chain}, {peer}"),
        _ => peer,
    }
}

fn has_body(req: &HttpRequest) -> bool {
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The request body as a stream the HTTP client can send from another thread (actix's
/// payload is tied to this one). A chunk that does not come within `idle` ends it.
fn relay(
    mut payload: web::Payload,
    idle: Duration,
    upload: Arc<Upload>,
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> + Send + Sync + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(4);
    actix_web::rt::spawn(async move {
        loop {
            upload.set(Upload::READING);
            let chunk = match tokio::time::timeout(idle, payload.next()).await {
                Err(_) => {
                    upload.set(Upload::STALLED);
                    Err(std::io::Error::other("the client stopped sending the body"))
                }
                Ok(None) => {
                    upload.set(Upload::DONE);
                    break;
                }
                Ok(Some(Err(e))) => {
                    upload.set(Upload::BROKEN);
                    Err(std::io::Error::other(e.to_string()))
                }
                Ok(Some(Ok(chunk))) => {
                    upload.set(Upload::SENDING);
                    Ok(chunk)
                }
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// The request's method for the client (actix and reqwest use different `http` versions).
fn method(req: &HttpRequest) -> Result<reqwest::Method, ApiError> {
    reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| ApiError::MethodNotAllowed)
}

/// The service's answer, streamed back as it comes.
fn answer(res: reqwest::Response) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16())
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    let listed = connection_listed(
        res.headers()
            .get_all(reqwest::header::CONNECTION)
            .iter()
            .map(reqwest::header::HeaderValue::as_bytes),
    );
    for (name, value) in res.headers() {
        if hop_by_hop(name.as_str(), &listed) || name == reqwest::header::CONTENT_LENGTH {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append_header((name, value));
        }
    }
    let length = res.content_length();
    let body = res
        .bytes_stream()
        .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
    match length {
        Some(len) => out.body(BoxBody::new(SizedStream::new(len, body))),
        None => out.streaming(body),
    }
}

/// A forwarded module's entry in `/health/ready`.
struct Upstream {
    client: Arc<ServiceClient>,
}

impl ReadinessCheck for Upstream {
    fn name(&self) -> &'static str {
        self.client.name()
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let Some(base) = self.client.base() else {
                let reason = format!("{} is not set", self.client.url_variable());
                return (
                    json!({"status": "down", "reason": reason}),
                    CheckState::Degraded,
                );
            };
            let start = Instant::now();
            let res = self
                .client
                .http()
                .get(format!("{base}/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => (
                    json!({"status": "up", "latencyMs": start.elapsed().as_millis() as u64}),
                    CheckState::Up,
                ),
                Ok(r) => (
                    json!({"status": "down", "reason": format!("answered {}", r.status())}),
                    CheckState::Degraded,
                ),
                Err(e) => {
                    // The address is for the logs, not for whoever reads readiness.
                    tracing::warn!(module = self.client.name(), url = %base, error = %e, "module unreachable");
                    let reason = if e.is_timeout() {
                        "did not answer in time"
                    } else {
                        "unreachable"
                    };
                    (
                        json!({"status": "down", "reason": reason}),
                        CheckState::Degraded,
                    )
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_include_those_connection_names() {
        let listed = connection_listed([&b"keep-alive, X-Trace"[..], b"close"].into_iter());
        assert_eq!(listed, ["keep-alive", "x-trace", "close"]);
        assert!(hop_by_hop("x-trace", &listed));
        assert!(hop_by_hop("transfer-encoding", &listed));
        assert!(hop_by_hop("host", &listed));
        assert!(!hop_by_hop("authorization", &listed));
        assert!(!hop_by_hop("content-type", &listed));
    }
}
