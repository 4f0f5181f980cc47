//! Builds the application from settings: database, middleware, the modules this process
//! serves; runs it until told to stop, then drains in-flight requests.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::{header, Method};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::{AppEnv, Settings};
use crate::db::Db;
use crate::http::auth::Jwt;
use crate::http::middleware::{self, X_REQUEST_ID};
use crate::http::ApiError;
use crate::ops::{self, Process};
use crate::outbox::Stop;
use crate::ports::{IndexJobs, NoIndex, NotServed, Ports};
use crate::telemetry::{Metrics, RequestSpan};
use crate::Module;

pub struct Application {
    port: u16,
    server: Server,
    process: web::Data<Process>,
    db: Db,
    stop_workers: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// The services every module may use, shared by all workers.
#[derive(Clone)]
struct Shared {
    settings: Settings,
    db: web::Data<Db>,
    jwt: web::Data<Jwt>,
    metrics: web::Data<Metrics>,
    process: web::Data<Process>,
    #[cfg(feature = "auth")]
    auth: Option<web::Data<crate::auth::AuthService>>,
    #[cfg(feature = "cars")]
    cars: Option<web::Data<crate::cars::CarsService>>,
    #[cfg(feature = "bookings")]
    bookings: Option<web::Data<crate::bookings::BookingsService>>,
    #[cfg(feature = "search")]
    search: Option<web::Data<crate::search::SearchService>>,
    #[cfg(feature = "notifications")]
    notifications: Option<web::Data<crate::notifications::NotificationsService>>,
}

/// The in-process implementation of each port whose module this process serves.
pub fn ports(settings: &Settings) -> Ports {
    let serves = |m: Module| settings.serves(m);
    #[allow(unused_mut)]
    let mut ports = Ports {
        catalog: Arc::new(NotServed(Module::Cars)),
        availability: Arc::new(NotServed(Module::Bookings)),
        notifier: Arc::new(NotServed(Module::Notifications)),
        indexer: if settings.search.url.is_empty() {
            Arc::new(NoIndex)
        } else {
            Arc::new(IndexJobs)
        },
        users: Arc::new(NotServed(Module::Auth)),
    };
    // Messages are written to the shared database whether or not this process delivers
    // them; the process that serves notifications drains them.
    #[cfg(feature = "notifications")]
    {
        ports.notifier = Arc::new(crate::notifications::MessageQueue);
    }
    #[cfg(feature = "auth")]
    if serves(Module::Auth) {
        ports.users = Arc::new(crate::auth::Directory);
    }
    #[cfg(feature = "cars")]
    if serves(Module::Cars) {
        ports.catalog = Arc::new(crate::cars::Catalog);
    }
    #[cfg(feature = "bookings")]
    if serves(Module::Bookings) {
        ports.availability = Arc::new(crate::bookings::Schedule);
    }
    let _ = serves;
    ports
}

impl Application {
    /// Connects (and migrates, unless disabled), binds the port and prepares the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db_settings = settings.database.clone();
        let db = tokio::task::spawn_blocking(move || {
            Db::connect(&db_settings, db_settings.migrate_on_start)
        })
        .await??;
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}:{}: {e}",
                    settings.server.host,
                    settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();

        let metrics = web::Data::new(Metrics::new()?);
        let jwt = web::Data::new(Jwt::new(
            &settings.auth.jwt_secret,
            settings.auth.jwt_expiry,
        ));
        let ports = ports(&settings);
        #[cfg(feature = "auth")]
        let auth = if settings.serves(Module::Auth) {
            let (db, ports, jwt, metrics, auth_settings) = (
                db.clone(),
                ports.clone(),
                jwt.clone(),
                metrics.clone(),
                settings.auth.clone(),
            );
            Some(web::Data::new(
                tokio::task::spawn_blocking(move || {
                    crate::auth::AuthService::new(db, ports, jwt, metrics, &auth_settings)
                })
                .await??,
            ))
        } else {
            None
        };

