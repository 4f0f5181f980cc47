//! Reads from memory: `GET /cars/{id}`, the first pages of `GET /cars` and of a search on
//! the database engine without dates, kept as the bytes sent with their `ETag`; and the
//! `total` of every car filter set listed, so that a page further on costs only its rows.
//! Bookings and availability are never kept.
//!
//! Invalidation. A car write made in this process empties the cache as it starts and again
//! once it has committed; while it runs nothing is kept and no kept total is used, so a
//! page that already sees the write is never sent with a total that does not.
//! A write made anywhere else (another replica, a command, psql) moves the `cars` counter
//! of `data_versions` (a trigger does it), which [`watch_versions`] reads every
//! `cache.version_poll` and empties the cache when it moved.
//!
//! An answer read from the database is kept only if the cache was not emptied while it
//! was read, so an answer read before a write never outlives the write. Simultaneous
//! misses of one key wait for the first one's read rather than all reading.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::ids::CarId;
use diesel::prelude::*;
use quick_cache::sync::Cache;

use crate::config::CacheSettings;
use crate::db::schema::data_versions;
use crate::db::Db;
use crate::error::ApiError;
use crate::http::etag::Tagged;
use crate::outbox::Stop;

/// Pages past this one are always read from the database.
pub const CACHED_PAGES: u32 = 5;

type Answers<K> = Option<Cache<K, Arc<Tagged>>>;

pub struct ReadCache {
    /// Moves on every emptying.
    generation: AtomicU64,
    /// Held to check the generation and keep an answer as one step, and to empty.
    emptying: RwLock<()>,
    /// Car writes of this process begun and not yet ended.
    writing: AtomicUsize,
    pub cars: Answers<CarId>,
    pub pages: Answers<String>,
    pub searches: Answers<String>,
}

impl ReadCache {
    pub fn new(settings: &CacheSettings) -> Self {
        let enabled = settings.cars > 0;
        let pages = enabled && settings.pages > 0;
        ReadCache {
            generation: AtomicU64::new(0),
            emptying: RwLock::new(()),
            writing: AtomicUsize::new(0),
            cars: enabled.then(|| Cache::new(settings.cars)),
            pages: pages.then(|| Cache::new(settings.pages)),
            searches: pages.then(|| Cache::new(settings.pages)),
        }
    }

    /// Take it before reading the database for an answer to keep.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The answer kept under `key` in `answers`, or the one `read` makes, kept.
    pub async fn through<K, F>(
        &self,
        answers: &Answers<K>,
        key: K,
        read: F,
    ) -> Result<Arc<Tagged>, ApiError>
    where
        K: Eq + Hash + Clone,
        F: Future<Output = Result<Arc<Tagged>, ApiError>>,
    {
        let Some(answers) = answers else {
            return read.await;
        };
        let guard = match answers.get_value_or_guard_async(&key).await {
            Ok(answer) => return Ok(answer),
            Err(guard) => guard,
        };
        let generation = self.generation();
        let answer = read.await?;
        self.keep(generation, || drop(guard.insert(answer.clone())));
        Ok(answer)
    }

    fn keep(&self, generation: u64, insert: impl FnOnce()) {
        let _held = self.emptying.read().unwrap_or_else(|e| e.into_inner());
        if self.generation() == generation && self.writing.load(Ordering::Acquire) == 0 {
            insert();
        }
    }

    /// Call before a car write; the cache is emptied now and again when the guard drops
    /// (after the commit, or the failure).
    pub fn writing(&self) -> Writing<'_> {
        self.writing.fetch_add(1, Ordering::AcqRel);
        self.empty();
        Writing(self)
    }

    /// Forgets everything.
    pub fn empty(&self) {
        let _held = self.emptying.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(cars) = &self.cars {
            cars.clear();
        }
        for answers in [&self.pages, &self.searches].into_iter().flatten() {
            answers.clear();
        }
    }
}

/// A car write under way; see [`ReadCache::writing`].
pub struct Writing<'a>(&'a ReadCache);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.empty();
        self.0.writing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Empties `cache` whenever the database's car version moves, until stopped. While the
/// database cannot be read the cache is emptied too: writes may be going unseen.
pub async fn watch_versions(db: Db, cache: Arc<ReadCache>, every: Duration, mut stop: Stop) {
    let mut seen: Option<i64> = None;
    while !stop.requested() {
        let version = db
            .run(|conn| {
                Ok(data_versions::table
                    .find("cars")
                    .select(data_versions::version)
                    .get_result::<i64>(conn)
                    .optional()?)
            })
            .await;
        match version {
            Ok(now) if now.is_some() && now == seen => {}
            // Also on the first reading: what was kept before it is of no known version.
            Ok(now) => {
                cache.empty();
                seen = now;
            }
            Err(error) => {
                if seen.take().is_some() {
                    tracing::warn!(%error, "cannot read the car version; the read cache is emptied");
                }
                cache.empty();
            }
        }
        stop.sleep(every).await;
    }
}
