//! Car routes: the inventory, public reads and admin writes.

pub mod extras;
pub mod licences;
mod listing;
pub mod media;
pub mod uploads;
pub mod model;
pub mod seed;
pub mod service;
mod store;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use crate::db::Db;
use crate::error::ApiError;
use crate::http::auth::{AdminUser, MaybeUser};
use crate::http::etag::IfNoneMatch;
use crate::http::schema;
use crate::http::{
    check, parse_id, per_caller, Json, PageParams, PageRequest, Paginated, QueryParams,
};
use crate::module::{Build, Context, Served};
use crate::ports::{CarCatalog, CarDocument, CarSummary, Ids, Ports};
use model::{
    Car, CarAvailability, CarFilter, CarInput, FuelType, Location, LocationInput, Transmission,
    Window,
};
pub use service::{CarsService, Catalog};
use utoipa::openapi::{RefOr, Schema};
use utoipa::IntoParams;
/// Cars, as the registry ([`crate::MODULES`]) starts it.
pub const BUILD: Build = Build {
    api: || {
        let mut api = CarsApi::openapi();
        api.merge(media::MediaApi::openapi());
        api
    },
    internal_api: || InternalApi::openapi(),
    provide,
    serve: |ctx| Box::pin(serve(ctx)),
    reads_cars: true,
};

/// Cars as this process serves them.
pub async fn serve(ctx: &Context) -> anyhow::Result<Served> {
    let media = Arc::new(uploads::Media::new(
        ctx.db.clone(),
        &ctx.settings,
        ctx.ports.availability.clone(),
    )?);
    let service = CarsService::new(
        ctx.db.clone(),
        ctx.ports.clone(),
        ctx.cache.clone(),
        media.clone(),
    );
    let warming = service.warm();
    let mut served = Served::new(web::Data::new(service), routes, internal_routes);
    served.workers.push(warming);
    served.workers.push(uploads::spawn_deleter(
        ctx.db.clone(),
        media.clone(),
        ctx.stop.clone(),
    ));
    served
        .workers
        .push(uploads::spawn_sweeper(media.clone(), ctx.stop.clone()));
    served.checks.push(Arc::new(uploads::Readiness(media)));
    Ok(served)
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
        .service(web::resource("/cars/extras").route(web::post().to(internal_extras)))
        .service(web::resource("/cars/damage-photos").route(web::post().to(internal_damage_photos)))
        .service(web::resource("/cars/licences/{user}").route(web::get().to(internal_licence)))
        .service(
            web::resource("/cars/licences/{user}/forget").route(web::post().to(internal_forget_licence)),
        )
        .service(web::resource("/cars/{id}").route(web::get().to(internal_car)));
}

#[derive(OpenApi)]
#[openapi(
    paths(
        internal_car,
        internal_summaries,
        internal_documents,
        internal_ids,
        internal_extras,
        internal_damage_photos,
        internal_licence,
        internal_forget_licence
    ),
    components(schemas(CarSummary, CarDocument, Ids, crate::ports::DamagePhotos))
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

/// Extras by code as prices need them, withdrawn ones included (unknown codes are left out).
#[utoipa::path(post, path = "/internal/cars/extras", tag = "internal", request_body = crate::ports::Codes,
    security(("bearer" = [])), responses((status = 200, body = std::collections::HashMap<String, crate::pricing::ExtraPrice>)))]
async fn internal_extras(
    cars: web::Data<CarsService>,
    Json(codes): Json<crate::ports::Codes>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.catalog().extra_prices(&codes.codes).await?))
}

/// Which of the ids are completed damage photos of the booking, each with the key of its
/// `large` version.
#[utoipa::path(post, path = "/internal/cars/damage-photos", tag = "internal",
    request_body = crate::ports::DamagePhotos, security(("bearer" = [])),
    responses((status = 200, body = std::collections::HashMap<String, String>)))]
