//! The database: one diesel code base over PostgreSQL and SQLite, an r2d2 pool, migrations.

pub mod follow;
pub mod functions;
pub mod schema;
pub mod text;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::DatabaseSettings;
use crate::error::ApiError;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Serialises migrations when several instances start at once against one PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x6361_7272_656e_7461;
/// How long SQLite waits for its write lock (`PRAGMA busy_timeout`).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL connection used without error this recently is taken as alive; one idle for
/// longer is pinged before it is handed out (HikariCP's bypass window, the same figure). A
/// ping on every checkout was one statement in five of a busy server's.
const ALIVE_FOR: Duration = Duration::from_millis(500);

/// When a connection was last used without error (kept with it in the pool).
struct Used(Instant);

fn used(conn: &mut PooledConn) {
    r2d2::PooledConnection::extensions_mut(conn).insert(Used(Instant::now()));
}

/// How often [`Db::checkpoint_wal`] copies SQLite's WAL back into the database file.
pub const SQLITE_CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// The WAL size (4 KiB pages) at which a commit checkpoints by itself, should the task fall
/// behind: ten times SQLite's default, so that in the ordinary run no commit does it.
const SQLITE_WAL_BACKSTOP_PAGES: u32 = 10_000;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl DbConn {
    pub fn backend(&self) -> Backend {
        match self {
            DbConn::Pg(_) => Backend::Postgres,
            DbConn::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Begins a transaction for check-then-write rules. On SQLite it is `BEGIN IMMEDIATE`,
    /// so it holds the write lock before its first read and no other writer can slip in
    /// between the check and the write. PostgreSQL relies on constraints and locks.
    /// Inside a transaction it is a savepoint.
    fn begin_write(&mut self) -> QueryResult<()> {
        match self {
            DbConn::Sqlite(c) => {
                let status = AnsiTransactionManager::transaction_manager_status_mut(c);
                if status.transaction_depth()?.is_some() {
                    AnsiTransactionManager::begin_transaction(c)
                } else {
                    AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
                }
            }
            DbConn::Pg(c) => AnsiTransactionManager::begin_transaction(c),
        }
    }

    fn commit(&mut self) -> QueryResult<()> {
        match self {
            DbConn::Sqlite(c) => AnsiTransactionManager::commit_transaction(c),
            DbConn::Pg(c) => AnsiTransactionManager::commit_transaction(c),
        }
    }

    fn rollback(&mut self) -> QueryResult<()> {
        match self {
            DbConn::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
            DbConn::Pg(c) => AnsiTransactionManager::rollback_transaction(c),
        }
    }

    /// Runs `f` in a write transaction (see [`DbConn::begin_write`]): committed when it
    /// answers `Ok`, rolled back otherwise.
    pub fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        self.begin_write()?;
        self.finish(f)
    }

    /// Runs `f` in a read-only transaction that sees one snapshot of the database, so that
    /// several queries (a page and its count) agree with each other.
    pub fn read_snapshot<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        match self {
            DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN")?,
            DbConn::Pg(c) => AnsiTransactionManager::begin_transaction_sql(
                c,
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            )?,
        }
        self.finish(f)
    }

    /// Runs `f` in the transaction just begun: committed when it answers `Ok`, rolled back
    /// otherwise.
    fn finish<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        match f(self) {
            Ok(value) => {
                self.commit()?;
                Ok(value)
            }
            Err(e) => {
                self.rollback()?;
                Err(e)
            }
        }
    }

    pub fn run_migrations(&mut self) -> Result<Vec<String>, MigrationError> {
        self.with_migration_lock(|conn| {
            let applied = match conn {
                DbConn::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS),
                DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
            }
            .map_err(|e| MigrationError(e.to_string()))?;
            Ok(applied.iter().map(ToString::to_string).collect())
        })
    }

    pub fn revert_last_migration(&mut self) -> Result<String, MigrationError> {
        self.with_migration_lock(|conn| {
            match conn {
                DbConn::Pg(c) => c.revert_last_migration(PG_MIGRATIONS),
                DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS),
            }
            .map(|v| v.to_string())
            .map_err(|e| MigrationError(e.to_string()))
        })
    }

    /// Every known migration with whether it has been applied.
    pub fn migration_status(&mut self) -> Result<Vec<(String, bool)>, MigrationError> {
        fn status<DB: diesel::backend::Backend>(
            conn: &mut impl MigrationHarness<DB>,
            source: &EmbeddedMigrations,
        ) -> diesel::migration::Result<Vec<(String, bool)>>
        where
            EmbeddedMigrations: MigrationSource<DB>,
        {
            let applied = conn.applied_migrations()?;
            Ok(source
                .migrations()?
                .iter()
                .map(|m| {
                    let name = m.name();
                    (
                        name.to_string(),
                        applied.contains(&name.version().as_owned()),
                    )
                })
                .collect())
        }
        match self {
            DbConn::Pg(c) => status(c, &PG_MIGRATIONS),
            DbConn::Sqlite(c) => status(c, &SQLITE_MIGRATIONS),
        }
        .map_err(|e| MigrationError(e.to_string()))
    }

    /// Applies the first `n` of this binary's migrations, oldest first, to a new database:
    /// the schema as it was at that version.
    pub fn run_first_migrations(&mut self, n: usize) -> Result<(), MigrationError> {
        (0..n)
            .try_for_each(|_| match self {
                DbConn::Pg(c) => c.run_next_migration(PG_MIGRATIONS).map(drop),
                DbConn::Sqlite(c) => c.run_next_migration(SQLITE_MIGRATIONS).map(drop),
            })
            .map_err(|e| MigrationError(e.to_string()))
    }

    /// One connection to `url`, set up as the pool's are (for the command line).
    pub fn open(url: &DbUrl) -> Result<DbConn, String> {
        Manager {
            url: url.clone(),
            health: Arc::new(Health::default()),
        }
        .open()
        .map_err(|e| one_line(&e.to_string()))
    }

    fn with_migration_lock<T>(
        &mut self,
        f: impl FnOnce(&mut DbConn) -> Result<T, MigrationError>,
    ) -> Result<T, MigrationError> {
        let lock = |conn: &mut DbConn, sql: &str| {
            if conn.backend() == Backend::Postgres {
                conn.batch_execute(sql)
                    .map_err(|e| MigrationError(e.to_string()))?;
            }
            Ok::<_, MigrationError>(())
        };
        lock(
            self,
            &format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"),
        )?;
        let result = f(self);
        lock(
            self,
            &format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"),
        )?;
        result
    }
}

