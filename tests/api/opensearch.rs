//! The OpenSearch engine against a fake cluster that answers like OpenSearch 2.x and
//! records what it was sent (`fake_opensearch.rs`).

use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::fake_opensearch::{fixture, FakeOpenSearch as Stub};
use crate::helpers::*;

/// Runs `carrental reindex` on the app's database, against `url` when given.
fn reindex(app: &TestApp, url: Option<&str>) -> std::process::Output {
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
    stub.cluster().bulk_failures = 2;
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
    stub.cluster().search = Some((200, fixture("search_response.json")));
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
        sent["query"]["bool"]["filter"][2]["match"]["words"]["query"],
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
    stub.cluster().search = Some((404, fixture("index_not_found.json")));
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
    let run = |url: Option<&str>| reindex(&app, url);
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
    let new_index = calls
        .iter()
        .filter(|(m, p)| m == "PUT" && p.starts_with("/cars_") && p != "/cars_initial")
        .map(|(_, p)| p.trim_start_matches('/').to_owned())
        .next()
        .expect("new index created");
    let put_body = stub
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path == format!("/{new_index}"))
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
        json!({"actions": [{"remove": {"index": "cars_initial", "alias": "cars"}}, {"add": {"index": new_index, "alias": "cars", "is_write_index": true}}]})
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
    let c = stub.cluster();
    assert_eq!(
        c.indexes.keys().collect::<Vec<_>>(),
        [&new_index],
        "the old index is dropped, nothing else is left"
    );
    assert_eq!(c.behind("cars"), [new_index]);
    assert_eq!(c.docs_of("cars").len(), 3);
}

/// Why the server refuses to start with these settings (it must refuse: else `why` panics).
async fn start_error(settings: carrental::config::Settings, why: &str) -> String {
    match carrental::startup::Application::build(settings).await {
        Ok(_) => panic!("{why}"),
        Err(e) => format!("{e:#}"),
    }
}

async fn ready(app: &TestApp) -> Value {
    app.get("/health/ready", None).await.json().await.unwrap()
}

/// Polls `/health/ready` until `pred` holds of it; answers the last one seen.
async fn ready_when(app: &TestApp, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = ready(app).await;
        if pred(&seen) || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn searches_by(app: &TestApp, engine: &str) -> u64 {
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let prefix = format!("carrental_searches_total{{engine=\"{engine}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

/// Fault 1: both engines split text the same way, so "2.0" and "child's" find the car.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_is_indexed_as_the_database_engine_splits_it() {
    let stub = Stub::start().await;
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    let id = id_of(
        &app.create_car(
            &admin,
            json!({"name": "Golf 2.0 TDI", "features": ["Child's seat"]}),
        )
        .await,
    );
    let indexed = stub
        .wait_for(Duration::from_secs(2), |c| {
            c.docs_of("cars").iter().any(|d| d["id"] == id.as_str())
        })
        .await;
    assert!(indexed);
    let doc = stub
        .cluster()
        .docs_of("cars")
        .into_iter()
        .find(|d| d["id"] == id.as_str())
        .unwrap();
    let words: Vec<String> = doc["words"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect();
    for word in ["golf", "2", "0", "tdi", "child", "s", "seat"] {
        assert!(words.iter().any(|w| w == word), "{word} in {words:?}");
    }
    let mapping = stub
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap()
        .body;
    let mapping: Value = serde_json::from_str(&mapping).unwrap();
    assert_eq!(
        mapping["mappings"]["properties"]["words"]["analyzer"],
        "whitespace"
    );
}

/// Fault 2: replicas starting at once on an empty cluster make one index, the write index.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_make_one_index() {
    let stub = Stub::start().await;
    stub.cluster().heads_together = 2;
    let env = [("OPENSEARCH_URL", stub.url.as_str())];
    let (a, b) = tokio::join!(
        spawn_app_with(Backend::Sqlite, &env),
        spawn_app_with(Backend::Sqlite, &env)
    );
    {
        let c = stub.cluster();
        assert_eq!(
            c.indexes.keys().cloned().collect::<Vec<_>>(),
            ["cars_initial"]
        );
        assert_eq!(c.indexes["cars_initial"].aliases["cars"], Some(true));
    }
    let creates = stub.requests().iter().filter(|r| r.method == "PUT").count();
    assert_eq!(creates, 2, "both tried, under the same name");
    let (ta, tb) = (a.admin_token().await, b.admin_token().await);
    a.create_car(&ta, json!({})).await;
    b.create_car(&tb, json!({})).await;
    assert!(
        stub.wait_for(Duration::from_secs(3), |c| c.docs_of("cars").len() == 2)
            .await,
        "both replicas write through the alias"
    );
}

/// Fault 2: the alias another replica made between this one's two looks is not taken for
/// a concrete index of that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_made_meanwhile_by_another_replica_is_used() {
    let stub = Stub::start().await;
    stub.cluster().made_before_head = Some(("cars_initial".into(), "cars".into()));
    let app = app_on(&stub).await;
    assert_eq!(stub.cluster().behind("cars"), ["cars_initial"]);
    assert_eq!(ready(&app).await["checks"]["search"]["status"], "up");
}

/// Fault 3: a concrete index holding the alias name is refused at start, clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concrete_index_named_like_the_alias_is_refused_at_start() {
    let stub = Stub::start().await;
    stub.add_index("cars");
    let db = TestDatabase::new(Backend::Sqlite);
    let settings = test_settings(&db.url, &[("OPENSEARCH_URL", &stub.url)]);
    let error = start_error(settings, "started beside a concrete index named cars").await;
    assert!(
        error.contains("index named cars") && error.contains("OPENSEARCH_INDEX"),
        "{error}"
    );
    assert_eq!(
        stub.cluster().indexes.keys().cloned().collect::<Vec<_>>(),
        ["cars"],
        "no index made beside it"
    );
}

