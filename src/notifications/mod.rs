//! Notification routes: the caller's messages and push subscriptions.

pub mod model;
pub mod service;
mod store;

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::http::auth::AuthUser;
use crate::http::{check, parse_id, ApiError, Json, PageRequest, QueryParams};
use model::{Message, Platform, SubscribeRequest, Subscription};
pub use service::{Mailer, MessageQueue, NotificationsService};

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
    components(schemas(Message, MessagePage, SubscribeRequest, Subscription, Platform)),
    tags((name = "notifications", description = "Messages and push subscriptions"))
)]
pub struct NotificationsApi;

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct MessagePage {
    data: Vec<Message>,
    page: u32,
    limit: u32,
    total: i64,
    total_pages: i64,
}

/// The caller's messages, newest first, with their delivery status.
#[utoipa::path(get, path = "/notifications", tag = "notifications", security(("bearer" = [])),
    params(("page" = Option<u32>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = MessagePage), (status = 401, body = crate::openapi::ErrorBody)))]
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
#[utoipa::path(post, path = "/notifications/subscribe", tag = "notifications", security(("bearer" = [])),
    request_body = SubscribeRequest,
    responses((status = 201, body = Subscription), (status = 200, body = Subscription, description = "Already registered"),
              (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
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
#[utoipa::path(delete, path = "/notifications/subscribe/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = crate::openapi::ErrorBody),
              (status = 404, body = crate::openapi::ErrorBody)))]
async fn unsubscribe(
    service: web::Data<NotificationsService>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service.unsubscribe(user.id, parse_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
