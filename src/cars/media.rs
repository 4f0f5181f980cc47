//! The routes of uploads and car photos (API.md, Photos and documents); the rules are in
//! [`super::uploads`].

use actix_web::{web, HttpRequest, HttpResponse};

use super::model::{Car, Photo};
use super::licences::{Licence, ReviewLicence, SetLicence};
use super::service::CarsService;
use super::uploads::{NewUpload, Upload, UploadTicket};
use utoipa::ToSchema;
use crate::error::ApiError;
use crate::http::auth::{AdminUser, AuthUser};
use crate::http::{parse_id, required_id, Json};
use crate::ids::{CarId, UploadId};

/// `POST /cars/{id}/photos`.
#[derive(Debug, Clone, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachPhoto {
    /// A completed `car_photo` upload for this car.
    #[schema(required = true, value_type = uuid::Uuid)]
    pub upload_id: Option<String>,
}

/// `PATCH /cars/{id}/photos/{photoId}`.
#[derive(Debug, Clone, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MovePhoto {
    /// From 0; past the end means last.
    #[schema(required = true, value_type = i64, minimum = 0)]
    pub position: Option<serde_json::Value>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/me/licence")
            .route(web::put().to(set_licence))
            .route(web::get().to(my_licence)),
    )
    .service(
        web::resource("/admin/users/{id}/licence")
            .route(web::get().to(users_licence))
            .route(web::post().to(review_licence)),
    );
    cfg.service(web::resource("/uploads").route(web::post().to(offer)))
        .service(web::resource("/uploads/{id}/content").route(web::put().to(receive)))
        .service(web::resource("/uploads/{id}/complete").route(web::post().to(complete)))
        .service(web::resource("/media/{key:.*}").route(web::get().to(serve_object)))
        .service(web::resource("/cars/{id}/photos").route(web::post().to(attach)))
        .service(
            web::resource("/cars/{id}/photos/{photo}")
                .route(web::patch().to(move_photo))
                .route(web::delete().to(remove_photo)),
        );
}

/// Offers an upload: a URL to send the bytes to, with the headers to send.
#[utoipa::path(post, path = "/uploads", operation_id = "createUpload", tag = "media", request_body = NewUpload,
    security(("bearer" = [])),
    responses((status = 201, body = UploadTicket, description = "Where to send the bytes, and how"),
              (status = 403, body = crate::error::ErrorBody, description = "A car or damage photo offered by someone not an admin"),
              (status = 503, body = crate::error::ErrorBody, description = "The store is down")))]
async fn offer(
    cars: web::Data<CarsService>,
    user: AuthUser,
    Json(input): Json<NewUpload>,
) -> Result<HttpResponse, ApiError> {
    let ticket = cars.media().offer(user, input).await?;
    Ok(HttpResponse::Created().json(ticket))
}

/// The bytes of an upload, on the signed link `POST /uploads` gave (`local` store only).
#[utoipa::path(put, path = "/uploads/{id}/content", operation_id = "putUploadContent", tag = "media",
    params(("id" = uuid::Uuid, Path), ("expires" = i64, Query), ("signature" = String, Query)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
                 description = "Exactly the declared size, with the declared `Content-Type`"),
    responses((status = 204, description = "Stored"),
              (status = 403, body = crate::error::ErrorBody, description = "The link's signature, expiry or content type does not hold"),
              (status = 413, body = crate::error::ErrorBody, description = "More bytes than were declared")))]
async fn receive(
    cars: web::Data<CarsService>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    cars.media().receive(&req, id, body).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Completes an upload: its bytes are checked, decoded and made into derivatives.
#[utoipa::path(post, path = "/uploads/{id}/complete", operation_id = "completeUpload", tag = "media", params(("id" = uuid::Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Upload, description = "Checked, with its derivatives written"),
              (status = 400, body = crate::error::ErrorBody, description = "Nothing uploaded, another size, bytes not of the declared type, or an image that does not decode"),
              (status = 409, body = crate::error::ErrorBody, description = "Already complete"),
              (status = 503, body = crate::error::ErrorBody, description = "The store is down")))]
async fn complete(
    cars: web::Data<CarsService>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(cars.media().complete(user, id).await?))
}

/// A stored object (`local` store only): public ones to anyone, private ones on a signed link.
#[utoipa::path(get, path = "/media/{key}", operation_id = "getMediaObject", tag = "media", params(("key" = String, Path)),
    responses((status = 200, content_type = "image/webp", description = "The object; public ones `immutable`")))]
async fn serve_object(
    cars: web::Data<CarsService>,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    cars.media().serve(&req, &key).await
}

/// Adds a completed upload to the car's photos, last.
#[utoipa::path(post, path = "/cars/{id}/photos", operation_id = "addCarPhoto", tag = "cars", params(("id" = uuid::Uuid, Path)),
    request_body = AttachPhoto, security(("bearer" = [])),
    responses((status = 201, body = Photo, description = "Added, last"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 409, body = crate::error::ErrorBody, description = "Already one of the car's photos")))]
