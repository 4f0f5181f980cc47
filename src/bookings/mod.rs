//! Booking routes: reservations, their lifecycle, and the admin view.

mod idempotency;
mod notice;
pub mod reminders;
pub mod model;
pub mod payments;
pub mod service;
mod store;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use crate::db::Db;
use crate::error::{ApiError, FieldError};
use crate::http::auth::{AdminUser, AuthUser};
use crate::http::schema;
use crate::http::{
    check, from_json_value, parse_id, parse_time, required_time, Json, OptionalJson, PageParams,
    PageRequest, Paginated, QueryParams, RawJson, RequestId,
};
use crate::module::{Build, Context, Served};
use crate::ports::{Availability, Ports};
use model::{
    requested_transition, Block, BlockInput, Booking, BookingFilter, CarRef, CreateBooking, Status,
    UpdateBooking,
};
pub use service::{BookingsService, Schedule};
use utoipa::IntoParams;
/// Bookings, as the registry ([`crate::MODULES`]) starts it.
pub const BUILD: Build = Build {
    api: || {
        let mut doc = BookingsApi::openapi();
        doc.merge(payments::PaymentsApi::openapi());
        doc
    },
    internal_api: || InternalApi::openapi(),
    provide,
    serve: |ctx| Box::pin(serve(ctx)),
    reads_cars: false,
};

/// Bookings as this process serves them; with a payment provider, the payments too, with
/// their workers (the provider calls queued by changes, unpaid holds running out, the
/// reconciliation poll) and their readiness check.
pub async fn serve(ctx: &Context) -> anyhow::Result<Served> {
    let provider = payments::provider(&ctx.settings.payments)?;
    let payments = provider.as_ref().map(|built| {
        Arc::new(payments::Payments::new(
            ctx.db.clone(),
            built.port.clone(),
            ctx.ports.clone(),
            ctx.metrics.clone(),
            &ctx.settings.payments,
        ))
    });
    let service = web::Data::new(BookingsService::new(
        ctx.db.clone(),
        ctx.ports.clone(),
        ctx.metrics.clone(),
        &ctx.settings.bookings,
        payments.clone(),
        crate::storage::open(&ctx.settings)?.0,
    ));
    let provider_routes = provider.map(|built| built.routes);
    let mut served = Served::new(service, routes, internal_routes)
        .with_check(Arc::new(payments::service::Readiness(
            payments.as_ref().map(|p| p.provider().clone()),
        )))
        .with_worker(reminders::spawn(
            ctx.db.clone(),
            ctx.ports.clone(),
            reminders::Leads::from_settings(&ctx.settings.bookings),
            ctx.stop.clone(),
        ));
    let public = served.routes.clone();
    served.routes = Arc::new(move |cfg| {
        public(cfg);
        if let Some(own) = &provider_routes {
            own(cfg);
        }
        payments::routes_of_absent_providers(cfg);
    });
    if let Some(payments) = payments {
        served = served
            .with_worker(payments::service::spawn_call_worker(
                ctx.db.clone(),
                payments.clone(),
                ctx.stop.clone(),
            ))
            .with_worker(payments::service::spawn_clock(
                payments,
                ctx.settings.payments.reconcile_every,
                ctx.stop.clone(),
            ));
    }
    Ok(served)
}

/// Answers availability in-process.
pub fn provide(ports: &mut Ports, db: &Db) {
    ports.availability = Arc::new(Schedule::new(db.clone()));
}

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
    .service(web::resource("/admin/bookings").route(web::get().to(list_all)))
    .configure(payments::routes)
    .service(
        web::resource("/cars/{id}/blocks")
            .route(web::get().to(list_blocks))
            .route(web::post().to(create_block)),
    )
    .service(web::resource("/cars/{id}/blocks/{block_id}").route(web::delete().to(delete_block)));
}

