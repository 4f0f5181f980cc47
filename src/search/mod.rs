//! Search route: cars near a point, by text, filters and availability.

pub mod model;
pub mod opensearch;
pub mod service;
mod store;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::db::Db;
use crate::http::{ApiError, QueryParams};
use crate::module::{Context, Served};
use crate::outbox::{Policy, Stop};
use model::SearchQuery;
use opensearch::OpenSearchEngine;
pub use service::SearchService;

/// Search as this process serves it: on OpenSearch when `OPENSEARCH_URL` is set (then with
/// the worker that keeps the index following the cars), else on the database. An
/// OpenSearch that cannot be reached at start is not fatal: searches fall back to the
/// database until it answers.
pub async fn serve(ctx: &Context) -> anyhow::Result<Served> {
    let settings = &ctx.settings.search;
    let engine = if settings.url.is_empty() {
        None
    } else {
        let engine = OpenSearchEngine::new(&settings.url, &settings.index, settings.timeout)
            .map_err(anyhow::Error::msg)?;
        if let Err(error) = engine.ensure_index().await {
            tracing::warn!(%error, "OpenSearch not ready; searching the database meanwhile");
        }
        Some(Arc::new(engine))
    };
    let indexing = engine.is_some();
    let service = web::Data::new(SearchService::new(
        ctx.db.clone(),
        ctx.ports.clone(),
        engine,
        ctx.metrics.clone(),
    ));
    let mut served =
        Served::new(service.clone(), routes, |_| {}).with_check(service.clone().into_inner());
    if indexing {
        served = served.with_worker(spawn_index_worker(
            ctx.db.clone(),
            service,
            ctx.stop.clone(),
        ));
    }
    Ok(served)
}

/// Applies car changes to the search index within about a second, retrying (without
/// giving up) while OpenSearch is away.
fn spawn_index_worker(
    db: Db,
    service: web::Data<SearchService>,
    stop: Stop,
) -> tokio::task::JoinHandle<()> {
    let policy = Policy {
        max_attempts: i32::MAX,
        backoff: std::time::Duration::from_millis(500),
        max_backoff: std::time::Duration::from_secs(30),
        lease: std::time::Duration::from_secs(60),
        poll: std::time::Duration::from_millis(200),
        batch: 200,
        keep_done: true,
    };
    tokio::spawn(crate::outbox::run_worker(
        db,
        crate::ports::SEARCH_TOPIC,
        policy,
        stop,
        move |jobs| {
            let service = service.clone();
            async move { service.apply_index_jobs(jobs).await }
        },
        |_| {},
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/search").route(web::get().to(search)));
}

#[derive(OpenApi)]
#[openapi(paths(search), components(schemas(SearchPage)), tags((name = "search", description = "Finding a car")))]
pub struct SearchApi;

/// A page of cars, each with `distanceKm`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct SearchPage {
    /// Cars (as `GET /cars/{id}` answers them) plus `distanceKm`, great-circle, 2 decimals.
    #[schema(value_type = Vec<Object>)]
    data: Vec<serde_json::Value>,
    page: u32,
    limit: u32,
    total: i64,
    total_pages: i64,
}

/// Active cars within `radius` km of a point, free for the whole window when one is given.
#[utoipa::path(get, path = "/search", tag = "search",
    params(
        ("latitude" = f64, Query, description = "also `lat`"),
        ("longitude" = f64, Query, description = "also `lng` or `lon`"),
        ("radius" = Option<f64>, Query, description = "km, greater than 0, at most 500, default 10"),
        ("query" = Option<String>, Query, description = "words over name, brand, model and features; each must match, allowing one typo"),
        ("fuelType" = Option<crate::ports::FuelType>, Query), ("transmission" = Option<crate::ports::Transmission>, Query),
        ("seats" = Option<i32>, Query, description = "minimum seats"),
        ("minPrice" = Option<f64>, Query), ("maxPrice" = Option<f64>, Query),
        ("pickupTime" = Option<String>, Query, description = "with dropoffTime: only cars free for the whole window"),
        ("dropoffTime" = Option<String>, Query),
        ("sort" = Option<String>, Query, description = "distance (default) or price; ties by id"),
        ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = SearchPage), (status = 400, body = crate::http::ErrorBody)))]
async fn search(
    service: web::Data<SearchService>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let q = SearchQuery::parse(&query)?;
    Ok(HttpResponse::Ok().json(service.search(q).await?))
}
