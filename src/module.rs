//! What a module is to the rest of the application: the line that names it in the registry
//! ([`crate::MODULES`]), what start-up hands it ([`Context`]) and what it gives back
//! ([`Served`]). Start-up, the gateway's route table and the API document are derived from
//! the registry; nothing else names a module.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::web;

use crate::cache::ReadCache;
use crate::config::Settings;
use crate::db::Db;
use crate::http::auth::Jwt;
use crate::ops::ReadinessCheck;
use crate::outbox::Stop;
use crate::ports::{Port, Ports};
use crate::telemetry::Metrics;

/// A module as every binary knows it, whether or not it was built with it: a binary without
/// it still forwards its routes to its service.
#[derive(Debug)]
pub struct Module {
    /// What `MODULES` and `/health` call it; also its Cargo feature.
    pub name: &'static str,
    /// The variable holding its service's URL in a split deployment.
    pub url_variable: &'static str,
    /// Its public routes: a path belongs to the module whose pattern its segments start with
    /// (`*` matches any one segment), the longest pattern winning.
    pub routes: &'static [&'static str],
    /// The ports other modules reach it through.
    pub ports: &'static [Port],
    /// Its code, when this binary was built with it.
    pub build: Option<&'static Build>,
}

impl PartialEq for Module {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Module {
    /// How many leading segments of `path` its longest matching route pattern covers.
    pub fn claims(&self, path: &str) -> Option<usize> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.routes
            .iter()
            .filter_map(|pattern| {
                let pattern: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
                let matches = pattern.len() <= segments.len()
                    && pattern
                        .iter()
                        .zip(&segments)
                        .all(|(p, s)| *p == "*" || p == s);
                matches.then_some(pattern.len())
            })
            .max()
    }
}

/// The future a module's start-up is.
pub type Starting<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Served>> + 'a>>;

/// What a module does, in a binary built with it.
pub struct Build {
    /// Its part of the API document.
    pub api: fn() -> utoipa::openapi::OpenApi,
    /// Its `/internal/...` routes' part of the internal document.
    pub internal_api: fn() -> utoipa::openapi::OpenApi,
    /// Puts the in-process implementations of its [`Module::ports`] into `ports`.
    pub provide: fn(&mut Ports, &Db),
    /// Starts it in this process: routes, internal routes, workers, readiness checks.
    pub serve: for<'a> fn(&'a Context) -> Starting<'a>,
    /// Whether it reads cars through the read cache, which must then follow car writes made
    /// by other processes.
    pub reads_cars: bool,
}

impl std::fmt::Debug for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Build")
            .field("reads_cars", &self.reads_cars)
            .finish_non_exhaustive()
    }
}

/// A module that owns no port another module calls.
pub fn provides_nothing(_: &mut Ports, _: &Db) {}

/// What start-up hands every module it serves.
pub struct Context {
    pub settings: Settings,
    pub db: Db,
    pub jwt: web::Data<Jwt>,
    pub metrics: web::Data<Metrics>,
    pub ports: Ports,
    /// Tells the module's workers to stop after the job in hand.
    pub stop: Stop,
    /// This process's read cache (cars and search use it).
    pub cache: Arc<ReadCache>,
}

/// Adds routes (and the data they use) to an app or a scope.
pub type Configure = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// A module as this process serves it.
pub struct Served {
    /// Its public routes.
    pub routes: Configure,
    /// Its `/internal/...` routes, for the other modules' processes.
    pub internal: Configure,
    pub workers: Vec<tokio::task::JoinHandle<()>>,
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Served {
    /// Routes that use `data`.
    pub fn new<T: 'static + Send + Sync>(
        data: web::Data<T>,
        routes: fn(&mut web::ServiceConfig),
        internal: fn(&mut web::ServiceConfig),
    ) -> Self {
        let internal_data = data.clone();
        Served {
            routes: Arc::new(move |cfg| {
                cfg.app_data(data.clone());
                routes(cfg);
            }),
            internal: Arc::new(move |cfg| {
                cfg.app_data(internal_data.clone());
                internal(cfg);
            }),
            workers: Vec::new(),
            checks: Vec::new(),
        }
    }

    pub fn with_worker(mut self, worker: tokio::task::JoinHandle<()>) -> Self {
        self.workers.push(worker);
        self
    }

    pub fn with_check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }
}
