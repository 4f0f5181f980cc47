//! The OpenSearch engine against a local HTTP stub that answers like OpenSearch 2.x and
//! records what it was sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/opensearch/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    body: String,
}

#[derive(Default)]
struct StubState {
    requests: Vec<Recorded>,
    /// Answer to `POST /{alias}/_search`.
    search: Option<(u16, Value)>,
    /// Bulk calls still to refuse with 503 before accepting.
    bulk_failures: usize,
}

#[derive(Clone)]
struct Stub {
    url: String,
    state: Arc<Mutex<StubState>>,
}

impl Stub {
    async fn start() -> Stub {
        let state = Arc::new(Mutex::new(StubState::default()));
        let shared = state.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .app_data(web::PayloadConfig::new(16 << 20))
                .default_service(web::to(answer))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Stub {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    fn bulk_lines(&self) -> Vec<Value> {
        self.requests()
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

    /// Waits up to `within` for a bulk line satisfying `pred`.
    async fn wait_for_bulk(&self, within: Duration, pred: impl Fn(&Value) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.bulk_lines().iter().any(&pred) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<StubState>>>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    let path = req.path().to_owned();
    let text = String::from_utf8_lossy(&body).to_string();
    s.requests.push(Recorded {
        method: req.method().to_string(),
        path: path.clone(),
        body: text.clone(),
    });
    let ok = |v: Value| HttpResponse::Ok().json(v);
    match (req.method().as_str(), path.as_str()) {
        ("HEAD", "/") => HttpResponse::Ok().finish(),
        ("GET", "/") => ok(
            json!({"name": "stub", "cluster_name": "stub", "version": {"distribution": "opensearch", "number": "2.11.0"}}),
        ),
        ("GET", p) if p.starts_with("/_alias/") => {
            ok(json!({"cars_20260101000000000": {"aliases": {&p[8..]: {}}}}))
        }
        ("POST", "/_bulk") if s.bulk_failures > 0 => {
            s.bulk_failures -= 1;
            HttpResponse::ServiceUnavailable().json(
                json!({"error": {"type": "unavailable", "reason": "stub says no"}, "status": 503}),
            )
        }
        ("POST", "/_bulk") => {
            // Accept every item, answering in OpenSearch's shape.
            let items: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|l| {
                    let (action, meta) = l.as_object()?.iter().next().map(|(a, m)| (a.clone(), m.clone()))?;
                    matches!(action.as_str(), "index" | "delete").then(|| {
                        {
                        let status = if action == "index" { 201 } else { 200 };
                        json!({action: {"_index": meta["_index"], "_id": meta["_id"], "status": status}})
                    }
                    })
                })
                .collect();
            ok(json!({"took": 1, "errors": false, "items": items}))
        }
        ("POST", p) if p.ends_with("/_search") => match &s.search {
            Some((status, body)) => {
                HttpResponse::build(actix_web::http::StatusCode::from_u16(*status).unwrap())
                    .json(body)
            }
            None => HttpResponse::NotFound().json(fixture("index_not_found.json")),
        },
        ("PUT", _) => ok(
            json!({"acknowledged": true, "shards_acknowledged": true, "index": path.trim_start_matches('/')}),
        ),
        ("POST", "/_aliases") | ("DELETE", _) => ok(json!({"acknowledged": true})),
        ("POST", p) if p.ends_with("/_refresh") => {
            ok(json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}))
        }
        _ => HttpResponse::NotFound().json(json!({"error": "stub: no such route"})),
    }
}

async fn app_on(stub: &Stub) -> TestApp {
    spawn_app_with(Backend::Sqlite, &[("OPENSEARCH_URL", &stub.url)]).await
}

/// In a split deployment the cars process writes the index job and the search process
/// drains it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn car_changes_reach_the_index_across_processes() {
    let stub = Stub::start().await;
    let app = spawn_app_with(Backend::Split, &[("OPENSEARCH_URL", &stub.url)]).await;
    let admin = app.admin_token().await;
    let id = id_of(&app.create_car(&admin, json!({"pricePerDay": 77})).await);
    let indexed = stub
        .wait_for_bulk(Duration::from_secs(2), |l| {
            l["id"] == id.as_str() && l["priceMinor"] == 7700
        })
        .await;
    assert!(indexed, "{:?}", stub.requests());
    let res = app
        .send(
            Method::DELETE,
            &format!("/cars/{id}"),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let removed = stub
        .wait_for_bulk(Duration::from_secs(2), |l| {
            l["delete"]["_id"] == id.as_str()
        })
        .await;
    assert!(removed, "{:?}", stub.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn car_changes_reach_the_index_within_a_second() {
    let stub = Stub::start().await;
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    let car = app.create_car(&admin, json!({"pricePerDay": 120.5})).await;
    let id = id_of(&car);

    let indexed = stub
        .wait_for_bulk(Duration::from_secs(1), |l| {
            l["id"] == id.as_str() && l["priceMinor"] == 12050
        })
        .await;
    assert!(
        indexed,
        "created car not indexed within 1 s: {:?}",
        stub.requests()
    );
    let doc = stub
        .bulk_lines()
        .into_iter()
        .find(|l| l["id"] == id.as_str())
        .unwrap();
    assert_eq!(doc["location"], json!({"lat": 37.7749, "lon": -122.4194}));
    assert_eq!(
        doc["car"], car,
        "the document carries the car as the API answers it"
    );
    assert_eq!(doc["isActive"], true);

    app.send(
        Method::PATCH,
        &format!("/cars/{id}"),
        &json!({"pricePerDay": 99}),
        Some(&admin),
    )
    .await;
    assert!(
        stub.wait_for_bulk(Duration::from_secs(1), |l| l["id"] == id.as_str()
            && l["priceMinor"] == 9900)
            .await
    );
    app.send(
        Method::PATCH,
        &format!("/cars/{id}"),
        &json!({"isActive": false}),
        Some(&admin),
    )
    .await;
    assert!(
        stub.wait_for_bulk(Duration::from_secs(1), |l| l["id"] == id.as_str()
            && l["isActive"] == false)
            .await
    );
    app.send(
        Method::DELETE,
        &format!("/cars/{id}"),
        &json!({}),
        Some(&admin),
    )
    .await;
    assert!(
        stub.wait_for_bulk(Duration::from_secs(1), |l| l["delete"]["_id"]
            == id.as_str())
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_catches_up_after_opensearch_refused_writes() {
    let stub = Stub::start().await;
    stub.state.lock().unwrap().bulk_failures = 2;
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    let id = id_of(&app.create_car(&admin, json!({})).await);
    // Refused twice (backoff 0.5 s, then 1 s), then written; then nothing more to do.
    let bulks_with_car = || {
        stub.requests()
            .iter()
            .filter(|r| r.path == "/_bulk" && r.body.contains(id.as_str()))
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while bulks_with_car() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(bulks_with_car(), 3, "two refusals, one success, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_go_to_opensearch_with_availability_inside_the_query() {
    let stub = Stub::start().await;
    stub.state.lock().unwrap().search = Some((200, fixture("search_response.json")));
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    let customer = app.customer_token().await;
    let busy = id_of(&app.create_car(&admin, json!({})).await);
    let pickup = days_ahead(3);
    assert_eq!(
        app.book(&customer, &busy, pickup, 24).await.status(),
        StatusCode::CREATED
    );

    let from = pickup.to_rfc3339().replace('+', "%2B");
    let to = (pickup + chrono::Duration::hours(5))
        .to_rfc3339()
        .replace('+', "%2B");
    let res = app
        .get(&format!("/search?lat=48.8566&lng=2.3522&query=telsa&sort=distance&pickupTime={from}&dropoffTime={to}"), None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["total"], 37,
        "total comes from OpenSearch's hits.total"
    );
    assert_eq!(body["totalPages"], 2);
    assert_eq!(body["data"][0]["name"], "Tesla Model 3");
    assert_eq!(body["data"][0]["distanceKm"], json!(1.23));

    let sent = stub
        .requests()
        .into_iter()
        .find(|r| r.path == "/cars/_search")
        .expect("a search was sent");
    assert_eq!(sent.method, "POST");
    let sent: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        sent["query"]["bool"]["must_not"],
        json!([{"ids": {"values": [busy]}}])
    );
    assert_eq!(
        sent["query"]["bool"]["filter"][2]["multi_match"]["query"],
        "telsa"
    );
    assert_eq!(sent["track_total_hits"], true);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"carrental_searches_total{engine="opensearch"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_index_falls_back_to_the_database() {
    let stub = Stub::start().await;
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    let id = id_of(&app.create_car(&admin, json!({})).await);
    // The stub answers searches with index_not_found_exception.
    let res = app.get("/search?lat=37.7749&lng=-122.4194", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["total"], 1);
    assert_eq!(body["data"][0]["id"], id.as_str());
    assert_eq!(body["data"][0]["distanceKm"], json!(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_opensearch_means_database_answers_and_degraded_readiness() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("OPENSEARCH_URL", &format!("http://127.0.0.1:{closed}"))],
    )
    .await;
    let admin = app.admin_token().await;
    let id = id_of(&app.create_car(&admin, json!({})).await);
    let body: Value = app
        .get("/search?lat=37.7749&lng=-122.4194", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"][0]["id"], id.as_str());

    let res = app.get("/health/ready", None).await;
    assert_eq!(res.status(), StatusCode::OK, "degraded still serves");
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["checks"]["search"]["status"], "degraded");
    assert_eq!(ready["checks"]["search"]["fallback"], "database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_builds_a_new_index_and_moves_the_alias() {
    let stub = Stub::start().await;
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(&app.create_car(&admin, json!({})).await));
    }
    let run = |url: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_carrental"));
        cmd.arg("reindex")
            .env("APP_ENV", "test")
            .env(
                "APP_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            )
            .env("DATABASE_URL", &app.db.url);
        if let Some(url) = url {
            cmd.env("OPENSEARCH_URL", url);
        }
        cmd.output().unwrap()
    };
    let out = run(None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to rebuild"));

    let out = run(Some(&stub.url));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("indexed 3 cars"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let calls: Vec<(String, String)> = stub
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let created = calls
        .iter()
        .find(|(m, p)| m == "PUT" && p.starts_with("/cars_"))
        .expect("new index created")
        .1
        .clone();
    let new_index = created.trim_start_matches('/').to_owned();
    let put_body = stub
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap()
        .body;
    let mapping: Value = serde_json::from_str(&put_body).unwrap();
    assert_eq!(
        mapping["mappings"]["properties"]["location"]["type"],
        "geo_point"
    );
    let lines = stub.bulk_lines();
    for id in &ids {
        assert!(lines.iter().any(
            |l| l["index"]["_id"] == id.as_str() && l["index"]["_index"] == new_index.as_str()
        ));
    }
    let alias = stub
        .requests()
        .into_iter()
        .find(|r| r.path == "/_aliases")
        .expect("alias moved");
    let actions: Value = serde_json::from_str(&alias.body).unwrap();
    assert_eq!(
        actions,
        json!({"actions": [{"remove": {"index": "cars_20260101000000000", "alias": "cars"}}, {"add": {"index": new_index, "alias": "cars"}}]})
    );
    let order: Vec<&str> = calls
        .iter()
        .map(|(_, p)| p.as_str())
        .filter(|p| *p == "/_aliases" || p.ends_with("/_refresh"))
        .collect();
    assert_eq!(order.len(), 2);
    assert!(
        order[0].ends_with("/_refresh"),
        "refreshed before the alias moved: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|(m, p)| m == "DELETE" && p == "/cars_20260101000000000"),
        "old index dropped"
    );
}
