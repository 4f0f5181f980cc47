//! Search route: cars near a point, by text, filters and availability.

mod fleet;
pub mod model;
#[cfg(feature = "opensearch")]
pub mod opensearch;
#[cfg(not(feature = "opensearch"))]
#[path = "without_opensearch.rs"]
pub mod opensearch;
pub mod service;
mod store;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use crate::db::Db;
use crate::error::ApiError;
use crate::http::etag::IfNoneMatch;
use crate::http::schema;
use crate::http::{PageParams, Paginated, QueryParams};
use crate::module::{Build, Context, Served};
use crate::outbox::{Policy, Stop};
use crate::ports::{FuelType, Transmission};
use model::SearchQuery;
use opensearch::OpenSearchEngine;
pub use service::SearchService;
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::IntoParams;
/// Search, as the registry ([`crate::MODULES`]) starts it.
pub const BUILD: Build = Build {
    api: || SearchApi::openapi(),
    internal_api: utoipa::openapi::OpenApi::default,
    provide: crate::module::provides_nothing,
    serve: |ctx| Box::pin(serve(ctx)),
    reads_cars: true,
};

/// Search as this process serves it: on OpenSearch when `OPENSEARCH_URL` is set (then with
/// the worker that keeps the index following the cars, and the one that watches the index),
/// else on the database. An OpenSearch that cannot be reached at start is not fatal:
/// searches fall back to the database until it answers. One that answers that the index
/// cannot be made as configured is.
pub async fn serve(ctx: &Context) -> anyhow::Result<Served> {
    let settings = &ctx.settings.search;
    let engine = if settings.url.is_empty() {
        None
    } else {
        let engine = OpenSearchEngine::new(settings).map_err(anyhow::Error::msg)?;
        match engine.ensure_index().await {
            Ok(()) => {}
            Err(model::IndexProblem::Misconfigured(e)) => anyhow::bail!("search index: {e}"),
            Err(model::IndexProblem::Unavailable(error)) => {
                tracing::warn!(%error, "OpenSearch not ready; searching the database meanwhile")
            }
        }
        Some(Arc::new(engine))
    };
    let indexing = engine.is_some();
    let service = web::Data::new(SearchService::new(
        ctx.db.clone(),
        ctx.ports.clone(),
        ctx.cache.clone(),
        engine,
        ctx.metrics.clone(),
    ));
    let mut served =
        Served::new(service.clone(), routes, |_| {}).with_check(service.clone().into_inner());
    if !indexing {
        served = served.with_worker(service.warm());
    }
    if indexing {
        let watcher = service.clone();
        let (stop, every) = (ctx.stop.clone(), settings.check_every);
        served = served
            .with_worker(spawn_index_worker(
                ctx.db.clone(),
                service,
                ctx.stop.clone(),
            ))
            .with_worker(tokio::spawn(async move {
                watcher.watch_index(every, stop).await
            }));
    }
    Ok(served)
}

/// Applies car changes to the search index within about a second, retrying with backoff
/// while OpenSearch is away or busy; a change it refuses for good is parked as failed.
fn spawn_index_worker(
    db: Db,
    service: web::Data<SearchService>,
    stop: Stop,
) -> tokio::task::JoinHandle<()> {
    let policy = Policy {
        max_attempts: i32::MAX,
        backoff: std::time::Duration::from_millis(500),
        max_backoff: std::time::Duration::from_secs(30),
        lease: std::time::Duration::from_secs(60),
        poll: std::time::Duration::from_millis(200),
        batch: 200,
        keep_done: true,
    };
    tokio::spawn(crate::outbox::run_worker(
        db,
        crate::ports::SEARCH_TOPIC,
        policy,
        stop,
        move |jobs| {
            let service = service.clone();
            async move { service.apply_index_jobs(jobs).await }
        },
        |_| {},
    ))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/search").route(web::get().to(search)));
}

#[derive(OpenApi)]
#[openapi(
    paths(search),
    components(schemas(SearchResult, Paginated<SearchResult>)),
    tags((name = "search", description = "Finding a car"))
)]
pub struct SearchApi;

/// A car (as `GET /cars/{id}` answers it), how far it is from the searched point, and, when
/// the search has a window, what renting it for that window costs.
struct SearchResult;

