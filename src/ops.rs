//! Operations routes: liveness, readiness, metrics and the API document.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::Db;
use crate::error::ApiError;
use crate::http::auth::same_secret;
use crate::http::Choice;
use crate::outbox::JobStatus;
use crate::telemetry::{Backlog, Metrics, Snapshot};

/// How a dependency other than the database is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Up,
    /// Requests are still served, less well (for example from a fallback).
    Degraded,
    Down,
}

pub type CheckFuture<'a> =
    Pin<Box<dyn Future<Output = (serde_json::Value, CheckState)> + Send + 'a>>;

/// A module's entry in `/health/ready`.
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self) -> CheckFuture<'_>;
}

/// An outside provider's entry in `/health/ready`: `up` with its latency when `ping`
/// answers within 2 s, else `down` with why. A provider down degrades the process; it never
/// unreadies it (what does not need the provider keeps working).
pub async fn provider_check<E: std::fmt::Display>(
    provider: &str,
    ping: impl Future<Output = Result<(), E>>,
) -> (serde_json::Value, CheckState) {
    let start = Instant::now();
    let (reason, state) = match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(())) => {
            let latency = start.elapsed().as_millis() as u64;
            let up =
                serde_json::json!({"status": "up", "provider": provider, "latencyMs": latency});
            return (up, CheckState::Up);
        }
        Ok(Err(e)) => (e.to_string(), CheckState::Degraded),
        Err(_) => ("did not answer in time".to_owned(), CheckState::Degraded),
    };
    let down = serde_json::json!({"status": "down", "provider": provider, "reason": reason});
    (down, state)
}

/// The API documents as served: the public one and the internal routes' one.
pub struct ApiDocument {
    pub json: String,
    pub internal_json: String,
}

/// What the operations routes need to know about this process.
pub struct Process {
    pub started: Instant,
    /// The names of the modules this process serves.
    pub modules: Vec<&'static str>,
    pub shutting_down: AtomicBool,
    pub metrics_token: String,
    pub document: ApiDocument,
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
    /// The database, whose pool and outbox `/metrics` shows (none in a gateway).
    pub db: Option<Db>,
}

impl Process {
    pub fn new(
        modules: Vec<&'static str>,
        metrics_token: String,
        document: ApiDocument,
        checks: Vec<Arc<dyn ReadinessCheck>>,
        db: Option<Db>,
    ) -> Self {
        Process {
            started: Instant::now(),
            modules,
            shutting_down: AtomicBool::new(false),
            metrics_token,
            document,
            checks,
            db,
        }
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}

/// The `database` entry of `/health/ready`: down makes the whole process unavailable.
pub struct DatabaseCheck(pub Db);

impl ReadinessCheck for DatabaseCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match self.0.ping(Duration::from_secs(2)).await {
                Ok(latency) => (
                    serde_json::json!({"status": "up", "latencyMs": latency.as_millis() as u64}),
                    CheckState::Up,
                ),
                Err(error) => {
                    tracing::warn!(%error, "readiness: database down");
                    (serde_json::json!({"status": "down"}), CheckState::Down)
                }
            }
        })
    }
}

/// The pool and the outbox as `/metrics` shows them.
async fn snapshot(db: &Db) -> Snapshot {
    let (connections_in_use, connections_idle, max_connections) = db.connections();
    let outbox = if db.is_down() {
        None
    } else {
        db.run(|conn| Ok(crate::outbox::backlog(conn)?))
            .await
            .ok()
            .map(|backlog| {
                backlog
                    .into_iter()
                    .map(|(topic, status, jobs, oldest)| Backlog {
                        topic,
                        status: status.name(),
                        jobs,
                        oldest_waiting: (status == JobStatus::Pending).then_some(oldest),
                    })
                    .collect()
            })
    };
    Snapshot {
        connections_in_use,
        connections_idle,
        max_connections,
        outbox,
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)))
        .service(web::resource("/health/ready").route(web::get().to(ready)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/openapi.json").route(web::get().to(openapi_json)))
        .service(web::resource("/docs").route(web::get().to(docs_root)))
        .service(web::resource("/docs/{file:.*}").route(web::get().to(docs)));
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    modules: Vec<&'static str>,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    status: &'static str,
    version: &'static str,
    #[schema(value_type = Object)]
    checks: BTreeMap<&'static str, serde_json::Value>,
}

/// Liveness: answers without touching any dependency.
#[utoipa::path(get, path = "/health", tag = "operations", operation_id = "health",
    responses((status = 200, body = Health)))]