/// The routes other modules' processes call (under `/internal`).
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/bookings/busy-cars").route(web::get().to(busy_cars)))
        .service(web::resource("/bookings/cars/{id}/busy").route(web::get().to(busy_intervals)))
        .service(web::resource("/bookings/cars/{id}/upcoming").route(web::get().to(upcoming)))
        .service(web::resource("/bookings/{id}/picked-up").route(web::get().to(picked_up)))
        .service(web::resource("/bookings/users/{id}/outstanding").route(web::get().to(outstanding)))
        .service(web::resource("/bookings/users/{id}/data").route(web::get().to(personal_data)));
}

#[derive(OpenApi)]
#[openapi(
    paths(create, list_mine, get, update, pick_up, hand_back, list_all, create_block,
          list_blocks, delete_block),
    components(schemas(Booking, CarRef, CreateBooking, UpdateBooking, Status, Paginated<Booking>,
                       model::Handover, model::HandoverInput, model::Damage, Block, BlockInput,
                       Paginated<Block>)),
    tags((name = "bookings", description = "Reservations and their lifecycle"))
)]
pub struct BookingsApi;

/// `Idempotency-Key`, as the document shows it.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct IdempotencyParams {
    /// Visible ASCII, 1 to 255 characters (spaces only inside); the same key from the same
    /// user with the same body replays the first answer (but a 5xx) for 24 hours at least.
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$"
    )]
    key: String,
}

/// The `status` filter, as the document shows it.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct StatusParams {
    #[param(required = false, schema_with = schema::choice_schema::<Status>)]
    status: String,
}

/// The admin's filters, as the document shows them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
struct AdminFilterParams {
    #[param(required = false, schema_with = schema::uuid_schema)]
    car_id: String,
    #[param(required = false, schema_with = schema::uuid_schema)]
    user_id: String,
}

#[derive(OpenApi)]
#[openapi(paths(busy_cars, busy_intervals, upcoming, picked_up, outstanding, personal_data))]
pub struct InternalApi;

/// Book a car.
#[utoipa::path(post, path = "/bookings", tag = "bookings", operation_id = "createBooking",
    request_body = CreateBooking, security(("bearer" = [])), params(IdempotencyParams),
    responses((status = 201, body = Booking),
              (status = 404, body = crate::error::ErrorBody, description = "No such car, or it was deleted"),
              (status = 409, body = crate::error::ErrorBody,
               description = "The car is taken for part of the window, or inactive, or the customer already holds the most upcoming bookings allowed"),
              (status = 422, body = crate::error::ErrorBody, description = "Idempotency-Key reused with another body"),
              (status = 502, body = crate::error::ErrorBody,
               description = "PAYMENT_PROVIDER_ERROR: the payment provider refused to open the payment for a reason that is not the customer's; no booking was made")))]
async fn create(
    req: HttpRequest,
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    RawJson(body): RawJson,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = idempotency::key_of(&req)? else {
        let input: CreateBooking = from_json_value(body)?;
        return Ok(HttpResponse::Created().json(bookings.create(user, input).await?));
    };
    let answer = bookings
        .create_once(user, &key, body, &RequestId::of(&req))
        .await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .body(answer.body))
}

/// The caller's bookings, newest first.
#[utoipa::path(get, path = "/bookings", tag = "bookings", operation_id = "listMyBookings",
    security(("bearer" = [])), params(StatusParams, PageParams),
    responses((status = 200, body = Paginated<Booking>)))]
async fn list_mine(
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    let filter = BookingFilter::mine(user.id, &query, &mut errors);
    check(errors)?;
    Ok(HttpResponse::Ok().json(bookings.list(filter, page).await?))
}

/// Every booking, newest first (admins).
#[utoipa::path(get, path = "/admin/bookings", tag = "bookings", operation_id = "listAllBookings",
    security(("bearer" = [])), params(StatusParams, AdminFilterParams, PageParams),
    responses((status = 200, body = Paginated<Booking>),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn list_all(
    bookings: web::Data<BookingsService>,
    _: AdminUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    let filter = BookingFilter::parse(&query, &mut errors);
    check(errors)?;
    Ok(HttpResponse::Ok().json(bookings.list(filter, page).await?))
}

/// One booking (its owner or an admin; anyone else gets 404).
#[utoipa::path(get, path = "/bookings/{id}", tag = "bookings", operation_id = "getBooking",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Booking)))]
async fn get(
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(bookings.get(user, parse_id(&id)?).await?))
}