async fn attach(
    cars: web::Data<CarsService>,
    _: AdminUser,
    id: web::Path<String>,
    Json(input): Json<AttachPhoto>,
) -> Result<HttpResponse, ApiError> {
    let car: CarId = parse_id(&id)?;
    let upload: UploadId = required_id("uploadId", input.upload_id.as_deref())?;
    cars.exists(car)
        .await?
        .then_some(())
        .ok_or(ApiError::NotFound)?;
    let photo = cars.media().photo_of(upload, car).await?;
    let (car_now, position) = cars
        .change_photos(car, move |photos| {
            if photos.iter().any(|p| p.id == photo.id) {
                return Err(ApiError::conflict(
                    "The upload is already one of the car's photos",
                ));
            }
            photos.push(photo);
            Ok((photos.len() - 1, Vec::new()))
        })
        .await?;
    let added = car_now
        .photos
        .into_iter()
        .nth(position)
        .ok_or_else(|| ApiError::internal("the photo just added is missing"))?;
    Ok(HttpResponse::Created().json(added))
}

/// Moves a photo; the others shift.
#[utoipa::path(patch, path = "/cars/{id}/photos/{photoId}", operation_id = "moveCarPhoto", tag = "cars",
    params(("id" = uuid::Uuid, Path), ("photoId" = uuid::Uuid, Path)),
    request_body = MovePhoto, security(("bearer" = [])),
    responses((status = 200, body = Car, description = "The car, its photos in their new order"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn move_photo(
    cars: web::Data<CarsService>,
    _: AdminUser,
    path: web::Path<(String, String)>,
    Json(input): Json<MovePhoto>,
) -> Result<HttpResponse, ApiError> {
    let car: CarId = parse_id(&path.0)?;
    let photo: UploadId = parse_id(&path.1)?;
    let position = match &input.position {
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::field("position", "must be a whole number from 0"))?,
        None => return Err(ApiError::field("position", "is required")),
    };
    let (car, ()) = cars
        .change_photos(car, move |photos| {
            let from = photos
                .iter()
                .position(|p| p.id == photo)
                .ok_or(ApiError::NotFound)?;
            let moved = photos.remove(from);
            let to = usize::try_from(position).unwrap_or(usize::MAX).min(photos.len());
            photos.insert(to, moved);
            Ok(((), Vec::new()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(car))
}

/// Removes a photo; its objects are deleted unless another photo of the car shares them.
#[utoipa::path(delete, path = "/cars/{id}/photos/{photoId}", operation_id = "deleteCarPhoto", tag = "cars",
    params(("id" = uuid::Uuid, Path), ("photoId" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "Removed; its objects are deleted in the background"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn remove_photo(
    cars: web::Data<CarsService>,
    _: AdminUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let car: CarId = parse_id(&path.0)?;
    let photo: UploadId = parse_id(&path.1)?;
    cars.change_photos(car, move |photos| {
        let at = photos
            .iter()
            .position(|p| p.id == photo)
            .ok_or(ApiError::NotFound)?;
        let gone = photos.remove(at);
        let shared = photos.iter().any(|p| p.sha256 == gone.sha256);
        Ok(((), if shared { Vec::new() } else { gone.keys }))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets the caller's driving licence to a completed `licence` upload; the desk checks it again.
#[utoipa::path(put, path = "/me/licence", operation_id = "setMyLicence", tag = "media",
    request_body = SetLicence, security(("bearer" = [])),
    responses((status = 200, body = Licence, description = "Set, `pending` until the desk checks it")))]
async fn set_licence(
    cars: web::Data<CarsService>,
    user: AuthUser,
    Json(input): Json<SetLicence>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.media().set_licence(user.id, input).await?))
}

/// The caller's driving licence, with a link to it valid 5 minutes.
#[utoipa::path(get, path = "/me/licence", operation_id = "getMyLicence", tag = "media",
    security(("bearer" = [])),
    responses((status = 200, body = Licence, description = "The licence and a fresh link"),
              (status = 404, body = crate::error::ErrorBody, description = "No licence yet")))]
async fn my_licence(cars: web::Data<CarsService>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.media().licence(user.id).await?))
}

/// A customer's driving licence (admins), with a link to it valid 5 minutes.
#[utoipa::path(get, path = "/admin/users/{id}/licence", operation_id = "getUserLicence", tag = "media",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Licence, description = "The licence and a fresh link"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn users_licence(
    cars: web::Data<CarsService>,
    _: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.media().licence(parse_id(&id)?).await?))
}

/// Verifies or rejects a customer's driving licence (admins).
#[utoipa::path(post, path = "/admin/users/{id}/licence", operation_id = "reviewUserLicence", tag = "media",
    params(("id" = uuid::Uuid, Path)), request_body = ReviewLicence, security(("bearer" = [])),
    responses((status = 200, body = Licence, description = "The licence with its new status"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn review_licence(
    cars: web::Data<CarsService>,
    _: AdminUser,
    id: web::Path<String>,
    Json(input): Json<ReviewLicence>,
) -> Result<HttpResponse, ApiError> {
    let user = parse_id(&id)?;
    Ok(HttpResponse::Ok().json(cars.media().review_licence(user, input).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(offer, receive, complete, serve_object, attach, move_photo, remove_photo,
          set_licence, my_licence, users_licence, review_licence),
    components(schemas(NewUpload, UploadTicket, Upload, AttachPhoto, MovePhoto, Photo,
                       Licence, SetLicence, ReviewLicence)),
    tags((name = "media", description = "Uploads of photos and documents"))
)]
pub struct MediaApi;
