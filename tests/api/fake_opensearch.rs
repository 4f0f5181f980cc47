//! A fake OpenSearch 2.x cluster for the engine's tests: it keeps indexes, aliases and
//! documents, and answers the calls the engine makes as OpenSearch does where it matters
//! (the shapes are those of `tests/fixtures/opensearch/`, see its README):
//!
//! - `GET /_alias/{name}` is 404 `alias [name] missing` until an alias exists;
//! - creating an index that exists is 400 `resource_already_exists_exception`; an alias
//!   named like an index is 400 `invalid_alias_name_exception`;
//! - an alias update that would give an alias two write indexes is refused;
//! - bulk answers carry `errors` and per-item statuses; a write through an alias on several
//!   indexes with none marked for writes fails per item; `require_alias=true` refuses
//!   a target that is not an alias (without it, a missing index is auto-created);
//! - a search past `from + size` 10,000 is 400 "Result window is too large".
//!
//! It records every request, and can be told to refuse: whole bulks (503), single documents
//! (an item status and error type), or alias updates.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/opensearch/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

#[derive(Debug, Default, Clone)]
pub struct Index {
    pub docs: BTreeMap<String, Value>,
    /// Alias name → `is_write_index` as set (None when not given).
    pub aliases: BTreeMap<String, Option<bool>>,
    /// Made by a write to a name that was no index (OpenSearch's auto-creation).
    pub auto_created: bool,
    /// As created (`{}` when none was given).
    pub mappings: Value,
}

#[derive(Default)]
pub struct Cluster {
    pub indexes: BTreeMap<String, Index>,
    pub requests: Vec<Recorded>,
    /// The answer to every search, instead of one computed from the documents.
    pub search: Option<(u16, Value)>,
    /// Whole bulk calls still to refuse with 503.
    pub bulk_failures: usize,
    /// Documents whose index operations fail: id → (status, error type).
    pub item_errors: HashMap<String, (u16, String)>,
    /// Alias updates are refused with 500 while set.
    pub refuse_alias_updates: bool,
    /// Each bulk call waits this long before answering.
    pub bulk_delay: Duration,
    /// The `Authorization` header every request must carry (else 401, as a secured cluster).
    pub required_auth: Option<String>,
    /// (index, alias): made, with the alias as write index, just before the next
    /// `HEAD /{alias}` is answered — another replica winning the start-up race.
    pub made_before_head: Option<(String, String)>,
    /// `HEAD /{alias}` is answered once this many have come (or after 5 s): replicas
    /// that look at the same moment, whatever the scheduler does.
    pub heads_together: usize,
}

#[derive(Clone)]
pub struct FakeOpenSearch {
    pub url: String,
    state: Arc<Mutex<Cluster>>,
}