use diesel::migration::{Migration, MigrationSource};

/// This binary's migration versions for `backend`, oldest first.
pub fn known_migrations(backend: Backend) -> Result<Vec<String>, MigrationError> {
    fn versions<DB: diesel::backend::Backend>(
        source: &EmbeddedMigrations,
    ) -> diesel::migration::Result<Vec<String>>
    where
        EmbeddedMigrations: MigrationSource<DB>,
    {
        let mut versions: Vec<String> = source
            .migrations()?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
        versions.sort();
        Ok(versions)
    }
    match backend {
        Backend::Postgres => versions::<diesel::pg::Pg>(&PG_MIGRATIONS),
        Backend::Sqlite => versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
    }
    .map_err(|e| MigrationError(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

/// How many cars are not deleted (the active ones only, unless `include_inactive`), read
/// from `car_counts`, which triggers keep with every write to `cars`: two rows, not a count
/// of the fleet, and of the same snapshot as the rest of the transaction.
pub fn undeleted_cars(conn: &mut DbConn, include_inactive: bool) -> QueryResult<i64> {
    use schema::car_counts;
    let counts: Vec<(bool, i64)> = car_counts::table
        .select((car_counts::active, car_counts::cars))
        .load(conn)?;
    Ok(counts
        .iter()
        .filter(|(active, _)| *active || include_inactive)
        .map(|(_, n)| n)
        .sum())
}

/// Takes a lock on `key` until the transaction ends. It is a PostgreSQL advisory lock on the
/// key, not a row lock, so no module touches another's table and it works the same across
/// processes on one database. On SQLite there is nothing to do: a write transaction already
/// holds the whole database. ([`crate::ports::lock`] says what is locked.)
pub fn lock(conn: &mut DbConn, key: String) -> QueryResult<()> {
    if conn.backend() == Backend::Postgres {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(key)
            .execute(conn)?;
    }
    Ok(())
}

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("DATABASE_URL: sqlite:// needs a file path".into());
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else {
            Err("DATABASE_URL must start with postgres://, postgresql:// or sqlite://".into())
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The URL with any password replaced, for messages and logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let userinfo = &url[scheme + 3..at];
                    let user = userinfo.split(':').next().unwrap_or_default();
                    let hidden = if userinfo.contains(':') { ":***" } else { "" };
                    format!("{}{user}{hidden}{}", &url[..scheme + 3], &url[at..])
                }
                _ => url.clone(),
            },
        }
    }
}