async fn internal_damage_photos(
    cars: web::Data<CarsService>,
    Json(asked): Json<crate::ports::DamagePhotos>,
) -> Result<HttpResponse, ApiError> {
    let found = cars
        .catalog()
        .damage_photos(asked.booking_id, &asked.ids)
        .await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Removes the user's driving licence and its documents (the account is leaving); `true`.
#[utoipa::path(post, path = "/internal/cars/licences/{user}/forget", tag = "internal",
    params(("user" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = bool)))]
async fn internal_forget_licence(
    cars: web::Data<CarsService>,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = parse_id(&user)?;
    cars.catalog().forget_licence(user).await?;
    Ok(HttpResponse::Ok().json(true))
}

/// Whether the user has a driving licence the desk verified.
#[utoipa::path(get, path = "/internal/cars/licences/{user}", tag = "internal",
    params(("user" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = bool)))]
async fn internal_licence(
    cars: web::Data<CarsService>,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = parse_id(&user)?;
    Ok(HttpResponse::Ok().json(cars.catalog().licence_verified(user).await?))
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
    let after = query.parse::<crate::ids::CarId>("after", &mut errors);
    let limit = query
        .parse::<i64>("limit", &mut errors)
        .unwrap_or(500)
        .clamp(1, 1000);
    check(errors)?;
    Ok(HttpResponse::Ok().json(cars.catalog().ids_after(after, limit).await?))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    media::routes(cfg);
    cfg.service(
        web::resource("/cars")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/cars/{id}")
            .route(web::get().to(get))
            .route(web::put().to(replace))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(web::resource("/cars/{id}/availability").route(web::get().to(availability)))
    .service(web::resource("/cars/{id}/quote").route(web::get().to(quote)))
    .service(
        web::resource("/extras")
            .route(web::get().to(list_extras))
            .route(web::post().to(create_extra)),
    )
    .service(web::resource("/extras/{code}").route(web::patch().to(update_extra)));
}

#[derive(OpenApi)]
#[openapi(
    paths(list, create, get, replace, update, delete, availability, quote, list_extras,
          create_extra, update_extra),
    components(schemas(Car, CarInput, NewCar, Location, LocationInput, NewLocation, FuelType,
                       Transmission, CarAvailability, crate::ports::Busy, crate::ports::HoldKind, Paginated<Car>,
                       model::Quote, crate::pricing::PricingInput, crate::pricing::SeasonInput,
                       crate::pricing::PricingView, crate::pricing::SeasonView,
                       crate::pricing::LineView, crate::pricing::LineKind,
                       extras::Extra, extras::ExtraInput, crate::pricing::ExtraRequest)),
    tags((name = "cars", description = "The fleet: public reads, admin writes"))
)]
pub struct CarsApi;

/// `POST /cars`: the fields of [`CarInput`] a new car must have.
struct NewCar;

impl utoipa::PartialSchema for NewCar {
    fn schema() -> RefOr<Schema> {
        let location = RefOr::Ref(utoipa::openapi::Ref::from_schema_name("NewLocation"));
        schema::requiring(
            <CarInput as utoipa::PartialSchema>::schema(),
            &[
                "name",
                "brand",
                "model",
                "year",
                "fuelType",
                "transmission",
                "seats",
                "pricePerDay",
                "images",
                "location",
            ],
            &[("location", location)],
        )
    }
}

impl utoipa::ToSchema for NewCar {}

/// The location of a new car.
struct NewLocation;

impl utoipa::PartialSchema for NewLocation {
    fn schema() -> RefOr<Schema> {
        schema::requiring(
            <LocationInput as utoipa::PartialSchema>::schema(),
            &["latitude", "longitude", "address", "city", "country"],
            &[],
        )
    }
}

impl utoipa::ToSchema for NewLocation {}

/// The filters of `GET /cars`, as the document shows them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
struct CarListParams {
    #[param(required = false, schema_with = car_list_params_city_schema)]
    city: String,
    #[param(required = false, schema_with = car_list_params_brand_schema)]
    brand: String,
    #[param(required = false, schema_with = schema::choice_schema::<FuelType>)]
    fuel_type: String,
    #[param(required = false, schema_with = schema::choice_schema::<Transmission>)]
    transmission: String,
    #[param(required = false, value_type = i32)]
    min_seats: i32,
    #[param(required = false, schema_with = car_list_params_max_price_schema)]
    max_price: f64,
    /// Admins only: cars taken out of service too (ignored for anyone else).
    #[param(required = false)]
    include_inactive: bool,
}

