//! The OpenSearch engine of a build without the `opensearch` feature: search runs on the
//! database, and an `OPENSEARCH_URL` is refused at start rather than ignored.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::model::SearchQuery;
use crate::ports::CarDocument;

/// Never made: [`OpenSearchEngine::new`] always refuses.
pub struct OpenSearchEngine {
    never: Infallible,
}

pub struct Found {
    pub items: Vec<Value>,
    pub total: i64,
}

impl OpenSearchEngine {
    pub fn new(_url: &str, _alias: &str, _timeout: Duration) -> Result<Self, String> {
        Err(
            "OPENSEARCH_URL is set, but this binary was built without the opensearch feature \
             (cargo build --features opensearch)"
                .into(),
        )
    }

    pub async fn ping(&self) -> bool {
        match self.never {}
    }

    pub async fn search(&self, _q: &SearchQuery, _busy: &[String]) -> Result<Found, String> {
        match self.never {}
    }

    pub async fn ensure_index(&self) -> Result<(), String> {
        match self.never {}
    }

    pub async fn bulk(
        &self,
        _index: Option<&str>,
        _upserts: &[CarDocument],
        _deletes: &[Uuid],
    ) -> Result<HashMap<Uuid, Result<(), String>>, String> {
        match self.never {}
    }

    pub async fn reindex<F, Fut>(&self, _next_page: F) -> Result<(String, usize), String>
    where
        F: FnMut(Option<Uuid>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<CarDocument>, String>>,
    {
        match self.never {}
    }
}