/// Cancel a booking: `{"status": "cancelled"}`, while confirmed and before pickup.
#[utoipa::path(patch, path = "/bookings/{id}", tag = "bookings", operation_id = "cancelBooking",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)), request_body = UpdateBooking,
    responses((status = 200, body = Booking),
              (status = 409, body = crate::error::ErrorBody, description = "Not confirmed, or its pickup has passed")))]
async fn update(
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    id: web::Path<String>,
    Json(body): Json<UpdateBooking>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    requested_transition(&body).map_err(|e| ApiError::Validation(vec![e]))?;
    Ok(HttpResponse::Ok().json(bookings.cancel(user, id).await?))
}

/// Hand the car over: `confirmed` → `active` (admins), with what was recorded (the body may
/// be left out).
#[utoipa::path(post, path = "/bookings/{id}/pickup", tag = "bookings", operation_id = "pickUpBooking",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body(content = Option<model::HandoverInput>, description = "Optional: time, odometer, fuel, notes"),
    responses((status = 200, body = Booking),
              (status = 402, body = crate::error::ErrorBody,
               description = "PAYMENT_REQUIRED: the deposit was declined (the provider's message), or no card is saved; the booking stays confirmed"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 409, body = crate::error::ErrorBody, description = "Not confirmed"),
              (status = 502, body = crate::error::ErrorBody,
               description = "PAYMENT_PROVIDER_ERROR: the provider refused the deposit for a reason that is not the customer's")))]
async fn pick_up(
    bookings: web::Data<BookingsService>,
    admin: AdminUser,
    id: web::Path<String>,
    OptionalJson(body): OptionalJson<model::HandoverInput>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let input = body.unwrap_or_default();
    Ok(HttpResponse::Ok().json(bookings.pick_up(admin.0, id, input).await?))
}

/// Take the car back: `active` → `completed` (admins), with what was recorded (the body may
/// be left out). A late return (over 59 minutes past `dropoffTime`) adds a `late_fee` line
/// and km beyond the car's allowance an `extra_km` line; `totalPrice` grows by them.
#[utoipa::path(post, path = "/bookings/{id}/return", tag = "bookings", operation_id = "returnBooking",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    request_body(content = Option<model::HandoverInput>, description = "Optional: time, odometer, fuel, notes, damages"),
    responses((status = 200, body = Booking),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 409, body = crate::error::ErrorBody, description = "Not active")))]
async fn hand_back(
    bookings: web::Data<BookingsService>,
    admin: AdminUser,
    id: web::Path<String>,
    OptionalJson(body): OptionalJson<model::HandoverInput>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let input = body.unwrap_or_default();
    Ok(HttpResponse::Ok().json(bookings.hand_back(admin.0, id, input).await?))
}

/// Take a car out of service for `[from, to)` (admins).
#[utoipa::path(post, path = "/cars/{id}/blocks", tag = "cars", operation_id = "createCarBlock",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)), request_body = BlockInput,
    responses((status = 201, body = Block),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 404, body = crate::error::ErrorBody, description = "No such car, or it was deleted"),
              (status = 409, body = crate::error::ErrorBody,
               description = "A booking (with its turnaround buffer) or another block holds the car for part of that time")))]
async fn create_block(
    bookings: web::Data<BookingsService>,
    _: AdminUser,
    id: web::Path<String>,
    Json(body): Json<BlockInput>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Created().json(bookings.create_block(id, body).await?))
}

/// `all`, as the document shows it.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct BlocksParams {
    /// `true`: every block, past ones too; otherwise those that end after now.
    #[param(required = false)]
    all: bool,
}

/// A car's blocks in `from` order (admins): those that end after now, or every one.
#[utoipa::path(get, path = "/cars/{id}/blocks", tag = "cars", operation_id = "listCarBlocks",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path), BlocksParams, PageParams),
    responses((status = 200, body = Paginated<Block>),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 404, body = crate::error::ErrorBody, description = "No such car, or it was deleted")))]