schema::field_schema!(
    car_list_params_city_schema,
    schema::plain_text_schema(),
    Some("Exact, any letter case.")
);
schema::field_schema!(
    car_list_params_brand_schema,
    schema::plain_text_schema(),
    Some("Exact, any letter case.")
);
schema::field_schema!(
    car_list_params_max_price_schema,
    crate::money::filter_schema(),
    Some("The highest price per day, inclusive.")
);

/// Active cars, newest first.
#[utoipa::path(get, path = "/cars", tag = "cars", operation_id = "listCars",
    params(CarListParams, PageParams, IfNoneMatch),
    responses((status = 200, body = Paginated<Car>, headers(("ETag" = String, description = "Strong tag of these bytes; send it back in If-None-Match"))),
              (status = 304, description = "The If-None-Match tag is still current: no body", headers(("ETag" = String, description = "Strong tag of these bytes; send it back in If-None-Match")))))]
async fn list(
    req: HttpRequest,
    cars: web::Data<CarsService>,
    user: MaybeUser,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let page = PageRequest::parse(&query, &mut errors);
    let admin = user.0.is_some_and(|u| u.is_admin());
    let filter = CarFilter::parse(&query, admin, &mut errors);
    check(errors)?;
    if admin {
        per_caller(&req);
    }
    let mut res = cars.list(filter, page).await?.reply(&req);
    // An admin's `includeInactive=true` lists more under the same URL.
    res.headers_mut().insert(
        header::VARY,
        header::HeaderValue::from_static("Authorization"),
    );
    Ok(res)
}

/// Add a car (admins).
#[utoipa::path(post, path = "/cars", tag = "cars", operation_id = "createCar", request_body = NewCar,
    security(("bearer" = [])),
    responses((status = 201, body = Car), (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn create(
    cars: web::Data<CarsService>,
    _: AdminUser,
    Json(input): Json<CarInput>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(cars.create(input).await?))
}

/// One car, active or not (deleted cars are gone).
#[utoipa::path(get, path = "/cars/{id}", tag = "cars", operation_id = "getCar",
    params(("id" = uuid::Uuid, Path), IfNoneMatch),
    responses((status = 200, body = Car, headers(("ETag" = String, description = "Strong tag of these bytes; send it back in If-None-Match"))),
              (status = 304, description = "The If-None-Match tag is still current: no body", headers(("ETag" = String, description = "Strong tag of these bytes; send it back in If-None-Match")))))]
async fn get(
    req: HttpRequest,
    cars: web::Data<CarsService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(cars.get(parse_id(&id)?).await?.reply(&req))
}

/// Change a car (admins): only the fields sent change, as with PATCH.
#[utoipa::path(put, path = "/cars/{id}", tag = "cars", operation_id = "replaceCar",
    params(("id" = uuid::Uuid, Path)), request_body = CarInput, security(("bearer" = [])),
    responses((status = 200, body = Car), (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn replace(
    cars: web::Data<CarsService>,
    admin: AdminUser,
    id: web::Path<String>,
    input: Json<CarInput>,
) -> Result<HttpResponse, ApiError> {
    update(cars, admin, id, input).await
}

/// Change a car (admins): only the fields sent change.
#[utoipa::path(patch, path = "/cars/{id}", tag = "cars", operation_id = "updateCar",
    params(("id" = uuid::Uuid, Path)), request_body = CarInput, security(("bearer" = [])),
    responses((status = 200, body = Car), (status = 403, body = crate::error::ErrorBody, description = "Not an admin")))]
async fn update(
    cars: web::Data<CarsService>,
    _: AdminUser,
    id: web::Path<String>,
    Json(input): Json<CarInput>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.update(parse_id(&id)?, input).await?))
}

