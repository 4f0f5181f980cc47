//! Logs (tracing) and metrics (prometheus).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber: JSON lines or readable lines, as configured.
/// A second call (tests start many apps in one process) keeps the first.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter);
    let _ = match settings.format {
        // JSON escapes every control character itself.
        LogFormat::Json => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => {
            let colors = std::io::stderr().is_terminal();
            builder
                .with_ansi(colors)
                .with_writer(move || Escaped {
                    inner: std::io::stderr(),
                    colors,
                })
                .compact()
                .try_init()
        }
    };
}

/// Writes readable log lines with every control character a value may hold escaped, so no
/// input can start a line of its own or rewrite the terminal: only the newline that ends
/// each line (and, on a terminal, the formatter's own colour codes) go out as they are.
struct Escaped<W> {
    inner: W,
    colors: bool,
}

impl<W: Write> Write for Escaped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (line, end) = match text.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (text.as_ref(), ""),
        };
        let mut out = String::with_capacity(buf.len() + 8);
        for c in line.chars() {
            if c.is_control() && !(self.colors && c == '\u{1b}') {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        out.push_str(end);
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    pub signups: IntCounter,
    pub accounts_closed: IntCounter,
    pub logins: IntCounterVec,
    pub bookings_created: IntCounter,
    pub booking_conflicts: IntCounter,
    pub searches: IntCounterVec,
    pub index_rejected: IntCounter,
    pub notifications: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub rate_limit_errors: IntCounter,
    pub bcrypt_busy: IntCounter,
    /// Payment records reaching a state, by kind and state.
    pub payments: IntCounterVec,
    /// Provider webhooks received, by event type and what came of them.
    pub webhooks: IntCounterVec,
    /// How long calls to the payment provider take.
    pub payment_provider_seconds: Histogram,
    pub ready: IntGauge,
    db_connections: IntGaugeVec,
    db_max_connections: IntGauge,
    outbox_jobs: IntGaugeVec,
    outbox_oldest: GaugeVec,
}

/// What the database pool and the outbox look like now, read when `/metrics` is asked.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub connections_in_use: i64,
    pub connections_idle: i64,
    pub max_connections: i64,
    /// The jobs not done, by topic and status; `None` when the database could not be read.
    pub outbox: Option<Vec<Backlog>>,
}

/// The outbox's jobs of one topic and status.
#[derive(Debug)]
pub struct Backlog {
    pub topic: String,
    pub status: &'static str,
    pub jobs: i64,
    /// For waiting jobs, how long the oldest has waited, in seconds.
    pub oldest_waiting: Option<f64>,
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
        let accounts_closed = IntCounter::new(
            "carrental_accounts_closed_total",
            "Accounts closed by their owner",
        )?;
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
        let index_rejected = IntCounter::new(
            "carrental_search_index_rejected_total",
            "Car changes OpenSearch refused for good (a 4xx on the item), parked as failed",
        )?;
        let notifications = IntCounterVec::new(
            Opts::new(
                "carrental_notifications_total",
                "Messages settled, by channel (email, sms, push) and outcome (sent, failed)",
            ),
            &["channel", "status"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "carrental_rate_limited_total",
                "Requests refused with 429, by policy",
            ),
            &["policy"],
        )?;
        let rate_limit_errors = IntCounter::new(
            "carrental_rate_limit_store_errors_total",
            "Requests let through uncounted because the rate-limit store was unreachable",
        )?;
        let bcrypt_busy = IntCounter::new(
            "carrental_password_hashing_busy_total",
            "Logins and signups answered 503 because no password-hashing turn came in time",
        )?;
        let payments = IntCounterVec::new(
            Opts::new(
                "carrental_payments_total",
                "Payment records reaching a state, by kind and state",
            ),
            &["kind", "status"],
        )?;
        let webhooks = IntCounterVec::new(
            Opts::new(
                "carrental_webhooks_total",
                "Payment provider webhooks, by event type and result",
            ),
            &["type", "result"],
        )?;
        let payment_provider_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "carrental_payment_provider_seconds",
                "How long calls to the payment provider take",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )?;
        let ready = IntGauge::new(
            "carrental_ready",
            "1 while /health/ready answers ready or degraded, 0 while it answers 503",
        )?;
        let db_connections = IntGaugeVec::new(
            Opts::new(
                "carrental_db_connections",
                "Database connections of the pool, by state",
            ),
            &["state"],
        )?;
        let db_max_connections = IntGauge::new(
            "carrental_db_pool_max_connections",
            "The most connections the pool opens",
        )?;
        let outbox_jobs = IntGaugeVec::new(
            Opts::new(
                "carrental_outbox_jobs",
                "Outbox jobs not done, by topic and status (pending or failed)",
            ),
            &["topic", "status"],
        )?;
        let outbox_oldest = GaugeVec::new(
            Opts::new(
                "carrental_outbox_oldest_pending_seconds",
                "Age of the oldest pending outbox job, by topic (for search: the index's lag)",
            ),
            &["topic"],
        )?;
        registry.register(Box::new(ready.clone()))?;
        registry.register(Box::new(db_connections.clone()))?;
        registry.register(Box::new(db_max_connections.clone()))?;
        registry.register(Box::new(outbox_jobs.clone()))?;
        registry.register(Box::new(outbox_oldest.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        registry.register(Box::new(bcrypt_busy.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(rate_limit_errors.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(signups.clone()))?;
        registry.register(Box::new(accounts_closed.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(bookings_created.clone()))?;
        registry.register(Box::new(booking_conflicts.clone()))?;
        registry.register(Box::new(searches.clone()))?;
        registry.register(Box::new(index_rejected.clone()))?;
        registry.register(Box::new(notifications.clone()))?;
        registry.register(Box::new(payments.clone()))?;
        registry.register(Box::new(webhooks.clone()))?;
        registry.register(Box::new(payment_provider_seconds.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            signups,
            accounts_closed,
            logins,
            bookings_created,
            booking_conflicts,
            searches,
            index_rejected,
            notifications,
            rate_limited,
            rate_limit_errors,
            bcrypt_busy,
            payments,
            webhooks,
            payment_provider_seconds,
            ready,
            db_connections,
            db_max_connections,
            outbox_jobs,
            outbox_oldest,
        })
    }

    /// Registers a collector made elsewhere (the database pool's wait metrics).
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// Sets the gauges read at scrape time.
    pub fn show(&self, now: &Snapshot) {
        self.db_connections
            .with_label_values(&["in_use"])
            .set(now.connections_in_use);
        self.db_connections
            .with_label_values(&["idle"])
            .set(now.connections_idle);
        self.db_max_connections.set(now.max_connections);
        if let Some(outbox) = &now.outbox {
            self.outbox_jobs.reset();
            self.outbox_oldest.reset();
            for b in outbox {
                self.outbox_jobs
                    .with_label_values(&[b.topic.as_str(), b.status])
                    .set(b.jobs);
                if let Some(oldest) = b.oldest_waiting {
                    self.outbox_oldest
                        .with_label_values(&[&b.topic])
                        .set(oldest);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_cannot_be_forged() {
        let mut out = Vec::new();
        let mut w = Escaped {
            inner: &mut out,
            colors: false,
        };
        w.write_all(b"INFO email to=ada name=Ada\nINFO forged\x1b[2J end\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "INFO email to=ada name=Ada\\nINFO forged\\u{1b}[2J end\n"
        );
    }
}
