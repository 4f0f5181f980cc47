//! Search rules: which engine answers, availability inside the query, falling back to the
//! database when OpenSearch is unreachable; and keeping the index following the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web;
use serde_json::{json, Value};
use crate::ids::CarId;

use chrono::{DateTime, Utc};

use super::fleet::Fleet;
use super::model::{round_km, SearchQuery, SortBy};
use super::opensearch::{IndexProblem, OpenSearchEngine};
use super::store;
use crate::cache::{ReadCache, CACHED_PAGES};
use crate::db::Db;
use crate::error::ApiError;
use crate::http::etag::Tagged;
use crate::money;
use crate::ops::{CheckFuture, CheckState, ReadinessCheck};
use crate::outbox::{self, Job, JobError, Outcome, Stop};
use crate::ports::{hold_end, BusyCar, CarDocument, Ports, MAX_BUFFER_MINUTES};
use crate::pricing::rental_total;
use crate::telemetry::Metrics;

pub use crate::ports::SEARCH_TOPIC as TOPIC;

pub struct SearchService {
    db: Db,
    ports: Ports,
    cache: Arc<ReadCache>,
    opensearch: Option<Arc<OpenSearchEngine>>,
    metrics: web::Data<Metrics>,
    state: Mutex<IndexState>,
    /// The database engine's searchable cars.
    fleet: Arc<Fleet>,
}

/// Why searches go to the database rather than OpenSearch; none of these set means they
/// go to OpenSearch.
#[derive(Debug, Default, Clone)]
struct IndexState {
    /// The last search OpenSearch was asked failed (cleared by the next that works).
    search_failed: Option<String>,
    /// The index cannot be trusted: it misses cars (being filled), or the alias points at
    /// more than one index, or it cannot be made.
    index: Option<String>,
}

impl IndexState {
    fn reason(&self) -> Option<String> {
        match (&self.index, &self.search_failed) {
            (Some(index), _) => Some(index.clone()),
            (None, Some(failed)) => Some(format!("last search failed: {failed}")),
            (None, None) => None,
        }
    }
}

/// OpenSearch answers no hit past this many (its `index.max_result_window`, 400 "Result
/// window is too large"); deeper pages are answered by the database engine, which finds the
/// same cars, so a page past the end stays a 200 with no data.
const MAX_RESULT_WINDOW: i64 = 10_000;

/// How long a shortfall must last before the index is filled from the database: changes
/// reach the index within about a second, so a car made a moment ago is not a shortfall.
const SHORTFALL_CONFIRM: Duration = Duration::from_secs(3);

impl SearchService {
    pub fn new(
        db: Db,
        ports: Ports,
        cache: Arc<ReadCache>,
        opensearch: Option<Arc<OpenSearchEngine>>,
        metrics: web::Data<Metrics>,
    ) -> Self {
        SearchService {
            db,
            ports,
            cache,
            opensearch,
            metrics,
            state: Mutex::new(IndexState::default()),
            fleet: Arc::default(),
        }
    }