/// Remove a car from the fleet (admins); its bookings stay readable.
#[utoipa::path(delete, path = "/cars/{id}", tag = "cars", operation_id = "deleteCar",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 409, body = crate::error::ErrorBody, description = "It has an upcoming or active booking")))]
async fn delete(
    cars: web::Data<CarsService>,
    _: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    cars.delete(parse_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The window of `GET /cars/{id}/availability`, as the document shows it.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct WindowParams {
    #[param(required = false, schema_with = window_params_from_schema)]
    from: String,
    #[param(required = false, schema_with = window_params_to_schema)]
    to: String,
}

schema::field_schema!(window_params_from_schema, schema::date_time_schema(), Some("Default now."));
schema::field_schema!(
    window_params_to_schema,
    schema::date_time_schema(),
    Some("After `from` (else 400 naming `to`), at most 366 days after it; default `from` + 30 days.")
);

/// When a car is taken: every non-cancelled booking overlapping the window, unclipped.
#[utoipa::path(get, path = "/cars/{id}/availability", tag = "cars", operation_id = "getCarAvailability",
    params(("id" = uuid::Uuid, Path), WindowParams),
    responses((status = 200, body = CarAvailability)))]
async fn availability(
    cars: web::Data<CarsService>,
    id: web::Path<String>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let window = Window::parse(&query)?;
    Ok(HttpResponse::Ok().json(cars.availability(id, window).await?))
}

/// The window of `GET /cars/{id}/quote`, as the document shows it.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
struct QuoteParams {
    /// RFC 3339, any offset; in the future (else 400 naming it).
    pickup_time: chrono::DateTime<chrono::Utc>,
    /// RFC 3339, any offset; after `pickupTime`, at most 90 days after it (else 400 naming
    /// `dropoffTime`).
    dropoff_time: chrono::DateTime<chrono::Utc>,
    /// `CODE:QTY,CODE:QTY`: active extras of the car's currency, each once, 1 to its
    /// `maxQuantity` (else 400 naming `extras`).
    #[param(required = false)]
    extras: String,
}

/// What a booking of the car for that window would cost now, line by line (the rental at
/// the car's day rates, then its weekly or monthly discount), and whether it would be
/// accepted. A booking made right after stores the same lines and total.
#[utoipa::path(get, path = "/cars/{id}/quote", tag = "cars", operation_id = "quoteCar",
    params(("id" = uuid::Uuid, Path), QuoteParams),
    responses((status = 200, body = model::Quote)))]
async fn quote(
    cars: web::Data<CarsService>,
    id: web::Path<String>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let req = model::QuoteRequest::parse(&query)?;
    Ok(HttpResponse::Ok().json(cars.quote(id, req).await?))
}

/// The active extras, by code.
#[utoipa::path(get, path = "/extras", tag = "cars", operation_id = "listExtras",
    responses((status = 200, body = Vec<extras::Extra>)))]
async fn list_extras(cars: web::Data<CarsService>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.extras().await?))
}

/// Offer an extra (admins); a code already taken is 409.
#[utoipa::path(post, path = "/extras", tag = "cars", operation_id = "createExtra",
    request_body = extras::ExtraInput, security(("bearer" = [])),
    responses((status = 201, body = extras::Extra),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 409, body = crate::error::ErrorBody, description = "The code is taken")))]
async fn create_extra(
    cars: web::Data<CarsService>,
    _: AdminUser,
    Json(input): Json<extras::ExtraInput>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(cars.create_extra(input).await?))
}

/// Change an extra (admins): only the fields sent change; `active: false` withdraws it.
#[utoipa::path(patch, path = "/extras/{code}", tag = "cars", operation_id = "updateExtra",
    params(("code" = String, Path)), request_body = extras::ExtraInput, security(("bearer" = [])),
    responses((status = 200, body = extras::Extra),
              (status = 403, body = crate::error::ErrorBody, description = "Not an admin"),
              (status = 404, body = crate::error::ErrorBody, description = "No such extra")))]
async fn update_extra(
    cars: web::Data<CarsService>,
    _: AdminUser,
    code: web::Path<String>,
    Json(input): Json<extras::ExtraInput>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(cars.update_extra(code.into_inner(), input).await?))
}
