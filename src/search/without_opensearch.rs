//! The OpenSearch engine of a build without the `opensearch` feature: search runs on the
//! database, and an `OPENSEARCH_URL` is refused at start rather than ignored.

use std::collections::HashMap;
use std::convert::Infallible;

use serde_json::Value;
use crate::ids::CarId;

use super::model::SearchQuery;
use crate::config::SearchSettings;
use crate::ports::CarDocument;

/// Never made: [`OpenSearchEngine::new`] always refuses.
pub struct OpenSearchEngine {
    never: Infallible,
}

pub struct Found {
    pub items: Vec<Value>,
    pub total: i64,
}

pub use super::model::IndexProblem;

pub struct ItemError {
    pub status: u16,
    pub reason: String,
}

impl ItemError {
    pub fn retryable(&self) -> bool {
        true
    }
}

impl OpenSearchEngine {
    pub fn new(_settings: &SearchSettings) -> Result<Self, String> {
        Err(
            "OPENSEARCH_URL is set, but this binary was built without the opensearch feature \
             (cargo build --features opensearch)"
                .into(),
        )
    }

    pub fn alias(&self) -> &str {
        match self.never {}
    }

    pub async fn ping(&self) -> bool {
        match self.never {}
    }

    pub async fn search(&self, _q: &SearchQuery, _busy: &[CarId]) -> Result<Found, String> {
        match self.never {}
    }

    pub async fn ensure_index(&self) -> Result<(), IndexProblem> {
        match self.never {}
    }

    pub async fn indexes_behind_alias(&self) -> Result<Vec<String>, String> {
        match self.never {}
    }

    pub async fn outdated_indexes(&self) -> Result<Vec<String>, String> {
        match self.never {}
    }

    pub async fn count(&self) -> Result<i64, String> {
        match self.never {}
    }

    pub async fn bulk(
        &self,
        _index: Option<&str>,
        _upserts: &[CarDocument],
        _deletes: &[CarId],
    ) -> Result<HashMap<CarId, Result<(), ItemError>>, String> {
        match self.never {}
    }

    pub async fn fill<F, Fut>(&self, _index: Option<&str>, _pages: F) -> Result<usize, String>
    where
        F: FnMut(Option<CarId>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<CarDocument>, String>>,
    {
        match self.never {}
    }

    pub async fn reindex<F, Fut>(&self, _pages: F) -> Result<(String, usize), String>
    where
        F: FnMut(Option<CarId>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<CarDocument>, String>>,
    {
        match self.never {}
    }
}