    /// Loads the database engine's copy of the fleet now rather than at the first search.
    pub fn warm(&self) -> tokio::task::JoinHandle<()> {
        let fleet = self.fleet.clone();
        crate::db::follow::warm(self.db.clone(), move |conn| fleet.catch_up(conn))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, IndexState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The engine to ask, when OpenSearch is configured and nothing is known against it.
    fn engine(&self) -> Option<&OpenSearchEngine> {
        let engine = self.opensearch.as_deref()?;
        self.state().index.is_none().then_some(engine)
    }

    /// The answer as sent. The database engine's first pages of a search without dates
    /// come from the cache when it holds them (OpenSearch follows the database a moment
    /// late, so what it answers is not kept).
    pub async fn search(&self, q: SearchQuery) -> Result<Arc<Tagged>, ApiError> {
        if q.window.is_some() || self.opensearch.is_some() || q.page.page > CACHED_PAGES {
            return self.find(q).await;
        }
        let key = format!("{q:?}");
        self.cache
            .through(&self.cache.searches, key, self.find(q))
            .await
    }

    async fn find(&self, q: SearchQuery) -> Result<Arc<Tagged>, ApiError> {
        let busy: Vec<CarId> = match q.window {
            Some((from, to)) => self.unavailable(from, to).await?,
            None => Vec::new(),
        };
        let within_window = q.page.offset() + q.page.limit() <= MAX_RESULT_WINDOW;
        // The price of the window is not in the index: that order is the database's.
        let by_quote = q.window.filter(|_| q.sort == SortBy::Price);
        if let Some(engine) = self
            .engine()
            .filter(|_| within_window && by_quote.is_none())
        {
            match engine.search(&q, &busy).await {
                Ok(mut found) => {
                    self.state().search_failed = None;
                    self.metrics
                        .searches
                        .with_label_values(&["opensearch"])
                        .inc();
                    if let Some(window) = q.window {
                        self.add_quotes(&mut found.items, window).await?;
                    }
                    return Ok(Arc::new(Tagged::json(
                        &q.page.wrap(found.items, found.total),
                    )?));
                }
                Err(error) => {
                    tracing::warn!(%error, "OpenSearch failed; answering from the database");
                    self.state().search_failed = Some(error);
                }
            }
        }
        let page = q.page;
        let fleet = self.fleet.clone();
        let (rows, total) = self
            .db
            .run(move |conn| {
                let texts = match &q.text {
                    Some(text) => match store::matching_texts(conn, text)? {
                        Some(texts) => Some(texts),
                        None => return Ok((Vec::new(), 0)),
                    },
                    None => None,
                };
                Ok(fleet.search(conn, &q, texts.as_deref(), &busy)?)
            })
            .await?;
        let ids: Vec<CarId> = rows.iter().map(|hit| hit.id).collect();
        let mut docs = self.ports.catalog.documents(&ids).await?;
        let items: Vec<Value> = rows
            .iter()
            .filter_map(|hit| {
                let mut car = docs.remove(&hit.id)?.json;
                let fields = car.as_object_mut()?;
                fields.insert("distanceKm".into(), json!(round_km(hit.km)));
                if let Some((days, total)) = hit.quote {
                    let currency = fields.get("currency").cloned();
                    fields.insert("quote".into(), quote(days, total, currency));
                }
                Some(car)
            })
            .collect();
        self.metrics.searches.with_label_values(&["database"]).inc();
        Ok(Arc::new(Tagged::json(&page.wrap::<Value>(items, total))?))
    }

    /// The cars a booking of `[from, to)` would not get: those held during it, and those
    /// whose own turnaround buffer after `to` would run into their next hold.
    async fn unavailable(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<CarId>, ApiError> {
        let held = self
            .ports
            .availability
            .busy_cars(from, hold_end(to, MAX_BUFFER_MINUTES))
            .await?;
        let (during, after): (Vec<BusyCar>, Vec<BusyCar>) =
            held.into_iter().partition(|b| b.first_start < to);
        let buffers = if after.is_empty() {
            HashMap::new()
        } else {
            let ids: Vec<CarId> = after.iter().map(|b| b.car_id).collect();
            self.ports.catalog.cars(&ids).await?
        };
        let too_close = after.into_iter().filter(|b| {
            buffers
                .get(&b.car_id)
                .is_some_and(|car| b.first_start < hold_end(to, car.buffer_minutes))
        });
        Ok(during
            .into_iter()
            .chain(too_close)
            .map(|b| b.car_id)
            .collect())
    }

    /// Adds to each item what renting it for the window costs (without extras).
    async fn add_quotes(
        &self,
        items: &mut [Value],
        (pickup, dropoff): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<(), ApiError> {
        let id_of = |car: &Value| car.get("id")?.as_str()?.parse::<CarId>().ok();
        let ids: Vec<CarId> = items.iter().filter_map(id_of).collect();
        let cars = self.ports.catalog.cars(&ids).await?;
        for item in items.iter_mut() {
            let Some(car) = id_of(item).and_then(|id| cars.get(&id)) else {
                continue;
            };
            let (days, total) = rental_total(
                car.price_per_day_minor,
                car.pricing.as_ref(),
                pickup,
                dropoff,
            );
            if let Some(fields) = item.as_object_mut() {
                fields.insert("quote".into(), quote(days, total, &car.currency));
            }
        }
        Ok(())
    }

    /// Applies a batch of index jobs (each a car id): current cars are written, deleted
    /// ones removed. One outcome per job, in order: what OpenSearch refused for good (a
    /// 4xx on the item, such as a mapping error) fails at once and is counted; the rest is
    /// retried with backoff.
    pub async fn apply_index_jobs(&self, jobs: Vec<Job>) -> Vec<Outcome> {
        let Some(engine) = &self.opensearch else {
            return jobs.iter().map(|_| Ok(())).collect();
        };
        let ids: Vec<Option<CarId>> = jobs
            .iter()
            .map(|j| j.payload.parse::<CarId>().ok())
            .collect();
        let wanted: Vec<CarId> = ids.iter().flatten().copied().collect();
        let docs = match self.ports.catalog.documents(&wanted).await {
            Ok(docs) => docs,
            Err(e) => {
                return jobs
                    .iter()
                    .map(|_| Err(format!("reading cars: {e}").into()))
                    .collect()
            }
        };
        let upserts: Vec<CarDocument> = docs.values().cloned().collect();
        let deletes: Vec<CarId> = ids
            .iter()
            .flatten()
            .filter(|id| !docs.contains_key(id))
            .copied()
            .collect();
        let outcome = match engine.ensure_index().await {
            Ok(()) => engine.bulk(None, &upserts, &deletes).await,
            Err(e) => Err(e.to_string()),
        };
        let per_car = match outcome {
            Ok(per_car) => per_car,
            Err(e) => return jobs.iter().map(|_| Err(e.clone().into())).collect(),
        };
        ids.iter()
            .map(|id| match id.and_then(|id| per_car.get(&id)) {
                None | Some(Ok(())) => Ok(()),
                Some(Err(item)) if item.retryable() => Err(item.reason.clone().into()),
                Some(Err(item)) => {
                    self.metrics.index_rejected.inc();
                    tracing::error!(car = ?id, reason = %item.reason, "OpenSearch refused a car for good");
                    Err(JobError::permanent(item.reason.clone()))
                }
            })
            .collect()
    }

    /// Looks at the index now and then: makes it when missing, and fills it from the
    /// database when it holds fewer cars than the database has (OpenSearch switched on over
    /// an existing fleet, or its data lost), answering from the database meanwhile.
    pub async fn watch_index(&self, every: Duration, mut stop: Stop) {
        while !stop.requested() {
            self.check_index(&mut stop).await;
            stop.sleep(every).await;
        }
    }

    async fn check_index(&self, stop: &mut Stop) {
        let Some(engine) = self.opensearch.clone() else {
            return;
        };
        match engine.ensure_index().await {
            Ok(()) => {}
            Err(IndexProblem::Misconfigured(e)) => {
                tracing::error!(error = %e, "the search index cannot be made");
                self.state().index = Some(e);
                return;
            }
            Err(IndexProblem::Unavailable(e)) => {
                tracing::warn!(error = %e, "OpenSearch unavailable; searching the database");
                return;
            }
        }
        match engine.indexes_behind_alias().await {
            Ok(indexes) if indexes.len() > 1 => {
                let problem = format!(
                    "alias {} points at {} indexes ({}): run carrental reindex",
                    engine.alias(),
                    indexes.len(),
                    indexes.join(", ")
                );
                tracing::error!(%problem, "search index");
                self.state().index = Some(problem);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "OpenSearch unavailable; searching the database");
                return;
            }
        }
        match engine.outdated_indexes().await {
            Ok(old) if !old.is_empty() => {
                let reason = format!(
                    "index {} was built by an older version: rebuilding it",
                    old.join(", ")
                );
                tracing::warn!(%reason, "search index");
                self.state().index = Some(reason);
                match reindex(&self.db, &self.ports, &engine).await {
                    Ok((index, count)) => {
                        tracing::info!(%index, count, "search index rebuilt");
                        self.state().index = None;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "rebuilding the search index failed; trying again later");
                        self.state().index =
                            Some(format!("index {} is outdated: {e}", old.join(", ")));
                    }
                }
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "OpenSearch unavailable; searching the database");
                return;
            }
        }
        let mut shortfall = self.shortfall(&engine).await;
        if shortfall.is_some() {
            stop.sleep(SHORTFALL_CONFIRM).await;
            shortfall = self.shortfall(&engine).await;
        }
        let Some((indexed, cars)) = shortfall else {
            self.state().index = None;
            return;
        };
        let reason = format!(
            "index {} holds {indexed} of {cars} cars: filling it from the database",
            engine.alias()
        );
        tracing::warn!(%reason, "search index");
        self.state().index = Some(reason);
        match engine.fill(None, pages(&self.ports)).await {
            Ok(count) => {
                tracing::info!(count, "search index filled from the database");
                self.state().index = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "filling the search index failed; trying again later");
                self.state().index = Some(format!("index {} misses cars: {e}", engine.alias()));
            }
        }
    }

    /// (documents indexed, cars in the database) when the index misses some.
    async fn shortfall(&self, engine: &OpenSearchEngine) -> Option<(i64, i64)> {
        let cars = match self.db.run(|conn| Ok(store::count_cars(conn)?)).await {
            Ok(cars) => cars,
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the cars");
                return None;
            }
        };
        match engine.count().await {
            Ok(indexed) if indexed < cars => Some((indexed, cars)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the search index");
                None
            }
        }
    }
}

