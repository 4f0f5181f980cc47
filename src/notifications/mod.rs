//! Notification routes: the caller's messages and push subscriptions.

pub mod model;
pub mod push;
pub mod service;
mod sms;
mod store;

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::db::Db;
use crate::error::ApiError;
use crate::http::auth::AuthUser;
use crate::http::{check, parse_id, Json, PageParams, PageRequest, Paginated, QueryParams, RawJson};
use crate::module::{Build, Context, Served};
use crate::outbox::Stop;
use model::{Message, Platform, SubscribeRequest, Subscription};
pub use service::{Mailer, NotificationsService, Senders};
/// Notifications, as the registry ([`crate::MODULES`]) starts it.
pub const BUILD: Build = Build {
    api: || NotificationsApi::openapi(),
    internal_api: utoipa::openapi::OpenApi::default,
    provide: crate::module::provides_nothing,
    serve: |ctx| Box::pin(serve(ctx)),
    reads_cars: false,
};

/// Notifications as this process serves them, with the worker that delivers the messages
/// every module queues.
pub async fn serve(ctx: &Context) -> anyhow::Result<Served> {
    let settings = &ctx.settings.notifications;
    let senders = Senders::from_settings(settings, ctx.ports.users.clone()).map_err(anyhow::Error::msg)?;
    let mut service = NotificationsService::new(ctx.db.clone(), senders, settings, ctx.metrics.clone());
    service.plain_http = ctx.settings.env != crate::config::AppEnv::Production;
    let service = web::Data::new(service);

    let worker = spawn_delivery_worker(ctx.db.clone(), service.clone(), ctx.stop.clone());
    Ok(Served::new(service.clone(), routes, |_| {})
        .with_check(service.into_inner())
        .with_worker(worker))
}

/// Delivers queued messages: at least once, with backoff, `failed` after the last attempt.
fn spawn_delivery_worker(
    db: Db,
    service: web::Data<NotificationsService>,
    stop: Stop,
) -> tokio::task::JoinHandle<()> {
    let policy = service.policy().clone();
    tokio::spawn(crate::outbox::run_worker(
        db,
        service::TOPIC,
        policy,
        stop,
        move |jobs| {
            let service = service.clone();
            async move { service.deliver(jobs).await }
        },
        // Counted by channel where each message settles.
        |_| {},
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/notifications").route(web::get().to(list)))
        .service(web::resource("/notifications/vapid-public-key").route(web::get().to(vapid_public_key)))
        .service(
            web::resource("/me/notification-preferences")
                .route(web::get().to(get_preferences))
                .route(web::patch().to(set_preferences)),
        )
        .service(web::resource("/notifications/subscribe").route(web::post().to(subscribe)))
        .service(
            web::resource("/notifications/subscribe/{id}").route(web::delete().to(unsubscribe)),
        );
}

#[derive(OpenApi)]
#[openapi(
    paths(list, subscribe, unsubscribe, vapid_public_key, get_preferences, set_preferences),
    components(schemas(Message, Paginated<Message>, SubscribeRequest, Subscription, Platform,
                       VapidKey, PreferencesMap, PreferencesPatch)),
    tags((name = "notifications", description = "Messages and push subscriptions"))
)]
pub struct NotificationsApi;

/// The caller's messages, newest first, with their delivery status.
#[utoipa::path(get, path = "/notifications", tag = "notifications", operation_id = "listMessages",
    security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Paginated<Message>)))]
async fn list(
    service: web::Data<NotificationsService>,
    user: AuthUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    check(errors)?;
    Ok(HttpResponse::Ok().json(service.list(user.id, page).await?))
}

/// Register a device token, or a browser's `PushSubscription`; the same token or endpoint
/// again answers 200 with the same id (a browser's keys updated).
#[utoipa::path(post, path = "/notifications/subscribe", tag = "notifications", operation_id = "subscribe",
    security(("bearer" = [])), request_body = SubscribeRequest,
    responses((status = 201, body = Subscription, description = "Registered"),
              (status = 200, body = Subscription, description = "Already registered: the same subscription")))]
