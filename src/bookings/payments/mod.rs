//! Payments of bookings (API.md, Payments): the provider chosen by `PAYMENT_PROVIDER`, the
//! routes of the ledger, and each provider's own routes. They live with bookings: the hold
//! and the money are one transaction's business.

mod mock;
pub mod model;
pub mod provider;
pub mod service;
pub(super) mod store;
pub mod stripe;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use utoipa::{IntoParams, OpenApi};

use super::BookingsService;
use crate::config::PaymentSettings;
use crate::error::{ApiError, FieldError};
use crate::http::auth::{AdminUser, AuthUser};
use crate::http::schema;
use crate::http::{check, parse_id, parse_time, Choice, Json, PageParams, PageRequest, QueryParams};
use crate::ids::BookingId;
use crate::module::Configure;
use model::{Payment, PaymentKind, PaymentStatus, RefundInput, Setup, Totals};
use provider::PaymentProvider;
pub use service::Payments;

/// A payment provider as `PAYMENT_PROVIDER` names it; adding one is its file and its line
/// in [`PROVIDERS`]. (`none`, the default, is the absence of one.)
pub struct Provider {
    pub name: &'static str,
    /// The paths of its own routes (each taking `POST`).
    pub paths: &'static [&'static str],
    pub build: fn(&PaymentSettings) -> anyhow::Result<Built>,
}

/// A provider as this process uses it.
pub struct Built {
    pub port: Arc<dyn PaymentProvider>,
    /// Its own routes (the mock's test-card confirmation, Stripe's webhook).
    pub routes: Configure,
}

/// Every payment provider.
pub const PROVIDERS: &[Provider] = &[mock::PROVIDER, stripe::PROVIDER];

/// Every provider's own routes, answering 404 (and 405 to another method than `POST`) where
/// that provider is not the one in use: they are in the document whichever it is. Registered
/// after the provider's own, which match first.
pub fn routes_of_absent_providers(cfg: &mut web::ServiceConfig) {
    for path in PROVIDERS.iter().flat_map(|p| p.paths) {
        cfg.service(web::resource(*path).route(web::post().to(|| async {
            Err::<HttpResponse, _>(ApiError::NotFound)
        })));
    }
}

/// The provider `PAYMENT_PROVIDER` names, built; `None` for `none`.
pub fn provider(settings: &PaymentSettings) -> anyhow::Result<Option<Built>> {
    if settings.provider == "none" {
        return Ok(None);
    }
    let provider = PROVIDERS
        .iter()
        .find(|p| p.name == settings.provider)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "PAYMENT_PROVIDER: unknown provider {:?}",
                settings.provider
            )
        })?;
    (provider.build)(settings).map(Some)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/bookings/{id}/payments").route(web::get().to(list_of_booking)))
        .service(web::resource("/bookings/{id}/refunds").route(web::post().to(refund)))
        .service(
            web::resource("/bookings/{id}/payment-method").route(web::post().to(payment_method)),
        )
        .service(web::resource("/admin/payments").route(web::get().to(list_all)))
        .service(web::resource("/admin/payments/summary").route(web::get().to(summary)));
}

#[derive(OpenApi)]
#[openapi(
    paths(list_of_booking, refund, payment_method, list_all, summary, mock::confirm, stripe::webhook),
    components(schemas(Payment, PaymentKind, PaymentStatus, RefundInput, Setup, Totals,
                       model::BookingPayment, mock::MockConfirm,
                       crate::http::Paginated<Payment>)),
    tags((name = "payments", description = "Paying for bookings: the ledger, deposits, refunds"))
)]
pub struct PaymentsApi;

fn payments(bookings: &BookingsService) -> Result<&Arc<Payments>, ApiError> {
    bookings
        .payments()
        .ok_or_else(|| ApiError::conflict("No payment provider is configured (PAYMENT_PROVIDER=none)"))
}

/// A booking's payment records, oldest first (its owner or an admin); `[]` without a
/// payment provider.
#[utoipa::path(get, path = "/bookings/{id}/payments", tag = "payments", operation_id = "listBookingPayments",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Payment>)))]
async fn list_of_booking(
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let booking = bookings.visible_row(user, parse_id(&id)?).await?;
    let rows = match bookings.payments() {
        Some(payments) => payments.of_booking(booking.id).await?,
        None => Vec::new(),
    };
    Ok(HttpResponse::Ok().json(rows.iter().map(|r| r.to_api()).collect::<Vec<_>>()))
}

/// Refund up to what was captured less what was already refunded (admins).
#[utoipa::path(post, path = "/bookings/{id}/refunds", tag = "payments", operation_id = "refundBooking",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)), request_body = RefundInput,
    responses((status = 201, body = Payment, description = "The refund, pending until the provider confirms it"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 409, body = crate::error::ErrorBody, description = "More than can be refunded, or no payment provider")))]
async fn refund(
    bookings: web::Data<BookingsService>,
    admin: AdminUser,
    id: web::Path<String>,
    Json(body): Json<RefundInput>,
) -> Result<HttpResponse, ApiError> {
    let booking: BookingId = parse_id(&id)?;
    let mut errors = Vec::new();
    let amount = match body.amount {
        None => {
            errors.push(FieldError::new("amount", "is required"));
            None
        }
        Some(a) => crate::money::from_major(a)
            .filter(|m| (1..=crate::money::MAX_MINOR).contains(m))
            .or_else(|| {
                errors.push(FieldError::new(
                    "amount",
                    "must be more than 0 and at most 9999999999999.99, with at most 2 decimals",
                ));
                None
            }),
    };
    let reason = match body.reason.as_deref() {
        None => Err("is required".to_owned()),
        Some(raw) => schema::text(raw, 500),
    }
    .map_err(|m| errors.push(FieldError::new("reason", m)))
    .ok();
    check(errors)?;
    bookings.visible_row(admin.0, booking).await?;
    let payments = payments(&bookings)?;
    let row = payments
        .refund(booking, amount.unwrap_or_default(), reason.unwrap_or_default())
        .await?;
    Ok(HttpResponse::Created().json(row.to_api()))
}