impl FakeOpenSearch {
    pub async fn start() -> FakeOpenSearch {
        let state = Arc::new(Mutex::new(Cluster::default()));
        let shared = state.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .app_data(web::PayloadConfig::new(16 << 20))
                .default_service(web::to(handle))
        })
        .workers(2)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        FakeOpenSearch {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    pub fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.state.lock().unwrap()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.cluster().requests.clone()
    }

    /// Every line of every bulk call, in order.
    pub fn bulk_lines(&self) -> Vec<Value> {
        self.cluster().bulk_lines()
    }

    /// Waits up to `within` for a bulk line satisfying `pred`.
    pub async fn wait_for_bulk(&self, within: Duration, pred: impl Fn(&Value) -> bool) -> bool {
        self.wait_for(within, |c| c.bulk_lines().iter().any(&pred))
            .await
    }

    /// Waits up to `within` for the cluster to satisfy `pred`.
    pub async fn wait_for(&self, within: Duration, pred: impl Fn(&Cluster) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if pred(&self.cluster()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A concrete index with no alias and no mapping, as someone else's (or an older
    /// release's) one.
    pub fn add_index(&self, name: &str) {
        self.cluster()
            .indexes
            .insert(name.to_owned(), Index::default());
    }
}

impl Cluster {
    pub fn bulk_lines(&self) -> Vec<Value> {
        self.requests
            .iter()
            .filter(|r| r.path == "/_bulk")
            .flat_map(|r| {
                r.body
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The indexes holding `alias`.
    pub fn behind(&self, alias: &str) -> Vec<String> {
        self.indexes
            .iter()
            .filter(|(_, i)| i.aliases.contains_key(alias))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The documents searches through `name` (an alias or an index) see.
    pub fn docs_of(&self, name: &str) -> Vec<Value> {
        self.resolve(name)
            .iter()
            .flat_map(|i| self.indexes[i].docs.values().cloned())
            .collect()
    }

    fn resolve(&self, name: &str) -> Vec<String> {
        if self.indexes.contains_key(name) {
            return vec![name.to_owned()];
        }
        self.behind(name)
    }

    /// Where a write to `name` goes: Err is the item's (status, error) as OpenSearch says.
    fn write_target(&mut self, name: &str, require_alias: bool) -> Result<String, (u16, Value)> {
        let behind = self.behind(name);
        if !behind.is_empty() {
            let writers: Vec<&String> = behind
                .iter()
                .filter(|i| self.indexes[*i].aliases[name] == Some(true))
                .collect();
            return match (behind.len(), writers.as_slice()) {
                (_, [one]) => Ok((*one).clone()),
                (1, []) => Ok(behind[0].clone()),
                _ => Err((
                    400,
                    error_body(
                        "illegal_argument_exception",
                        &format!(
                            "no write index is defined for alias [{name}]. The write index may be \
                             explicitly disabled using is_write_index=false or the alias points to \
                             multiple indices without one being designated as a write index"
                        ),
                    ),
                )),
            };
        }
        if self.indexes.contains_key(name) {
            if require_alias {
                return Err((404, require_alias_error(name)));
            }
            return Ok(name.to_owned());
        }
        if require_alias {
            return Err((404, require_alias_error(name)));
        }
        self.indexes.insert(
            name.to_owned(),
            Index {
                auto_created: true,
                ..Index::default()
            },
        );
        Ok(name.to_owned())
    }
}

fn error_body(kind: &str, reason: &str) -> Value {
    json!({"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason})
}

fn require_alias_error(name: &str) -> Value {
    error_body(
        "index_not_found_exception",
        &format!(
            "no such index [{name}] and [require_alias] request flag is [true] and [{name}] is not an alias"
        ),
    )
}

fn error(status: u16, kind: &str, reason: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap())
        .json(json!({"error": error_body(kind, reason), "status": status}))
}

fn index_not_found(name: &str) -> HttpResponse {
    error(
        404,
        "index_not_found_exception",
        &format!("no such index [{name}]"),
    )
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<Cluster>>>,
) -> HttpResponse {
    let text = String::from_utf8_lossy(&body).to_string();
    let delay = {
        let mut c = state.lock().unwrap();
        if let Some(wanted) = &c.required_auth {
            let given = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if given != Some(wanted.as_str()) {
                return error(
                    401,
                    "security_exception",
                    "missing authentication credentials",
                );
            }
        }
        c.requests.push(Recorded {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            body: text.clone(),
        });
        c.bulk_delay
    };
    if req.path() == "/_bulk" && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if req.method() == "HEAD" && req.path() != "/" {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            let all_came = {
                let c = state.lock().unwrap();
                let heads = c
                    .requests
                    .iter()
                    .filter(|r| r.method == "HEAD" && r.path != "/");
                heads.count() >= c.heads_together
            };
            if all_came {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut c = state.lock().unwrap();
    answer(&mut c, &req, &text)
}

fn answer(c: &mut Cluster, req: &HttpRequest, body: &str) -> HttpResponse {
    let path = req.path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ok = |v: Value| HttpResponse::Ok().json(v);
    match (req.method().as_str(), parts.as_slice()) {
        ("HEAD", [""]) => HttpResponse::Ok().finish(),
        ("GET", [""]) => ok(json!({"name": "fake", "cluster_name": "fake",
            "version": {"distribution": "opensearch", "number": "2.17.1"}})),
        ("GET", ["_alias", name]) => {
            let behind = c.behind(name);
            if behind.is_empty() {
                return HttpResponse::NotFound()
                    .json(json!({"error": format!("alias [{name}] missing"), "status": 404}));
            }
            let mut answer = serde_json::Map::new();
            for index in behind {
                let write = c.indexes[&index].aliases[*name];
                let alias = match write {
                    Some(w) => json!({"is_write_index": w}),
                    None => json!({}),
                };
                answer.insert(index, json!({"aliases": {*name: alias}}));
            }
            ok(Value::Object(answer))
        }
        ("HEAD", [name]) => {
            if let Some((index, alias)) = c.made_before_head.take() {
                let mut aliases = BTreeMap::new();
                aliases.insert(alias, Some(true));
                let mappings =
                    carrental::search::opensearch::index_definition()["mappings"].clone();
                c.indexes.insert(
                    index,
                    Index {
                        aliases,
                        mappings,
                        ..Index::default()
                    },
                );
            }
            if c.resolve(name).is_empty() {
                HttpResponse::NotFound().finish()
            } else {
                HttpResponse::Ok().finish()
            }
        }
        ("PUT", [name]) => create_index(c, name, body),
        ("POST", ["_aliases"]) => update_aliases(c, body),
        ("DELETE", [names]) => {
            for name in names.split(',') {
                if c.indexes.remove(name).is_none() {
                    return index_not_found(name);
                }
            }
            ok(json!({"acknowledged": true}))
        }
        ("POST", [target, "_refresh"]) => {
            if c.resolve(target).is_empty() {
                return index_not_found(target);
            }
            ok(json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}))
        }
        ("GET" | "POST", [target, "_count"]) => {
            if c.resolve(target).is_empty() {
                return index_not_found(target);
            }
            ok(json!({"count": c.docs_of(target).len(),
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}))
        }
        ("GET", [target, "_mapping"]) => {
            let names = c.resolve(target);
            if names.is_empty() {
                return index_not_found(target);
            }
            let mut answer = serde_json::Map::new();
            for name in names {
                let mappings = match &c.indexes[&name].mappings {
                    Value::Null => json!({}),
                    m => m.clone(),
                };
                answer.insert(name, json!({"mappings": mappings}));
            }
            ok(Value::Object(answer))
        }
        ("POST", ["_bulk"]) => bulk(c, req.query_string(), body),
        ("GET" | "POST", [target, "_search"]) => search(c, target, body),
        _ => HttpResponse::NotFound().json(json!({"error": "fake: no such route"})),
    }
}

fn create_index(c: &mut Cluster, name: &str, body: &str) -> HttpResponse {
    if c.indexes.contains_key(name) {
        return error(
            400,
            "resource_already_exists_exception",
            &format!("index [{name}/fakeuuid] already exists"),
        );
    }
    let definition: Value = serde_json::from_str(body).unwrap_or(json!({}));
    let mut aliases = BTreeMap::new();
    for (alias, options) in definition["aliases"].as_object().into_iter().flatten() {
        if c.indexes.contains_key(alias) {
            return error(
                400,
                "invalid_alias_name_exception",
                &format!(
                    "Invalid alias name [{alias}]: an index or data stream exists with the same name as the alias"
                ),
            );
        }
        aliases.insert(alias.clone(), options["is_write_index"].as_bool());
    }
    c.indexes.insert(
        name.to_owned(),
        Index {
            aliases,
            mappings: definition["mappings"].clone(),
            ..Index::default()
        },
    );
    HttpResponse::Ok()
        .json(json!({"acknowledged": true, "shards_acknowledged": true, "index": name}))
}

fn update_aliases(c: &mut Cluster, body: &str) -> HttpResponse {
    if c.refuse_alias_updates {
        return error(500, "fake_exception", "alias updates refused");
    }
    let request: Value = serde_json::from_str(body).unwrap_or(json!({}));
    let mut next = c.indexes.clone();
    for action in request["actions"].as_array().into_iter().flatten() {
        if let Some(add) = action.get("add") {
            let (index, alias) = (
                add["index"].as_str().unwrap_or(""),
                add["alias"].as_str().unwrap_or(""),
            );
            if next.contains_key(alias) {
                return error(
                    400,
                    "invalid_alias_name_exception",
                    &format!(
                        "Invalid alias name [{alias}]: an index or data stream exists with the same name as the alias"
                    ),
                );
            }
            let Some(target) = next.get_mut(index) else {
                return index_not_found(index);
            };
            target
                .aliases
                .insert(alias.to_owned(), add["is_write_index"].as_bool());
        } else if let Some(remove) = action.get("remove") {
            let (index, alias) = (
                remove["index"].as_str().unwrap_or(""),
                remove["alias"].as_str().unwrap_or(""),
            );
            let Some(target) = next.get_mut(index) else {
                return index_not_found(index);
            };
            if target.aliases.remove(alias).is_none() {
                return error(
                    404,
                    "aliases_not_found_exception",
                    &format!("aliases [{alias}] missing"),
                );
            }
        }
    }
    let mut writers: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (name, index) in &next {
        for (alias, write) in &index.aliases {
            if *write == Some(true) {
                writers.entry(alias).or_default().push(name);
            }
        }
    }
    if let Some((alias, indexes)) = writers.iter().find(|(_, v)| v.len() > 1) {
        let names: Vec<&str> = indexes.iter().map(|s| s.as_str()).collect();
        return error(
            400,
            "illegal_state_exception",
            &format!(
                "alias [{alias}] has more than one write index [{}]",
                names.join(",")
            ),
        );
    }
    c.indexes = next;
    HttpResponse::Ok().json(json!({"acknowledged": true}))
}

fn bulk(c: &mut Cluster, query: &str, body: &str) -> HttpResponse {
    if c.bulk_failures > 0 {
        c.bulk_failures -= 1;
        return error(503, "unavailable_shards_exception", "fake says no");
    }
    let require_alias = query.split('&').any(|p| p == "require_alias=true");
    let mut lines = body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok());
    let mut items = Vec::new();
    while let Some(line) = lines.next() {
        let Some((action, meta)) = line.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let (action, meta) = (action.clone(), meta.clone());
        let source = if action == "delete" {
            None
        } else {
            lines.next()
        };
        let id = meta["_id"].as_str().unwrap_or("").to_owned();
        let named = meta["_index"].as_str().unwrap_or("").to_owned();
        let refused = c
            .item_errors
            .get(&id)
            .cloned()
            .filter(|_| action != "delete");
        let outcome = match refused {
            Some((status, kind)) => {
                Err((status, error_body(&kind, &format!("fake refused [{id}]"))))
            }
            None => c.write_target(&named, require_alias),
        };
        let item = match outcome {
            Err((status, error)) => {
                json!({"_index": named, "_id": id, "status": status, "error": error})
            }
            Ok(index) => {
                let docs = &mut c.indexes.get_mut(&index).unwrap().docs;
                let (status, result) = match (action.as_str(), source) {
                    ("delete", _) => match docs.remove(&id) {
                        Some(_) => (200, "deleted"),
                        None => (404, "not_found"),
                    },
                    (_, Some(source)) => match docs.insert(id.clone(), source) {
                        Some(_) => (200, "updated"),
                        None => (201, "created"),
                    },
                    (_, None) => (400, "noop"),
                };
                json!({"_index": index, "_id": id, "_version": 1, "result": result,
                    "_shards": {"total": 1, "successful": 1, "failed": 0}, "status": status})
            }
        };
        items.push(json!({action: item}));
    }
    let errors = items.iter().any(|i| {
        i.as_object()
            .and_then(|o| o.values().next())
            .is_some_and(|v| v.get("error").is_some())
    });
    HttpResponse::Ok().json(json!({"took": 1, "errors": errors, "items": items}))
}

fn search(c: &Cluster, target: &str, body: &str) -> HttpResponse {
    if let Some((status, answer)) = &c.search {
        return HttpResponse::build(StatusCode::from_u16(*status).unwrap()).json(answer);
    }
    if c.resolve(target).is_empty() {
        return HttpResponse::NotFound().json(fixture("index_not_found.json"));
    }
    let request: Value = serde_json::from_str(body).unwrap_or(json!({}));
    let from = request["from"].as_u64().unwrap_or(0);
    let size = request["size"].as_u64().unwrap_or(10);
    if from + size > 10_000 {
        let mut refused = fixture("result_window_too_large.json");
        let reason = format!(
            "Result window is too large, from + size must be less than or equal to: [10000] but was [{}]. \
             See the scroll api for a more efficient way to request large data sets. This limit can be set \
             by changing the [index.max_result_window] index level setting.",
            from + size
        );
        refused["error"]["root_cause"][0]["reason"] = json!(reason);
        return HttpResponse::BadRequest().json(refused);
    }
    // No query is evaluated: every active car matches, in id order, at distance 0.
    let mut docs: Vec<Value> = c
        .docs_of(target)
        .into_iter()
        .filter(|d| d["isActive"] == true)
        .collect();
    docs.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let total = docs.len();
    let hits: Vec<Value> = docs
        .into_iter()
        .skip(from as usize)
        .take(size as usize)
        .map(|d| {
            json!({"_index": target, "_id": d["id"], "_score": null,
            "_source": {"car": d["car"]}, "sort": [0.0, d["id"]]})
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "took": 1, "timed_out": false,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": total, "relation": "eq"}, "max_score": null, "hits": hits}
    }))
}
