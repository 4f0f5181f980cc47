//! Auth routes: signup, login, refresh, logout, me.

pub mod model;
pub mod service;
mod store;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse, HttpResponseBuilder};
use utoipa::OpenApi;

use crate::db::Db;
use crate::error::ApiError;
use crate::http::auth::AuthUser;
use crate::http::rate_limit::Limits;
use crate::http::{parse_id, Json};
use crate::module::{Build, Context, Served};
use crate::ports::{Contact, Ports, UserDirectory};
use model::{
    parse_name, Email, LoginRequest, Password, RefreshRequest, SignupRequest, TokenPair, User,
};
pub use service::{AuthService, Directory};
/// Auth, as the registry ([`crate::MODULES`]) starts it.
pub const BUILD: Build = Build {
    api: || AuthApi::openapi(),
    internal_api: || InternalApi::openapi(),
    provide,
    serve: |ctx| Box::pin(serve(ctx)),
    reads_cars: false,
};

/// Auth as this process serves it.
pub async fn serve(ctx: &Context) -> anyhow::Result<Served> {
    let (db, ports, jwt, metrics, settings) = (
        ctx.db.clone(),
        ctx.ports.clone(),
        ctx.jwt.clone(),
        ctx.metrics.clone(),
        ctx.settings.auth.clone(),
    );
    let service =
        tokio::task::spawn_blocking(move || AuthService::new(db, ports, jwt, metrics, &settings))
            .await??;
    Ok(Served::new(
        web::Data::new(service),
        routes,
        internal_routes,
    ))
}

/// Answers the user directory in-process.
pub fn provide(ports: &mut Ports, db: &Db) {
    ports.users = Arc::new(Directory::new(db.clone()));
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/signup").route(web::post().to(signup)))
        .service(web::resource("/auth/login").route(web::post().to(login)))
        .service(web::resource("/auth/refresh").route(web::post().to(refresh)))
        .service(web::resource("/auth/logout").route(web::post().to(logout)))
        .service(web::resource("/auth/me").route(web::get().to(me)));
}

/// The routes other modules' processes call (under `/internal`).
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/users/admins").route(web::get().to(admins)))
        .service(web::resource("/users/{id}/contact").route(web::get().to(contact)));
}

#[derive(OpenApi)]
#[openapi(paths(contact, admins), components(schemas(Contact)))]
pub struct InternalApi;

/// Every admin, as `[userId, contact]` pairs.
#[utoipa::path(get, path = "/internal/users/admins", tag = "internal",
    security(("bearer" = [])), responses((status = 200, body = Vec<Object>)))]
async fn admins(auth: web::Data<AuthService>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(auth.directory().admins().await?))
}

/// How to reach a user (`null` when there is no such user).
#[utoipa::path(get, path = "/internal/users/{id}/contact", tag = "internal", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Option<Contact>)))]
async fn contact(
    auth: web::Data<AuthService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(auth.directory().contact(id).await?))
}

#[derive(OpenApi)]
#[openapi(
    paths(signup, login, refresh, logout, me),
    components(schemas(SignupRequest, LoginRequest, RefreshRequest, TokenPair, User)),
    tags((name = "auth", description = "Accounts and tokens"))
)]
pub struct AuthApi;

/// Create an account.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", operation_id = "signup", request_body = SignupRequest,
    responses((status = 201, body = TokenPair, description = "The account, signed in"),
              (status = 409, body = crate::error::ErrorBody, description = "The email is taken")))]
async fn signup(
    auth: web::Data<AuthService>,
    limits: web::Data<Limits>,
    Json(body): Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    limits.check_email(&Email::normalize(&body.email)).await?;
    let (email, password, name) = match (
        Email::parse(&body.email),
        Password::parse(&body.password),
        body.name.as_deref().map(parse_name).transpose(),
    ) {
        (Ok(email), Ok(password), Ok(name)) => (email, password, name),
        (email, password, name) => {
            let errors = [email.err(), password.err(), name.err()];
            return Err(ApiError::Validation(errors.into_iter().flatten().collect()));
        }
    };
    let pair = auth.signup(email, password, name).await?;
    Ok(tokens(HttpResponse::Created(), &pair))
}

/// Log in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", operation_id = "login", request_body = LoginRequest,
    responses((status = 200, body = TokenPair, description = "Signed in"),
              (status = 401, body = crate::error::ErrorBody, description = "Wrong email or password")))]
async fn login(
    auth: web::Data<AuthService>,
    limits: web::Data<Limits>,
    Json(body): Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    limits.check_email(&Email::normalize(&body.email)).await?;
    let pair = auth.login(&body.email, body.password).await?;
    Ok(tokens(HttpResponse::Ok(), &pair))
}

/// An answer carrying tokens, which no cache may keep (RFC 6749, 5.1).
fn tokens(mut answer: HttpResponseBuilder, pair: &TokenPair) -> HttpResponse {
    answer
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(pair)
}


/// Trade a refresh token for a new pair; the old token stops working.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", operation_id = "refreshTokens", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair, description = "A new pair, without `user`"),
              (status = 401, body = crate::error::ErrorBody,
               description = "Unknown, expired or revoked; a token presented again after its rotation revokes its whole session")))]
async fn refresh(
    auth: web::Data<AuthService>,
    Json(body): Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(tokens(
        HttpResponse::Ok(),
        &auth.refresh(&body.refresh_token).await?,
    ))
}

/// Revoke a refresh token.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout", request_body = RefreshRequest,
    responses((status = 204, description = "Revoked, or was not known")))]
async fn logout(
    auth: web::Data<AuthService>,
    Json(body): Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.logout(&body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's account.
#[utoipa::path(get, path = "/auth/me", tag = "auth", operation_id = "getMe", security(("bearer" = [])),
    responses((status = 200, body = User)))]
async fn me(auth: web::Data<AuthService>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(auth.me(user.id).await?))
}