/// Opens connections of the configured backend only: diesel's own `establish` on a
/// multi-connection would fall through to SQLite and create a file named after a bad URL.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DbUrl,
    health: Arc<Health>,
}

/// Whether the database is reachable, as the last connection attempt said. While it is
/// not, requests answer 503 at once instead of each waiting out the connection timeout;
/// a background probe tries again every 250 ms and opens the gate when it connects.
#[derive(Debug, Default)]
struct Health {
    down: AtomicBool,
    probing: AtomicBool,
}

impl Manager {
    fn open(&self) -> Result<DbConn, r2d2::Error> {
        match &self.url {
            DbUrl::Postgres(url) => {
                let mut conn =
                    diesel::PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                // Compiling a query costs 100 ms or more: more than any query here takes,
                // however high the planner's estimate that makes PostgreSQL do it.
                conn.batch_execute("SET jit = off")
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Pg(conn))
            }
            DbUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                            format!("cannot create {}: {e}", dir.display()),
                        ))
                    })?;
                }
                let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(r2d2::Error::ConnectionError)?;
                functions::register_sqlite(&mut conn).map_err(r2d2::Error::QueryError)?;
                // Reads map the database file (up to SQLite's own 2 GiB ceiling) rather than
                // copy it into each connection's cache: past 256 MiB (a fleet of a few
                // hundred thousand cars) searches slowed with every read outside the map.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = {}; \
                     PRAGMA mmap_size = 2147418112; PRAGMA cache_size = -16000;",
                    SQLITE_BUSY_TIMEOUT.as_millis(),
                    SQLITE_WAL_BACKSTOP_PAGES
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    /// Marks the database down and starts the probe that will mark it up again.
    fn went_down(&self) {
        self.health.down.store(true, Ordering::SeqCst);
        if self.health.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let manager = self.clone();
        let probe = std::thread::Builder::new()
            .name("db-probe".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(250));
                    if manager.open().is_ok() {
                        break;
                    }
                }
                manager.health.down.store(false, Ordering::SeqCst);
                manager.health.probing.store(false, Ordering::SeqCst);
                tracing::info!("database reachable again");
            });
        if probe.is_err() {
            // No thread for the probe: requests find out themselves, as before.
            self.health.down.store(false, Ordering::SeqCst);
            self.health.probing.store(false, Ordering::SeqCst);
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        self.open().inspect_err(|_| self.went_down())
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// A write waiting for its turn with others (see [`Db::writing`]) and where its
/// outcome goes.
type SharedWrite = (
    Box<dyn FnOnce(&mut DbConn) -> Result<(), ApiError> + Send>,
    tokio::sync::oneshot::Sender<Result<(), ApiError>>,
);

/// The shared handle every module uses to reach the database.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// Opens a connection in place of one found dead.
    manager: Manager,
    health: Arc<Health>,
    connect_timeout: Duration,
    backend: Backend,
    /// Turns for [`Db::run`], as many as connections and handed out in the order asked: a
    /// burst of requests waits here in turn, rather than as blocking threads racing for
    /// the pool (the unlucky ones for many turns).
    turns: Arc<Semaphore>,
    /// Turns for transactions that await other modules while they hold a connection.
    outcalls: Arc<Semaphore>,
    /// SQLite has one writer at a time: writers queue here, holding no connection, rather
    /// than inside `BEGIN IMMEDIATE` holding one each while the writer they wait for needs
    /// a connection to read. PostgreSQL has no such gate.
    writer: Option<Arc<Semaphore>>,
    /// Writes waiting to share the next writer's turn (see [`Db::writing`]).
    together: Arc<std::sync::Mutex<Vec<SharedWrite>>>,
    /// Takings of a connection that found none idle, and how long every taking waited.
    waits: prometheus::IntCounter,
    wait_time: prometheus::Histogram,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Url(String),
    #[error("database unreachable at {url} after {attempts} attempts: {last}")]
    Unreachable {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error(transparent)]
    Migration(#[from] MigrationError),
}

impl Db {
    /// Connects, retrying a bounded number of times, and migrates when asked to; the pool
    /// keeps a connection ready in the background. Blocking: call it from a blocking context
    /// or at start-up.
    pub fn connect(settings: &DatabaseSettings, migrate: bool) -> Result<Db, DbError> {
        Self::open(settings, migrate, Some(1))
    }

    /// For a one-shot command: no connection is opened in the background (a process that
    /// exits while a background thread is inside libpq's TLS set-up can crash).
    pub fn connect_for_command(settings: &DatabaseSettings, migrate: bool) -> Result<Db, DbError> {
        Self::open(settings, migrate, Some(0))
    }

    fn open(
        settings: &DatabaseSettings,
        migrate: bool,
        min_idle: Option<u32>,
    ) -> Result<Db, DbError> {
        let url = DbUrl::parse(&settings.url).map_err(DbError::Url)?;
        let health = Arc::new(Health::default());
        let manager = Manager {
            url: url.clone(),
            health: health.clone(),
        };
        let attempts = settings.connect_retries.max(1);
        let mut first = None;
        for attempt in 1..=attempts {
            match manager.open() {
                Ok(conn) => {
                    first = Some(conn);
                    break;
                }
                Err(e) if attempt == attempts => {
                    return Err(DbError::Unreachable {
                        url: url.redacted(),
                        attempts,
                        last: one_line(&e.to_string()),
                    })
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %one_line(&e.to_string()), "database not reachable yet");
                    std::thread::sleep(Duration::from_millis(250 * 2u64.pow(attempt.min(4))));
                }
            }
        }
        if let (true, Some(mut conn)) = (migrate, first) {
            for name in conn.run_migrations()? {
                tracing::info!(migration = %name, "applied migration");
            }
        }
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(min_idle)
            .connection_timeout(settings.connect_timeout)
            // `Db::get` pings what was not used lately (see ALIVE_FOR).
            .test_on_check_out(false)
            .error_handler(Box::new(LogErrors))
            .build_unchecked(manager.clone());
        // Half the pool at most, so the reads such a transaction waits on (another module's,
        // in this process) always find a connection.
        let turns = usize::try_from(settings.pool_size / 2).unwrap_or(1).max(1);
        Ok(Db {
            pool,
            manager,
            health,
            connect_timeout: settings.connect_timeout,
            backend: url.backend(),
            turns: Arc::new(Semaphore::new(settings.pool_size as usize)),
            outcalls: Arc::new(Semaphore::new(turns)),
            writer: (url.backend() == Backend::Sqlite).then(|| Arc::new(Semaphore::new(1))),
            together: Arc::default(),
            waits: prometheus::IntCounter::new(
                "carrental_db_connection_waits_total",
                "Database connections asked for when none was idle",
            )
            .map_err(|e| DbError::Url(e.to_string()))?,
            wait_time: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "carrental_db_connection_wait_seconds",
                    "How long taking a database connection waited",
                )
                .buckets(vec![0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            )
            .map_err(|e| DbError::Url(e.to_string()))?,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for blocking code (workers, the command line). While the database is
    /// known to be down this answers at once; otherwise it waits for a connection up to the
    /// connection timeout, looking again at whether the database went down meanwhile.
    pub fn get(&self) -> Result<PooledConn, ApiError> {
        if self.health.down.load(Ordering::SeqCst) {
            return Err(ApiError::Unavailable);
        }
        if let Some(conn) = self.pool.try_get() {
            self.wait_time.observe(0.0);
            return self.alive(conn);
        }
        self.waits.inc();
        let started = Instant::now();
        let deadline = started + self.connect_timeout;
        let got = self.wait_for_connection(deadline);
        self.wait_time.observe(started.elapsed().as_secs_f64());
        self.alive(got?)
    }

    /// The connection, pinged first unless it was used without error within [`ALIVE_FOR`]
    /// (PostgreSQL may have closed it meanwhile); one that fails the ping is replaced in
    /// place by a new one. A SQLite connection is a file open in this process: never pinged.
    fn alive(&self, mut conn: PooledConn) -> Result<PooledConn, ApiError> {
        let recent = r2d2::PooledConnection::extensions_mut(&mut conn)
            .remove::<Used>()
            .is_some_and(|used| used.0.elapsed() < ALIVE_FOR);
        if recent || conn.backend() == Backend::Sqlite || conn.ping().is_ok() {
            return Ok(conn);
        }
        *conn = self.manager.connect().map_err(|_| ApiError::Unavailable)?;
        Ok(conn)
    }

    /// Runs `f` on `conn` and keeps what that says of the connection: used without error, it
    /// is taken as alive for a while; after a database error it is pinged, and if it is dead
    /// the answer is 503 and it is replaced (or, the database being down, left to be pinged
    /// at its next checkout).
    fn use_conn<T>(
        &self,
        conn: &mut PooledConn,
        f: impl FnOnce(&mut DbConn) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let result = f(conn);
        match &result {
            Ok(_) => used(conn),
            Err(ApiError::Internal(_) | ApiError::Unavailable)
                if conn.backend() == Backend::Postgres && conn.ping().is_err() =>
            {
                if let Ok(new) = self.manager.connect() {
                    **conn = new;
                }
                return Err(ApiError::Unavailable);
            }
            Err(_) => {}
        }
        result
    }

    fn wait_for_connection(&self, deadline: Instant) -> Result<PooledConn, ApiError> {
        loop {
            if self.health.down.load(Ordering::SeqCst) {
                return Err(ApiError::Unavailable);
            }
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            match self.pool.get_timeout(wait) {
                Ok(conn) => return Ok(conn),
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(error = %e, "no database connection");
                    return Err(ApiError::Unavailable);
                }
                Err(_) => {}
            }
        }
    }

    /// Copies SQLite's WAL into the database file without waiting for readers or writers
    /// (`PRAGMA wal_checkpoint(PASSIVE)`); nothing on PostgreSQL. Left to the commits, this
    /// copy and its fsyncs run inside whichever write crosses `wal_autocheckpoint`, with the
    /// write lock held and every other writer waiting.
    pub async fn checkpoint_wal(&self) -> Result<(), ApiError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        self.run(|conn| Ok(conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")?))
            .await
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let turn = tokio::time::timeout(self.connect_timeout, self.turns.clone().acquire_owned())
            .await
            .map_err(|_| {
                tracing::warn!("no database connection");
                ApiError::Unavailable
            })?
            .map_err(|e| ApiError::internal(format!("database turns closed: {e}")))?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            db.use_conn(&mut db.get()?, f)
        })
        .await
        .map_err(|e| ApiError::internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` in a write transaction (see [`DbConn::write_transaction`]) on the blocking
    /// pool, after waiting for the writer's turn on SQLite.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.writing(|conn| conn.write_transaction(f)).await
    }

    /// Runs `f`, which writes in statements or a transaction of its own. SQLite has one
    /// writer at a time: the writes asked for while its turn is awaited share it, one trip
    /// to the blocking pool and one commit for all of them, each in a savepoint so that one
    /// failing fails alone (a transaction `f` opens is one more savepoint). A write that
    /// skipped the turn would take SQLite's lock from under the queue: the writer whose turn
    /// it is would then sleep in SQLite's busy handler (1 ms and more) while every other
    /// writer waits behind it. PostgreSQL has no single writer: `f` runs on its own.
    pub async fn writing<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        if self.writer.is_none() {
            return self.run(f).await;
        }
        let (done, answer) = tokio::sync::oneshot::channel();
        let slot = Arc::new(std::sync::Mutex::new(None));
        let written = slot.clone();
        let write = move |conn: &mut DbConn| {
            let value = f(conn)?;
            *written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
            Ok(())
        };
        let first = {
            let mut waiting = self
                .together
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            waiting.push((Box::new(write), done));
            waiting.len() == 1
        };
        if first {
            // A task of its own writes them, so that none is lost with a caller that stops
            // waiting.
            tokio::spawn(self.clone().write_waiting());
        }
        answer
            .await
            .map_err(|_| ApiError::internal("a shared write was dropped"))??;
        let value = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        value.ok_or_else(|| ApiError::internal("a shared write answered nothing"))
    }

    /// Takes the writer's turn, then every write waiting by then (see
    /// [`Db::writing`]), and answers each.
    async fn write_waiting(self) {
        let turn = self.writer_turn().await;
        let waiting = std::mem::take(
            &mut *self
                .together
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let (writes, answers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        let written = match turn {
            Ok(_turn) => {
                self.run(move |conn| {
                    conn.write_transaction(|conn| {
                        Ok::<_, ApiError>(
                            writes
                                .into_iter()
                                .map(|write| conn.write_transaction(write))
                                .collect::<Vec<_>>(),
                        )
                    })
                })
                .await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(outcomes) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(outcome);
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(match &e {
                        ApiError::Unavailable => ApiError::Unavailable,
                        e => ApiError::internal(e.to_string()),
                    }));
                }
            }
        }
    }

    /// Begins a write transaction (see [`DbConn::write_transaction`]) whose steps run on the
    /// blocking pool one at a time, so that the code between them may await another module
    /// while the transaction holds its locks. It is rolled back unless committed.
    pub async fn begin(&self) -> Result<Tx, ApiError> {
        let turn = self
            .outcalls
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::internal(format!("transaction turns closed: {e}")))?;
        let writer = self.writer_turn().await?;
        let db = self.clone();
        let conn = tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            conn.begin_write()?;
            Ok::<_, ApiError>(conn)
        })
        .await
        .map_err(|e| ApiError::internal(format!("database task failed: {e}")))??;
        Ok(Tx {
            conn: Some(conn),
            _turn: turn,
            writer,
        })
    }

    /// The writer's turn on SQLite, waited for as long as SQLite itself would wait for its
    /// write lock.
    async fn writer_turn(&self) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        let Some(writer) = &self.writer else {
            return Ok(None);
        };
        match tokio::time::timeout(SQLITE_BUSY_TIMEOUT, writer.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            Ok(Err(e)) => Err(ApiError::internal(format!("writer turns closed: {e}"))),
            Err(_) => {
                tracing::warn!("no turn to write to the database");
                Err(ApiError::Unavailable)
            }
        }
    }

    /// The pool's wait metrics, to register with the process's others.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.waits.clone()),
            Box::new(self.wait_time.clone()),
        ]
    }

    /// Connections in use, idle, and the most the pool opens.
    pub fn connections(&self) -> (i64, i64, i64) {
        let state = self.pool.state();
        (
            i64::from(state.connections - state.idle_connections),
            i64::from(state.idle_connections),
            i64::from(self.pool.max_size()),
        )
    }

    /// Whether the database is known to be unreachable (a probe is retrying).
    pub fn is_down(&self) -> bool {
        self.health.down.load(Ordering::SeqCst)
    }

    /// Round trip time of a trivial query, for readiness.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, String> {
        if self.health.down.load(Ordering::SeqCst) {
            return Err("unreachable (a probe is retrying)".into());
        }
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let mut conn = pool.get_timeout(timeout).map_err(|e| e.to_string())?;
            conn.ping().map_err(|e| e.to_string())?;
            Ok(start.elapsed())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// A write transaction begun by [`Db::begin`].
pub struct Tx {
    conn: Option<PooledConn>,
    _turn: OwnedSemaphorePermit,
    writer: Option<OwnedSemaphorePermit>,
}

impl Tx {
    /// Runs one step of the transaction on the blocking pool.
    pub async fn run<T, F>(&mut self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let mut conn = self
            .conn
            .take()
            .ok_or_else(|| ApiError::internal("transaction used after it ended"))?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut conn);
            (conn, result)
        })
        .await
        .map_err(|e| ApiError::internal(format!("database task failed: {e}")))?;
        self.conn = Some(conn);
        result
    }

    pub async fn commit(mut self) -> Result<(), ApiError> {
        let Some(mut conn) = self.conn.take() else {
            return Err(ApiError::internal("transaction used after it ended"));
        };
        tokio::task::spawn_blocking(move || {
            conn.commit()?;
            used(&mut conn);
            Ok(())
        })
        .await
        .map_err(|e| ApiError::internal(format!("database task failed: {e}")))?
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // The next writer's turn comes once this one has rolled back.
        let writer = self.writer.take();
        let rollback = move || {
            if let Err(error) = conn.rollback() {
                tracing::warn!(%error, "rollback failed; the connection is dropped");
            }
            drop(writer);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(rollback)),
            Err(_) => rollback(),
        }
    }
}

#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<r2d2::Error> for LogErrors {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::warn!(error = %one_line(&error.to_string()), "database connection failed");
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

pub fn from_db(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            DbUrl::parse("sqlite://data/carrental.db").unwrap(),
            DbUrl::Sqlite("data/carrental.db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/carrental/c.db").unwrap(),
            DbUrl::Sqlite("/var/lib/carrental/c.db".into())
        );
        assert!(matches!(
            DbUrl::parse("postgres://u@h/db").unwrap(),
            DbUrl::Postgres(_)
        ));
        assert!(DbUrl::parse("mysql://x").is_err());
        assert!(DbUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn redacts_passwords() {
        let url = DbUrl::parse("postgres://app:s3cret@db.internal:5432/rental").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db.internal:5432/rental");
        let url = DbUrl::parse("postgres://app@db/rental").unwrap();
        assert_eq!(url.redacted(), "postgres://app@db/rental");
    }

    /// Writes that wait for SQLite's writer together share its turn and its commit: each
    /// answers its own outcome, one failing undoes only its own rows, a transaction of its
    /// own nests, and all the others are written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_together_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings {
            url: format!("sqlite://{}", dir.path().join("t.db").display()),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            connect_retries: 1,
            migrate_on_start: false,
        };
        let db = Db::connect(&settings, false).unwrap();
        db.run(|conn| Ok(conn.batch_execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        let insert = |conn: &mut DbConn, n: i32| -> Result<(), ApiError> {
            diesel::sql_query(format!("INSERT INTO t (n) VALUES ({n})")).execute(conn)?;
            Ok(())
        };
        // Held by a transaction while they queue, so that they are written together.
        let held = db.begin().await.unwrap();
        let writes = (0..40).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                match n % 4 {
                    // Its row is written, then it fails: the row must go with it.
                    0 => {
                        db.writing(move |conn| {
                            insert(conn, n)?;
                            Err::<i32, _>(ApiError::conflict("no"))
                        })
                        .await
                    }
                    1 => db.write(move |conn| insert(conn, n).map(|()| n)).await,
                    _ => db.writing(move |conn| insert(conn, n).map(|()| n)).await,
                }
            })
        });
        let writes: Vec<_> = writes.collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        held.commit().await.unwrap();
        let mut answers = Vec::new();
        for write in writes {
            answers.push(write.await.unwrap());
        }
        for (n, answer) in answers.iter().enumerate() {
            match answer {
                Err(ApiError::Conflict(_)) => assert_eq!(n % 4, 0),
                Ok(m) => assert_eq!(usize::try_from(*m).unwrap(), n),
                Err(e) => panic!("write {n}: {e}"),
            }
        }
        #[derive(QueryableByName)]
        struct Counts {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            written: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            failed: i64,
        }
        let counts = db
            .run(|conn| {
                Ok(diesel::sql_query(
                    "SELECT count(*) FILTER (WHERE n % 4 <> 0) AS written, \
                            count(*) FILTER (WHERE n % 4 = 0) AS failed FROM t",
                )
                .get_result::<Counts>(conn)?)
            })
            .await
            .unwrap();
        assert_eq!((counts.written, counts.failed), (30, 0));
    }
}
