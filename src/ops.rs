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
use crate::http::ApiError;
use crate::openapi;
use crate::telemetry::Metrics;
use crate::Module;

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

/// What the operations routes need to know about this process.
pub struct Process {
    pub started: Instant,
    pub modules: Vec<Module>,
    pub shutting_down: AtomicBool,
    pub metrics_token: String,
    pub openapi_json: String,
    pub docs_html: String,
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Process {
    pub fn new(
        modules: Vec<Module>,
        metrics_token: String,
        checks: Vec<Arc<dyn ReadinessCheck>>,
    ) -> Self {
        let doc = openapi::document();
        Process {
            started: Instant::now(),
            modules,
            shutting_down: AtomicBool::new(false),
            metrics_token,
            openapi_json: doc.to_pretty_json().unwrap_or_else(|_| "{}".into()),
            docs_html: openapi::render_docs(&doc),
            checks,
        }
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)))
        .service(web::resource("/health/ready").route(web::get().to(ready)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/openapi.json").route(web::get().to(openapi_json)))
        .service(web::resource("/docs").route(web::get().to(docs)));
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
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
pub async fn health(process: web::Data<Process>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: process.started.elapsed().as_secs(),
        modules: process.modules.iter().map(|m| m.name()).collect(),
    })
}

/// Readiness: whether this process can serve requests now.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn ready(process: web::Data<Process>, db: web::Data<Db>) -> HttpResponse {
    let mut checks = BTreeMap::new();
    let database_up = match db.ping(Duration::from_secs(2)).await {
        Ok(latency) => {
            checks.insert(
                "database",
                serde_json::json!({"status": "up", "latencyMs": latency.as_millis() as u64}),
            );
            true
        }
        Err(error) => {
            tracing::warn!(%error, "readiness: database down");
            checks.insert("database", serde_json::json!({"status": "down"}));
            false
        }
    };
    let mut worst = if database_up {
        CheckState::Up
    } else {
        CheckState::Down
    };
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
        let expected = format!("Bearer {}", process.metrics_token);
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return Err(ApiError::Auth("Metrics need the metrics token"));
        }
    }
    let text = metrics
        .render()
        .map_err(|e| ApiError::internal(format!("metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

async fn openapi_json(process: web::Data<Process>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(process.openapi_json.clone())
}

async fn docs(process: web::Data<Process>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, openapi::DOCS_CSP))
        .body(process.docs_html.clone())
}
