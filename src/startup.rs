//! Builds the application from settings: the database, the ports, the modules this process
//! serves, the gateway for the others, the middleware; runs it until told to stop, then
//! drains in-flight requests and the workers' jobs.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::{header, Method};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::cache::{self, ReadCache};
use crate::config::{AppEnv, Settings};
use crate::db::{Backend, Db, SQLITE_CHECKPOINT_EVERY};
use crate::gateway::{self, Gateway};
use crate::http::auth::{internal_only, Accounts, InternalToken, Jwt};
use crate::http::client::{http_client, Services};
use crate::http::middleware::{self, RequestSpan, X_REQUEST_ID};
use crate::http::oidc::OidcVerifier;
use crate::http::rate_limit::{rate_limit, Limits};
use crate::http::BodyConfig;
use crate::module::{Configure, Context, Module};
use crate::ops::{self, DatabaseCheck, Process, ReadinessCheck};
use crate::outbox::Stop;
use crate::ports::{IndexJobs, NoIndex, Ports, SearchIndexer};
use crate::telemetry::Metrics;

pub struct Application {
    port: u16,
    drain_delay: std::time::Duration,
    server: Server,
    process: web::Data<Process>,
    db: Option<Db>,
    stop_workers: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// How this process reaches every module: in-process for those it serves, over HTTP for
/// the others.
pub fn ports(settings: &Settings, served: &[&Module], db: &Db, services: &Services) -> Ports {
    let indexer: Arc<dyn SearchIndexer> = if settings.search.url.is_empty() {
        Arc::new(NoIndex)
    } else {
        Arc::new(IndexJobs)
    };
    let mut ports = Ports::remote(|port| services.client(crate::owner(port).name), indexer);
    for build in served.iter().filter_map(|m| m.build) {
        (build.provide)(&mut ports, db);
    }
    ports
}

/// The clients of the other modules' services.
pub fn services(settings: &Settings) -> anyhow::Result<Services> {
    let http = http_client().map_err(anyhow::Error::msg)?;
    Ok(Services::new(
        crate::MODULES.iter().map(|m| (m.name, m.url_variable)),
        &settings.services,
        &settings.http.internal_token,
        http,
    ))
}

/// The modules `MODULES` names; a process that serves only some of them needs a real
/// `INTERNAL_TOKEN` in staging and production.
pub fn served(settings: &Settings) -> anyhow::Result<Vec<&'static Module>> {
    let served = crate::select(settings.modules.as_deref()).map_err(anyhow::Error::msg)?;
    if served.len() < crate::MODULES.len() {
        settings.check_internal_token()?;
    }
    Ok(served)
}