async fn list_blocks(
    bookings: web::Data<BookingsService>,
    _: AdminUser,
    id: web::Path<String>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    let every = match query.get("all").map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push(FieldError::new("all", "must be true or false"));
            false
        }
    };
    check(errors)?;
    Ok(HttpResponse::Ok().json(bookings.blocks(id, every, page).await?))
}

/// Put the car back in service for the block's span (admins).
#[utoipa::path(delete, path = "/cars/{id}/blocks/{blockId}", tag = "cars", operation_id = "deleteCarBlock",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path), ("blockId" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 404, body = crate::error::ErrorBody, description = "No such car or block")))]
async fn delete_block(
    bookings: web::Data<BookingsService>,
    _: AdminUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (car, block) = path.into_inner();
    let (car, block) = (parse_id(&car)?, parse_id(&block)?);
    bookings.delete_block(car, block).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reads the `[from, to)` window of an internal availability query.
fn window(
    query: &QueryParams,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), ApiError> {
    let mut errors = Vec::new();
    let from = required_time("from", query.get("from"), &mut errors);
    let to = required_time("to", query.get("to"), &mut errors);
    check(errors)?;
    from.zip(to).ok_or(ApiError::Validation(vec![]))
}

/// Cars with a hold (booking with its buffer, or block) overlapping `[from, to)`.
#[utoipa::path(get, path = "/internal/bookings/busy-cars", tag = "internal",
    params(("from" = String, Query), ("to" = String, Query)),
    security(("bearer" = [])), responses((status = 200, body = Vec<crate::ports::BusyCar>)))]
async fn busy_cars(
    bookings: web::Data<BookingsService>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = window(&query)?;
    Ok(HttpResponse::Ok().json(bookings.schedule().busy_cars(from, to).await?))
}

/// A car's holds overlapping `[from, to)`.
#[utoipa::path(get, path = "/internal/bookings/cars/{id}/busy", tag = "internal",
    params(("id" = String, Path), ("from" = String, Query), ("to" = String, Query)),
    security(("bearer" = [])), responses((status = 200, body = Vec<crate::ports::Busy>)))]
async fn busy_intervals(
    bookings: web::Data<BookingsService>,
    id: web::Path<String>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let (from, to) = window(&query)?;
    Ok(HttpResponse::Ok().json(bookings.schedule().busy_intervals(id, from, to).await?))
}

/// Whether the booking exists and its car was picked up (`active` or `completed`).
#[utoipa::path(get, path = "/internal/bookings/{id}/picked-up", tag = "internal",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])), responses((status = 200, body = bool)))]
async fn picked_up(
    bookings: web::Data<BookingsService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(bookings.schedule().was_picked_up(id).await?))
}

/// Whether the car has a confirmed or active booking that has not ended by `now`.
#[utoipa::path(get, path = "/internal/bookings/cars/{id}/upcoming", tag = "internal",
    params(("id" = String, Path), ("now" = String, Query)),
    security(("bearer" = [])), responses((status = 200, body = bool)))]
async fn upcoming(
    bookings: web::Data<BookingsService>,
    id: web::Path<String>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = match query.get("now") {
        Some(raw) => parse_time("now", raw).map_err(|e| ApiError::Validation(vec![e]))?,
        None => crate::time::now(),
    };
    Ok(HttpResponse::Ok().json(bookings.schedule().has_upcoming_booking(id, now).await?))
}

/// What keeps the user's account open (`null`: nothing).
#[utoipa::path(get, path = "/internal/bookings/users/{id}/outstanding", tag = "internal",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Option<String>)))]
async fn outstanding(
    bookings: web::Data<BookingsService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(bookings.schedule().outstanding(id).await?))
}

/// What bookings keeps about the user (their data export).
#[utoipa::path(get, path = "/internal/bookings/users/{id}/data", tag = "internal",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Object)))]
async fn personal_data(
    bookings: web::Data<BookingsService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(bookings.schedule().personal_data(id).await?))
}
