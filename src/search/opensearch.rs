//! The OpenSearch engine: the index mapping, the query it sends, how it reads answers, and
//! the writes that keep the index following the database (bulk, zero-downtime reindex).
//! Request bodies are built and answers parsed by pure functions, checked by unit tests
//! against the shapes OpenSearch 2.x uses.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use opensearch::auth::Credentials;
use opensearch::cert::{Certificate, CertificateValidation};
use opensearch::http::request::JsonBody;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesExistsParts, IndicesGetAliasParts,
    IndicesGetMappingParts, IndicesRefreshParts,
};
use opensearch::{BulkParts, CountParts, OpenSearch, SearchParts};
use serde_json::{json, Value};
use crate::ids::CarId;

use super::model::{round_km, SearchQuery, SortBy};
use crate::config::SearchSettings;
use crate::ports::CarDocument;

pub struct OpenSearchEngine {
    client: OpenSearch,
    alias: String,
    /// For searches and the readiness probe; everything else has the transport's longer one.
    search_timeout: Duration,
}

/// A page of search results: cars with `distanceKm`, and the count of all matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub items: Vec<Value>,
    pub total: i64,
}

pub use super::model::IndexProblem;

/// A bulk item OpenSearch did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub status: u16,
    pub reason: String,
}

impl ItemError {
    /// Busy (429), failing (5xx), or the alias missing for a moment (404, made again before
    /// the next try); any other 4xx refuses the document itself.
    pub fn retryable(&self) -> bool {
        matches!(self.status, 404 | 429) || self.status >= 500
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The JSON body of a successful answer; an error answer becomes its reason.
async fn answer(res: opensearch::http::response::Response) -> Result<Value, String> {
    let status = res.status_code();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(error_reason(&body, status.as_u16()))
    }
}

/// `id:key`, or Elasticsearch's `encoded` form (the same, in base64).
fn api_key(key: &str) -> Result<Credentials, String> {
    let plain = if key.contains(':') {
        key.to_owned()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("OPENSEARCH_API_KEY: expected id:key or its base64 encoding")?
    };
    let (id, secret) = plain
        .split_once(':')
        .ok_or("OPENSEARCH_API_KEY: expected id:key or its base64 encoding")?;
    Ok(Credentials::ApiKey(id.to_owned(), secret.to_owned()))
}

impl OpenSearchEngine {
    pub fn new(settings: &SearchSettings) -> Result<Self, String> {
        let url = url::Url::parse(&settings.url).map_err(|e| format!("OPENSEARCH_URL: {e}"))?;
        let mut transport = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(settings.maintenance_timeout)
            .disable_proxy();
        match (settings.username.is_empty(), settings.api_key.is_empty()) {
            (false, false) => {
                return Err(
                    "set OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD, or OPENSEARCH_API_KEY, \
                     not both"
                        .into(),
                )
            }
            (false, true) => {
                if settings.password.is_empty() {
                    return Err("OPENSEARCH_USERNAME is set without OPENSEARCH_PASSWORD".into());
                }
                transport = transport.auth(Credentials::Basic(
                    settings.username.clone(),
                    settings.password.clone(),
                ));
            }
            (true, false) => transport = transport.auth(api_key(&settings.api_key)?),
            (true, true) => {}
        }
        if !settings.ca_cert.is_empty() {
            let pem = std::fs::read(&settings.ca_cert)
                .map_err(|e| format!("OPENSEARCH_CA_CERT {}: {e}", settings.ca_cert))?;
            let ca = Certificate::from_pem(&pem)
                .map_err(|e| format!("OPENSEARCH_CA_CERT {}: {e}", settings.ca_cert))?;
            transport = transport.cert_validation(CertificateValidation::Full(ca));
        }
        Ok(OpenSearchEngine {
            client: OpenSearch::new(transport.build().map_err(err)?),
            alias: settings.index.clone(),
            search_timeout: settings.timeout,
        })
    }

    pub fn alias(&self) -> &str {
        &self.alias
    }