/// Fault 3: writes require the alias, so a vanished alias is made again, never replaced
/// by an auto-created index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_never_auto_create_an_index_when_the_alias_is_gone() {
    let stub = Stub::start().await;
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    stub.cluster()
        .indexes
        .get_mut("cars_initial")
        .unwrap()
        .aliases
        .clear();
    let id = id_of(&app.create_car(&admin, json!({})).await);
    let indexed = stub
        .wait_for(Duration::from_secs(4), |c| {
            c.docs_of("cars").iter().any(|d| d["id"] == id.as_str())
        })
        .await;
    assert!(indexed, "{:?}", stub.requests());
    let c = stub.cluster();
    assert!(c.indexes.values().all(|i| !i.auto_created));
    assert_eq!(c.behind("cars"), ["cars_initial"]);
    let bulks: Vec<_> = c.requests.iter().filter(|r| r.path == "/_bulk").collect();
    assert!(bulks.iter().all(|r| r.query.contains("require_alias=true")));
}

/// Fault 3: a reindex whose alias move fails removes the index it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reindex_leaves_no_index_behind() {
    let stub = Stub::start().await;
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    app.create_car(&admin, json!({})).await;
    stub.cluster().refuse_alias_updates = true;
    let out = reindex(&app, Some(&stub.url));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alias updates refused"));
    assert_eq!(
        stub.cluster().indexes.keys().cloned().collect::<Vec<_>>(),
        ["cars_initial"]
    );
}

/// Fault 4: an index missing cars is filled from the database, which answers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_missing_cars_is_filled_while_the_database_answers() {
    let first = spawn_app(Backend::Sqlite).await;
    let admin = first.admin_token().await;
    for _ in 0..3 {
        first.create_car(&admin, json!({})).await;
    }
    let stub = Stub::start().await;
    stub.cluster().bulk_delay = Duration::from_secs(2);
    let app = spawn_app_sharing(&first, &[("OPENSEARCH_URL", &stub.url)]).await;
    let seen = ready_when(&app, Duration::from_secs(8), |r| {
        r["checks"]["search"]["status"] == "degraded"
    })
    .await;
    let reason = seen["checks"]["search"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("holds 0 of 3 cars"), "{seen}");
    let res = app.get("/search?lat=37.7749&lng=-122.4194", None).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["total"], 3);
    assert_eq!(searches_by(&app, "database").await, 1);
    assert_eq!(searches_by(&app, "opensearch").await, 0);

    assert!(
        stub.wait_for(Duration::from_secs(8), |c| c.docs_of("cars").len() == 3)
            .await
    );
    let seen = ready_when(&app, Duration::from_secs(4), |r| {
        r["checks"]["search"]["status"] == "up"
    })
    .await;
    assert_eq!(seen["checks"]["search"]["status"], "up", "{seen}");
    app.get("/search?lat=37.7749&lng=-122.4194", None).await;
    assert_eq!(searches_by(&app, "opensearch").await, 1);
}