impl utoipa::PartialSchema for SearchResult {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
        let distance = ObjectBuilder::new()
            .property(
                "distanceKm",
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0.0))
                    .description(Some("Great-circle distance, 2 decimals")),
            )
            .required("distanceKm")
            .property(
                "quote",
                ObjectBuilder::new()
                    .description(Some(
                        "Only when pickupTime and dropoffTime are given: the rental's price \
                         for that window under the car's pricing rules, without extras",
                    ))
                    .property(
                        "days",
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1.0)),
                    )
                    .property(
                        "totalPrice",
                        ObjectBuilder::new()
                            .schema_type(Type::Number)
                            .minimum(Some(0.0)),
                    )
                    .property("currency", ObjectBuilder::new().schema_type(Type::String))
                    .required("days")
                    .required("totalPrice")
                    .required("currency"),
            );
        AllOfBuilder::new()
            .item(Ref::from_schema_name("Car"))
            .item(distance)
            .into()
    }
}

impl utoipa::ToSchema for SearchResult {}

/// The parameters of `GET /search`, as the document shows them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
struct SearchParams {
    /// The centre (also accepted as `lat`).
    #[param(minimum = -90.0, maximum = 90.0)]
    latitude: f64,
    /// The centre (also accepted as `lng` or `lon`).
    #[param(minimum = -180.0, maximum = 180.0)]
    longitude: f64,
    /// Kilometres, greater than 0, at most 500.
    #[param(
        required = false,
        exclusive_minimum = 0.0,
        maximum = 500.0,
        default = 10.0
    )]
    radius: f64,
    #[param(required = false, schema_with = search_params_query_schema)]
    query: String,
    #[param(required = false, schema_with = schema::choice_schema::<FuelType>)]
    fuel_type: String,
    #[param(required = false, schema_with = schema::choice_schema::<Transmission>)]
    transmission: String,
    /// The fewest seats.
    #[param(required = false, value_type = i32)]
    seats: i32,
    #[param(required = false, schema_with = search_params_min_price_schema)]
    min_price: f64,
    #[param(required = false, schema_with = search_params_max_price_schema)]
    max_price: f64,
    #[param(required = false, schema_with = search_params_pickup_time_schema)]
    pickup_time: String,
    #[param(required = false, schema_with = search_params_dropoff_time_schema)]
    dropoff_time: String,
    #[param(required = false, schema_with = search_params_sort_schema)]
    sort: String,
}

schema::field_schema!(
    search_params_query_schema,
    query_schema(),
    Some("Words over name, brand, model and features, any letter case; every word must match, each allowing one typo (words of 3 letters or more).")
);
schema::field_schema!(
    search_params_min_price_schema,
    crate::money::filter_schema(),
    Some("The lowest price per day, inclusive.")
);
schema::field_schema!(
    search_params_max_price_schema,
    crate::money::filter_schema(),
    Some("The highest price per day, inclusive; not below `minPrice` (else 400 naming it).")
);
schema::field_schema!(
    search_params_pickup_time_schema,
    schema::date_time_schema(),
    Some("With `dropoffTime` (both or neither, else 400 naming the missing one): only cars a booking of the window would get (no booking with its turnaround buffer, nor block, in it, and the car's own buffer after it clear of its next one), each with a `quote`.")
);
schema::field_schema!(
    search_params_dropoff_time_schema,
    schema::date_time_schema(),
    Some("After `pickupTime`, at most 366 days after it (else 400 naming `dropoffTime`).")
);
schema::field_schema!(
    search_params_sort_schema,
    sort_schema(),
    Some("`distance` (the default) or `price`, ascending; ties by id. `price` is the price per day, or, with a window, the quote's `totalPrice` (those searches are always answered by the database, which prices every match).")
);

fn query_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(model::MAX_QUERY_CHARS))
        .pattern(Some(schema::NO_CONTROL))
        .into()
}

fn sort_schema() -> utoipa::openapi::schema::Schema {
    schema::names_schema(&["distance", "price"])
}

/// Active cars within `radius` km of a point, free for the whole window when one is given.
#[utoipa::path(get, path = "/search", tag = "search", operation_id = "searchCars",
    params(SearchParams, PageParams, IfNoneMatch),
    responses((status = 200, body = Paginated<SearchResult>, headers(("ETag" = String, description = "Strong tag of these bytes; send it back in If-None-Match"))),
              (status = 304, description = "The If-None-Match tag is still current: no body", headers(("ETag" = String, description = "Strong tag of these bytes; send it back in If-None-Match")))))]
async fn search(
    req: HttpRequest,
    service: web::Data<SearchService>,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let q = SearchQuery::parse(&query)?;
    Ok(service.search(q).await?.reply(&req))
}
