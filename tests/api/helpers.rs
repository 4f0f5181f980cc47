//! Starts the real application in-process on a random port over a throwaway database.

use std::collections::HashMap;
use std::time::Duration;

use carrental::config::Settings;
use carrental::startup::Application;
use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "Secret123";
/// The admin [`TestApp::admin_token`] makes with `carrental admin create`.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// The test environment's JWT secret (config/default.toml), for crafting tokens.
pub const JWT_SECRET: &str = "dev-jwt-secret-change-me";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// PostgreSQL behind a split deployment: a gateway process and one process per module,
    /// separate OS processes of the binary; requests go to the gateway only.
    Split,
}

/// Runs the test body on SQLite, on PostgreSQL and through a split deployment on
/// PostgreSQL, as `name::sqlite`, `name::postgres` and `name::split`. A test marked `local:`
/// looks inside one process (its metrics, its module list) and skips the split run.
#[macro_export]
macro_rules! db_test {
    (@make [$($split:ident)?] $(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn run($backend: $crate::helpers::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::helpers::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::helpers::Backend::Postgres).await
            }

            $crate::db_test!(@split $($split)?);
        }
    };
    (@split split) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn split() {
            run($crate::helpers::Backend::Split).await
        }
    };
    (@split) => {};
    (local: $($test:tt)*) => {
        $crate::db_test!(@make [] $($test)*);
    };
    ($($test:tt)*) => {
        $crate::db_test!(@make [split] $($test)*);
    };
}

pub fn postgres_base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDatabase {
    pub url: String,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn new(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDatabase {
                    url,
                    pg: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres | Backend::Split => {
                // OpenSSL set up by Rust's binding skips its exit-time cleanup, which frees
                // what a pool thread still reconnecting to the dropped database may be using
                // (libpq, setting it up first for the admin connection's TLS, registers it).
                openssl_sys::init();
                let base = postgres_base_url();
                let name = format!("carrental_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::establish(&base).unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {base} ({e}). Run scripts/test.sh, \
                         which starts one, or set TEST_DATABASE_URL."
                    )
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create test database");
                let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                // A local server: no TLS. With it, a test process exiting while a pool
                // thread still talks to a database just dropped can crash in OpenSSL's
                // exit-time cleanup.
                if !url.query_pairs().any(|(k, _)| k == "sslmode") {
                    url.query_pairs_mut().append_pair("sslmode", "disable");
                }
                TestDatabase {
                    url: url.to_string(),
                    pg: Some((base, name)),
                    _dir: None,
                }
            }
        }
    }

    /// A connection of the test's own to this SQLite database, waiting for the server's
    /// writers as the server's own connections do rather than failing with "database is
    /// locked".
    fn sqlite(path: &str) -> diesel::SqliteConnection {
        let mut c = diesel::SqliteConnection::establish(path).expect("sqlite connection");
        diesel::connection::SimpleConnection::batch_execute(&mut c, "PRAGMA busy_timeout = 10000")
            .expect("busy_timeout");
        c
    }

    /// Runs SQL in this database, on either backend.
    pub fn execute(&self, sql: &str) {
        match self.url.strip_prefix("sqlite://") {
            Some(path) => {
                let mut c = Self::sqlite(path);
                diesel::sql_query(sql).execute(&mut c).expect(sql);
            }
            None => {
                let mut c = PgConnection::establish(&self.url).expect("postgres connection");
                diesel::sql_query(sql).execute(&mut c).expect(sql);
            }
        }
    }

    /// The `n` a query like `SELECT COUNT(*) AS n FROM …` answers, on either backend.
    pub fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let found: Count = match self.url.strip_prefix("sqlite://") {
            Some(path) => {
                let mut c = Self::sqlite(path);
                diesel::sql_query(sql).get_result(&mut c).expect(sql)
            }
            None => {
                let mut c = PgConnection::establish(&self.url).expect("postgres connection");
                diesel::sql_query(sql).get_result(&mut c).expect(sql)
            }
        };
        found.n
    }

    /// Runs SQL as the server's superuser against the server holding this database.
    pub fn admin_sql(&self, sql: &str) {
        let (base, _) = self.pg.as_ref().expect("PostgreSQL only");
        let mut admin = PgConnection::establish(base).expect("admin connection");
        diesel::sql_query(sql).execute(&mut admin).expect(sql);
    }

    pub fn pg_name(&self) -> &str {
        &self.pg.as_ref().expect("PostgreSQL only").1
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((base, name)) = &self.pg {
            if let Ok(mut admin) = PgConnection::establish(base) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The processes of a split deployment (`Backend::Split`), stopped with the app, before
    /// its database is dropped.
    pub topology: Option<Topology>,
    /// The in-process server: what stops it, and it running.
    running: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    /// Shared by every app started on it; dropped with the last.
    pub db: std::sync::Arc<TestDatabase>,
}

/// An in-process server is stopped, its workers and connection pools with it, before its
/// database can be dropped: left running, they would reconnect to a dropped database while
/// the test process exits.
impl Drop for TestApp {
    fn drop(&mut self) {
        let Some((stop, running)) = self.running.take() else {
            return;
        };
        // Its idle keep-alive connections would hold a graceful stop until they time out.
        self.client = test_client();
        let _ = stop.send(());
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            tokio::task::block_in_place(|| {
                handle.block_on(async {
                    if tokio::time::timeout(Duration::from_secs(30), running)
                        .await
                        .is_err()
                    {
                        eprintln!("the app did not stop within 30 s");
                    }
                })
            });
        }
    }
}