impl Application {
    /// Connects (and migrates, unless disabled), binds the port and prepares the server.
    /// A process that serves no module (a pure gateway) needs no database.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let served = served(&settings)?;
        let db = if served.is_empty() {
            None
        } else {
            let db_settings = settings.database.clone();
            Some(
                tokio::task::spawn_blocking(move || {
                    Db::connect(&db_settings, db_settings.migrate_on_start)
                })
                .await??,
            )
        };
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}:{}: {e}",
                    settings.server.host,
                    settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        // `PORT=0` asks for any free port: what was bound is what links must name.
        let mut settings = settings;
        settings.server.port = port;

        let metrics = web::Data::new(Metrics::new()?);
        let jwt = web::Data::new(Jwt::from_settings(&settings.auth));
        let oidc = settings.auth.oidc().then(|| {
            web::Data::new(OidcVerifier::new(
                &settings.auth,
                reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(5))
                    .build()
                    .unwrap_or_default(),
            ))
        });
        let services = services(&settings)?;
        let gateway = Arc::new(Gateway::new(
            served.clone(),
            services.clone(),
            settings.services.timeout,
            &settings.http.internal_token,
        ));
        if settings.env == AppEnv::Production && settings.http.metrics_token.is_empty() {
            tracing::warn!("METRICS_TOKEN is not set: /metrics is open to anyone who can reach it");
        }
        if settings.env == AppEnv::Production && settings.rate_limit.max == 0 {
            tracing::warn!("RATE_LIMIT_MAX is 0: only signup and login are rate limited");
        }
        if gateway.forwarded().next().is_some() && settings.http.internal_token.is_empty() {
            tracing::warn!(
                "INTERNAL_TOKEN is not set: calls to the modules this process does not serve will fail"
            );
        }

        let (stop_workers, stop) = Stop::channel();
        let mut routes: Vec<Configure> = Vec::new();
        let mut internal: Vec<Configure> = Vec::new();
        let mut workers = Vec::new();
        let mut checks: Vec<Arc<dyn ReadinessCheck>> = Vec::new();
        // A pure gateway has no database: its ports are all remote (and unused but by
        // the account check, which its forwarded routes do not reach).
        let app_ports = match &db {
            Some(db) => ports(&settings, &served, db, &services),
            None => Ports::remote(
                |port| services.client(crate::owner(port).name),
                Arc::new(NoIndex),
            ),
        };
        let accounts: web::Data<dyn Accounts> =
            web::Data::from(app_ports.users.clone() as Arc<dyn Accounts>);
        if let Some(db) = &db {
            checks.push(Arc::new(DatabaseCheck(db.clone())));
            if db.backend() == Backend::Sqlite {
                workers.push(tokio::spawn(checkpoint_wal(db.clone(), stop.clone())));
            }
            let cache = Arc::new(ReadCache::new(&settings.cache));
            if served.iter().any(|m| m.build.is_some_and(|b| b.reads_cars)) {
                workers.push(tokio::spawn(cache::watch_versions(
                    db.clone(),
                    cache.clone(),
                    settings.cache.version_poll,
                    stop.clone(),
                )));
            }
            let ctx = Context {
                settings: settings.clone(),
                db: db.clone(),
                jwt: jwt.clone(),
                metrics: metrics.clone(),
                ports: app_ports,
                stop,
                cache,
            };
            for build in served.iter().filter_map(|m| m.build) {
                let module = (build.serve)(&ctx).await?;
                routes.push(module.routes);
                internal.push(module.internal);
                workers.extend(module.workers);
                checks.extend(module.checks);
            }
        }
        checks.extend(gateway.checks());
        let process = web::Data::new(Process::new(
            served.iter().map(|m| m.name).collect(),
            settings.http.metrics_token.clone(),
            crate::openapi::published(),
            checks,
            db.clone(),
        ));
        if let Some(db) = &db {
            for collector in db.collectors() {
                metrics.register(collector)?;
            }
        }
        let process_handle = process.clone();
        let gateway = web::Data::from(gateway);
        let limits = web::Data::from(Limits::new(
            &settings.rate_limit,
            settings.http.trusted_proxies.clone(),
            metrics.clone(),
        ));
        let internal_token = web::Data::new(InternalToken(settings.http.internal_token.clone()));
        let app_settings = settings.clone();
        let mut server = HttpServer::new(move || {
            let s = &app_settings;
            limits.start_worker();
            let mut app = App::new()
                .app_data(limits.clone())
                .app_data(accounts.clone())
                .app_data(jwt.clone())
                .app_data(metrics.clone())
                .app_data(process.clone())
                .app_data(gateway.clone())
                .app_data(web::PayloadConfig::new(s.server.body_limit))
                .app_data(BodyConfig {
                    limit: s.server.body_limit,
                    idle_timeout: s.server.body_timeout,
                })
                .wrap(from_fn(rate_limit))
                .wrap(from_fn(middleware::private_answers))
                .wrap(from_fn(middleware::metrics))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(cors(&s.http.frontend_url))
                .wrap(from_fn(gateway::trust_forwarded))
                .wrap(from_fn(middleware::plain_path))
                .wrap(from_fn(middleware::request_id))
                .wrap(from_fn(middleware::head_as_get))
                .wrap(middleware::security_headers(s.env == AppEnv::Production))
                .configure(ops::routes);
            if let Some(oidc) = &oidc {
                app = app.app_data(oidc.clone());
            }
            for configure in &routes {
                app = app.configure(|cfg| configure(cfg));
            }
            // Without a token the internal routes do not exist (404 like any unknown path).
            if !s.http.internal_token.is_empty() {
                let mut scope = web::scope("/internal")
                    .app_data(internal_token.clone())
                    .wrap(from_fn(internal_only))
                    .configure(ops::internal_routes);
                for configure in &internal {
                    scope = scope.configure(|cfg| configure(cfg));
                }
                app = app.service(scope);
            }
            app.default_service(web::to(gateway::forward))
        })
        .on_connect(|_, extensions| {
            extensions.insert(crate::memory::OpenConnection::new());
        })
        .listen(listener)?
        .shutdown_timeout(settings.server.shutdown_timeout.as_secs())
        .disable_signals();
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        Ok(Application {
            port,
            drain_delay: settings.server.drain_delay,
            server: server.run(),
            process: process_handle,
            db,
            stop_workers,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database, when this process serves a module.
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// Serves until `shutdown` resolves; then reports not-ready at once, keeps serving for
    /// the drain delay (load balancers see the readiness and stop sending), stops taking
    /// connections, finishes the requests in flight and the jobs workers have in hand, and
    /// returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let process = self.process.clone();
        let drain = self.drain_delay;
        tokio::spawn(async move {
            shutdown.await;
            process.begin_shutdown();
            tracing::info!(
                ?drain,
                "shutting down: not ready; serving until the drain ends"
            );
            tokio::time::sleep(drain).await;
            tracing::info!("draining requests in flight");
            handle.stop(true).await;
        });
        self.server.await?;
        self.stop_workers.send_replace(true);
        for worker in self.workers {
            if let Err(e) = worker.await {
                tracing::error!(error = %e, "a worker ended with a panic");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::HEAD,
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

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
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

/// Keeps SQLite's WAL short from outside the writers (see [`Db::checkpoint_wal`]).
async fn checkpoint_wal(db: Db, mut stop: Stop) {
    while !stop.requested() {
        stop.sleep(SQLITE_CHECKPOINT_EVERY).await;
        if let Err(error) = db.checkpoint_wal().await {
            tracing::warn!(%error, "cannot checkpoint the WAL");
        }
    }
}