async fn subscribe(
    service: web::Data<NotificationsService>,
    user: AuthUser,
    Json(body): Json<SubscribeRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = body.validate(service.plain_http).map_err(ApiError::Validation)?;
    let (subscription, created) = service.subscribe(user.id, new).await?;
    Ok(if created {
        HttpResponse::Created().json(subscription)
    } else {
        HttpResponse::Ok().json(subscription)
    })
}

/// Remove one of the caller's subscriptions (anyone else's is a 404).
#[utoipa::path(delete, path = "/notifications/subscribe/{id}", tag = "notifications", operation_id = "unsubscribe",
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Removed")))]
async fn unsubscribe(
    service: web::Data<NotificationsService>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service.unsubscribe(user.id, parse_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /notifications/vapid-public-key`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct VapidKey {
    /// The uncompressed P-256 point, base64url: `applicationServerKey` for
    /// `pushManager.subscribe`.
    public_key: String,
}

/// The key browsers subscribe with (`applicationServerKey`). 404 when Web Push is off (no
/// VAPID key configured).
#[utoipa::path(get, path = "/notifications/vapid-public-key", tag = "notifications",
    operation_id = "vapidPublicKey", security(()),
    responses((status = 200, body = VapidKey), (status = 404, body = crate::error::ErrorBody, description = "Web Push is off")))]
async fn vapid_public_key(service: web::Data<NotificationsService>) -> Result<HttpResponse, ApiError> {
    let key = service.vapid_public_key().ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(VapidKey { public_key: key.to_owned() }))
}

/// `{"email": {...}, "sms": {...}, "push": {...}}`: for each channel, each kind of message
/// on (`true`) or off. Security messages (`verify_email`, `password_reset`,
/// `password_changed`, `phone_code`) are not in it: they always go.
struct PreferencesMap;

/// The same map, any subset of it: what `PATCH` changes.
struct PreferencesPatch;

fn preferences_schema(all: bool) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let kinds = crate::messages::preferences::preference_kinds().fold(
        ObjectBuilder::new().additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(false))),
        |o, kind| {
            let o = o.property(kind, ObjectBuilder::new().schema_type(Type::Boolean));
            if all { o.required(kind) } else { o }
        },
    );
    let kinds: utoipa::openapi::schema::Schema = kinds.into();
    let map = ["email", "sms", "push"].into_iter().fold(
        ObjectBuilder::new().additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(false))).description(Some(
            "For each channel, each kind of message on (`true`) or off. Security messages \
             (`verify_email`, `password_reset`, `password_changed`, `phone_code`) are not in \
             it: they always go.",
        )),
        |o, channel| {
            let o = o.property(channel, kinds.clone());
            if all { o.required(channel) } else { o }
        },
    );
    utoipa::openapi::schema::Schema::from(map).into()
}

impl utoipa::PartialSchema for PreferencesMap {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        preferences_schema(true)
    }
}

impl utoipa::ToSchema for PreferencesMap {}

impl utoipa::PartialSchema for PreferencesPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        preferences_schema(false)
    }
}

impl utoipa::ToSchema for PreferencesPatch {}

/// The caller's notification preferences. Defaults: every kind on by email and push; by SMS
/// only `pickup_reminder` and `booking_cancelled`.
#[utoipa::path(get, path = "/me/notification-preferences", tag = "notifications",
    operation_id = "getNotificationPreferences", security(("bearer" = [])),
    responses((status = 200, body = PreferencesMap)))]
async fn get_preferences(
    service: web::Data<NotificationsService>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service.preferences(user.id).await?))
}

/// Turn kinds of messages on or off per channel: any subset of the map; answers the whole
/// map. An unknown channel or kind, or a value that is not a boolean, is a 400 naming it
/// (`sms.welcome`).
#[utoipa::path(patch, path = "/me/notification-preferences", tag = "notifications",
    operation_id = "setNotificationPreferences", security(("bearer" = [])),
    request_body = PreferencesPatch,
    responses((status = 200, body = PreferencesMap)))]
async fn set_preferences(
    service: web::Data<NotificationsService>,
    user: AuthUser,
    RawJson(body): RawJson,
) -> Result<HttpResponse, ApiError> {
    let choices = model::preference_choices(&body).map_err(ApiError::Validation)?;
    Ok(HttpResponse::Ok().json(service.set_preferences(user.id, choices).await?))
}
