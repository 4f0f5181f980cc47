//! Booking routes: reservations, their lifecycle, and the admin view.

mod idempotency;
pub mod model;
pub mod service;
mod store;

use actix_web::http::StatusCode;
use actix_web::ResponseError;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use crate::http::auth::{AdminUser, AuthUser};
use crate::http::{
    check, from_json_value, parse_id, ApiError, FieldError, Json, PageRequest, QueryParams,
    RequestId,
};
use idempotency::{Answer, MAX_KEY_LEN};
use model::{Booking, CarRef, CreateBooking, Status, UpdateBooking};
pub use service::{BookingsService, Schedule};
use store::BookingFilter;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/bookings")
            .route(web::get().to(list_mine))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/bookings/{id}")
            .route(web::get().to(get))
            .route(web::patch().to(update)),
    )
    .service(web::resource("/bookings/{id}/pickup").route(web::post().to(pick_up)))
    .service(web::resource("/bookings/{id}/return").route(web::post().to(hand_back)))
    .service(web::resource("/admin/bookings").route(web::get().to(list_all)));
}

#[derive(OpenApi)]
#[openapi(
    paths(create, list_mine, get, update, pick_up, hand_back, list_all),
    components(schemas(Booking, CarRef, CreateBooking, UpdateBooking, Status, BookingPage)),
    tags((name = "bookings", description = "Reservations"))
)]
pub struct BookingsApi;

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct BookingPage {
    data: Vec<Booking>,
    page: u32,
    limit: u32,
    total: i64,
    total_pages: i64,
}

/// Book a car.
#[utoipa::path(post, path = "/bookings", tag = "bookings", request_body = CreateBooking, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "at most 255 characters; the same key and body replay the first answer")),
    responses((status = 201, body = Booking), (status = 400, body = crate::openapi::ErrorBody),
              (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody),
              (status = 409, body = crate::openapi::ErrorBody, description = "Overlapping booking, or the car is inactive"),
              (status = 422, body = crate::openapi::ErrorBody, description = "Idempotency-Key reused with another body")))]
async fn create(
    req: HttpRequest,
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    Json(body): Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str().map(str::trim) {
            Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => Some(k.to_owned()),
            _ => {
                return Err(ApiError::field(
                    "Idempotency-Key",
                    "must be 1 to 255 visible characters",
                ))
            }
        },
    };
    let Some(key) = key else {
        let input: CreateBooking = from_json_value(body)?;
        return Ok(HttpResponse::Created().json(bookings.create(user, input).await?));
    };
    let request_id = RequestId::of(&req);
    let hash = idempotency::body_hash(&body);
    let work = async {
        let result = match from_json_value::<CreateBooking>(body) {
            Ok(input) => bookings.create(user, input).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(booking) => Answer {
                status: StatusCode::CREATED.as_u16(),
                body: serde_json::to_string(&booking).unwrap_or_default(),
            },
            Err(e) => Answer {
                status: e.status_code().as_u16(),
                body: e.body(&request_id).to_string(),
            },
        }
    };
    let answer = idempotency::once(bookings.db(), user.id, &key, hash, work).await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .body(answer.body))
}

fn booking_filter(query: &QueryParams, errors: &mut Vec<FieldError>) -> BookingFilter {
    let id = |name: &str, errors: &mut Vec<FieldError>| {
        query.get(name).and_then(|raw| {
            uuid::Uuid::parse_str(raw.trim())
                .map(|u| u.to_string())
                .map_err(|_| errors.push(FieldError::new(name, "must be a UUID")))
                .ok()
        })
    };
    BookingFilter {
        user_id: id("userId", errors),
        car_id: id("carId", errors),
        status: query.get("status").and_then(|raw| {
            service::status_filter(raw)
                .map_err(|m| errors.push(FieldError::new("status", m)))
                .ok()
        }),
    }
}

/// The caller's bookings, newest first.
#[utoipa::path(get, path = "/bookings", tag = "bookings", security(("bearer" = [])),
    params(("status" = Option<Status>, Query), ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = BookingPage), (status = 400, body = crate::openapi::ErrorBody),
              (status = 401, body = crate::openapi::ErrorBody)))]
async fn list_mine(
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    let filter = BookingFilter {
        user_id: Some(user.id.to_string()),
        car_id: None,
        status: booking_filter(&query, &mut errors).status,
    };
    check(errors)?;
    Ok(HttpResponse::Ok().json(bookings.list(filter, page).await?))
}

/// Every booking, newest first (admins).
#[utoipa::path(get, path = "/admin/bookings", tag = "bookings", security(("bearer" = [])),
    params(("status" = Option<Status>, Query), ("carId" = Option<String>, Query), ("userId" = Option<String>, Query),
           ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = BookingPage), (status = 400, body = crate::openapi::ErrorBody),
              (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)))]
async fn list_all(
    bookings: web::Data<BookingsService>,
    _: AdminUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    let filter = booking_filter(&query, &mut errors);
    check(errors)?;
    Ok(HttpResponse::Ok().json(bookings.list(filter, page).await?))
}

/// One booking (its owner or an admin; anyone else gets 404).
#[utoipa::path(get, path = "/bookings/{id}", tag = "bookings", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Booking), (status = 401, body = crate::openapi::ErrorBody),
              (status = 404, body = crate::openapi::ErrorBody)))]
async fn get(
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(bookings.get(user, parse_id(&id)?).await?))
}

/// Cancel a booking: `{"status": "cancelled"}`, while confirmed and before pickup.
#[utoipa::path(patch, path = "/bookings/{id}", tag = "bookings", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = UpdateBooking,
    responses((status = 200, body = Booking), (status = 400, body = crate::openapi::ErrorBody),
              (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody)))]
async fn update(
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    id: web::Path<String>,
    Json(body): Json<UpdateBooking>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    if !body.status.trim().eq_ignore_ascii_case("cancelled") {
        return Err(ApiError::field("status", "only \"cancelled\" can be set"));
    }
    Ok(HttpResponse::Ok().json(bookings.cancel(user, id).await?))
}

/// Hand the car over: `confirmed` → `active` (admins).
#[utoipa::path(post, path = "/bookings/{id}/pickup", tag = "bookings", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Booking), (status = 403, body = crate::openapi::ErrorBody),
              (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody)))]
async fn pick_up(
    bookings: web::Data<BookingsService>,
    admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(bookings.pick_up(admin.0, parse_id(&id)?).await?))
}

/// Take the car back: `active` → `completed` (admins).
#[utoipa::path(post, path = "/bookings/{id}/return", tag = "bookings", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Booking), (status = 403, body = crate::openapi::ErrorBody),
              (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody)))]
async fn hand_back(
    bookings: web::Data<BookingsService>,
    admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(bookings.hand_back(admin.0, parse_id(&id)?).await?))
}