    pub async fn ping(&self) -> bool {
        matches!(
            self.client.ping().request_timeout(self.search_timeout).send().await,
            Ok(r) if r.status_code().is_success()
        )
    }

    pub async fn search(&self, q: &SearchQuery, busy: &[CarId]) -> Result<Found, String> {
        let res = self
            .client
            .search(SearchParts::Index(&[&self.alias]))
            .request_timeout(self.search_timeout)
            .body(search_body(q, busy))
            .send()
            .await
            .map_err(err)?;
        parse_search(&answer(res).await?)
    }

    /// Makes the alias exist. The first index is created with the alias in the same request
    /// under a fixed name, so replicas starting together on an empty cluster make one index
    /// (the others are told it already exists).
    pub async fn ensure_index(&self) -> Result<(), IndexProblem> {
        if !self
            .indexes_behind_alias()
            .await
            .map_err(IndexProblem::Unavailable)?
            .is_empty()
        {
            return Ok(());
        }
        // `HEAD /{alias}` also answers 200 for an alias another replica has just made.
        if self.concrete_index_exists().await?
            && self
                .indexes_behind_alias()
                .await
                .map_err(IndexProblem::Unavailable)?
                .is_empty()
        {
            return Err(IndexProblem::Misconfigured(format!(
                "OpenSearch holds an index named {0}, so no alias {0} can exist: delete or \
                 rename that index, or choose another name with OPENSEARCH_INDEX",
                self.alias
            )));
        }
        let first = bootstrap_index(&self.alias);
        let mut definition = index_definition();
        definition["aliases"] = json!({&self.alias: {"is_write_index": true}});
        let res = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(&first))
            .body(definition)
            .send()
            .await
            .map_err(|e| IndexProblem::Unavailable(err(e)))?;
        let status = res.status_code().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        match (status, body["error"]["type"].as_str()) {
            (200..=299, _) => Ok(()),
            // Another replica made it (with the alias, in the same step) a moment ago; or
            // someone took the alias off it since: then put it back.
            (400, Some("resource_already_exists_exception")) => {
                if self
                    .indexes_behind_alias()
                    .await
                    .map_err(IndexProblem::Unavailable)?
                    .is_empty()
                {
                    self.move_alias(&first, &[])
                        .await
                        .map_err(IndexProblem::Unavailable)?;
                }
                Ok(())
            }
            (400, Some("invalid_alias_name_exception")) => {
                Err(IndexProblem::Misconfigured(error_reason(&body, status)))
            }
            _ => Err(IndexProblem::Unavailable(error_reason(&body, status))),
        }
    }

