//! Car routes: the inventory, public reads and admin writes.

pub mod model;
pub mod seed;
pub mod service;
mod store;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::db::Db;
use crate::http::auth::{AdminUser, MaybeUser};
use crate::http::{check, parse_id, ApiError, Json, PageRequest, QueryParams};
use crate::module::{Context, Served};
use crate::ports::{CarCatalog, CarDocument, CarSummary, Ids, Ports};
use model::{
    Car, CarAvailability, CarFilter, CarInput, FuelType, Location, LocationInput, Transmission,
    Window,
};
pub use service::{CarsService, Catalog};

/// Cars as this process serves them.
pub async fn serve(ctx: &Context) -> anyhow::Result<Served> {
    let service = CarsService::new(ctx.db.clone(), ctx.ports.clone());
    Ok(Served::new(
        web::Data::new(service),
        routes,
        internal_routes,
    ))
}

/// Answers the car catalogue in-process.
pub fn provide(ports: &mut Ports, db: &Db) {
    ports.catalog = Arc::new(Catalog::new(db.clone()));
}

/// The routes other modules' processes call (under `/internal`). The fixed paths come
/// before `/cars/{id}`, which would take them otherwise.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/cars/ids").route(web::get().to(internal_ids)))
        .service(web::resource("/cars/summaries").route(web::post().to(internal_summaries)))
        .service(web::resource("/cars/documents").route(web::post().to(internal_documents)))
        .service(web::resource("/cars/{id}").route(web::get().to(internal_car)));
}

#[derive(OpenApi)]
#[openapi(
    paths(internal_car, internal_summaries, internal_documents, internal_ids),
    components(schemas(CarSummary, CarDocument, Ids))
)]
pub struct InternalApi;

/// A car, deleted or not (`null` when it never existed).
#[utoipa::path(get, path = "/internal/cars/{id}", tag = "internal", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Option<CarSummary>)))]
async fn internal_car(
    cars: web::Data<CarsService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(cars.catalog().car(id).await?))
}

/// Several cars by id, as a map from id to car (unknown ids are left out).
#[utoipa::path(post, path = "/internal/cars/summaries", tag = "internal", request_body = Ids,
    security(("bearer" = [])), responses((status = 200, body = std::collections::HashMap<String, CarSummary>)))]
async fn internal_summaries(
    cars: web::Data<CarsService>,
    Json(ids): Json<Ids>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.catalog().cars(&ids.ids).await?))
}

/// Undeleted cars by id as search shows and indexes them.
#[utoipa::path(post, path = "/internal/cars/documents", tag = "internal", request_body = Ids,
    security(("bearer" = [])), responses((status = 200, body = std::collections::HashMap<String, CarDocument>)))]
async fn internal_documents(
    cars: web::Data<CarsService>,
    Json(ids): Json<Ids>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.catalog().documents(&ids.ids).await?))
}

/// Ids of undeleted cars after `after`, in id order.
#[utoipa::path(get, path = "/internal/cars/ids", tag = "internal",
    params(("after" = Option<String>, Query), ("limit" = i64, Query)),
    security(("bearer" = [])), responses((status = 200, body = Vec<String>)))]
async fn internal_ids(
    cars: web::Data<CarsService>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let after = query.parse::<uuid::Uuid>("after", &mut errors);
    let limit = query
        .parse::<i64>("limit", &mut errors)
        .unwrap_or(500)
        .clamp(1, 1000);
    check(errors)?;
    Ok(HttpResponse::Ok().json(cars.catalog().ids_after(after, limit).await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cars")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/cars/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(web::resource("/cars/{id}/availability").route(web::get().to(availability)));
}

#[derive(OpenApi)]
#[openapi(
    paths(list, create, get, update, delete, availability),
    components(schemas(Car, CarInput, Location, LocationInput, FuelType, Transmission, CarAvailability, model::BusyInterval, CarPage)),
    tags((name = "cars", description = "The fleet"))
)]
pub struct CarsApi;

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct CarPage {
    data: Vec<Car>,
    page: u32,
    limit: u32,
    total: i64,
    total_pages: i64,
}

/// Active cars, newest first.
#[utoipa::path(get, path = "/cars", tag = "cars",
    params(
        ("city" = Option<String>, Query, description = "exact, any letter case"),
        ("brand" = Option<String>, Query, description = "exact, any letter case"),
        ("fuelType" = Option<FuelType>, Query), ("transmission" = Option<Transmission>, Query),
        ("minSeats" = Option<i32>, Query), ("maxPrice" = Option<f64>, Query, description = "inclusive"),
        ("includeInactive" = Option<bool>, Query, description = "admins only"),
        ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = CarPage), (status = 400, body = crate::http::ErrorBody)))]
async fn list(
    cars: web::Data<CarsService>,
    user: MaybeUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    let filter = CarFilter::parse(&query, user.0.is_some_and(|u| u.is_admin()), &mut errors);
    check(errors)?;
    Ok(HttpResponse::Ok().json(cars.list(filter, page).await?))
}

/// Add a car.
#[utoipa::path(post, path = "/cars", tag = "cars", request_body = CarInput, security(("bearer" = [])),
    responses((status = 201, body = Car), (status = 400, body = crate::http::ErrorBody),
              (status = 401, body = crate::http::ErrorBody), (status = 403, body = crate::http::ErrorBody)))]
async fn create(
    cars: web::Data<CarsService>,
    _: AdminUser,
    Json(input): Json<CarInput>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(cars.create(input).await?))
}

/// One car, active or not (deleted cars are gone).
#[utoipa::path(get, path = "/cars/{id}", tag = "cars", params(("id" = String, Path)),
    responses((status = 200, body = Car), (status = 404, body = crate::http::ErrorBody)))]
async fn get(
    cars: web::Data<CarsService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.get(parse_id(&id)?).await?))
}

/// Change a car: only the fields sent change (PUT and PATCH alike).
#[utoipa::path(method(put, patch), path = "/cars/{id}", tag = "cars", params(("id" = String, Path)), request_body = CarInput,
    security(("bearer" = [])),
    responses((status = 200, body = Car), (status = 400, body = crate::http::ErrorBody),
              (status = 403, body = crate::http::ErrorBody), (status = 404, body = crate::http::ErrorBody)))]
async fn update(
    cars: web::Data<CarsService>,
    _: AdminUser,
    id: web::Path<String>,
    Json(input): Json<CarInput>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.update(parse_id(&id)?, input).await?))
}

/// Remove a car from the fleet (its bookings stay readable).
#[utoipa::path(delete, path = "/cars/{id}", tag = "cars", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::http::ErrorBody),
              (status = 409, body = crate::http::ErrorBody, description = "It has an upcoming or active booking")))]
async fn delete(
    cars: web::Data<CarsService>,
    _: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    cars.delete(parse_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// When a car is taken: every non-cancelled booking overlapping the window.
#[utoipa::path(get, path = "/cars/{id}/availability", tag = "cars",
    params(("id" = String, Path), ("from" = Option<String>, Query, description = "RFC 3339, default now"),
           ("to" = Option<String>, Query, description = "RFC 3339, default from + 30 days, at most 366 days after from")),
    responses((status = 200, body = CarAvailability), (status = 400, body = crate::http::ErrorBody),
              (status = 404, body = crate::http::ErrorBody)))]
async fn availability(
    cars: web::Data<CarsService>,
    id: web::Path<String>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let window = Window::parse(&query)?;
    Ok(HttpResponse::Ok().json(cars.availability(id, window).await?))
}
