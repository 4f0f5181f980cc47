//! Notification routes: the caller's messages and push subscriptions.

pub mod model;
pub mod service;
mod store;

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::db::Db;
use crate::error::ApiError;
use crate::http::auth::AuthUser;
use crate::http::{check, parse_id, Json, PageParams, PageRequest, Paginated, QueryParams};
use crate::module::{Build, Context, Served};
use crate::outbox::Stop;
use model::{Message, Platform, SubscribeRequest, Subscription};
pub use service::{Mailer, NotificationsService};
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
    let mailer = Mailer::from_settings(settings).map_err(anyhow::Error::msg)?;
    let service = web::Data::new(NotificationsService::new(
        ctx.db.clone(),
        mailer,
        settings,
        ctx.metrics.clone(),
    ));
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
    let counter = service.clone();
    tokio::spawn(crate::outbox::run_worker(
        db,
        service::TOPIC,
        policy,
        stop,
        move |jobs| {
            let service = service.clone();
            async move {
                let outcomes = service.deliver(jobs).await;
                outcomes
                    .into_iter()
                    .map(|o| o.map_err(Into::into))
                    .collect()
            }
        },
        move |settled| counter.count(settled),
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/notifications").route(web::get().to(list)))
        .service(web::resource("/notifications/subscribe").route(web::post().to(subscribe)))
        .service(
            web::resource("/notifications/subscribe/{id}").route(web::delete().to(unsubscribe)),
        );
}

#[derive(OpenApi)]
#[openapi(
    paths(list, subscribe, unsubscribe),
    components(schemas(Message, Paginated<Message>, SubscribeRequest, Subscription, Platform)),
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

/// Register a device token; the same token again answers 200 with the same id.
#[utoipa::path(post, path = "/notifications/subscribe", tag = "notifications", operation_id = "subscribe",
    security(("bearer" = [])), request_body = SubscribeRequest,
    responses((status = 201, body = Subscription, description = "Registered"),
              (status = 200, body = Subscription, description = "Already registered: the same subscription")))]
async fn subscribe(
    service: web::Data<NotificationsService>,
    user: AuthUser,
    Json(body): Json<SubscribeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (token, platform) = body.validate().map_err(ApiError::Validation)?;
    let (subscription, created) = service.subscribe(user.id, token, platform).await?;
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