pub async fn health(process: web::Data<Process>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: process.started.elapsed().as_secs(),
        modules: process.modules.clone(),
    })
}

/// Readiness: whether this process can serve requests now.
#[utoipa::path(get, path = "/health/ready", tag = "operations", operation_id = "ready",
    responses((status = 200, body = Readiness, description = "Ready, or degraded (a dependency is down but requests are served)"),
              (status = 503, body = Readiness, description = "Unavailable: the database is down, or the server is shutting down")))]
pub async fn ready(process: web::Data<Process>, metrics: web::Data<Metrics>) -> HttpResponse {
    let mut checks = BTreeMap::new();
    let mut worst = CheckState::Up;
    for check in &process.checks {
        let (report, state) = check.check().await;
        checks.insert(check.name(), report);
        worst = match (worst, state) {
            (CheckState::Down, _) | (_, CheckState::Down) => CheckState::Down,
            (CheckState::Degraded, _) | (_, CheckState::Degraded) => CheckState::Degraded,
            _ => CheckState::Up,
        };
    }
    if process.shutting_down.load(Ordering::SeqCst) {
        worst = CheckState::Down;
    }
    let status = match worst {
        CheckState::Up => "ready",
        CheckState::Degraded => "degraded",
        CheckState::Down => "unavailable",
    };
    metrics.ready.set(i64::from(status != "unavailable"));
    let body = Readiness {
        status,
        version: env!("CARGO_PKG_VERSION"),
        checks,
    };
    if status == "unavailable" {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

async fn metrics(
    req: HttpRequest,
    process: web::Data<Process>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    if !process.metrics_token.is_empty() {
        let given = crate::http::auth::bearer_token(&req).unwrap_or_default();
        if !same_secret(given.as_bytes(), &process.metrics_token) {
            return Err(ApiError::Auth("Metrics need the metrics token"));
        }
    }
    if let Some(db) = &process.db {
        metrics.show(&snapshot(db).await);
    }
    let text = metrics
        .render()
        .map_err(|e| ApiError::internal(format!("metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// `/internal/openapi.json`: the internal routes' document.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/openapi.json").route(web::get().to(internal_openapi_json)));
}

async fn internal_openapi_json(process: web::Data<Process>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(process.document.internal_json.clone())
}

async fn openapi_json(process: web::Data<Process>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(process.document.json.clone())
}

/// `/docs` runs Swagger UI from this server and calls this server's API, nothing else:
/// scripts and styles from here (Swagger UI sets some styles inline), images from here or
/// inline, requests to here only.
pub const DOCS_CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                            img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                            base-uri 'none'; form-action 'none'";

/// `/docs` is the folder Swagger UI's files are read from: its relative links need the
/// trailing slash.
async fn docs_root() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Swagger UI (vendored: it ships inside the binary), on this server's document, with the
/// bearer token a user enters kept across reloads.
async fn docs(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    static CONFIG: std::sync::LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
        std::sync::LazyLock::new(|| {
            Arc::new(
                utoipa_swagger_ui::Config::from("/openapi.json")
                    .try_it_out_enabled(true)
                    .persist_authorization(true)
                    .display_request_duration(true)
                    .filter(true)
                    .validator_url("none"),
            )
        });
    let served = utoipa_swagger_ui::serve(&file, CONFIG.clone())
        .map_err(|e| ApiError::internal(format!("docs: {e}")))?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(served.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(served.bytes.into_owned()))
}
