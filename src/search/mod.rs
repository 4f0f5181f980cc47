//! Search route: cars near a point, by text, filters and availability.

pub mod model;
pub mod opensearch;
pub mod service;
mod store;

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::http::{ApiError, QueryParams};
use model::SearchQuery;
pub use service::SearchService;

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
    responses((status = 200, body = SearchPage), (status = 400, body = crate::openapi::ErrorBody)))]
async fn search(
    service: web::Data<SearchService>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let q = SearchQuery::parse(&query)?;
    Ok(HttpResponse::Ok().json(service.search(q).await?))
}