/// An index built by an older release (another mapping) is rebuilt behind the alias; the
/// database answers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_built_by_an_older_version_is_rebuilt() {
    let first = spawn_app(Backend::Sqlite).await;
    let admin = first.admin_token().await;
    first.create_car(&admin, json!({})).await;
    let stub = Stub::start().await;
    stub.add_index("cars_20250101000000000");
    stub.cluster()
        .indexes
        .get_mut("cars_20250101000000000")
        .unwrap()
        .aliases
        .insert("cars".into(), Some(true));
    let app = spawn_app_sharing(&first, &[("OPENSEARCH_URL", &stub.url)]).await;
    let rebuilt = stub
        .wait_for(Duration::from_secs(5), |c| {
            let behind = c.behind("cars");
            behind.len() == 1
                && behind[0] != "cars_20250101000000000"
                && c.docs_of("cars").len() == 1
        })
        .await;
    assert!(rebuilt, "{:?}", stub.requests());
    assert!(!stub
        .cluster()
        .indexes
        .contains_key("cars_20250101000000000"));
    let seen = ready_when(&app, Duration::from_secs(3), |r| {
        r["checks"]["search"]["status"] == "up"
    })
    .await;
    assert_eq!(seen["checks"]["search"]["status"], "up", "{seen}");
}

/// Fault 5: a document OpenSearch refuses (400) is parked at once and counted; a busy
/// cluster (429) is retried until it takes the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_documents_are_parked_and_busy_ones_retried() {
    let stub = Stub::start().await;
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    let bad = id_of(&app.create_car(&admin, json!({})).await);
    let busy = id_of(&app.create_car(&admin, json!({})).await);
    assert!(
        stub.wait_for(Duration::from_secs(3), |c| c.docs_of("cars").len() == 2)
            .await
    );
    // Both were written once; from now on one is refused, the other pushed back.
    {
        let mut c = stub.cluster();
        c.item_errors
            .insert(bad.clone(), (400, "mapper_parsing_exception".into()));
        c.item_errors
            .insert(busy.clone(), (429, "rejected_execution_exception".into()));
    }
    for id in [&bad, &busy] {
        let res = app
            .send(
                Method::PATCH,
                &format!("/cars/{id}"),
                &json!({"pricePerDay": 42}),
                Some(&admin),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let tries = |id: &str| {
        stub.bulk_lines()
            .iter()
            .filter(|l| l["id"] == id && l["priceMinor"] == 4200)
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tries(&busy) < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tries(&busy) >= 3, "429 is retried");
    assert_eq!(tries(&bad), 1, "400 is not retried");
    stub.cluster().item_errors.remove(&busy);
    assert!(
        stub.wait_for(Duration::from_secs(5), |c| c
            .docs_of("cars")
            .iter()
            .any(|d| d["id"] == busy.as_str() && d["priceMinor"] == 4200))
            .await
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("carrental_search_index_rejected_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"carrental_outbox_jobs{status="failed",topic="search"} 1"#),
        "{metrics}"
    );
}

/// Fault 6: pages past OpenSearch's 10,000-hit window are answered by the database (a
/// page past the end stays a 200), without calling search degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_pages_are_answered_by_the_database() {
    let stub = Stub::start().await;
    let app = app_on(&stub).await;
    let admin = app.admin_token().await;
    app.create_car(&admin, json!({})).await;
    let res = app
        .get("/search?lat=37.7749&lng=-122.4194&page=501&limit=20", None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["total"], 1);
    assert_eq!(body["data"], json!([]));
    assert_eq!(searches_by(&app, "database").await, 1);
    let searches = || {
        stub.requests()
            .iter()
            .filter(|r| r.path.ends_with("/_search"))
            .count()
    };
    assert_eq!(searches(), 0, "OpenSearch is not asked past its window");
    let res = app
        .get("/search?lat=37.7749&lng=-122.4194&page=500&limit=20", None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(searches_by(&app, "opensearch").await, 1, "9,980 + 20 fits");
    assert_eq!(searches(), 1);
    assert_eq!(ready(&app).await["checks"]["search"]["status"], "up");
}

/// Fault 7: maintenance calls have their own, longer timeout than searches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_bulk_is_not_cut_by_the_search_timeout() {
    let stub = Stub::start().await;
    stub.cluster().bulk_delay = Duration::from_millis(1500);
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("OPENSEARCH_URL", &stub.url),
            ("APP__SEARCH__TIMEOUT", "1s"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let id = id_of(&app.create_car(&admin, json!({})).await);
    assert!(
        stub.wait_for(Duration::from_secs(5), |c| c
            .docs_of("cars")
            .iter()
            .any(|d| d["id"] == id.as_str()))
            .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines = stub.bulk_lines();
    assert_eq!(
        lines.iter().filter(|l| l["id"] == id.as_str()).count(),
        1,
        "written once, not timed out and retried"
    );
}

/// Fault 8: readiness reports an alias on two indexes, and searches leave it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_an_alias_on_two_indexes() {
    let stub = Stub::start().await;
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("OPENSEARCH_URL", &stub.url),
            ("APP__SEARCH__CHECK_EVERY", "200ms"),
        ],
    )
    .await;
    assert_eq!(ready(&app).await["checks"]["search"]["status"], "up");
    stub.add_index("cars_20260101000000000");
    stub.cluster()
        .indexes
        .get_mut("cars_20260101000000000")
        .unwrap()
        .aliases
        .insert("cars".into(), None);
    let seen = ready_when(&app, Duration::from_secs(3), |r| {
        r["checks"]["search"]["status"] == "degraded"
    })
    .await;
    assert_eq!(seen["status"], "degraded", "{seen}");
    let reason = seen["checks"]["search"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("points at 2 indexes"), "{seen}");
    app.get("/search?lat=37.7749&lng=-122.4194", None).await;
    assert_eq!(searches_by(&app, "database").await, 1);
    assert_eq!(searches_by(&app, "opensearch").await, 0);
}

