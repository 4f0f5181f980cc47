//! Load benchmark: starts the real server in-process on SQLite and on PostgreSQL and drives
//! it over HTTP from concurrent clients on the same machine. Prints figures; asserts only
//! correctness (no overlapping bookings), never speed.
//!
//!   cargo bench --bench load                  # both backends
//!   BENCH_BACKENDS=sqlite cargo bench --bench load
//!   BENCH_SCENARIOS=gateway cargo bench --bench load   # bookings, payments, gateway, search, logins, uploads
//!   BENCH_CARS=1000000 BENCH_SCENARIOS=search cargo bench --bench load   # search and listing
//!   BENCH_ROUNDS=5 BENCH_SCENARIOS=payments ...   # rounds of unpaid against paid bookings
//!   BENCH_ONLY="list,10 km" BENCH_SCENARIOS=search ...   # only the named search/listing scenarios
//!
//! PostgreSQL is taken from TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres);
//! the benchmark creates and drops a database of its own there. With BENCH_KEEP=1 it keeps
//! the seeded databases and prints where they are (to study a query's plan on them), and
//! BENCH_DATABASE_URL=<one of them> runs on it again without seeding.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use carrental::config::Settings;
use carrental::startup::Application;
use chrono::{DurationRound, TimeDelta, Utc};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::{json, Value};

const CLIENTS: usize = 32;
const ADMIN: &str = "bench-admin@example.com";
const PASSWORD: &str = "Bench1234";

struct Server {
    base: String,
    db: Option<carrental::db::Db>,
    client: reqwest::Client,
    pg_drop: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.pg_drop {
            if let Ok(mut c) = PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c);
            }
        }
    }
}

async fn start(backend: &str, more: &[(&str, &str)]) -> Server {
    let (url, pg_drop, dir) = if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
        (url, None, None)
    } else if backend == "postgres" {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("carrental_bench_{}", uuid::Uuid::new_v4().simple());
        let mut c = PgConnection::establish(&admin_url).expect("PostgreSQL at TEST_DATABASE_URL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .expect("create database");
        let mut url = url::Url::parse(&admin_url).expect("url");
        url.set_path(&name);
        (url.to_string(), Some((admin_url, name)), None)
    } else {
        let dir = tempfile::tempdir().expect("tempdir");
        (
            format!("sqlite://{}/bench.db", dir.path().display()),
            None,
            Some(dir),
        )
    };
    let mut vars = vec![("DATABASE_URL", url.as_str())];
    vars.extend_from_slice(more);
    let (base, db) = serve(&vars).await;
    let (pg_drop, dir) = if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
        println!("  kept database: {url}");
        (None, dir.map(|d| d.keep()).and(None))
    } else {
        (pg_drop, dir)
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS * 2)
        .build()
        .expect("client");
    Server {
        base,
        db,
        client,
        pg_drop,
        _dir: dir,
    }
}

