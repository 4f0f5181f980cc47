use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

db_test! {
    local: async fn health_reports_version_uptime_and_modules(backend) {
        let app = spawn_app(backend).await;
        let res = app.get("/health", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert!(body["uptimeSeconds"].is_u64());
        assert_eq!(body["modules"], json!(["auth", "cars", "search", "bookings", "notifications"]));

        let app = spawn_app_with(backend, &[("MODULES", "auth")]).await;
        let body: Value = app.get("/health", None).await.json().await.unwrap();
        assert_eq!(body["modules"], json!(["auth"]));
    }
}

db_test! {
    async fn ready_checks_the_database(backend) {
        let app = spawn_app(backend).await;
        let res = app.get("/health/ready", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        let body = app.ready_of("cars").await;
        assert_eq!(body["checks"]["database"]["status"], "up");
        assert!(body["checks"]["database"]["latencyMs"].is_u64());
    }
}

db_test! {
    async fn every_answer_has_a_request_id(backend) {
        let app = spawn_app(backend).await;
        let id_of = |res: &reqwest::Response| res.headers()["x-request-id"].to_str().unwrap().to_owned();

        let res = app.client.get(app.url("/health")).header("X-Request-ID", "client-id-42").send().await.unwrap();
        assert_eq!(id_of(&res), "client-id-42");

        let res = app.get("/health", None).await;
        let generated = id_of(&res);
        assert!(uuid::Uuid::parse_str(&generated).is_ok());

        for bad in ["a".repeat(129), "has space".to_owned()] {
            let res = app.client.get(app.url("/health")).header("X-Request-ID", &bad).send().await.unwrap();
            assert_ne!(id_of(&res), bad);
            assert!(uuid::Uuid::parse_str(&id_of(&res)).is_ok());
        }

        let res = app.client.get(app.url("/nowhere")).header("X-Request-ID", "trace-me").send().await.unwrap();
        let body = assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_eq!(body["error"]["requestId"], "trace-me");
    }
}

db_test! {
    async fn framework_errors_use_the_error_body(backend) {
        let app = spawn_app(backend).await;
        assert_error(app.get("/no/such/route", None).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_error(app.get("/auth/signup", None).await, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
        assert_error(app.send(Method::DELETE, "/health", &json!({}), None).await, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;

        let res = app.client.post(app.url("/auth/signup")).header("Content-Type", "application/json").body("{\"email\": ").send().await.unwrap();
        let body = assert_error(res, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(body["error"]["details"][0]["field"], "body");

        let res = app.client.post(app.url("/auth/signup")).header("Content-Type", "text/plain").body("hello").send().await.unwrap();
        assert_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE").await;
        let res = app.client.post(app.url("/auth/login")).body("{}").send().await.unwrap();
        assert_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE").await;

        let big = json!({"email": "a@b.io", "password": "x".repeat(70 * 1024)});
        assert_error(app.post("/auth/signup", &big, None).await, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;

        let res = app.client.post(app.url("/auth/login")).header("Content-Type", "application/json; charset=utf-8").body(r#"{"email":"a@b.io","password":"Secret123"}"#).send().await.unwrap();
        assert_error(res, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
    }
}

db_test! {
    async fn security_headers_on_every_answer(backend) {
        let app = spawn_app(backend).await;
        for path in ["/health", "/nowhere", "/auth/me"] {
            let res = app.get(path, None).await;
            let h = res.headers();
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["x-frame-options"], "DENY");
            assert_eq!(h["referrer-policy"], "no-referrer");
            assert_eq!(h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
            assert!(h.get("strict-transport-security").is_none(), "no HSTS outside production");
        }
    }
}

db_test! {
    async fn cors_allows_only_listed_origins(backend) {
        let app = spawn_app_with(backend, &[("FRONTEND_URL", "https://app.example.com,https://admin.example.com")]).await;
        let preflight = |origin: &'static str| {
            app.client
                .request(Method::OPTIONS, app.url("/auth/login"))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type")
                .send()
        };
        let res = preflight("https://admin.example.com").await.unwrap();
        assert_eq!(res.headers()["access-control-allow-origin"], "https://admin.example.com");
        let res = preflight("https://evil.example.com").await.unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none());
        let res = app.client.get(app.url("/health")).header("Origin", "https://app.example.com").send().await.unwrap();
        assert_eq!(res.headers()["access-control-allow-origin"], "https://app.example.com");
    }
}

db_test! {
    local: async fn metrics_label_routes_by_template_and_count_business(backend) {
        let app = spawn_app(backend).await;
        app.signup("ada@example.com").await;
        app.login("ada@example.com", PASSWORD).await;
        app.login("ada@example.com", "Wrong1234").await;
        app.get("/some/random/path", None).await;
        let res = app.get("/metrics", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = res.text().await.unwrap();
        assert!(text.contains(r#"http_requests_total{method="POST",route="/auth/signup",status="201"} 1"#), "{text}");
        assert!(text.contains(r#"route="unmatched""#), "{text}");
        assert!(!text.contains("/some/random/path"));
        assert!(text.contains(r#"http_request_duration_seconds_bucket{method="POST",route="/auth/login""#));
        assert!(text.contains("carrental_signups_total 1"));
        assert!(text.contains(r#"carrental_logins_total{result="success"} 1"#));
        assert!(text.contains(r#"carrental_logins_total{result="failure"} 1"#));
    }
}

db_test! {
    async fn metrics_token_is_required_when_set(backend) {
        let app = spawn_app_with(backend, &[("METRICS_TOKEN", "scrape-me")]).await;
        assert_error(app.get("/metrics", None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        assert_error(app.get("/metrics", Some("wrong")).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        assert_eq!(app.get("/metrics", Some("scrape-me")).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn openapi_covers_every_route_and_docs_render(backend) {
        let app = spawn_app(backend).await;
        let res = app.get("/openapi.json", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let doc: Value = res.json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let expected = [
            ("/auth/signup", "post"), ("/auth/login", "post"), ("/auth/refresh", "post"),
            ("/auth/logout", "post"), ("/auth/me", "get"), ("/health", "get"), ("/health/ready", "get"),
            ("/cars", "get"), ("/cars", "post"), ("/cars/{id}", "get"), ("/cars/{id}", "put"),
            ("/cars/{id}", "patch"), ("/cars/{id}", "delete"), ("/cars/{id}/availability", "get"),
            ("/bookings", "post"), ("/bookings", "get"), ("/bookings/{id}", "get"),
            ("/bookings/{id}", "patch"), ("/bookings/{id}/pickup", "post"),
            ("/bookings/{id}/return", "post"), ("/admin/bookings", "get"), ("/search", "get"),
            ("/notifications", "get"), ("/notifications/subscribe", "post"),
            ("/notifications/subscribe/{id}", "delete"),
        ];
        for (path, method) in expected {
            assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
        }
        assert!(doc["paths"].get("/metrics").is_none());

        // Operation ids are unique, so that links and generated clients can name them.
        let mut ids: Vec<&str> = doc["paths"].as_object().unwrap().values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().expect("operationId"))
            .collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "{ids:?}");
        // Pages are camelCase, as answered.
        assert!(doc["components"]["schemas"]["Paginated_Car"]["properties"]["totalPages"].is_object());

        let res = app.get("/docs", None).await;
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(res.headers()["location"], "/docs/");
        let res = app.get("/docs/", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
        assert!(res.text().await.unwrap().contains("swagger-initializer.js"));
        let init = app.get("/docs/swagger-initializer.js", None).await.text().await.unwrap();
        assert!(init.contains("/openapi.json") && init.contains("persistAuthorization"), "{init}");
        // The API routes keep the strict policy.
        let strict = app.get("/openapi.json", None).await;
        assert_eq!(strict.headers()["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
    }
}

/// PostgreSQL goes away under a running server and comes back: requests answer 503 in
/// between and recover without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_503_and_recovers_postgres() {
    let app = spawn_app_with(
        Backend::Postgres,
        &[("APP__DATABASE__CONNECT_TIMEOUT", "5s")],
    )
    .await;
    let token = token_of(&app.signup("ada@example.com").await);
    assert_eq!(
        app.get("/auth/me", Some(&token)).await.status(),
        StatusCode::OK
    );

    let name = app.db.pg_name().to_owned();
    app.db
        .admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"));
    app.db.admin_sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ));

    assert_error(
        app.get("/auth/me", Some(&token)).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    // Once the pool has seen it fail, nobody waits out the 5 s connection timeout.
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let res = app.get("/cars", None).await;
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert!(res.headers().contains_key("retry-after"));
        assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE").await;
    }
    let res = app.get("/health/ready", None).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["status"], "down");
    assert_eq!(
        app.get("/health", None).await.status(),
        StatusCode::OK,
        "liveness needs no database"
    );

    app.db
        .admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
    // The probe tries every 250 ms: within a second the first request succeeds.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        app.get("/auth/me", Some(&token)).await.status(),
        StatusCode::OK,
        "requests recover by themselves"
    );
    assert_eq!(
        app.get("/health/ready", None).await.status(),
        StatusCode::OK
    );
}

/// PostgreSQL closes the pool's connections while the server is busy (a failover, an
/// administrator): connections used a moment ago are not pinged again, so a request may
/// find one closed. It answers 503 (never 500), the connection is replaced, and the requests
/// after it succeed without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_under_a_busy_server_are_replaced_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    let token = token_of(&app.signup("ada@example.com").await);
    for _ in 0..5 {
        assert_eq!(
            app.get("/auth/me", Some(&token)).await.status(),
            StatusCode::OK
        );
    }
    let name = app.db.pg_name().to_owned();
    app.db.admin_sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ));
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(app.get("/auth/me", Some(&token)).await.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    let first_ok = statuses
        .iter()
        .position(|s| *s == 200)
        .unwrap_or(statuses.len());
    assert!(
        statuses[first_ok..].iter().all(|s| *s == 200),
        "once one succeeds, all do: {statuses:?}"
    );
    assert!(
        first_ok <= 10,
        "at most one failure per pooled connection: {statuses:?}"
    );
}

fn binary() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_carrental"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "APP_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        );
    cmd
}

fn one_line_error(out: &std::process::Output) -> String {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    // Log lines may come before it; the failure itself is one line.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    errors[0].to_owned()
}

#[test]
fn production_refuses_weak_or_missing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/x.db", dir.path().display());
    let out = binary()
        .env("APP_ENV", "production")
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(one_line_error(&out).contains("JWT_SECRET"));
    let out = binary()
        .env("APP_ENV", "production")
        .env("DATABASE_URL", &db)
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .env("REFRESH_SECRET", "dev-refresh-secret-change-me")
        .output()
        .unwrap();
    assert!(one_line_error(&out).contains("REFRESH_SECRET"));
}

#[test]
fn unreachable_database_at_start_is_one_clear_line() {
    let out = binary()
        .env("APP_ENV", "test")
        .env(
            "DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1:1/none",
        )
        .env("APP__DATABASE__CONNECT_RETRIES", "2")
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(
        err.contains("database unreachable") && err.contains("after 2 attempts"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "password leaked: {err}");
}

#[test]
fn command_line_errors_are_one_line() {
    let out = binary().arg("frobnicate").output().unwrap();
    one_line_error(&out);
    let out = binary()
        .env("DATABASE_URL", "mysql://x")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(one_line_error(&out).contains("DATABASE_URL"));
    let out = binary().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["paths"]["/auth/login"].is_object());
}

db_test! {
    async fn migrate_command_runs_reverts_and_reports(backend) {
        let db = TestDatabase::new(backend);
        let run = |args: &[&str]| binary().env("APP_ENV", "test").env("DATABASE_URL", &db.url).args(args).output().unwrap();
        let out = run(&["migrate"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let status = String::from_utf8_lossy(&run(&["migrate", "status"]).stdout).to_string();
        assert!(status.lines().count() >= 1 && status.lines().all(|l| l.starts_with("[x]")), "{status}");
        // Every migration has a working down: revert them all, then apply again.
        for _ in 0..status.lines().count() {
            let out = run(&["migrate", "revert"]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let status = String::from_utf8_lossy(&run(&["migrate", "status"]).stdout).to_string();
        assert!(status.lines().all(|l| l.starts_with("[ ]")), "{status}");
        let out = run(&["migrate", "run"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// SIGTERM: stop taking connections, finish what is in flight, exit 0.
#[test]
fn sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = binary()
        .env("APP_ENV", "test")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/x.db", dir.path().display()),
        )
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/health");
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "server did not start at {url}");
    let check = || {
        binary()
            .env("APP_ENV", "test")
            .env("PORT", port.to_string())
            .arg("healthcheck")
            .output()
            .unwrap()
    };
    assert!(check().status.success(), "healthcheck of a running server");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        child.try_wait().unwrap()
    });
    match exit {
        Some(code) => {
            assert!(code.success(), "exit {code:?}");
            assert!(
                one_line_error(&check()).contains("/health"),
                "healthcheck of a stopped server"
            );
        }
        None => {
            let _ = child.kill();
            panic!("server did not stop within 10 s of SIGTERM");
        }
    }
}

#[test]
fn bad_or_missing_origins_stop_the_start_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/x.db", dir.path().display());
    let out = binary()
        .env("APP_ENV", "test")
        .env("DATABASE_URL", &db)
        .env("FRONTEND_URL", "app.example.com/path")
        .output()
        .unwrap();
    assert!(one_line_error(&out).contains("FRONTEND_URL"));
    let out = binary()
        .env("APP_ENV", "production")
        .env("DATABASE_URL", &db)
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .env("REFRESH_SECRET", "fedcba9876543210fedcba9876543210")
        .output()
        .unwrap();
    assert!(one_line_error(&out).contains("FRONTEND_URL"));
    let out = binary()
        .env("APP_ENV", "staging")
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(one_line_error(&out).contains("JWT_SECRET"));
}

/// A server binary on a free port; killed when dropped.
struct Served {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(env: &[(&str, &str)], stderr: std::process::Stdio) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = binary();
        cmd.env("APP_ENV", "test")
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/x.db", dir.path().display()),
            )
            .envs(env.iter().copied())
            .stderr(stderr);
        let child = cmd.spawn().unwrap();
        let up = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "server did not start");
        Served {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; its status.
    fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not stop within {within:?}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A load balancer's view of a rolling deploy: requests keep coming while readiness says
/// ready; after SIGTERM readiness turns 503 at once, the balancer stops sending, and not
/// one request failed on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_requests_across_sigterm_sees_no_failure() {
    let mut server = Served::start(
        &[("SHUTDOWN_DRAIN_DELAY", "1s")],
        std::process::Stdio::null(),
    );
    let client = reqwest::Client::new();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, sent, stop) = (
                client.clone(),
                server.url("/cars?limit=5"),
                sent.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match client.get(&url).send().await {
                        Ok(res) if res.status() == StatusCode::OK => {}
                        Ok(res) => failures.push(res.status().to_string()),
                        Err(e) => failures.push(e.to_string()),
                    }
                    sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                failures
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    let signalled = std::time::Instant::now();
    // The balancer polls readiness and stops sending once it is 503.
    loop {
        let res = client
            .get(server.url("/health/ready"))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_millis(500),
            "readiness still 200"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut failures = Vec::new();
    for s in senders {
        failures.extend(s.await.unwrap());
    }
    assert!(failures.is_empty(), "{failures:?}");
    assert!(sent.load(std::sync::atomic::Ordering::SeqCst) > 20);
    let status = server.wait(Duration::from_secs(10));
    assert!(status.success(), "exit {status:?}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "kept serving through the drain delay"
    );
}

/// Readable logs: what a client sends cannot start a line of its own, URLs are cut, and
/// the log mailer tells who and what but keeps the body for DEBUG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_are_safe_and_short() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = Served::start(
        &[("LOG_LEVEL", "info"), ("APP__LOG__FORMAT", "pretty")],
        std::process::Stdio::from(log.reopen().unwrap()),
    );
    let client = reqwest::Client::new();
    let long = "x".repeat(5000);
    // A 404 writes a line, in the request's span with its URL.
    let res = client
        .get(server.url(&format!("/no/such/route?filler={long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = client
        .post(server.url("/auth/signup"))
        .json(&json!({"email": "ada@example.com", "password": "Secret123", "name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(text.lines().all(|l| l.len() < 2000), "a line too long");
    assert!(text.contains("filler=xxx") && text.contains('…'), "{text}");
    let email = text
        .lines()
        .find(|l| l.contains("email (log provider)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(email.contains("ada@example.com") && email.contains("Welcome to Car Rental"));
    assert!(
        !text.contains("Hello Ada Lovelace"),
        "the body is for DEBUG only"
    );
    drop(server);
}

/// The value of the sample `name` (with its labels, as written) in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

db_test! {
    local: async fn metrics_show_the_process_the_pool_readiness_and_the_outbox(backend) {
        let app = spawn_app(backend).await;
        assert_eq!(app.get("/health/ready", None).await.status(), StatusCode::OK);
        // A booking confirmation waits in the notifications outbox until its worker runs.
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let customer = app.customer_token().await;
        assert_eq!(app.book(&customer, &car, days_ahead(3), 24).await.status(), StatusCode::CREATED);
        let text = app.get("/metrics", None).await.text().await.unwrap();
        assert_eq!(sample(&text, "carrental_ready"), Some(1.0), "{text}");
        assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|b| b > 1e6), "{text}");
        assert!(sample(&text, "carrental_db_pool_max_connections").is_some_and(|n| n >= 1.0), "{text}");
        assert!(sample(&text, "carrental_db_connections{state=\"idle\"}").is_some(), "{text}");
        assert!(sample(&text, "carrental_db_connection_wait_seconds_count").is_some_and(|n| n > 0.0), "{text}");
        assert!(text.contains("carrental_db_connection_waits_total"), "{text}");
        // A job of a topic no worker drains stays pending, and ages.
        app.db.execute(
            "INSERT INTO outbox (id, topic, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ('metrics-test', 'test', '{}', 'pending', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        );
        let text = app.get("/metrics", None).await.text().await.unwrap();
        assert_eq!(sample(&text, "carrental_outbox_jobs{status=\"pending\",topic=\"test\"}"), Some(1.0), "{text}");
        assert!(sample(&text, "carrental_outbox_oldest_pending_seconds{topic=\"test\"}").is_some_and(|s| s > 3600.0), "{text}");
    }
}

/// SQLite's WAL is copied into the database file by a task of its own rather than left to
/// the commit that crosses SQLite's threshold (which does it holding the write lock): a
/// write reaches the file itself within moments, not after thousands of pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_reach_the_database_file_without_waiting_for_a_commit_to_checkpoint() {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let app = spawn_app(Backend::Sqlite).await;
    app.signup("wal@example.com").await;
    let path = app
        .db
        .url
        .strip_prefix("sqlite://")
        .expect("a SQLite URL")
        .to_owned();
    // `immutable=1` reads the database file alone, blind to its WAL.
    let in_file = move || {
        let mut c =
            diesel::SqliteConnection::establish(&format!("file:{path}?mode=ro&immutable=1"))
                .expect("the database file");
        diesel::sql_query("SELECT COUNT(*) AS n FROM users WHERE email = 'wal@example.com'")
            .get_result::<Count>(&mut c)
            .expect("count")
            .n
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while in_file() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the signup never left the WAL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
