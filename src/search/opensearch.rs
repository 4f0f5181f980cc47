//! The OpenSearch engine: the index mapping, the query it sends, how it reads answers, and
//! the writes that keep the index following the database (bulk, zero-downtime reindex).
//! Request bodies are built and answers parsed by pure functions, checked by unit tests
//! against the shapes OpenSearch 2.x uses.

use std::collections::HashMap;
use std::time::Duration;

use opensearch::http::request::JsonBody;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesGetAliasParts, IndicesRefreshParts,
};
use opensearch::{BulkParts, OpenSearch, SearchParts};
use serde_json::{json, Value};
use uuid::Uuid;

use super::model::{round_km, SearchQuery, SortBy};
use crate::ports::CarDocument;

const TEXT_FIELDS: [&str; 4] = ["name", "brand", "model", "features"];

pub struct OpenSearchEngine {
    client: OpenSearch,
    alias: String,
}

/// A page of search results: cars with `distanceKm`, and the count of all matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub items: Vec<Value>,
    pub total: i64,
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

impl OpenSearchEngine {
    pub fn new(url: &str, alias: &str, timeout: Duration) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| format!("OPENSEARCH_URL: {e}"))?;
        let transport = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(timeout)
            .disable_proxy()
            .build()
            .map_err(err)?;
        Ok(OpenSearchEngine {
            client: OpenSearch::new(transport),
            alias: alias.to_owned(),
        })
    }

    pub async fn ping(&self) -> bool {
        matches!(self.client.ping().send().await, Ok(r) if r.status_code().is_success())
    }

    pub async fn search(&self, q: &SearchQuery, busy: &[String]) -> Result<Found, String> {
        let res = self
            .client
            .search(SearchParts::Index(&[&self.alias]))
            .body(search_body(q, busy))
            .send()
            .await
            .map_err(err)?;
        parse_search(&answer(res).await?)
    }

    /// Creates a fresh index behind the alias when the alias does not exist yet.
    pub async fn ensure_index(&self) -> Result<(), String> {
        if !self.indexes_behind_alias().await?.is_empty() {
            return Ok(());
        }
        let index = self.create_index().await?;
        self.swap_alias(&index, &[]).await
    }

    async fn create_index(&self) -> Result<String, String> {
        let name = format!(
            "{}_{}",
            self.alias,
            chrono::Utc::now().format("%Y%m%d%H%M%S%3f")
        );
        let res = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(&name))
            .body(index_definition())
            .send()
            .await
            .map_err(err)?;
        answer(res).await?;
        Ok(name)
    }

    async fn indexes_behind_alias(&self) -> Result<Vec<String>, String> {
        let res = self
            .client
            .indices()
            .get_alias(IndicesGetAliasParts::Name(&[&self.alias]))
            .send()
            .await
            .map_err(err)?;
        if res.status_code().as_u16() == 404 {
            return Ok(Vec::new());
        }
        let body = answer(res).await?;
        Ok(body
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Points the alias at `index` alone, in one atomic step.
    async fn swap_alias(&self, index: &str, old: &[String]) -> Result<(), String> {
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

    /// Writes documents and deletions; answers, per car, whether it was applied.
    pub async fn bulk(
        &self,
        index: Option<&str>,
        upserts: &[CarDocument],
        deletes: &[Uuid],
    ) -> Result<HashMap<Uuid, Result<(), String>>, String> {
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
            .body(lines)
            .send()
            .await
            .map_err(err)?;
        Ok(parse_bulk(&answer(res).await?))
    }

    /// Builds a new index from every car the catalogue pages out, then moves the alias to
    /// it and drops the old indexes: searches keep working throughout.
    pub async fn reindex<F, Fut>(&self, mut next_page: F) -> Result<(String, usize), String>
    where
        F: FnMut(Option<Uuid>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<CarDocument>, String>>,
    {
        let old = self.indexes_behind_alias().await?;
        let index = self.create_index().await?;
        let mut after = None;
        let mut count = 0;
        loop {
            let docs = next_page(after).await?;
            let Some(last) = docs.last() else { break };
            after = Some(last.id);
            let outcome = self.bulk(Some(&index), &docs, &[]).await?;
            if let Some((id, Err(e))) = outcome.iter().find(|(_, r)| r.is_err()) {
                return Err(format!("car {id}: {e}"));
            }
            count += docs.len();
        }
        self.client
            .indices()
            .refresh(IndicesRefreshParts::Index(&[&index]))
            .send()
            .await
            .map_err(err)?;
        self.swap_alias(&index, &old).await?;
        if !old.is_empty() {
            let names: Vec<&str> = old.iter().map(String::as_str).collect();
            let _ = self
                .client
                .indices()
                .delete(IndicesDeleteParts::Index(&names))
                .send()
                .await;
        }
        Ok((index, count))
    }
}

/// Settings and mapping of a cars index.
pub fn index_definition() -> Value {
    json!({
        "settings": {"number_of_shards": 1},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "id": {"type": "keyword"},
                "location": {"type": "geo_point"},
                "name": {"type": "text"},
                "brand": {"type": "text"},
                "model": {"type": "text"},
                "features": {"type": "text"},
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
    let text = |key: &str| doc.json.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "id": doc.id.to_string(),
        "location": {"lat": doc.latitude, "lon": doc.longitude},
        "name": text("name"),
        "brand": text("brand"),
        "model": text("model"),
        "features": text("features"),
        "fuelType": doc.fuel_type,
        "transmission": doc.transmission,
        "seats": doc.seats,
        "priceMinor": doc.price_per_day_minor,
        "isActive": doc.is_active,
        "car": doc.json,
    })
}

pub fn bulk_body(index: &str, upserts: &[CarDocument], deletes: &[Uuid]) -> Vec<Value> {
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
pub fn parse_bulk(body: &Value) -> HashMap<Uuid, Result<(), String>> {
    let items = body["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let (action, result) = item.as_object()?.iter().next()?;
            let id = Uuid::parse_str(result["_id"].as_str()?).ok()?;
            let status = result["status"].as_u64().unwrap_or(0);
            let ok = (200..300).contains(&status) || (action == "delete" && status == 404);
            let outcome = if ok {
                Ok(())
            } else {
                Err(format!(
                    "{} {}: {}",
                    status,
                    result["error"]["type"].as_str().unwrap_or("error"),
                    result["error"]["reason"].as_str().unwrap_or("")
                ))
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
pub fn search_body(q: &SearchQuery, busy: &[String]) -> Value {
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
    for word in q.text.iter().flat_map(|t| t.split(' ')) {
        let fuzziness = if word.chars().count() >= 3 { 1 } else { 0 };
        filter.push(json!({"multi_match": {
            "query": word, "fields": TEXT_FIELDS, "fuzziness": fuzziness,
            "prefix_length": 0, "fuzzy_transpositions": true
        }}));
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

/// The reason in an OpenSearch error answer (such as `index_not_found_exception`).
pub fn error_reason(body: &Value, status: u16) -> String {
    let kind = body["error"]["type"].as_str().unwrap_or("error");
    let reason = body["error"]["reason"].as_str().unwrap_or("");
    format!("OpenSearch answered {status}: {kind} {reason}")
        .trim()
        .to_owned()
}

pub fn alias_actions(alias: &str, index: &str, old: &[String]) -> Value {
    let mut actions: Vec<Value> = old
        .iter()
        .filter(|o| o.as_str() != index)
        .map(|o| json!({"remove": {"index": o, "alias": alias}}))
        .collect();
    actions.push(json!({"add": {"index": index, "alias": alias}}));
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
        let body = search_body(&q, &["busy-1".into(), "busy-2".into()]);
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
        let id = |s: &str| Uuid::parse_str(s).unwrap();
        assert_eq!(outcome[&id("0b6f7c1e-2d3a-4c55-9a0e-1f2b3c4d5e6f")], Ok(()));
        assert_eq!(
            outcome[&id("9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b")],
            Ok(()),
            "deleting what is not there is fine"
        );
        let bad = outcome[&id("7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6")]
            .clone()
            .unwrap_err();
        assert!(
            bad.contains("400") && bad.contains("mapper_parsing_exception"),
            "{bad}"
        );
        let busy = outcome[&id("5f4e3d2c-1b0a-4987-8654-3210fedcba98")]
            .clone()
            .unwrap_err();
        assert!(busy.contains("429"), "{busy}");
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
        let id = Uuid::new_v4();
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
        let gone = Uuid::new_v4();
        let lines = bulk_body("cars", std::slice::from_ref(&doc), &[gone]);
        assert_eq!(
            lines[0],
            json!({"index": {"_index": "cars", "_id": id.to_string()}})
        );
        assert_eq!(lines[1]["location"], json!({"lat": 48.0, "lon": 2.0}));
        assert_eq!(lines[1]["priceMinor"], 12050);
        assert_eq!(lines[1]["features"], json!(["Autopilot"]));
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
            json!({"actions": [{"remove": {"index": "cars_1", "alias": "cars"}}, {"add": {"index": "cars_2", "alias": "cars"}}]})
        );
    }
}