type Page =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<CarDocument>, String>> + Send>>;

/// Pages of every car, in id order, for filling an index.
fn pages(ports: &Ports) -> impl FnMut(Option<CarId>) -> Page {
    let catalog = ports.catalog.clone();
    move |after| {
        let catalog = catalog.clone();
        Box::pin(async move {
            let ids = catalog
                .ids_after(after, 500)
                .await
                .map_err(|e| e.to_string())?;
            let mut docs: HashMap<CarId, CarDocument> =
                catalog.documents(&ids).await.map_err(|e| e.to_string())?;
            Ok(ids
                .iter()
                .filter_map(|id| docs.remove(id))
                .collect::<Vec<_>>())
        })
    }
}

/// The `search` entry of `/health/ready`: degraded, with the reason, while searches are
/// answered from the database although OpenSearch is configured (unreachable, failing,
/// its index missing cars or on more than one index).
impl ReadinessCheck for SearchService {
    fn name(&self) -> &'static str {
        "search"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let Some(engine) = &self.opensearch else {
                return (
                    json!({"status": "up", "engine": "database"}),
                    CheckState::Up,
                );
            };
            let reason = if engine.ping().await {
                self.state().reason()
            } else {
                Some("OpenSearch does not answer".to_owned())
            };
            match reason {
                None => (
                    json!({"status": "up", "engine": "opensearch"}),
                    CheckState::Up,
                ),
                Some(reason) => (
                    json!({"status": "degraded", "engine": "opensearch", "fallback": "database", "reason": reason}),
                    CheckState::Degraded,
                ),
            }
        })
    }
}

/// Rebuilds the index from the database without downtime; returns the new index's name
/// and how many cars it holds. Changes made while it ran are applied to it afterwards.
pub async fn reindex(
    db: &Db,
    ports: &Ports,
    engine: &OpenSearchEngine,
) -> Result<(String, usize), String> {
    let started = crate::time::now();
    let built = engine.reindex(pages(ports)).await?;
    db.writing(move |conn| Ok(outbox::requeue_done_since(conn, TOPIC, started)?))
        .await
        .map_err(|e| e.to_string())?;
    Ok(built)
}

/// An item's `quote`: what renting the car for the search's window costs, without extras.
fn quote(days: i64, total_minor: i64, currency: impl serde::Serialize) -> Value {
    json!({"days": days, "totalPrice": money::to_major(total_minor), "currency": currency})
}
