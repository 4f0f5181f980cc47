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
        "the welcome and the verification link written by auth are delivered by notifications"
    );
    let auth = app.metrics_of("auth").await;
    assert!(
        !auth.contains(r#"carrental_notifications_total{channel="email",status="sent"}"#),
        "auth sends nothing itself"
    );
    assert!(app
        .metrics_of("notifications")
        .await
        .contains(r#"carrental_notifications_total{channel="email",status="sent"} 2"#));
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

/// A client's broken or stalled upload ends its own request (400, or 408 past the body
/// timeout) and never counts as the module's failure: before, six such logins opened the
/// auth module's breaker and everyone's login through the gateway was a 503 for 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_broken_or_stalled_body_never_takes_a_module_offline() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(Backend::Split, &[("APP__SERVER__BODY_TIMEOUT", "1s")]).await;
    let gateway = topology(&app).url("gateway");
    let host = gateway.trim_start_matches("http://").to_owned();
    let head = "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\nConnection: close\r\n\r\n{\"email\":";
    // Broken off: 9 of 100 bytes, then the connection closes.
    let broken = (0..6).map(|_| {
        let host = host.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    join_all(broken).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = app.login("nobody@example.com", PASSWORD).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;

    // Stalled: the body stops coming; each request ends with 408, and only it.
    let stalled = (0..6).map(|_| raw_http(&gateway, head.as_bytes()));
    let start = Instant::now();
    for answer in join_all(stalled).await {
        assert_eq!(answer.status, 408, "{answer:?}");
        assert_eq!(answer.json()["error"]["code"], "REQUEST_TIMEOUT");
    }
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    let res = app.login("nobody@example.com", PASSWORD).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
    let ready: Value = app.get("/health/ready", None).await.json().await.unwrap();
    assert_eq!(ready["checks"]["auth"]["status"], "up", "{ready}");

    // The same body sent straight to the module is the same 408.
    let answer = raw_http(&topology(&app).url("auth"), head.as_bytes()).await;
    assert_eq!(answer.status, 408, "{answer:?}");
}

/// `..` and its encodings never reach another route than the one sent: before, the
/// gateway's client resolved `/cars/../internal/...` into an internal route, and answered
/// it with the internal token (or the module answered 401, telling the token was wrong).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_refused_before_routing() {
    let app = split().await;
    let admin = app.admin_token().await;
    let car = id_of(&app.create_car(&admin, json!({})).await);
    for process in ["gateway", "cars"] {
        let base = topology(&app).url(process);
        for path in [
            format!("/cars/../internal/cars/{car}"),
            format!("/cars/%2e%2e/internal/cars/{car}"),
            format!("/cars/.%2e/internal/cars/{car}"),
            format!("/cars/%2e./internal/cars/{car}"),
            format!("/cars/x/../../internal/cars/{car}"),
            format!("/cars/..\\internal/cars/{car}"),
            format!("/cars/./{car}"),
            "/cars/../auth/login".to_owned(),
        ] {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INTERNAL_TOKEN}\r\n\
                 Connection: close\r\n\r\n"
            );
            let answer = raw_http(&base, request.as_bytes()).await;
            assert_eq!(answer.status, 400, "{path} through {process}: {answer:?}");
            let body = answer.json();
            assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{body}");
            assert_eq!(body["error"]["details"][0]["field"], "path", "{body}");
            assert!(answer.header("x-request-id").is_some(), "{answer:?}");
        }
    }
    // The plain path still works.
    let answer = raw_http(
        &app.address,
        format!("GET /cars/{car} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// Our headers are for our processes: a client sending `X-Carrental-Forwarded` is served
/// as any client (before, the gateway took it for a misrouted request and answered 503).
/// Readiness names the forwarded modules, not where they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_pose_as_a_process_and_readiness_hides_addresses() {
    let app = split().await;
    for value in ["yes", INTERNAL_TOKEN.trim_end_matches('f')] {
        let res = app
            .client
            .get(app.url("/cars"))
            .header("X-Carrental-Forwarded", value)
            .header("X-Carrental-Other", "x")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{value}");
    }
    let ready = app.get("/health/ready", None).await.text().await.unwrap();
    let parsed: Value = serde_json::from_str(&ready).unwrap();
    for module in ["auth", "cars", "search", "bookings", "notifications"] {
        assert_eq!(parsed["checks"][module]["status"], "up", "{ready}");
        assert!(parsed["checks"][module].get("url").is_none(), "{ready}");
    }
    assert!(
        !ready.contains("127.0.0.1") && !ready.contains("http://"),
        "{ready}"
    );
}
