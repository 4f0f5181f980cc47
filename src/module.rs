//! The one entry each module gives start-up: what it needs ([`Context`]) and what it gives
//! back ([`Served`]): its public routes, its internal routes, its background workers and its
//! readiness checks. Start-up is then a list of the modules this process serves.

use std::sync::Arc;

use actix_web::web;

use crate::cache::ReadCache;
use crate::config::Settings;
use crate::db::Db;
use crate::http::auth::Jwt;
use crate::ops::ReadinessCheck;
use crate::outbox::Stop;
use crate::ports::Ports;
use crate::telemetry::Metrics;
use crate::Module;

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

/// Puts the in-process implementation of the ports `module` owns into `ports` (this process
/// serves it). Search and notifications own no port another module calls.
pub fn provide(module: Module, ports: &mut Ports, db: &Db) {
    match module {
        #[cfg(feature = "auth")]
        Module::Auth => crate::auth::provide(ports, db),
        #[cfg(feature = "cars")]
        Module::Cars => crate::cars::provide(ports, db),
        #[cfg(feature = "bookings")]
        Module::Bookings => crate::bookings::provide(ports, db),
        _ => {
            let _ = (ports, db);
        }
    }
}

/// Starts `module` in this process.
pub async fn serve(module: Module, ctx: &Context) -> anyhow::Result<Served> {
    match module {
        #[cfg(feature = "auth")]
        Module::Auth => crate::auth::serve(ctx).await,
        #[cfg(feature = "cars")]
        Module::Cars => crate::cars::serve(ctx).await,
        #[cfg(feature = "search")]
        Module::Search => crate::search::serve(ctx).await,
        #[cfg(feature = "bookings")]
        Module::Bookings => crate::bookings::serve(ctx).await,
        #[cfg(feature = "notifications")]
        Module::Notifications => crate::notifications::serve(ctx).await,
        #[allow(unreachable_patterns)]
        other => {
            let _ = ctx;
            anyhow::bail!("this binary was built without the {} module", other.name())
        }
    }
}