/// Fault 9: a secured cluster, with basic auth or an API key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_clusters_are_reached_with_basic_auth_or_an_api_key() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for (header, env) in [
        (
            format!("Basic {}", b64("admin:S3cret-pass")),
            vec![
                ("OPENSEARCH_USERNAME", "admin"),
                ("OPENSEARCH_PASSWORD", "S3cret-pass"),
            ],
        ),
        (
            format!("ApiKey {}", b64("key-id:key-secret")),
            vec![("OPENSEARCH_API_KEY", "key-id:key-secret")],
        ),
    ] {
        let stub = Stub::start().await;
        stub.cluster().required_auth = Some(header);
        let mut env = env;
        env.push(("OPENSEARCH_URL", &stub.url));
        let app = spawn_app_with(Backend::Sqlite, &env).await;
        assert_eq!(ready(&app).await["checks"]["search"]["status"], "up");
        app.get("/search?lat=37.7749&lng=-122.4194", None).await;
        assert_eq!(searches_by(&app, "opensearch").await, 1);
    }
    let db = TestDatabase::new(Backend::Sqlite);
    let settings = test_settings(
        &db.url,
        &[
            ("OPENSEARCH_URL", "https://127.0.0.1:9"),
            ("OPENSEARCH_CA_CERT", "/nonexistent/ca.pem"),
        ],
    );
    let error = start_error(settings, "started with a CA file that does not exist").await;
    assert!(
        error.contains("OPENSEARCH_CA_CERT /nonexistent/ca.pem"),
        "{error}"
    );
}

/// The faults above against a real cluster (`TEST_OPENSEARCH_URL`, with
/// `OPENSEARCH_USERNAME`/`OPENSEARCH_PASSWORD` or `OPENSEARCH_API_KEY`, and
/// `OPENSEARCH_CA_CERT` for a self-signed one). Each test uses an alias of its own.
mod opensearch_cluster {
    use super::*;

    struct Cluster {
        url: String,
        alias: String,
        client: reqwest::Client,
        env: Vec<(String, String)>,
    }

    impl Cluster {
        fn new() -> Cluster {
            let url = std::env::var("TEST_OPENSEARCH_URL")
                .expect("TEST_OPENSEARCH_URL must point at an OpenSearch cluster");
            let alias = format!("carrental_test_{}", uuid::Uuid::new_v4().simple());
            let mut env = opensearch_cluster_env();
            let mut client = reqwest::Client::builder();
            if let Ok(ca) = std::env::var("OPENSEARCH_CA_CERT") {
                let pem = std::fs::read(ca).unwrap();
                client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
            }
            env.push(("OPENSEARCH_URL".into(), url.clone()));
            env.push(("OPENSEARCH_INDEX".into(), alias.clone()));
            Cluster {
                url,
                alias,
                client: client.build().unwrap(),
                env,
            }
        }

