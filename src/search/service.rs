//! Search rules: which engine answers, availability inside the query, falling back to the
//! database when OpenSearch is unreachable; and keeping the index following the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::web;
use serde_json::{json, Value};
use uuid::Uuid;

use super::model::{round_km, SearchQuery};
use super::opensearch::OpenSearchEngine;
use super::store;
use crate::cache::{ReadCache, CACHED_PAGES};
use crate::db::Db;
use crate::http::etag::Tagged;
use crate::http::ApiError;
use crate::ops::{CheckFuture, CheckState, ReadinessCheck};
use crate::outbox::{self, Job};
use crate::ports::{CarDocument, Ports};
use crate::telemetry::Metrics;

pub use crate::ports::SEARCH_TOPIC as TOPIC;

pub struct SearchService {
    db: Db,
    ports: Ports,
    cache: Arc<ReadCache>,
    opensearch: Option<Arc<OpenSearchEngine>>,
    metrics: web::Data<Metrics>,
    /// Set when OpenSearch last failed us, cleared when it answers again.
    degraded: AtomicBool,
}

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
            degraded: AtomicBool::new(false),
        }
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
        let busy: Vec<String> = match q.window {
            Some((from, to)) => self
                .ports
                .availability
                .busy_cars(from, to)
                .await?
                .iter()
                .map(Uuid::to_string)
                .collect(),
            None => Vec::new(),
        };
        if let Some(engine) = &self.opensearch {
            match engine.search(&q, &busy).await {
                Ok(found) => {
                    self.degraded.store(false, Ordering::Relaxed);
                    self.metrics
                        .searches
                        .with_label_values(&["opensearch"])
                        .inc();
                    return Ok(Arc::new(Tagged::json(
                        &q.page.wrap(found.items, found.total),
                    )?));
                }
                Err(error) => {
                    self.degraded.store(true, Ordering::Relaxed);
                    tracing::warn!(%error, "OpenSearch failed; answering from the database");
                }
            }
        }
        let page = q.page;
        let (rows, total) = self
            .db
            .run(move |conn| Ok(store::search(conn, &q, &busy)?))
            .await?;
        let ids: Vec<Uuid> = rows
            .iter()
            .filter_map(|(id, _)| Uuid::parse_str(id).ok())
            .collect();
        let docs = self.ports.catalog.documents(&ids).await?;
        let items = rows
            .iter()
            .filter_map(|(id, km)| {
                let mut car = docs.get(&Uuid::parse_str(id).ok()?)?.json.clone();
                car.as_object_mut()?
                    .insert("distanceKm".into(), json!(round_km(*km)));
                Some(car)
            })
            .collect();
        self.metrics.searches.with_label_values(&["database"]).inc();
        Ok(Arc::new(Tagged::json(&page.wrap::<Value>(items, total))?))
    }

    /// Applies a batch of index jobs (each a car id): current cars are written, deleted
    /// ones removed. One outcome per job, in order.
    pub async fn apply_index_jobs(&self, jobs: Vec<Job>) -> Vec<Result<(), String>> {
        let Some(engine) = &self.opensearch else {
            return jobs.iter().map(|_| Ok(())).collect();
        };
        let ids: Vec<Option<Uuid>> = jobs
            .iter()
            .map(|j| Uuid::parse_str(&j.payload).ok())
            .collect();
        let wanted: Vec<Uuid> = ids.iter().flatten().copied().collect();
        let docs = match self.ports.catalog.documents(&wanted).await {
            Ok(docs) => docs,
            Err(e) => {
                return jobs
                    .iter()
                    .map(|_| Err(format!("reading cars: {e}")))
                    .collect()
            }
        };
        let upserts: Vec<CarDocument> = docs.values().cloned().collect();
        let deletes: Vec<Uuid> = ids
            .iter()
            .flatten()
            .filter(|id| !docs.contains_key(id))
            .copied()
            .collect();
        let outcome = match engine.ensure_index().await {
            Ok(()) => engine.bulk(None, &upserts, &deletes).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(per_car) => ids
                .iter()
                .map(|id| match id {
                    None => Ok(()),
                    Some(id) => per_car.get(id).cloned().unwrap_or(Ok(())),
                })
                .collect(),
            Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

/// The `search` entry of `/health/ready`: degraded while OpenSearch is unreachable and
/// searches are answered from the database.
impl ReadinessCheck for SearchService {
    fn name(&self) -> &'static str {
        "search"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match &self.opensearch {
                None => (
                    json!({"status": "up", "engine": "database"}),
                    CheckState::Up,
                ),
                Some(engine) => {
                    if engine.ping().await {
                        self.degraded.store(false, Ordering::Relaxed);
                        (
                            json!({"status": "up", "engine": "opensearch"}),
                            CheckState::Up,
                        )
                    } else {
                        self.degraded.store(true, Ordering::Relaxed);
                        let report = json!({"status": "degraded", "engine": "opensearch", "fallback": "database"});
                        (report, CheckState::Degraded)
                    }
                }
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
    let page = |after: Option<Uuid>| {
        let catalog = ports.catalog.clone();
        async move {
            let ids = catalog
                .ids_after(after, 500)
                .await
                .map_err(|e| e.to_string())?;
            let mut docs: HashMap<Uuid, CarDocument> =
                catalog.documents(&ids).await.map_err(|e| e.to_string())?;
            Ok(ids
                .iter()
                .filter_map(|id| docs.remove(id))
                .collect::<Vec<_>>())
        }
    };
    let built = engine.reindex(page).await?;
    db.run(move |conn| Ok(outbox::requeue_done_since(conn, TOPIC, started)?))
        .await
        .map_err(|e| e.to_string())?;
    Ok(built)
}