/// Starts a server with the benchmark's settings plus `vars`; its address and database.
async fn serve(vars: &[(&str, &str)]) -> (String, Option<carrental::db::Db>) {
    let vars: HashMap<String, String> = [
        ("APP_ENV", "test"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("LOG_LEVEL", "error"),
        ("BCRYPT_ROUNDS", "4"),
        ("APP__DATABASE__POOL_SIZE", "16"),
        ("APP__DATABASE__CONNECT_TIMEOUT", "30s"),
        (
            "APP_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        ),
    ]
    .iter()
    .chain(vars)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let settings = Settings::from_vars(vars).expect("settings");
    let app = Application::build(settings).await.expect("server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let db = app.db().cloned();
    tokio::spawn(app.run_until(std::future::pending()));
    (base, db)
}

impl Server {
    /// GETs `url` and reads the whole answer; its status.
    async fn get(&self, url: &str) -> u16 {
        let res = self.client.get(url).send().await.expect("GET");
        let status = res.status().as_u16();
        let _ = res.bytes().await;
        status
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Signs the user up, or logs in where a kept database (BENCH_DATABASE_URL) has them.
    /// A token for `email`, signed up on first use; [`ADMIN`] is made an admin in the
    /// database (as `carrental admin create` would).
    async fn token(&self, email: &str) -> String {
        let credentials = json!({"email": email, "password": PASSWORD});
        let (status, mut body) = self.post("/auth/signup", &credentials, None).await;
        if status == 409 || email == ADMIN {
            if email == ADMIN {
                let db = self
                    .db
                    .clone()
                    .expect("the benchmark's server has its database");
                db.run(|conn| {
                    use diesel::connection::SimpleConnection;
                    conn.batch_execute(&format!(
                        "UPDATE users SET role = 'admin' WHERE email = '{ADMIN}'"
                    ))
                    .map_err(carrental::error::ApiError::from)
                })
                .await
                .expect("promote the benchmark's admin");
            }
            body = self.post("/auth/login", &credentials, None).await.1;
        }
        body["accessToken"].as_str().expect("token").to_owned()
    }

    async fn cars(&self, admin: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            let body = json!({
                "name": format!("Bench car {i}"), "brand": "Bench", "model": "B1", "year": 2024,
                "fuelType": "petrol", "transmission": "manual", "seats": 4, "pricePerDay": 50,
                "images": ["https://img.example.com/b.jpg"],
                "location": {"latitude": 48.85, "longitude": 2.35, "address": "1 Rue", "city": "Paris", "country": "France"}
            });
            let (status, car) = self.post("/cars", &body, Some(admin)).await;
            assert_eq!(status, 201);
            ids.push(car["id"].as_str().expect("id").to_owned());
        }
        ids
    }
}

/// Runs `total` jobs on `clients` concurrent workers; returns each job's status and latency.
async fn drive_with<F, Fut>(
    clients: usize,
    total: usize,
    job: F,
) -> (Duration, Vec<(u16, Duration)>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (job, next) = (job.clone(), next.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return out;
                    }
                    let t = Instant::now();
                    let status = job(i).await;
                    out.push((status, t.elapsed()));
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.expect("worker"));
    }
    (start.elapsed(), results)
}

/// Runs jobs on `clients` concurrent workers until `length` has passed, each worker
/// pausing `pause` between its jobs (not counted in their latency).
async fn drive_for<F, Fut>(
    clients: usize,
    length: Duration,
    pause: Duration,
    job: F,
) -> (Duration, Vec<(u16, Duration)>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (job, next) = (job.clone(), next.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                while start.elapsed() < length {
                    tokio::time::sleep(pause).await;
                    let t = Instant::now();
                    let status = job(next.fetch_add(1, Ordering::Relaxed)).await;
                    out.push((status, t.elapsed()));
                }
                out
            })
        })
        .collect();
    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.expect("worker"));
    }
    (start.elapsed(), results)
}

