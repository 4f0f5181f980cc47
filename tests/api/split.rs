//! The split deployment as such: every process a gateway, internal routes, a module going
//! down and coming back, and the guarantees that cross processes. (Every other test of the
//! suite also runs through a split deployment, as `name::split`.)

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

async fn split() -> TestApp {
    spawn_app(Backend::Split).await
}

fn topology(app: &TestApp) -> &Topology {
    app.topology.as_ref().expect("a split deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_process_is_an_entry_point_with_the_same_answers() {
    let app = split().await;
    let admin = app.admin_token().await;
    let token = app.customer_token().await;
    let car = app
        .create_car(
            &admin,
            json!({"location": {"latitude": 48.85, "longitude": 2.35}}),
        )
        .await;
    let booking: Value = app
        .book(&token, &id_of(&car), days_ahead(3), 24)
        .await
        .json()
        .await
        .unwrap();
    // The messages go out in the background: let them, so that every process answers the
    // same state rather than a moment of it.
    all_sent(&app, &token).await;
    let paths = [
        "/auth/me".to_owned(),
        format!("/cars/{}", id_of(&car)),
        "/cars?limit=5".to_owned(),
        "/search?lat=48.85&lng=2.35&radius=5".to_owned(),
        format!("/bookings/{}", id_of(&booking)),
        "/bookings".to_owned(),
        "/notifications".to_owned(),
        "/no/such/route".to_owned(),
    ];
    for path in &paths {
        let via = |process: &'static str| {
            let url = format!("{}{path}", topology(&app).url(process));
            app.client
                .get(url)
                .bearer_auth(&token)
                .header("X-Request-ID", "same-id")
                .send()
        };
        let first = via("gateway").await.unwrap();
        let (status, body) = (first.status(), first.text().await.unwrap());
        for process in SPLIT {
            let res = via(process).await.unwrap();
            assert_eq!(res.status(), status, "{path} through {process}");
            assert_eq!(
                res.headers()["x-request-id"],
                "same-id",
                "{path} through {process}"
            );
            assert_eq!(res.text().await.unwrap(), body, "{path} through {process}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_is_the_same_end_to_end() {
    let app = split().await;
    let missing = format!("/cars/{}", uuid::Uuid::new_v4());
    let res = app
        .client
        .get(app.url(&missing))
        .header("X-Request-ID", "trace-42")
        .send()
        .await
        .unwrap();
    // The body is written by the cars process, the header by the gateway.
    let body = assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(body["error"]["requestId"], "trace-42");
    // A request body and its headers arrive whole: a validation error names the field.
    let res = app
        .client
        .post(app.url("/auth/signup"))
        .header("Content-Type", "application/json")
        .header("Connection", "keep-alive, X-Drop-Me")
        .header("X-Drop-Me", "hop")
        .body(r#"{"email": "not-an-email", "password": "Secret123"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(validation_fields(res).await, ["email"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_down_is_a_fast_503_and_comes_back() {
    let app = split().await;
    let token = app.customer_token().await;
    let t = topology(&app);
    t.kill_process("bookings");

    let start = Instant::now();
    let body = assert_error(
        app.get("/bookings", Some(&token)).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bookings"),
        "{body}"
    );
    // Search with a window needs bookings (availability): 503 too, never a hang.
    let res = app
        .get(
            &format!(
                "/search?lat=1&lng=1&pickupTime={}&dropoffTime={}",
                days_ahead(1).to_rfc3339().replace('+', "%2B"),
                days_ahead(2).to_rfc3339().replace('+', "%2B")
            ),
            None,
        )
        .await;
    assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE").await;
    // Everything else still answers.
    assert_eq!(app.get("/cars", None).await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/auth/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/search?lat=1&lng=1", None).await.status(),
        StatusCode::OK
    );
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "a forwarded module down degrades, it does not unready"
    );
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["checks"]["bookings"]["status"], "down");
    assert_eq!(ready["checks"]["cars"]["status"], "up");

    t.start_process("bookings");
    t.wait_until_up("bookings").await;
    let mut back = false;
    for _ in 0..60 {
        if app.get("/bookings", Some(&token)).await.status() == StatusCode::OK {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "bookings answers again once its process is back");
    let ready: Value = app.get("/health/ready", None).await.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_routes_need_the_token_and_are_never_forwarded() {
    let app = split().await;
    let admin = app.admin_token().await;
    let car = id_of(&app.create_car(&admin, json!({})).await);
    let cars = topology(&app).url("cars");
    let get = |url: String, token: Option<&'static str>| {
        let mut req = app.client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let path = format!("{cars}/internal/cars/{car}");
    assert_error(
        get(path.clone(), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "AUTH_ERROR",
    )
    .await;
    assert_error(
        get(path.clone(), Some("wrong")).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "AUTH_ERROR",
    )
    .await;
    let res = get(path, Some(INTERNAL_TOKEN)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let summary: Value = res.json().await.unwrap();
    assert_eq!(summary["id"], car);
    let unknown = format!("{cars}/internal/cars/{}", uuid::Uuid::new_v4());
    assert_eq!(
        get(unknown, Some(INTERNAL_TOKEN))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        Value::Null
    );

    // The gateway never forwards them, token or not.
    let through = app.url(&format!("/internal/cars/{car}"));
    assert_error(
        get(through.clone(), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "AUTH_ERROR",
    )
    .await;
    assert_error(
        get(through, Some(INTERNAL_TOKEN)).await.unwrap(),
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let res = get(app.url("/internal/openapi.json"), Some(INTERNAL_TOKEN))
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the gateway's own internal document"
    );
    let internal: Value = res.json().await.unwrap();
    assert!(internal["paths"]["/internal/cars/{id}"]["get"].is_object());
    let public: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert!(public["paths"]
        .as_object()
        .unwrap()
        .keys()
        .all(|p| !p.starts_with("/internal")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_internal_token_the_internal_routes_do_not_exist() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/internal/openapi.json", "/internal/cars/ids"] {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth("anything")
            .send()
            .await
            .unwrap();
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_without_a_url_is_503_naming_it() {
    let app = spawn_app_with(Backend::Sqlite, &[("MODULES", "auth")]).await;
    let body = assert_error(
        app.get("/cars", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("cars"),
        "{body}"
    );
    assert_eq!(
        app.signup("ada@example.com").await["user"]["email"],
        "ada@example.com"
    );
    let ready: Value = app.get("/health/ready", None).await.json().await.unwrap();
    assert_eq!(
        ready["checks"]["cars"]["reason"],
        "CAR_SERVICE_URL is not set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_too_slow_is_a_504_not_a_hang() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("MODULES", "auth"),
            ("CAR_SERVICE_URL", &url),
            ("APP__SERVICES__TIMEOUT", "700ms"),
        ],
    )
    .await;
    let start = Instant::now();
    let res = app.get("/cars", None).await;
    assert_error(res, StatusCode::GATEWAY_TIMEOUT, "SERVICE_UNAVAILABLE").await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// Bookings of a car and its deletion, sent to different processes at once: whatever the
/// order, a deleted car never keeps a booking to come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_racing_the_car_deletion_never_outlives_it() {
    let app = split().await;
    let t = topology(&app);
    let admin = app.admin_token().await;
    let token = app.customer_token().await;
    let (mut deleted, mut refused) = (0, 0);
    for round in 0..10 {
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let bookings = (0..6).map(|i| {
            let body = booking_body(&car, days_ahead(2 + i), 24);
            app.client
                .post(format!("{}/bookings", t.url("bookings")))
                .bearer_auth(&token)
                .json(&body)
                .send()
        });
        // Later and later, so that some rounds delete first and others book first.
        let delete = async {
            tokio::time::sleep(Duration::from_millis(round * 2)).await;
            app.client
                .delete(format!("{}/cars/{car}", t.url("cars")))
                .bearer_auth(&admin)
                .send()
                .await
        };
        let (booked, gone) = tokio::join!(join_all(bookings), delete);
        let gone = gone.unwrap().status();
        let created = booked
            .iter()
            .filter(|r| r.as_ref().unwrap().status() == StatusCode::CREATED)
            .count();
        let live: Value = app
            .get(&format!("/admin/bookings?carId={car}"), Some(&admin))
            .await
            .json()
            .await
            .unwrap();
        let kept = live["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["status"] == "confirmed")
            .count();
        assert_eq!(kept, created, "round {round}");
        match gone {
            StatusCode::NO_CONTENT => {
                deleted += 1;
                assert_eq!(
                    kept, 0,
                    "round {round}: the car was deleted with {kept} booking(s) to come"
                );
                assert_eq!(
                    app.get(&format!("/cars/{car}"), None).await.status(),
                    StatusCode::NOT_FOUND
                );
            }
            StatusCode::CONFLICT => {
                refused += 1;
                assert!(
                    kept > 0,
                    "round {round}: deletion refused without a booking"
                );
            }
            other => panic!("round {round}: delete answered {other}"),
        }
    }
    eprintln!("deleted {deleted}, refused {refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queued_by_one_process_are_sent_by_another() {
    let app = split().await;
    let token = token_of(&app.signup("ada@example.com").await);
    assert!(
        all_sent(&app, &token).await,
        "the welcome written by auth is delivered by notifications"
    );
    let auth = app.metrics_of("auth").await;
    assert!(
        !auth.contains(r#"carrental_notifications_total{status="sent"}"#),
        "auth sends nothing itself"
    );
    assert!(app
        .metrics_of("notifications")
        .await
        .contains(r#"carrental_notifications_total{status="sent"} 1"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_decided_by_the_process_that_received_the_request() {
    // The gateway allows one origin; the module processes (wrongly) allow any. What the
    // client sees must be the gateway's decision.
    let app = spawn_app_with(
        Backend::Split,
        &[
            ("FRONTEND_URL", "*"),
            ("gateway:FRONTEND_URL", "https://app.example.com"),
        ],
    )
    .await;
    let origin = |o: &'static str| app.client.get(app.url("/cars")).header("Origin", o).send();
    let res = origin("https://app.example.com").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let allowed: Vec<_> = res
        .headers()
        .get_all("access-control-allow-origin")
        .iter()
        .collect();
    assert_eq!(allowed, ["https://app.example.com"]);
    let res = origin("https://evil.example.com").await.unwrap();
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        res.headers()
    );
}