        fn env(&self) -> Vec<(&str, &str)> {
            self.env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        }

        async fn call(&self, method: Method, path: &str) -> (StatusCode, Value) {
            let mut req = self.client.request(method, format!("{}{path}", self.url));
            if let (Ok(user), Ok(password)) = (
                std::env::var("OPENSEARCH_USERNAME"),
                std::env::var("OPENSEARCH_PASSWORD"),
            ) {
                req = req.basic_auth(user, Some(password));
            } else if let Ok(key) = std::env::var("OPENSEARCH_API_KEY") {
                let key = if key.contains(':') {
                    base64::engine::general_purpose::STANDARD.encode(key)
                } else {
                    key
                };
                req = req.header("Authorization", format!("ApiKey {key}"));
            }
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json().await.unwrap_or(Value::Null))
        }

        async fn behind_alias(&self) -> Vec<String> {
            let (status, body) = self
                .call(Method::GET, &format!("/_alias/{}", self.alias))
                .await;
            if status == StatusCode::NOT_FOUND {
                return Vec::new();
            }
            let mut names: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
            names.sort();
            names
        }

        async fn count(&self) -> i64 {
            self.call(Method::POST, &format!("/{}/_refresh", self.alias))
                .await;
            let (_, body) = self
                .call(Method::POST, &format!("/{}/_count", self.alias))
                .await;
            body["count"].as_i64().unwrap_or(-1)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs TEST_OPENSEARCH_URL (a real cluster)"]
    async fn two_servers_starting_at_once_make_one_write_index() {
        let cluster = Cluster::new();
        let env = cluster.env();
        let (a, _b) = tokio::join!(
            spawn_app_with(Backend::Postgres, &env),
            spawn_app_with(Backend::Postgres, &env)
        );
        assert_eq!(cluster.behind_alias().await.len(), 1);
        let admin = a.admin_token().await;
        a.create_car(&admin, json!({})).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(cluster.count().await, 1, "writes go through the alias");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs TEST_OPENSEARCH_URL (a real cluster)"]
    async fn a_concrete_index_named_like_the_alias_is_refused() {
        let cluster = Cluster::new();
        cluster
            .call(Method::PUT, &format!("/{}", cluster.alias))
            .await;
        let db = TestDatabase::new(Backend::Postgres);
        let settings = test_settings(&db.url, &cluster.env());
        let error = start_error(
            settings,
            "started beside a concrete index named like the alias",
        )
        .await;
        assert!(error.contains("OPENSEARCH_INDEX"), "{error}");
        cluster
            .call(Method::DELETE, &format!("/{}", cluster.alias))
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs TEST_OPENSEARCH_URL (a real cluster)"]
    async fn an_existing_database_is_indexed_then_reindexed() {
        let cluster = Cluster::new();
        let first = spawn_app(Backend::Postgres).await;
        let admin = first.admin_token().await;
        for _ in 0..3 {
            first
                .create_car(
                    &admin,
                    json!({"name": "Golf 2.0 TDI", "features": ["Child's seat"]}),
                )
                .await;
        }
        let app = spawn_app_sharing(&first, &cluster.env()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while cluster.count().await < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(cluster.count().await, 3, "filled from the database");
        let seen = ready_when(&app, Duration::from_secs(5), |r| {
            r["checks"]["search"]["status"] == "up"
        })
        .await;
        assert_eq!(seen["checks"]["search"]["status"], "up", "{seen}");
        for text in ["2.0", "child%27s"] {
            let body: Value = app
                .get(
                    &format!("/search?lat=37.7749&lng=-122.4194&query={text}"),
                    None,
                )
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(body["total"], 3, "{text}");
        }
        assert!(searches_by(&app, "opensearch").await >= 2);

        let old = cluster.behind_alias().await;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_carrental"));
        cmd.arg("reindex")
            .env("APP_ENV", "test")
            .env(
                "APP_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            )
            .env("DATABASE_URL", &app.db.url)
            .envs(cluster.env.iter().cloned());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let now = cluster.behind_alias().await;
        assert_eq!(now.len(), 1);
        assert_ne!(now, old, "the alias moved");
        let (status, _) = cluster.call(Method::HEAD, &format!("/{}", old[0])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the old index is deleted");
        assert_eq!(cluster.count().await, 3);
        cluster.call(Method::DELETE, &format!("/{}", now[0])).await;
    }
}