async fn drive<F, Fut>(total: usize, job: F) -> (Duration, Vec<(u16, Duration)>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    drive_with(CLIENTS, total, job).await
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Prints a scenario's figures; answers its rate of `counted` answers per second and its p99.
fn report(name: &str, elapsed: Duration, results: &[(u16, Duration)], counted: u16) -> (f64, f64) {
    let mut lat: Vec<Duration> = results.iter().map(|r| r.1).collect();
    lat.sort();
    let ok = results.iter().filter(|r| r.0 == counted).count();
    let mut by_status: Vec<(u16, usize)> = results
        .iter()
        .fold(HashMap::new(), |mut m, r| {
            *m.entry(r.0).or_insert(0) += 1;
            m
        })
        .into_iter()
        .collect();
    by_status.sort();
    let secs = elapsed.as_secs_f64();
    println!(
        "  {name:<30} {:>7.0} {counted}/s {:>7.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests in {secs:.2} s; statuses {by_status:?})",
        ok as f64 / secs,
        results.len() as f64 / secs,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        results.len(),
    );
    (ok as f64 / secs, percentile(&lat, 0.99))
}

fn pickup_base() -> chrono::DateTime<Utc> {
    (Utc::now() + TimeDelta::days(2))
        .duration_trunc(TimeDelta::hours(1))
        .expect("truncate")
}

async fn bookings(server: &Arc<Server>) {
    let admin = server.token(ADMIN).await;
    let mut tokens = Vec::new();
    for i in 0..CLIENTS {
        tokens.push(server.token(&format!("bench{i}@example.com")).await);
    }
    let tokens = Arc::new(tokens);
    let base = pickup_base();

    // Distinct cars: every request books a free slot.
    let cars = Arc::new(server.cars(&admin, 64).await);
    let (s, t, c) = (server.clone(), tokens.clone(), cars.clone());
    let (elapsed, results) = drive(2000, move |i| {
        let (s, t, c) = (s.clone(), t.clone(), c.clone());
        async move {
            let pickup = base + TimeDelta::days(2 * (i / c.len()) as i64);
            let body = json!({"carId": c[i % c.len()], "pickupTime": pickup.to_rfc3339(),
                              "dropoffTime": (pickup + TimeDelta::hours(24)).to_rfc3339()});
            s.post("/bookings", &body, Some(&t[i % t.len()])).await.0
        }
    })
    .await;
    report("bookings, distinct cars", elapsed, &results, 201);
    let booked = results.iter().filter(|r| r.0 == 201).count();
    assert_eq!(booked, 2000, "every request for a free slot is booked");

    // Contention: everyone wants one of 4 cars in one of 40 overlapping windows.
    let hot = Arc::new(server.cars(&admin, 4).await);
    let (s, t, c) = (server.clone(), tokens.clone(), hot.clone());
    let (elapsed, results) = drive(2000, move |i| {
        let (s, t, c) = (s.clone(), t.clone(), c.clone());
        async move {
            let slot = (i * 7919) % 40;
            let pickup = base + TimeDelta::hours(6 * slot as i64);
            let body = json!({"carId": c[i % c.len()], "pickupTime": pickup.to_rfc3339(),
                              "dropoffTime": (pickup + TimeDelta::hours(6 + 6 * (i % 3) as i64)).to_rfc3339()});
            s.post("/bookings", &body, Some(&t[i % t.len()])).await.0
        }
    })
    .await;
    report("bookings, 4 contended cars", elapsed, &results, 201);
    let conflicts = results.iter().filter(|r| r.0 == 409).count();
    let mut accepted = 0;
    for car in hot.iter() {
        let mut windows = Vec::new();
        for page in 1.. {
            let res = server
                .client
                .get(format!(
                    "{}/admin/bookings?carId={car}&limit=100&page={page}",
                    server.base
                ))
                .bearer_auth(&admin)
                .send()
                .await
                .expect("list");
            let body: Value = res.json().await.expect("json");
            let data = body["data"].as_array().cloned().unwrap_or_default();
            if data.is_empty() {
                break;
            }
            for b in data.iter().filter(|b| b["status"] != "cancelled") {
                windows.push((
                    b["pickupTime"].as_str().unwrap_or("").to_owned(),
                    b["dropoffTime"].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        windows.sort();
        assert!(
            windows.windows(2).all(|w| w[0].1 <= w[1].0),
            "overlapping bookings for {car}"
        );
        accepted += windows.len();
    }
    assert_eq!(
        accepted + conflicts,
        2000,
        "every request was either booked or refused"
    );
    assert!(
        accepted >= hot.len(),
        "each contended car is booked at least once"
    );
    println!(
        "  {:<30} {accepted} accepted, {conflicts} refused with 409, no overlap",
        "  contention check"
    );

    // Reads.
    let (s, c) = (server.clone(), cars.clone());
    let (elapsed, results) = drive(20_000, move |i| {
        let (s, c) = (s.clone(), c.clone());
        async move {
            s.get(&format!("{}/cars/{}", s.base, c[(i * 31) % c.len()]))
                .await
        }
    })
    .await;
    report("GET /cars/{id}", elapsed, &results, 200);
}

/// A booking with `PAYMENT_PROVIDER=mock` and its confirmation with a test card, against
/// the unpaid booking (`none`) on the same database engine: bookings per second and p99 of
/// each step, and what a paid booking (both steps) costs against an unpaid one. The two
/// alternate for `BENCH_ROUNDS` rounds (default 3), each on a fresh server, and the ratio
/// reported is the median round's: the machine's speed drifts more between phases of one
/// run than the ratio is to be judged by.
async fn payments(backend: &str) {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let unpaid = payment_round(backend, "none").await;
        let paid = payment_round(backend, "mock").await;
        let (held, confirmed) = (&paid[0], &paid[1]);
        let ratio =
            (held.elapsed + confirmed.elapsed).as_secs_f64() / unpaid[0].elapsed.as_secs_f64();
        let cpu = (held.cpu + confirmed.cpu).as_secs_f64() / unpaid[0].cpu.as_secs_f64();
        println!(
            "  round {}: paid booking (held + confirmed) / unpaid booking: {ratio:.2}x the time per booking, {cpu:.2}x the CPU, p99 {:.2}x and {:.2}x",
            round + 1,
            held.p99 / unpaid[0].p99,
            confirmed.p99 / unpaid[0].p99,
        );
        ratios.push(ratio);
        cpu_ratios.push(cpu);
    }
    println!(
        "  paid booking / unpaid booking, median of {rounds} rounds: {} the time, {} the CPU (goal: within 1.5x)",
        median(&mut ratios),
        median(&mut cpu_ratios),
    );
}

/// The median and, in brackets, every value.
fn median(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    let all: Vec<String> = values.iter().map(|r| format!("{r:.2}")).collect();
    format!("{:.2}x ({})", values[values.len() / 2], all.join(", "))
}

/// One step of a payment round: its wall time, the CPU the whole process (server and
/// clients) spent in it, and its p99 in ms.
struct Step {
    elapsed: Duration,
    cpu: Duration,
    p99: f64,
}

/// User and system CPU time this process has used so far.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF cannot fail.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let of = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    of(usage.ru_utime) + of(usage.ru_stime)
}

/// 2,000 bookings on a fresh server with `provider` and, when it takes payments, their
/// confirmations: each step's figures.
async fn payment_round(backend: &str, provider: &str) -> Vec<Step> {
    let vars = [
        ("PAYMENT_PROVIDER", provider),
        ("MAX_UPCOMING_BOOKINGS_PER_USER", "100000"),
    ];
    let server = Arc::new(start(backend, &vars).await);
    let admin = server.token(ADMIN).await;
    let mut tokens = Vec::new();
    for i in 0..CLIENTS {
        tokens.push(server.token(&format!("pay{i}@example.com")).await);
    }
    let (tokens, cars) = (Arc::new(tokens), Arc::new(server.cars(&admin, 64).await));
    let base = pickup_base();
    let payments = Arc::new(std::sync::Mutex::new(vec![String::new(); 2000]));
    let (s, t, p) = (server.clone(), tokens.clone(), payments.clone());
    let cpu = cpu_time();
    let (elapsed, results) = drive(2000, move |i| {
        let (s, t, c, p) = (s.clone(), t.clone(), cars.clone(), p.clone());
        async move {
            let pickup = base + TimeDelta::days(2 * (i / c.len()) as i64);
            let body = json!({"carId": c[i % c.len()], "pickupTime": pickup.to_rfc3339(),
                              "dropoffTime": (pickup + TimeDelta::hours(24)).to_rfc3339()});
            let (status, booking) = s.post("/bookings", &body, Some(&t[i % t.len()])).await;
            if let Some(id) = booking["payment"]["id"].as_str() {
                p.lock().unwrap_or_else(|e| e.into_inner())[i] = id.to_owned();
            }
            status
        }
    })
    .await;
    let step =
        |name: &str, elapsed: Duration, cpu: Duration, results: &[(u16, Duration)], ok: u16| {
            let cpu = cpu_time().saturating_sub(cpu);
            let (_, p99) = report(name, elapsed, results, ok);
            Step { elapsed, cpu, p99 }
        };
    if provider == "none" {
        return vec![step("booking, unpaid", elapsed, cpu, &results, 201)];
    }
    let mut steps = vec![step("booking, mock: held", elapsed, cpu, &results, 201)];
    let (s, p) = (server.clone(), payments.clone());
    let cpu = cpu_time();
    let (elapsed, results) = drive(2000, move |i| {
        let (s, t, p) = (s.clone(), tokens.clone(), p.clone());
        async move {
            let payment = p.lock().unwrap_or_else(|e| e.into_inner())[i].clone();
            let card = json!({"card": "4242424242424242"});
            let path = format!("/payments/mock/{payment}/confirm");
            s.post(&path, &card, Some(&t[i % t.len()])).await.0
        }
    })
    .await;
    steps.push(step(
        "booking, mock: confirmed",
        elapsed,
        cpu,
        &results,
        200,
    ));
    steps
}

/// One gateway hop: `GET /cars/{id}` straight to the server, then through a process that
/// serves no module and forwards to it.
async fn gateway(server: &Arc<Server>) {
    let admin = server.token(ADMIN).await;
    let cars = Arc::new(server.cars(&admin, 64).await);
    let (gateway, _) = serve(&[
        ("MODULES", "gateway"),
        ("CAR_SERVICE_URL", server.base.as_str()),
        ("INTERNAL_TOKEN", "bench-internal-token-0123456789abcdef"),
    ])
    .await;
    for (clients, total) in [(1, 5000), (CLIENTS, 20_000)] {
        for (name, base) in [
            ("direct", server.base.clone()),
            ("via gateway", gateway.clone()),
        ] {
            let (s, c, base) = (server.clone(), cars.clone(), Arc::new(base));
            let (elapsed, results) = drive_with(clients, total, move |i| {
                let (s, c, base) = (s.clone(), c.clone(), base.clone());
                async move {
                    s.get(&format!("{base}/cars/{}", c[(i * 31) % c.len()]))
                        .await
                }
            })
            .await;
            report(
                &format!("GET /cars/{{id}} {name}, {clients} client(s)"),
                elapsed,
                &results,
                200,
            );
        }
    }
}

/// A login storm (8 clients) beside people browsing (4 clients, each reading a car every
/// 2 ms, some 1,500 reads a second), on a server hashing passwords at cost 12: the reads'
/// p99 shows whether hashing starves the workers, the logins' rate how much of the
/// machine's bcrypt ceiling (every core hashing) they still get.
async fn logins() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hash = bcrypt::hash("Secret123", 12).expect("hash");
    let per_core = 8;
    let start = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let hash = hash.clone();
            std::thread::spawn(move || {
                for _ in 0..per_core {
                    let _ = bcrypt::verify("Secret123", &hash);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("bcrypt thread");
    }
    let ceiling = (cores * per_core) as f64 / start.elapsed().as_secs_f64();
    println!(
        "  {:<30} {ceiling:.1} verifications/s at cost 12 on {cores} cores",
        "bcrypt ceiling"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/logins.db", dir.path().display());
    // BENCH_BCRYPT_CONCURRENCY=2 shows the same storm without the gate's default.
    let turns = std::env::var("BENCH_BCRYPT_CONCURRENCY").unwrap_or_else(|_| "0".into());
    let (base, _) = serve(&[
        ("DATABASE_URL", url.as_str()),
        ("BCRYPT_ROUNDS", "12"),
        ("BCRYPT_CONCURRENCY", turns.as_str()),
        ("AUTH_RATE_LIMIT_MAX", "1000000000"),
    ])
    .await;
    let server = Arc::new(Server {
        base,
        db: None,
        client: reqwest::Client::new(),
        pg_drop: None,
        _dir: None,
    });
    let admin = server.token(ADMIN).await;
    let cars = Arc::new(server.cars(&admin, 64).await);
    server.token("storm@example.com").await;
    let length = Duration::from_secs(10);
    let s = server.clone();
    let storm = tokio::spawn(drive_for(8, length, Duration::ZERO, move |_| {
        let s = s.clone();
        async move {
            let body = json!({"email": "storm@example.com", "password": PASSWORD});
            s.post("/auth/login", &body, None).await.0
        }
    }));
    let (s, c) = (server.clone(), cars.clone());
    let pause = Duration::from_millis(2);
    let (elapsed, reads) = drive_for(4, length, pause, move |i| {
        let (s, c) = (s.clone(), c.clone());
        async move {
            s.get(&format!("{}/cars/{}", s.base, c[(i * 31) % c.len()]))
                .await
        }
    })
    .await;
    let (storm_elapsed, logins) = storm.await.expect("storm");
    report("GET /cars/{id} during the storm", elapsed, &reads, 200);
    report("logins during the storm", storm_elapsed, &logins, 200);
    let rate = logins.iter().filter(|r| r.0 == 200).count() as f64 / storm_elapsed.as_secs_f64();
    println!(
        "  {:<30} {rate:.1} logins/s = {:.0} % of the ceiling",
        "",
        100.0 * rate / ceiling
    );
}

/// The fleet the search and listing scenarios run on: BENCH_CARS, default 100,000.
fn fleet_size() -> usize {
    std::env::var("BENCH_CARS")
        .ok()
        .and_then(|n| n.replace('_', "").parse().ok())
        .unwrap_or(100_000)
}
/// The path and query of the i-th request of a scenario.
type PathFor = fn(usize) -> String;
const SEARCH_CLIENTS: usize = 8;

/// A number in [0, 1) that differs for every i (the golden-ratio sequence), so that no
/// two requests of a scenario ask the same and none is answered from the cache.
fn spread(i: usize, salt: f64) -> f64 {
    ((i as f64 + salt) * 0.618_033_988_749_895).fract()
}

/// A search as compare.sh's varied rows make them (../shared/bench/varied.py): around the
/// cities or over the countryside, 5 to 100 km, a filter one time in three, by price one
/// time in five, pages 1 to 3, and with a window of 1 to 14 days in the next 90 when asked.
fn varied_search(i: usize, window: bool) -> String {
    const CITIES: [(f64, f64); 5] = [
        (48.8566, 2.3522),
        (45.7640, 4.8357),
        (43.2965, 5.3698),
        (44.8378, -0.5792),
        (50.6292, 3.0573),
    ];
    let (lat, lng) = if spread(i, 0.11) < 0.6 {
        let (lat, lng) = CITIES[i % CITIES.len()];
        (
            lat + 0.3 * spread(i, 0.12) - 0.15,
            lng + 0.4 * spread(i, 0.13) - 0.2,
        )
    } else {
        (42.5 + 8.5 * spread(i, 0.14), -4.5 + 12.5 * spread(i, 0.15))
    };
    let radius = [5, 10, 10, 25, 50, 100][(spread(i, 0.16) * 6.0) as usize];
    let mut path = format!("/search?lat={lat:.5}&lng={lng:.5}&radius={radius}");
    path += match (spread(i, 0.17) * 20.0) as usize {
        0..=2 => ["&fuelType=electric", "&fuelType=diesel", "&fuelType=hybrid"][i % 3],
        3 | 4 => ["&maxPrice=60", "&maxPrice=80", "&maxPrice=120"][i % 3],
        5 => "&seats=7",
        _ => "",
    };
    if spread(i, 0.18) < 0.2 {
        path += "&sort=price";
    }
    if window {
        let start = Utc::now()
            .duration_trunc(TimeDelta::days(1))
            .unwrap_or_else(|_| Utc::now())
            + TimeDelta::days(1 + (spread(i, 0.19) * 90.0) as i64)
            + TimeDelta::hours(10);
        let end = start + TimeDelta::days(1 + (spread(i, 0.2) * 14.0) as i64);
        path += &format!(
            "&pickupTime={}&dropoffTime={}",
            start.format("%Y-%m-%dT%H:%M:%SZ"),
            end.format("%Y-%m-%dT%H:%M:%SZ")
        );
    }
    path + &format!(
        "&page={}",
        [1, 1, 1, 2, 3][(spread(i, 0.21) * 5.0) as usize]
    )
}

async fn search(server: &Arc<Server>) {
    if std::env::var("BENCH_DATABASE_URL").is_err() {
        seed(server).await;
    }
    search_scenarios(server).await;
}

async fn seed(server: &Arc<Server>) {
    let started = Instant::now();
    let fleet = carrental::cars::seed::fleet(fleet_size(), 2026);
    let db = server
        .db
        .clone()
        .expect("the benchmark server has a database");
    let inserted = db
        .run(move |conn| carrental::cars::seed::insert(conn, fleet, &carrental::ports::NoIndex))
        .await
        .expect("seed");
    println!(
        "  {:<30} {inserted} cars in {:.1} s",
        "seeded fleet",
        started.elapsed().as_secs_f64()
    );
    if db.backend() == carrental::db::Backend::Postgres {
        // What autovacuum does shortly after a bulk load (index-only scans need the
        // visibility map VACUUM sets).
        db.run(|conn| Ok(diesel::sql_query("VACUUM ANALYZE").execute(conn)?))
            .await
            .expect("analyze");
    }
}

async fn search_scenarios(server: &Arc<Server>) {
    let scenarios: [(&str, PathFor); 12] = [
        ("search 10 km, dense city", |i| {
            let (dlat, dlng) = (spread(i, 0.1) / 10.0 - 0.05, spread(i, 0.7) / 10.0 - 0.05);
            format!(
                "/search?lat={}&lng={}&radius=10",
                48.8566 + dlat,
                2.3522 + dlng
            )
        }),
        ("search 100 km", |i| {
            let (lat, lng) = (43.5 + 6.0 * spread(i, 0.3), -1.0 + 7.0 * spread(i, 0.9));
            format!("/search?lat={lat}&lng={lng}&radius=100")
        }),
        ("search 100 km by price for a week", |i| {
            let (lat, lng) = (43.5 + 6.0 * spread(i, 0.3), -1.0 + 7.0 * spread(i, 0.9));
            let pickup = (Utc::now() + TimeDelta::days(10 + (i % 20) as i64))
                .duration_trunc(TimeDelta::hours(1))
                .unwrap_or_default();
            format!(
                "/search?lat={lat}&lng={lng}&radius=100&sort=price&pickupTime={}&dropoffTime={}",
                pickup.format("%Y-%m-%dT%H:%M:%SZ"),
                (pickup + TimeDelta::days(7)).format("%Y-%m-%dT%H:%M:%SZ")
            )
        }),
        ("search text, 50 km", |i| {
            let words = [
                "tesla%20autopilot",
                "peugot",
                "toyota%20yaris",
                "bmw%20roof",
                "golf",
            ];
            let dlat = spread(i, 0.5) / 10.0 - 0.05;
            format!(
                "/search?lat={}&lng=2.3522&radius=50&query={}",
                48.8566 + dlat,
                words[i % words.len()]
            )
        }),
        ("search, one query repeated", |_| {
            "/search?lat=48.8566&lng=2.3522&radius=10&query=tesla".into()
        }),
        ("list, first page", |_| "/cars?limit=20".into()),
        ("list, page 200", |_| "/cars?limit=20&page=200".into()),
        ("list, filtered first pages", |i| {
            let cities = ["paris", "lyon", "lille", "countryside"];
            format!(
                "/cars?city={}&fuelType=electric&page={}",
                cities[i % 4],
                1 + i % 3
            )
        }),
        ("list, filters never asked", |i| {
            format!("/cars?maxPrice={:.2}", 30.0 + 270.0 * spread(i, 0.2))
        }),
        ("varied search", |i| varied_search(i, false)),
        ("varied search + window", |i| varied_search(i, true)),
        ("varied list pages", |i| {
            let filter = match (spread(i, 0.4) * 20.0) as usize {
                0..=3 => format!("&city={}", carrental::cars::seed::CITIES[i % 5].0),
                4..=6 => format!(
                    "&brand={}",
                    ["tesla", "renault", "peugeot", "toyota"][i % 4]
                ),
                7 | 8 => format!(
                    "&fuelType={}",
                    ["electric", "diesel", "hybrid", "petrol"][i % 4]
                ),
                _ => String::new(),
            };
            format!(
                "/cars?limit=20&page={}{filter}",
                1 + (spread(i, 0.6) * 500.0) as usize
            )
        }),
    ];
    // Names (or parts of names) of the scenarios to run, comma separated; all when unset.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|w| name.contains(w.trim()));
    for (name, path) in scenarios.into_iter().filter(|(name, _)| wanted(name)) {
        let s = server.clone();
        let sample: Value = s
            .client
            .get(format!("{}{}", s.base, path(0)))
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("json");
        // The varied rows are the ones compared across fleet sizes: at 300 requests their
        // p99 would be the three slowest, so they walk more.
        let requests = if name.starts_with("varied") {
            1000
        } else {
            300
        };
        for (clients, total) in [(1, requests), (SEARCH_CLIENTS, requests * 4)] {
            let s = s.clone();
            let (elapsed, results) = drive_with(clients, total, move |i| {
                let s = s.clone();
                async move { s.get(&format!("{}{}", s.base, path(i))).await }
            })
            .await;
            report(
                &format!("{name}, {clients} client(s)"),
                elapsed,
                &results,
                200,
            );
        }
        println!(
            "  {:<30} e.g. total {} for {}",
            "",
            sample["total"],
            path(0)
        );
    }
    if wanted("list, first page after a write") {
        cold_listing(server).await;
    }
}

/// The first listing page right after a car write, when its total must be counted anew:
/// a write, then the page, 300 times (as many as the other rows' requests, so that one slow
/// request is not the p99 on its own).
async fn cold_listing(server: &Arc<Server>) {
    let admin = server.token(ADMIN).await;
    let car = server.cars(&admin, 1).await.remove(0);
    let mut results = Vec::new();
    let mut reading = Duration::ZERO;
    for i in 0..300 {
        let res = server
            .client
            .patch(format!("{}/cars/{car}", server.base))
            .bearer_auth(&admin)
            .json(&json!({"seats": 2 + i % 5}))
            .send()
            .await
            .expect("patch");
        assert_eq!(res.status().as_u16(), 200);
        let t = Instant::now();
        let status = server.get(&format!("{}/cars?limit=20", server.base)).await;
        reading += t.elapsed();
        results.push((status, t.elapsed()));
    }
    report("list, first page after a write", reading, &results, 200);
}

/// `GET /cars/{id}` while 4 large photos (about 10 MiB of JPEG each) are completed at once,
/// all the time: decoding and re-encoding run off the HTTP workers, so reads keep their
/// latency. p99 of the reads alone, then while the uploads go on.
async fn uploads() {
    let media = tempfile::tempdir().expect("tempdir");
    let dir = media.path().display().to_string();
    let server = Arc::new(start("sqlite", &[("MEDIA_DIR", dir.as_str())]).await);
    let admin = server.token(ADMIN).await;
    let cars = Arc::new(server.cars(&admin, 64).await);
    let read = |cars: Arc<Vec<String>>, s: Arc<Server>| {
        move |i: usize| {
            let (s, c) = (s.clone(), cars.clone());
            async move { s.get(&format!("{}/cars/{}", s.base, c[i % c.len()])).await }
        }
    };
    let length = Duration::from_secs(8);
    let pause = Duration::from_millis(5);
    let (elapsed, alone) = drive_for(8, length, pause, read(cars.clone(), server.clone())).await;
    report("GET /cars/{id}, alone", elapsed, &alone, 200);

    // Noise compresses badly: an 8-megapixel frame of it makes a JPEG close to 10 MiB.
    let mut seed = 0x2545_f491_u32;
    let photo = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(3264, 2448, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let b = seed.to_le_bytes();
        image::Rgb([b[0], b[1], b[2]])
    }));
    // The highest quality that stays under the 10 MiB limit.
    let mut jpeg = Vec::new();
    for quality in (50..=95).rev().step_by(5) {
        jpeg.clear();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality)
            .encode_image(&photo)
            .expect("jpeg");
        if jpeg.len() <= 10 * 1024 * 1024 {
            break;
        }
    }
    let jpeg = Arc::new(jpeg);
    // Four uploaders, each offering, sending and completing one photo after another for the
    // whole window: four completes are always under way while the reads run.
    let upload = {
        let (s, cars, jpeg) = (server.clone(), cars.clone(), jpeg.clone());
        move |i: usize| {
            let (s, admin, jpeg) = (s.clone(), admin.clone(), jpeg.clone());
            let car = cars[i % cars.len()].clone();
            async move {
                let body = json!({"purpose": "car_photo", "contentType": "image/jpeg",
                                  "size": jpeg.len(), "carId": car});
                let (status, ticket) = s.post("/uploads", &body, Some(&admin)).await;
                assert_eq!(status, 201, "{ticket}");
                let sent = s
                    .client
                    .put(ticket["url"].as_str().expect("url"))
                    .header("Content-Type", "image/jpeg")
                    .body(jpeg.to_vec())
                    .send()
                    .await
                    .expect("put");
                assert_eq!(sent.status().as_u16(), 204);
                let id = ticket["id"].as_str().expect("id");
                s.post(&format!("/uploads/{id}/complete"), &json!({}), Some(&admin))
                    .await
                    .0
            }
        }
    };
    let uploads = tokio::spawn(drive_for(4, length, Duration::ZERO, upload));
    let (elapsed, during) = drive_for(8, length, pause, read(cars.clone(), server.clone())).await;
    let (uploading, completed) = uploads.await.expect("uploads");
    println!(
        "  {:<30} {} × {:.1} MiB offered, sent and completed by 4 uploaders in {:.1} s ({:.2} s each on average), statuses {:?}",
        "  uploads",
        completed.len(),
        jpeg.len() as f64 / 1_048_576.0,
        uploading.as_secs_f64(),
        completed.iter().map(|r| r.1.as_secs_f64()).sum::<f64>() / completed.len().max(1) as f64,
        completed.iter().fold(HashMap::new(), |mut m, r| {
            *m.entry(r.0).or_insert(0) += 1;
            m
        }),
    );
    report("GET /cars/{id}, during them", elapsed, &during, 200);
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let scenarios = std::env::var("BENCH_SCENARIOS")
        .unwrap_or_else(|_| "bookings,payments,gateway,search,logins".into());
    println!("load benchmark: server and clients on this machine ({CLIENTS} clients for bookings and reads, {SEARCH_CLIENTS} for search)");
    let per_backend = ["bookings", "payments", "gateway", "search"];
    for backend in backends
        .split(',')
        .map(str::trim)
        .filter(|_| per_backend.iter().any(|s| scenarios.contains(s)))
    {
        println!("{backend}:");
        if scenarios.contains("payments") {
            payments(backend).await;
        }
        if !["bookings", "gateway", "search"]
            .iter()
            .any(|s| scenarios.contains(s))
        {
            continue;
        }
        // Its 32 users book thousands of slots: the cap on a customer's upcoming bookings
        // would refuse all but the first ten of each.
        let uncapped = [("MAX_UPCOMING_BOOKINGS_PER_USER", "100000")];
        let server = Arc::new(start(backend, &uncapped).await);
        if scenarios.contains("bookings") {
            bookings(&server).await;
        }
        if scenarios.contains("gateway") {
            gateway(&server).await;
        }
        if scenarios.contains("search") {
            search(&server).await;
        }
    }
    if scenarios.contains("logins") {
        println!("logins (sqlite):");
        logins().await;
    }
    if scenarios.contains("uploads") {
        println!("uploads (sqlite, local store):");
        uploads().await;
    }
}