/// Save another card for the booking's later charges (its owner or an admin): answers a
/// setup the client confirms with the provider's own libraries. Takes no body.
#[utoipa::path(post, path = "/bookings/{id}/payment-method", tag = "payments", operation_id = "setBookingPaymentMethod",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 201, body = Setup),
              (status = 409, body = crate::error::ErrorBody, description = "No payment provider, or the booking is over"),
              (status = 502, body = crate::error::ErrorBody, description = "PAYMENT_PROVIDER_ERROR: the provider refused to start the card's setup")))]
async fn payment_method(
    bookings: web::Data<BookingsService>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let booking = bookings.visible_row(user, parse_id(&id)?).await?;
    let payments = payments(&bookings)?;
    if !matches!(
        booking.status_at(crate::time::now()),
        super::model::Status::PendingPayment
            | super::model::Status::Confirmed
            | super::model::Status::Active
            | super::model::Status::Completed
    ) {
        return Err(ApiError::conflict("The booking is over: it takes no card"));
    }
    let setup = payments.start_setup(&booking).await?;
    Ok(HttpResponse::Created().json(Setup {
        id: setup.id,
        client_secret: setup.client_secret,
    }))
}

/// The admin list's filters, as the document shows them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
struct PaymentFilterParams {
    #[param(required = false, schema_with = schema::choice_schema::<PaymentStatus>)]
    status: String,
    #[param(required = false, schema_with = schema::choice_schema::<PaymentKind>)]
    kind: String,
    #[param(required = false, schema_with = schema::uuid_schema)]
    booking_id: String,
    /// Records created at or after it.
    #[param(required = false)]
    from: chrono::DateTime<chrono::Utc>,
    /// Records created before it.
    #[param(required = false)]
    to: chrono::DateTime<chrono::Utc>,
}

/// Every payment record, newest first (admins).
#[utoipa::path(get, path = "/admin/payments", tag = "payments", operation_id = "listPayments",
    security(("bearer" = [])), params(PaymentFilterParams, PageParams),
    responses((status = 200, body = crate::http::Paginated<Payment>),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn list_all(
    bookings: web::Data<BookingsService>,
    _: AdminUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    let status = query.get("status").and_then(|raw| {
        PaymentStatus::parse(raw)
            .map_err(|m| errors.push(FieldError::new("status", m)))
            .ok()
    });
    let kind = query.get("kind").and_then(|raw| {
        PaymentKind::parse(raw)
            .map_err(|m| errors.push(FieldError::new("kind", m)))
            .ok()
    });
    let filter = store::Filter {
        status,
        kind,
        booking: query.parse("bookingId", &mut errors),
        from: time_param(&query, "from", &mut errors),
        to: time_param(&query, "to", &mut errors),
    };
    check(errors)?;
    match bookings.payments() {
        Some(payments) => Ok(HttpResponse::Ok().json(payments.list(filter, page).await?)),
        None => Ok(HttpResponse::Ok().json(page.wrap(Vec::<Payment>::new(), 0))),
    }
}

fn time_param(
    query: &QueryParams,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<chrono::NaiveDateTime> {
    query.get(name).and_then(|raw| {
        parse_time(name, raw)
            .map(crate::db::to_db)
            .map_err(|e| errors.push(e))
            .ok()
    })
}

/// `from` and `to` of the summary, as the document shows them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SpanParams {
    /// Records created at or after it (default: the first).
    #[param(required = false)]
    from: chrono::DateTime<chrono::Utc>,
    /// Records created before it (default: every one); after `from`.
    #[param(required = false)]
    to: chrono::DateTime<chrono::Utc>,
}

/// What the records created in `[from, to)` add up to, by currency (admins).
#[utoipa::path(get, path = "/admin/payments/summary", tag = "payments", operation_id = "summarizePayments",
    security(("bearer" = [])), params(SpanParams),
    responses((status = 200, description = "Totals by upper-case ISO 4217 code",
               body = std::collections::BTreeMap<String, Totals>),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn summary(
    bookings: web::Data<BookingsService>,
    _: AdminUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    // Unbounded sides stay within what both databases store.
    let from = time_param(&query, "from", &mut errors)
        .map(crate::db::from_db)
        .unwrap_or(chrono::DateTime::UNIX_EPOCH);
    let to = time_param(&query, "to", &mut errors)
        .map(crate::db::from_db)
        .unwrap_or_else(|| {
            chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
                .map(|d| crate::db::from_db(d.and_time(chrono::NaiveTime::MIN)))
                .unwrap_or(chrono::DateTime::UNIX_EPOCH)
        });
    if errors.is_empty() && to <= from {
        errors.push(FieldError::new("to", "must be after from"));
    }
    check(errors)?;
    match bookings.payments() {
        Some(payments) => Ok(HttpResponse::Ok().json(payments.summary(from, to).await?)),
        None => Ok(HttpResponse::Ok().json(std::collections::BTreeMap::<String, Totals>::new())),
    }
}