        let serve = |m: Module| settings.serves(m);
        let _ = (&ports, serve);
        let (stop_workers, stop) = Stop::channel();
        #[allow(unused_mut)]
        let mut workers = Vec::new();
        #[allow(unused_mut)]
        let mut checks: Vec<Arc<dyn crate::ops::ReadinessCheck>> = Vec::new();
        #[cfg(feature = "search")]
        let search = if serve(Module::Search) {
            let service = web::Data::new(search_service(&settings, &db, &ports, &metrics).await?);
            checks.push(service.clone().into_inner());
            if !settings.search.url.is_empty() {
                workers.push(spawn_index_worker(
                    db.clone(),
                    service.clone(),
                    stop.clone(),
                ));
            }
            Some(service)
        } else {
            None
        };
        #[cfg(feature = "notifications")]
        let notifications = if serve(Module::Notifications) {
            let mailer = crate::notifications::Mailer::from_settings(&settings.notifications)
                .map_err(anyhow::Error::msg)?;
            let service = web::Data::new(crate::notifications::NotificationsService::new(
                db.clone(),
                mailer,
                &settings.notifications,
                metrics.clone(),
            ));
            checks.push(service.clone().into_inner());
            workers.push(spawn_delivery_worker(
                db.clone(),
                service.clone(),
                stop.clone(),
            ));
            Some(service)
        } else {
            None
        };
        let _ = &stop;
        let process = web::Data::new(Process::new(
            settings.modules.clone(),
            settings.http.metrics_token.clone(),
            checks,
        ));
        let shared = Shared {
            settings: settings.clone(),
            db: web::Data::new(db.clone()),
            jwt,
            metrics: metrics.clone(),
            process: process.clone(),
            #[cfg(feature = "auth")]
            auth,
            #[cfg(feature = "cars")]
            cars: serve(Module::Cars)
                .then(|| web::Data::new(crate::cars::CarsService::new(db.clone(), ports.clone()))),
            #[cfg(feature = "bookings")]
            bookings: serve(Module::Bookings).then(|| {
                web::Data::new(crate::bookings::BookingsService::new(
                    db.clone(),
                    ports.clone(),
                    metrics.clone(),
                ))
            }),
            #[cfg(feature = "search")]
            search,
            #[cfg(feature = "notifications")]
            notifications,
        };
        let mut server = HttpServer::new(move || {
            let s = shared.clone();
            App::new()
                .app_data(s.db.clone())
                .app_data(s.jwt.clone())
                .app_data(s.metrics.clone())
                .app_data(s.process.clone())
                .app_data(web::PayloadConfig::new(s.settings.server.body_limit))
                .wrap(from_fn(middleware::metrics))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(cors(&s.settings.http.frontend_url))
                .wrap(from_fn(middleware::request_id))
                .wrap(middleware::security_headers(
                    s.settings.env == AppEnv::Production,
                ))
                .configure(ops::routes)
                .configure(|cfg| s.modules(cfg))
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .shutdown_timeout(settings.server.shutdown_timeout.as_secs())
        .disable_signals();
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        Ok(Application {
            port,
            server: server.run(),
            process,
            db,
            stop_workers,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until `shutdown` resolves, then stops taking connections, reports not-ready,
    /// finishes the requests in flight and the jobs workers have in hand, and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let process = self.process.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: draining requests in flight");
            process.begin_shutdown();
            handle.stop(true).await;
        });
        self.server.await?;
        let _ = self.stop_workers.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

impl Shared {
    /// Registers the routes of every module this process serves.
    fn modules(&self, cfg: &mut web::ServiceConfig) {
        #[cfg(feature = "auth")]
        if let Some(auth) = &self.auth {
            cfg.app_data(auth.clone());
            crate::auth::routes(cfg);
        }
        #[cfg(feature = "cars")]
        if let Some(cars) = &self.cars {
            cfg.app_data(cars.clone());
            crate::cars::routes(cfg);
        }
        #[cfg(feature = "bookings")]
        if let Some(bookings) = &self.bookings {
            cfg.app_data(bookings.clone());
            crate::bookings::routes(cfg);
        }
        #[cfg(feature = "search")]
        if let Some(search) = &self.search {
            cfg.app_data(search.clone());
            crate::search::routes(cfg);
        }
        #[cfg(feature = "notifications")]
        if let Some(notifications) = &self.notifications {
            cfg.app_data(notifications.clone());
            crate::notifications::routes(cfg);
        }
        let _ = cfg;
    }
}

/// The search service on the configured engine. An OpenSearch that cannot be reached at
/// start is not fatal: searches fall back to the database until it answers.
#[cfg(feature = "search")]
async fn search_service(
    settings: &Settings,
    db: &Db,
    ports: &Ports,
    metrics: &web::Data<Metrics>,
) -> anyhow::Result<crate::search::SearchService> {
    let engine = if settings.search.url.is_empty() {
        None
    } else {
        let engine = crate::search::opensearch::OpenSearchEngine::new(
            &settings.search.url,
            &settings.search.index,
            settings.search.timeout,
        )
        .map_err(anyhow::Error::msg)?;
        if let Err(error) = engine.ensure_index().await {
            tracing::warn!(%error, "OpenSearch not ready; searching the database meanwhile");
        }
        Some(Arc::new(engine))
    };
    Ok(crate::search::SearchService::new(
        db.clone(),
        ports.clone(),
        engine,
        metrics.clone(),
    ))
}

/// Applies car changes to the search index within about a second, retrying (without
/// giving up) while OpenSearch is away.
#[cfg(feature = "search")]
fn spawn_index_worker(
    db: Db,
    service: web::Data<crate::search::SearchService>,
    stop: Stop,
) -> tokio::task::JoinHandle<()> {
    let policy = crate::outbox::Policy {
        max_attempts: i32::MAX,
        backoff: std::time::Duration::from_millis(500),
        max_backoff: std::time::Duration::from_secs(30),
        lease: std::time::Duration::from_secs(60),
        poll: std::time::Duration::from_millis(200),
        batch: 200,
        keep_done: true,
    };
    tokio::spawn(crate::outbox::run_worker(
        db,
        crate::ports::SEARCH_TOPIC,
        policy,
        stop,
        move |jobs| {
            let service = service.clone();
            async move { service.apply_index_jobs(jobs).await }
        },
        |_| {},
    ))
}

/// Delivers queued messages: at least once, with backoff, `failed` after the last attempt.
#[cfg(feature = "notifications")]
fn spawn_delivery_worker(
    db: Db,
    service: web::Data<crate::notifications::NotificationsService>,
    stop: Stop,
) -> tokio::task::JoinHandle<()> {
    let policy = service.policy().clone();
    let counter = service.clone();
    tokio::spawn(crate::outbox::run_worker(
        db,
        crate::notifications::service::TOPIC,
        policy,
        stop,
        move |jobs| {
            let service = service.clone();
            async move { service.deliver(jobs).await }
        },
        move |settled| counter.count(settled),
    ))
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
            X_REQUEST_ID,
        ])
        .expose_headers([
            X_REQUEST_ID,
            header::RETRY_AFTER,
            header::HeaderName::from_static("ratelimit"),
            header::HeaderName::from_static("ratelimit-policy"),
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin.trim_end_matches('/'))
        };
    }
    cors
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