/// Where the tests' `local` store keeps files: one folder for the run, outside the checkout
/// (keys are random, so servers can share it).
pub fn media_dir() -> String {
    std::env::temp_dir()
        .join("carrental-test-media")
        .to_string_lossy()
        .into_owned()
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// Settings as the test environment has them, plus `overrides` (flat names or `APP__…`).
pub fn test_settings(db_url: &str, overrides: &[(&str, &str)]) -> Settings {
    let mut all = vec![("DATABASE_URL", db_url)];
    all.extend_from_slice(overrides);
    test_settings_result(&all).expect("test settings")
}

/// Settings as the test environment has them with `vars`, or why they are refused.
pub fn test_settings_result(vars: &[(&str, &str)]) -> Result<Settings, String> {
    let mut all: HashMap<String, String> = [
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("APP__SERVER__WORKERS", "2"),
        ("APP__SERVER__SHUTDOWN_TIMEOUT", "5s"),
        ("APP__DATABASE__POOL_SIZE", "8"),
        ("APP__DATABASE__CONNECT_TIMEOUT", "3s"),
        ("APP__DATABASE__CONNECT_RETRIES", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    all.insert("MEDIA_DIR".into(), media_dir());
    all.insert(
        "APP_CONFIG_DIR".into(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/config").into(),
    );
    for (k, v) in vars {
        all.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_vars(all).map_err(|e| e.to_string())
}

pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    let db = std::sync::Arc::new(TestDatabase::new(backend));
    match backend {
        Backend::Split => Topology::start(db, overrides).await,
        _ => start_app(db, overrides).await,
    }
}

/// A second server on the database of `other` (as a second instance would be).
pub async fn spawn_app_sharing(other: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    start_app(other.db.clone(), overrides).await
}

pub async fn start_app(db: std::sync::Arc<TestDatabase>, overrides: &[(&str, &str)]) -> TestApp {
    let settings = test_settings(&db.url, overrides);
    carrental::telemetry::init(&settings.log);
    let app = Application::build(settings)
        .await
        .expect("application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let running = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = app.run_until(shutdown).await {
            eprintln!("the app ended with an error: {e}");
        }
    });
    TestApp {
        address,
        client: test_client(),
        db,
        topology: None,
        running: Some((stop, running)),
    }
}

fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The internal token of every split deployment the tests start.
pub const INTERNAL_TOKEN: &str = "test-internal-token-0123456789abcdef";
/// The processes of a split deployment: the gateway, then one per module.
pub const SPLIT: [&str; 6] = [
    "gateway",
    "auth",
    "cars",
    "search",
    "bookings",
    "notifications",
];

/// A split deployment: separate OS processes of the binary on one PostgreSQL database, each
/// module's process reaching the others through their URLs. Processes are killed with it.
pub struct Topology {
    ports: HashMap<&'static str, u16>,
    env: Vec<(String, String)>,
    children: std::sync::Mutex<HashMap<&'static str, std::process::Child>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Topology {
    async fn start(db: std::sync::Arc<TestDatabase>, overrides: &[(&str, &str)]) -> TestApp {
        // Migrate once, so the processes start without taking turns on the migration lock.
        let settings = test_settings(&db.url, overrides);
        tokio::task::spawn_blocking(move || {
            carrental::db::Db::connect_for_command(&settings.database, true).map(drop)
        })
        .await
        .expect("migration task")
        .expect("migrations");
        // A port found free may be taken by another test's process before ours binds it:
        // the process that loses exits at once, and the whole topology starts again.
        for _ in 0..4 {
            let topology = Self::spawn(&db, overrides);
            let mut up = true;
            for name in SPLIT {
                up = up && topology.is_up(name).await;
            }
            if up && topology.all_running() {
                return TestApp {
                    address: topology.url("gateway"),
                    client: test_client(),
                    db,
                    topology: Some(topology),
                    running: None,
                };
            }
        }
        panic!("the split processes could not bind their ports");
    }

    fn spawn(db: &TestDatabase, overrides: &[(&str, &str)]) -> Topology {
        let ports: HashMap<&'static str, u16> = SPLIT.iter().map(|p| (*p, free_port())).collect();
        let url = |name: &str| format!("http://127.0.0.1:{}", ports[name]);
        let mut env: Vec<(String, String)> = [
            ("APP_ENV", "test"),
            ("HOST", "127.0.0.1"),
            ("APP__SERVER__WORKERS", "1"),
            ("APP__SERVER__SHUTDOWN_TIMEOUT", "2s"),
            ("APP__DATABASE__POOL_SIZE", "4"),
            ("APP__DATABASE__MIGRATE_ON_START", "false"),
            ("APP__SERVICES__TIMEOUT", "10s"),
            ("APP__SERVICES__INTERNAL_TIMEOUT", "3s"),
            ("LOG_LEVEL", "error"),
            ("INTERNAL_TOKEN", INTERNAL_TOKEN),
            (
                "APP_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            ),
            ("PATH", &std::env::var("PATH").unwrap_or_default()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.push(("DATABASE_URL".into(), db.url.clone()));
        env.push(("MEDIA_DIR".into(), media_dir()));
        env.push(("PUBLIC_URL".into(), url("gateway")));
        for (var, name) in [
            ("AUTH_SERVICE_URL", "auth"),
            ("CAR_SERVICE_URL", "cars"),
            ("SEARCH_SERVICE_URL", "search"),
            ("BOOKING_SERVICE_URL", "bookings"),
            ("NOTIFICATION_SERVICE_URL", "notifications"),
        ] {
            env.push((var.into(), url(name)));
        }

        env.extend(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let topology = Topology {
            ports,
            env,
            children: std::sync::Mutex::new(HashMap::new()),
        };
        for name in SPLIT {
            topology.start_process(name);
        }
        topology
    }

    /// Whether every process started is still running.
    fn all_running(&self) -> bool {
        let mut children = self.children.lock().expect("children");
        children
            .values_mut()
            .all(|child| matches!(child.try_wait(), Ok(None)))
    }

    pub fn url(&self, process: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[process])
    }

    /// Starts (or starts again, on the same port) one process: `gateway` or a module. An
    /// override named `process:VAR` sets `VAR` for that process only.
    pub fn start_process(&self, name: &'static str) {
        let modules = if name == "gateway" { "gateway" } else { name };
        let env = self
            .env
            .iter()
            .filter_map(|(k, v)| match k.split_once(':') {
                Some((process, var)) => (process == name).then_some((var, v.as_str())),
                None => Some((k.as_str(), v.as_str())),
            });
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_carrental"))
            .env_clear()
            .envs(env)
            .env("MODULES", modules)
            .env("PORT", self.ports[name].to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start a process of the binary");
        self.children.lock().expect("children").insert(name, child);
    }

    /// Kills one process, as a crash would.
    pub fn kill_process(&self, name: &str) {
        if let Some(mut child) = self.children.lock().expect("children").remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn wait_until_up(&self, name: &str) {
        assert!(self.is_up(name).await, "the {name} process did not start");
    }

    /// Whether the process answers `/health` within 10 s.
    async fn is_up(&self, name: &str) -> bool {
        let url = format!("{}/health", self.url(name));
        let client = test_client();
        for _ in 0..200 {
            if let Ok(res) = client.get(&url).send().await {
                if res.status() == StatusCode::OK {
                    return true;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let children = self
            .children
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for (_, mut child) in children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The address of the process serving `module`: the only one, unless split.
    pub fn process_url(&self, module: &str) -> String {
        match &self.topology {
            Some(t) => t.url(module),
            None => self.address.clone(),
        }
    }

    /// `/metrics` of the process serving `module` (its counters live there).
    pub async fn metrics_of(&self, module: &str) -> String {
        let url = format!("{}/metrics", self.process_url(module));
        let res = self.client.get(url).send().await.expect("request sent");
        res.text().await.expect("metrics text")
    }

    /// `/health/ready` of the process serving `module`.
    pub async fn ready_of(&self, module: &str) -> Value {
        let url = format!("{}/health/ready", self.process_url(module));
        let res = self.client.get(url).send().await.expect("request sent");
        res.json().await.expect("readiness JSON")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.send(reqwest::Method::POST, path, body, token).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    /// Signs up `email` with the standard password; returns the signup answer.
    pub async fn signup(&self, email: &str) -> Value {
        let res = self
            .post(
                "/auth/signup",
                &json!({"email": email, "password": PASSWORD, "name": "Test"}),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "signup {email}");
        res.json().await.expect("json")
    }

    /// An access token for a new customer.
    pub async fn customer_token(&self) -> String {
        let email = format!("c{}@example.com", uuid::Uuid::new_v4().simple());
        token_of(&self.signup(&email).await)
    }

    /// An access token for the admin, made on first use with `carrental admin create` (as
    /// an operator would: signing up with an address never makes an admin).
    pub async fn admin_token(&self) -> String {
        let res = self.login(ADMIN_EMAIL, PASSWORD).await;
        if res.status() == StatusCode::OK {
            return token_of(&res.json().await.expect("json"));
        }
        let url = self.db.url.clone();
        let out = tokio::task::spawn_blocking(move || {
            cli(
                &url,
                &[
                    "admin",
                    "create",
                    "--email",
                    ADMIN_EMAIL,
                    "--password",
                    PASSWORD,
                ],
            )
        })
        .await
        .expect("admin create ran");
        assert!(
            out.status.success(),
            "admin create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let res = self.login(ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK, "admin login");
        token_of(&res.json().await.expect("json"))
    }

    /// Creates a car from [`car_body`] with `changes` merged in; returns it.
    pub async fn create_car(&self, admin: &str, changes: Value) -> Value {
        let mut body = car_body();
        merge(&mut body, changes);
        let res = self.post("/cars", &body, Some(admin)).await;
        assert_eq!(res.status(), StatusCode::CREATED, "create car");
        res.json().await.expect("json")
    }

    /// Books `car` from `pickup` for `hours` hours.
    pub async fn book(
        &self,
        token: &str,
        car: &str,
        pickup: DateTime<Utc>,
        hours: i64,
    ) -> Response {
        self.post("/bookings", &booking_body(car, pickup, hours), Some(token))
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/auth/login",
            &json!({"email": email, "password": password}),
            None,
        )
        .await
    }
}

/// Runs the `carrental` command on the database at `db_url`, as an operator would.
pub fn cli(db_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_carrental"))
        .args(args)
        .env("APP_ENV", "test")
        .env(
            "APP_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("DATABASE_URL", db_url)
        .env_remove("BACKUP_KEEP")
        .output()
        .expect("the command runs")
}

/// The token of the first `{path}?token=…` link in a mail (its quoted-printable undone).
pub fn link_token(mail: &str, path: &str) -> Option<String> {
    let plain = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = plain.find(&format!("{path}?token="))? + path.len() + "?token=".len();
    let token: String = plain[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (token.len() == 64).then_some(token)
}

pub fn car_body() -> Value {
    json!({
        "name": "Tesla Model 3", "brand": "Tesla", "model": "Model 3", "year": 2023,
        "fuelType": "electric", "transmission": "automatic", "seats": 5, "pricePerDay": 120.5,
        "images": ["https://img.example.com/tesla.jpg"], "features": ["Autopilot"],
        "location": {"latitude": 37.7749, "longitude": -122.4194, "address": "123 Market St",
                     "city": "San Francisco", "state": "California", "country": "USA",
                     "postalCode": "94103"}
    })
}

/// Deep-merges `changes` into `base` (objects merge, anything else replaces).
pub fn merge(base: &mut Value, changes: Value) {
    match (base, changes) {
        (Value::Object(b), Value::Object(c)) => {
            for (k, v) in c {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, c) => *b = c,
    }
}

pub fn booking_body(car: &str, pickup: DateTime<Utc>, hours: i64) -> Value {
    json!({
        "carId": car,
        "pickupTime": pickup.to_rfc3339(),
        "dropoffTime": (pickup + chrono::Duration::hours(hours)).to_rfc3339(),
    })
}

/// A whole hour at least `days` days from now, so tests do not race the clock.
pub fn days_ahead(days: i64) -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    (Utc::now() + chrono::Duration::days(days))
        .duration_trunc(TimeDelta::hours(1))
        .expect("truncate")
}

pub fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("id").to_owned()
}

pub fn token_of(body: &Value) -> String {
    body["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned()
}

/// Asserts the error body of API.md and returns it.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status");
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("X-Request-ID on an error");
    let body: Value = res.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["error"]["requestId"], request_id.as_str(), "{body}");
    body
}

/// The `field`s of a 400's details.
pub async fn validation_fields(res: Response) -> Vec<String> {
    let body = assert_error(res, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().expect("field").to_owned())
        .collect()
}

/// The connection settings of the real cluster the `opensearch_cluster` tests use, as the
/// environment gives them (`OPENSEARCH_USERNAME`, `OPENSEARCH_PASSWORD`,
/// `OPENSEARCH_API_KEY`, `OPENSEARCH_CA_CERT`).
pub fn opensearch_cluster_env() -> Vec<(String, String)> {
    [
        "OPENSEARCH_USERNAME",
        "OPENSEARCH_PASSWORD",
        "OPENSEARCH_API_KEY",
        "OPENSEARCH_CA_CERT",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
    .collect()
}

/// The caller's notifications (first page of 100).
pub async fn messages(app: &TestApp, token: &str) -> Vec<Value> {
    let res = app.get("/notifications?limit=100", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Polls the caller's messages until `done` holds for them, for at most `secs` seconds.
pub async fn wait_until(
    app: &TestApp,
    token: &str,
    secs: u64,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let list = messages(app, token).await;
        if done(&list) || tokio::time::Instant::now() >= deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (up to 10 s) until the caller has messages and every one is sent; whether they are.
pub async fn all_sent(app: &TestApp, token: &str) -> bool {
    let every_sent = |l: &[Value]| !l.is_empty() && l.iter().all(|m| m["status"] == "sent");
    every_sent(&wait_until(app, token, 10, every_sent).await)
}

/// An answer read off the wire by [`raw_http`].
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends `request` exactly as written (an HTTP client would normalise its path) on a new
/// connection to the server at `address` (`http://host:port`), and reads the answer until
/// the server closes the connection (send `Connection: close`).
pub async fn raw_http(address: &str, request: &[u8]) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut bytes))
        .await
        .expect("an answer within 30 s")
        .expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.push_str(&after[..size.min(after.len())]);
            rest = after.get(size + 2..).unwrap_or("");
        }
        out
    } else {
        body.to_owned()
    };
    RawAnswer {
        status,
        headers,
        body,
    }
}

/// Runs a Python script of the tests (with its arguments) to the end; fails the test with
/// its output unless it succeeds.
pub async fn run_python(python: String, args: Vec<String>) {
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new(python).args(args).output())
            .await
            .expect("joined")
            .expect("python runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
