//! Middleware: request ids and the uniform error body, metrics, security headers.

use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, Error, HttpMessage, HttpResponse, ResponseError};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

use super::rate_limit::Limits;
use super::RequestId;
use crate::error::ApiError;
use crate::telemetry::Metrics;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn client_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| s.to_owned())
}

/// Outermost layer: gives every request an id, answers it in `X-Request-ID`, and turns
/// every error answer (ours or the framework's: 404, 405, 413, ...) into the error body.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(client_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    // Inner layers answer errors as responses; an `Err` here (none of ours returns one)
    // goes out as the framework renders it.
    let res = next.call(req).await?.map_into_boxed_body();
    let mut res = if needs_error_body(&res) {
        with_error_body(res, &id)
    } else {
        res
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(res)
}

/// An error answer that is not already a JSON document a handler chose to send (such as
/// the readiness report's 503).
fn needs_error_body(res: &ServiceResponse<BoxBody>) -> bool {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    res.response().error().is_some() || !is_json
}

fn with_error_body(res: ServiceResponse<BoxBody>, id: &str) -> ServiceResponse<BoxBody> {
    let error = res.response().error();
    let (status, body) = match error.and_then(|e| e.as_error::<ApiError>()) {
        Some(api) => (api.status_code(), api.body(id)),
        // A preflight from an origin that is not allowed: the origin may not do this.
        None if error.is_some_and(|e| e.as_error::<actix_cors::CorsError>().is_some()) => {
            (StatusCode::FORBIDDEN, ApiError::Forbidden.body(id))
        }
        None => (res.status(), ApiError::from_status(res.status()).body(id)),
    };
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status).json(body);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, new)
}

/// Whether a path holds a dot-segment (`.` or `..`, percent-encoded or not) or a backslash,
/// which some hop on the way could resolve into another path than the one routed here.
fn has_dot_segments(raw: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    decoded.contains('\\') || decoded.split('/').any(|s| s == "." || s == "..")
}

/// Refuses a path with dot-segments (400), so routing and the `/internal/` rule only ever
/// see the path as sent (API.md, Conventions).
pub async fn plain_path(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if has_dot_segments(req.uri().path()) {
        let error = ApiError::field("path", "must not contain dot-segments or backslashes");
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Every `GET` route answers `HEAD` too: the request is served as a `GET`, and the HTTP
/// layer, which saw a `HEAD`, sends the headers without the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// Counts requests and their durations by route template (never the raw path).
pub async fn metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        metrics.observe_request(&method, &route, res.status().as_u16(), start.elapsed());
    }
    Ok(res)
}

/// An answer that depends on the caller is kept by no cache, the browser's included, unless
/// its handler said otherwise.
pub async fn private_answers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let per_caller = res.request().extensions().contains::<super::PerCaller>();
    if per_caller && !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    Ok(res)
}

/// Request URLs are cut to this many bytes in logs.
const MAX_LOGGED_TARGET: usize = 512;

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Root span of a request, carrying our request id rather than one of its own.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    /// The request's span, with the same fields as tracing-actix-web's own, but the client
    /// the rate limits count (not whatever `X-Forwarded-For` says) and the URL cut short.
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let client = request
            .app_data::<actix_web::web::Data<Limits>>()
            .map(|l| l.client(request.request()).to_string())
            .unwrap_or_default();
        let target = request.uri().path_and_query().map_or("", |p| p.as_str());
        let user_agent = request
            .headers()
            .get("User-Agent")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %request.match_pattern().unwrap_or_else(|| "default".into()),
            http.flavor = ?request.version(),
            http.client_ip = %client,
            http.user_agent = %cut(user_agent, 256),
            http.target = %cut(target, MAX_LOGGED_TARGET),
            http.status_code = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Headers every answer carries unless the handler set its own (the `/docs` page sets a
/// wider Content-Security-Policy for itself).
pub fn security_headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CONTENT_SECURITY_POLICY, DEFAULT_CSP));
    if hsts {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_text_is_cut_on_a_character() {
        assert_eq!(cut("abcdef", 4), "abcd…");
        assert_eq!(cut("ééé", 3), "é…");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn dot_segments_are_found_however_they_are_written() {
        for path in [
            "/cars/../internal/cars/1",
            "/cars/%2e%2e/internal",
            "/cars/.%2E/x",
            "/cars/%2e./x",
            "/x/../../internal",
            "/cars/..\\internal",
            "/cars/%5cinternal",
            "/./cars",
            "/cars/..",
            "/cars/%2e",
        ] {
            assert!(has_dot_segments(path), "{path}");
        }
        for path in [
            "/cars",
            "/cars/a.b",
            "/cars/...",
            "/cars/..x",
            "/search",
            "/",
        ] {
            assert!(!has_dot_segments(path), "{path}");
        }
    }

    #[test]
    fn request_ids_from_clients_are_bounded() {
        let ok = HeaderValue::from_static("abc-123_XYZ");
        assert_eq!(client_request_id(&ok).as_deref(), Some("abc-123_XYZ"));
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(client_request_id(&long), None);
        let spaced = HeaderValue::from_static("has space");
        assert_eq!(client_request_id(&spaced), None);
        let max = HeaderValue::from_str(&"a".repeat(128)).unwrap();
        assert!(client_request_id(&max).is_some());
    }
}
