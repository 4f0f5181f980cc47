//! Logs (tracing) and metrics (prometheus).

use std::time::Duration;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, LogSettings};
use crate::http::RequestId;

/// Installs the global subscriber: JSON lines or readable lines, as configured.
/// A second call (tests start many apps in one process) keeps the first.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Root span of a request, carrying our request id rather than one of its own.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        tracing_actix_web::root_span!(request, request_id = %request_id)
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    pub signups: IntCounter,
    pub logins: IntCounterVec,
    pub bookings_created: IntCounter,
    pub booking_conflicts: IntCounter,
    pub searches: IntCounterVec,
    pub notifications: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests served"),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency"),
            &["method", "route"],
        )?;
        let signups = IntCounter::new("carrental_signups_total", "Accounts created")?;
        let logins = IntCounterVec::new(
            Opts::new("carrental_logins_total", "Login attempts"),
            &["result"],
        )?;
        let bookings_created =
            IntCounter::new("carrental_bookings_created_total", "Bookings created")?;
        let booking_conflicts = IntCounter::new(
            "carrental_booking_conflicts_total",
            "Bookings refused because the car was taken",
        )?;
        let searches = IntCounterVec::new(
            Opts::new("carrental_searches_total", "Searches served"),
            &["engine"],
        )?;
        let notifications = IntCounterVec::new(
            Opts::new(
                "carrental_notifications_total",
                "Notification delivery outcomes",
            ),
            &["status"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(signups.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(bookings_created.clone()))?;
        registry.register(Box::new(booking_conflicts.clone()))?;
        registry.register(Box::new(searches.clone()))?;
        registry.register(Box::new(notifications.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            signups,
            logins,
            bookings_created,
            booking_conflicts,
            searches,
            notifications,
        })
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