    async fn concrete_index_exists(&self) -> Result<bool, IndexProblem> {
        let res = self
            .client
            .indices()
            .exists(IndicesExistsParts::Index(&[&self.alias]))
            .send()
            .await
            .map_err(|e| IndexProblem::Unavailable(err(e)))?;
        match res.status_code().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(IndexProblem::Unavailable(format!(
                "OpenSearch answered {status} to HEAD /{}",
                self.alias
            ))),
        }
    }

    async fn create_index(&self, name: &str) -> Result<(), String> {
        let res = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(name))
            .body(index_definition())
            .send()
            .await
            .map_err(err)?;
        answer(res).await.map(drop)
    }

    /// The indexes the alias points at (none when it does not exist).
    pub async fn indexes_behind_alias(&self) -> Result<Vec<String>, String> {
        let res = self
            .client
            .indices()
            .get_alias(IndicesGetAliasParts::Name(&[&self.alias]))
            .request_timeout(self.search_timeout)
            .send()
            .await
            .map_err(err)?;
        if res.status_code().as_u16() == 404 {
            return Ok(Vec::new());
        }
        let body = answer(res).await?;
        let mut names: Vec<String> = body
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// The indexes behind the alias whose mapping is not this version's
    /// ([`MAPPING_VERSION`]): built by an older release, they must be rebuilt.
    pub async fn outdated_indexes(&self) -> Result<Vec<String>, String> {
        let res = self
            .client
            .indices()
            .get_mapping(IndicesGetMappingParts::Index(&[&self.alias]))
            .send()
            .await
            .map_err(err)?;
        let body = answer(res).await?;
        let mut old: Vec<String> = body
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, index)| {
                index["mappings"]["_meta"]["carrental_mapping"].as_i64() != Some(MAPPING_VERSION)
            })
            .map(|(name, _)| name.clone())
            .collect();
        old.sort();
        Ok(old)
    }

    /// How many documents the alias holds, as searches see them.
    pub async fn count(&self) -> Result<i64, String> {
        let res = self
            .client
            .count(CountParts::Index(&[&self.alias]))
            .send()
            .await
            .map_err(err)?;
        answer(res).await?["count"]
            .as_i64()
            .ok_or_else(|| "count answer without count".to_owned())
    }

    /// Points the alias at `index` alone, as the write index, in one atomic step.
    async fn move_alias(&self, index: &str, old: &[String]) -> Result<(), String> {
        let res = self
            .client
            .indices()
            .update_aliases()
            .body(alias_actions(&self.alias, index, old))
            .send()
            .await
            .map_err(err)?;
        answer(res).await.map(drop)
    }

    /// Writes documents and deletions; answers, per car, whether it was applied. Writes
    /// through the alias require it to be one: were it gone, OpenSearch would otherwise
    /// create a concrete index of that name with a guessed mapping.
    pub async fn bulk(
        &self,
        index: Option<&str>,
        upserts: &[CarDocument],
        deletes: &[CarId],
    ) -> Result<HashMap<CarId, Result<(), ItemError>>, String> {
        if upserts.is_empty() && deletes.is_empty() {
            return Ok(HashMap::new());
        }
        let lines: Vec<JsonBody<Value>> = bulk_body(index.unwrap_or(&self.alias), upserts, deletes)
            .into_iter()
            .map(JsonBody::new)
            .collect();
        let res = self
            .client
            .bulk(BulkParts::None)
            .require_alias(index.is_none())
            .body(lines)
            .send()
            .await
            .map_err(err)?;
        Ok(parse_bulk(&answer(res).await?))
    }

    /// Builds a new index from every car the catalogue pages out, then moves the alias to
    /// it and drops the old indexes: searches keep working throughout. A failed build
    /// removes its index rather than leave it behind.
    pub async fn reindex<F, Fut>(&self, next_page: F) -> Result<(String, usize), String>
    where
        F: FnMut(Option<CarId>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<CarDocument>, String>>,
    {
        if let Err(IndexProblem::Misconfigured(e)) = self.ensure_index().await {
            return Err(e);
        }
        let old = self.indexes_behind_alias().await?;
        let index = format!(
            "{}_{}",
            self.alias,
            chrono::Utc::now().format("%Y%m%d%H%M%S%3f")
        );
        self.create_index(&index).await?;
        let built = self.fill_and_switch(&index, &old, next_page).await;
        let gone = match &built {
            Ok(_) => old,
            Err(_) => vec![index.clone()],
        };
        if !gone.is_empty() {
            let names: Vec<&str> = gone.iter().map(String::as_str).collect();
            if let Err(e) = self
                .client
                .indices()
                .delete(IndicesDeleteParts::Index(&names))
                .send()
                .await
            {
                tracing::warn!(error = %e, indexes = ?names, "could not delete indexes");
            }
        }
        built.map(|count| (index, count))
    }

    async fn fill_and_switch<F, Fut>(
        &self,
        index: &str,
        old: &[String],
        mut next_page: F,
    ) -> Result<usize, String>
    where
        F: FnMut(Option<CarId>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<CarDocument>, String>>,
    {
        let count = self.fill(Some(index), &mut next_page).await?;
        self.client
            .indices()
            .refresh(IndicesRefreshParts::Index(&[index]))
            .send()
            .await
            .map_err(err)?;
        self.move_alias(index, old).await?;
        Ok(count)
    }

    /// Writes every car the catalogue pages out into `index` (the alias when `None`).
    pub async fn fill<F, Fut>(&self, index: Option<&str>, mut next_page: F) -> Result<usize, String>
    where
        F: FnMut(Option<CarId>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<CarDocument>, String>>,
    {
        let mut after = None;
        let mut count = 0;
        loop {
            let docs = next_page(after).await?;
            let Some(last) = docs.last() else { break };
            after = Some(last.id);
            let outcome = self.bulk(index, &docs, &[]).await?;
            if let Some((id, Err(e))) = outcome.iter().find(|(_, r)| r.is_err()) {
                return Err(format!("car {id}: {} {}", e.status, e.reason));
            }
            count += docs.len();
        }
        Ok(count)
    }
}

/// The index made with the alias when there is none: a fixed name, so that replicas
/// starting at once agree on it.
pub fn bootstrap_index(alias: &str) -> String {
    format!("{alias}_initial")
}

/// Moves whenever the mapping below changes: an index with another version is rebuilt.
pub const MAPPING_VERSION: i64 = 2;

/// Settings and mapping of a cars index. Text is matched on `words`: the car's words as the
/// database engine sees them (`db::functions::normalize`: lower-cased runs of letters and
/// digits), split on the spaces between them, so both engines find the same cars.
pub fn index_definition() -> Value {
    json!({
        "settings": {"number_of_shards": 1},
        "mappings": {
            "dynamic": "strict",
            "_meta": {"carrental_mapping": MAPPING_VERSION},
            "properties": {
                "id": {"type": "keyword"},
                "location": {"type": "geo_point"},
                "words": {"type": "text", "analyzer": "whitespace"},
                "fuelType": {"type": "keyword"},
                "transmission": {"type": "keyword"},
                "seats": {"type": "integer"},
                "priceMinor": {"type": "long"},
                "isActive": {"type": "boolean"},
                "car": {"type": "object", "enabled": false}
            }
        }
    })
}

/// The indexed form of a car: the fields queries use, and the car as answered.
pub fn document(doc: &CarDocument) -> Value {
    json!({
        "id": doc.id.to_string(),
        "location": {"lat": doc.latitude, "lon": doc.longitude},
        "words": doc.search_text,
        "fuelType": doc.fuel_type,
        "transmission": doc.transmission,
        "seats": doc.seats,
        "priceMinor": doc.price_per_day_minor,
        "isActive": doc.is_active,
        "car": doc.json,
    })
}

pub fn bulk_body(index: &str, upserts: &[CarDocument], deletes: &[CarId]) -> Vec<Value> {
    let mut lines = Vec::with_capacity(upserts.len() * 2 + deletes.len());
    for doc in upserts {
        lines.push(json!({"index": {"_index": index, "_id": doc.id.to_string()}}));
        lines.push(document(doc));
    }
    for id in deletes {
        lines.push(json!({"delete": {"_index": index, "_id": id.to_string()}}));
    }
    lines
}

/// Per car, whether its bulk item applied; deleting a car that is not indexed is fine.
pub fn parse_bulk(body: &Value) -> HashMap<CarId, Result<(), ItemError>> {
    let items = body["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let (action, result) = item.as_object()?.iter().next()?;
            let id = result["_id"].as_str()?.parse::<CarId>().ok()?;
            let status = result["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0);
            let ok = (200..300).contains(&status) || (action == "delete" && status == 404);
            let outcome = if ok {
                Ok(())
            } else {
                Err(ItemError {
                    status,
                    reason: error_reason(result, status),
                })
            };
            Some((id, outcome))
        })
        .collect()
}

fn geo_sort(q: &SearchQuery) -> Value {
    json!({"_geo_distance": {
        "location": {"lat": q.latitude, "lon": q.longitude},
        "order": "asc", "unit": "km", "distance_type": "arc"
    }})
}

/// The search request. Busy cars are excluded by the query itself, so `total` and the
/// pages are right. Sorting by price puts the distance last, where it only reports.
pub fn search_body(q: &SearchQuery, busy: &[CarId]) -> Value {
    let mut filter = vec![
        json!({"term": {"isActive": true}}),
        json!({"geo_distance": {
            "distance": format!("{}km", q.radius_km),
            "distance_type": "arc",
            "location": {"lat": q.latitude, "lon": q.longitude}
        }}),
    ];
    if let Some(f) = q.fuel_type {
        filter.push(json!({"term": {"fuelType": f}}));
    }
    if let Some(t) = q.transmission {
        filter.push(json!({"term": {"transmission": t}}));
    }
    if let Some(s) = q.min_seats {
        filter.push(json!({"range": {"seats": {"gte": s}}}));
    }
    if q.min_price_minor.is_some() || q.max_price_minor.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(lo) = q.min_price_minor {
            range.insert("gte".into(), json!(lo));
        }
        if let Some(hi) = q.max_price_minor {
            range.insert("lte".into(), json!(hi));
        }
        filter.push(json!({"range": {"priceMinor": range}}));
    }
    for word in q
        .text
        .iter()
        .flat_map(|t| t.split(' '))
        .filter(|w| !w.is_empty())
    {
        let fuzziness = if word.chars().count() >= 3 { 1 } else { 0 };
        filter.push(json!({"match": {"words": {
            "query": word, "fuzziness": fuzziness,
            "prefix_length": 0, "fuzzy_transpositions": true
        }}}));
    }
    let mut boolean = json!({"filter": filter});
    if !busy.is_empty() {
        boolean["must_not"] = json!([{"ids": {"values": busy}}]);
    }
    let sort = match q.sort {
        SortBy::Distance => json!([geo_sort(q), {"id": "asc"}]),
        SortBy::Price => json!([{"priceMinor": "asc"}, {"id": "asc"}, geo_sort(q)]),
    };
    json!({
        "from": q.page.offset(),
        "size": q.page.limit(),
        "track_total_hits": true,
        "_source": ["car"],
        "query": {"bool": boolean},
        "sort": sort
    })
}

/// Cars with `distanceKm` from a search answer; the distance is the `_geo_distance` sort
/// value, which is the last one when sorting by price and the first otherwise.
pub fn parse_search(body: &Value) -> Result<Found, String> {
    let total = body["hits"]["total"]["value"]
        .as_i64()
        .ok_or("answer without hits.total.value")?;
    let hits = body["hits"]["hits"]
        .as_array()
        .ok_or("answer without hits.hits")?;
    let items = hits
        .iter()
        .map(|hit| {
            let mut car = hit["_source"]["car"].clone();
            let sort = hit["sort"].as_array().ok_or("hit without sort values")?;
            let km = sort
                .iter()
                .filter_map(Value::as_f64)
                .next_back()
                .ok_or("hit without a distance")?;
            let obj = car.as_object_mut().ok_or("hit without _source.car")?;
            obj.insert("distanceKm".into(), json!(round_km(km)));
            Ok(car)
        })
        .collect::<Result<Vec<_>, &str>>()?;
    Ok(Found { items, total })
}

/// The reason in an OpenSearch error answer (or bulk item), with its root cause when that
/// says more (a search failing on every shard only says "all shards failed").
pub fn error_reason(body: &Value, status: u16) -> String {
    let error = &body["error"];
    let kind = error["type"].as_str().unwrap_or("error");
    // Some answers (GET /_alias/{name} 404) carry the error as a plain string.
    let reason = error["reason"].as_str().or(error.as_str()).unwrap_or("");
    let mut text = format!("OpenSearch answered {status}: {kind} {reason}")
        .trim()
        .to_owned();
    let cause = match &error["root_cause"][0] {
        Value::Null => &error["caused_by"],
        first => first,
    };
    if let (Some(cause_kind), Some(cause_reason)) =
        (cause["type"].as_str(), cause["reason"].as_str())
    {
        if cause_kind != kind || cause_reason != reason {
            text.push_str(&format!(" (root cause: {cause_kind} {cause_reason})"));
        }
    }
    text
}

/// Removes the alias from `old` and puts it on `index` as the write index, atomically.
pub fn alias_actions(alias: &str, index: &str, old: &[String]) -> Value {
    let mut actions: Vec<Value> = old
        .iter()
        .filter(|o| o.as_str() != index)
        .map(|o| json!({"remove": {"index": o, "alias": alias}}))
        .collect();
    actions.push(json!({"add": {"index": index, "alias": alias, "is_write_index": true}}));
    json!({"actions": actions})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::QueryParams;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/opensearch/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
    }

    fn query(q: &str) -> SearchQuery {
        SearchQuery::parse(&QueryParams::from_query_string(q).expect("query")).expect("valid")
    }

    #[test]
    fn the_search_request_is_the_recorded_one() {
        let q = query(
            "lat=48.8566&lng=2.3522&radius=25&query=Telsa%203&fuelType=Electric&transmission=automatic\
             &seats=4&minPrice=50&maxPrice=150.5&page=3&limit=10",
        );
        let busy = [
            "00000000-0000-4000-8000-000000000001",
            "00000000-0000-4000-8000-000000000002",
        ]
        .map(|id| id.parse::<CarId>().unwrap());
        let body = search_body(&q, &busy);
        assert_eq!(body, fixture("search_request.json"));
    }

    #[test]
    fn price_sort_keeps_the_distance_last_and_no_busy_means_no_must_not() {
        let body = search_body(&query("lat=1&lng=2&sort=price"), &[]);
        assert_eq!(body["sort"][0], json!({"priceMinor": "asc"}));
        assert_eq!(body["sort"][1], json!({"id": "asc"}));
        assert!(body["sort"][2]["_geo_distance"].is_object());
        assert!(body["query"]["bool"].get("must_not").is_none());
    }

    #[test]
    fn search_answers_give_cars_with_their_distance() {
        let found = parse_search(&fixture("search_response.json")).unwrap();
        assert_eq!(found.total, 37);
        assert_eq!(found.items.len(), 2);
        assert_eq!(found.items[0]["name"], "Tesla Model 3");
        assert_eq!(found.items[0]["distanceKm"], json!(1.23));
        assert_eq!(found.items[1]["distanceKm"], json!(4.01));
        let by_price = parse_search(&fixture("search_by_price_response.json")).unwrap();
        assert_eq!(by_price.items[0]["distanceKm"], json!(7.78));
        assert!(parse_search(&fixture("index_not_found.json")).is_err());
    }

    #[test]
    fn bulk_answers_are_read_item_by_item() {
        let outcome = parse_bulk(&fixture("bulk_with_errors.json"));
        let id = |s: &str| s.parse::<CarId>().unwrap();
        assert_eq!(outcome[&id("0b6f7c1e-2d3a-4c55-9a0e-1f2b3c4d5e6f")], Ok(()));
        assert_eq!(
            outcome[&id("9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b")],
            Ok(()),
            "deleting what is not there is fine"
        );
        let bad = outcome[&id("7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6")]
            .clone()
            .unwrap_err();
        assert_eq!(bad.status, 400);
        assert!(!bad.retryable(), "a mapping error is refused for good");
        assert!(
            bad.reason.contains("mapper_parsing_exception")
                && bad.reason.contains("illegal latitude value [91.0]"),
            "the cause is kept: {}",
            bad.reason
        );
        let busy = outcome[&id("5f4e3d2c-1b0a-4987-8654-3210fedcba98")]
            .clone()
            .unwrap_err();
        assert_eq!(busy.status, 429);
        assert!(busy.retryable(), "{}", busy.reason);
        assert!(busy.reason.contains("rejected_execution_exception"));
    }

    #[test]
    fn only_busy_failing_or_missing_targets_are_retried() {
        let item = |status| ItemError {
            status,
            reason: String::new(),
        };
        for status in [404, 429, 500, 502, 503] {
            assert!(item(status).retryable(), "{status}");
        }
        for status in [400, 403, 409, 413] {
            assert!(!item(status).retryable(), "{status}");
        }
    }

    #[test]
    fn a_failed_search_names_its_root_cause() {
        let reason = error_reason(&fixture("result_window_too_large.json"), 400);
        assert!(
            reason.starts_with(
                "OpenSearch answered 400: search_phase_execution_exception all shards failed (root cause: illegal_argument_exception Result window is too large"
            ),
            "{reason}"
        );
        assert!(
            error_reason(&fixture("alias_missing.json"), 404).contains("404"),
            "a string error is still an error"
        );
    }

    #[test]
    fn api_keys_are_taken_plain_or_encoded() {
        let plain = api_key("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw").unwrap();
        let encoded =
            api_key("VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==").unwrap();
        for key in [plain, encoded] {
            match key {
                Credentials::ApiKey(id, secret) => {
                    assert_eq!(id, "VuaCfGcBCdbkQm-e5aOx");
                    assert_eq!(secret, "ui2lp2axTNmsyakw9tvNnw");
                }
                _ => panic!("not an API key"),
            }
        }
        assert!(api_key("not base64 and no colon!").is_err());
    }

    #[test]
    fn text_is_indexed_and_searched_as_the_database_engine_splits_it() {
        // The database engine's words for a car named "2.0 TDI" with "Child's seat".
        let words = crate::db::functions::normalize("VW Golf 2.0 TDI Child's seat");
        assert_eq!(words, "vw golf 2 0 tdi child s seat");
        let mapping = index_definition();
        assert_eq!(
            mapping["mappings"]["properties"]["words"],
            json!({"type": "text", "analyzer": "whitespace"})
        );
        let body = search_body(&query("lat=1&lng=2&query=Child%27s%202.0"), &[]);
        let searched: Vec<&str> = body["query"]["bool"]["filter"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["match"]["words"]["query"].as_str())
            .collect();
        assert_eq!(searched, ["child", "s", "2", "0"]);
        for word in searched {
            assert!(words.split(' ').any(|w| w == word), "{word}");
        }
    }

    #[test]
    fn errors_name_their_reason() {
        let reason = error_reason(&fixture("index_not_found.json"), 404);
        assert_eq!(
            reason,
            "OpenSearch answered 404: index_not_found_exception no such index [cars]"
        );
    }

    #[test]
    fn documents_and_bulk_lines() {
        let id = CarId::random();
        let doc = CarDocument {
            id,
            json: json!({"id": id, "name": "Tesla Model 3", "brand": "Tesla", "model": "Model 3", "features": ["Autopilot"]}),
            is_active: true,
            latitude: 48.0,
            longitude: 2.0,
            price_per_day_minor: 12050,
            fuel_type: "electric".into(),
            transmission: "automatic".into(),
            seats: 5,
            search_text: "tesla model 3 autopilot".into(),
        };
        let gone = CarId::random();
        let lines = bulk_body("cars", std::slice::from_ref(&doc), &[gone]);
        assert_eq!(
            lines[0],
            json!({"index": {"_index": "cars", "_id": id.to_string()}})
        );
        assert_eq!(lines[1]["location"], json!({"lat": 48.0, "lon": 2.0}));
        assert_eq!(lines[1]["priceMinor"], 12050);
        assert_eq!(lines[1]["words"], "tesla model 3 autopilot");
        assert_eq!(lines[1]["car"], doc.json);
        assert_eq!(
            lines[2],
            json!({"delete": {"_index": "cars", "_id": gone.to_string()}})
        );
        // Every field a document has is in the strict mapping.
        let mapped = index_definition()["mappings"]["properties"]
            .as_object()
            .unwrap()
            .clone();
        for key in lines[1].as_object().unwrap().keys() {
            assert!(mapped.contains_key(key), "{key} is not mapped");
        }
    }

    #[test]
    fn alias_moves_atomically() {
        let actions = alias_actions("cars", "cars_2", &["cars_1".into()]);
        assert_eq!(
            actions,
            json!({"actions": [{"remove": {"index": "cars_1", "alias": "cars"}}, {"add": {"index": "cars_2", "alias": "cars", "is_write_index": true}}]})
        );
    }
}
