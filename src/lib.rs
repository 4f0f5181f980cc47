//! Car rental backend: the application as a library, so tests and the binary start it alike.

pub mod backup;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod gateway;
pub mod http;
pub mod module;
pub mod money;
pub mod openapi;
pub mod ops;
pub mod outbox;
pub mod ports;
pub mod pricing;
pub mod startup;
pub mod telemetry;
pub mod time;

#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "bookings")]
pub mod bookings;
#[cfg(feature = "cars")]
pub mod cars;
#[cfg(feature = "notifications")]
pub mod notifications;
#[cfg(feature = "search")]
pub mod search;

/// The parts of the application; `MODULES` picks which ones a process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Module {
    Auth,
    Cars,
    Search,
    Bookings,
    Notifications,
}

impl Module {
    pub const ALL: [Module; 5] = [
        Module::Auth,
        Module::Cars,
        Module::Search,
        Module::Bookings,
        Module::Notifications,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Module::Auth => "auth",
            Module::Cars => "cars",
            Module::Search => "search",
            Module::Bookings => "bookings",
            Module::Notifications => "notifications",
        }
    }

    /// The variable holding the URL of this module's service in a split deployment.
    pub fn url_variable(self) -> &'static str {
        match self {
            Module::Auth => "AUTH_SERVICE_URL",
            Module::Cars => "CAR_SERVICE_URL",
            Module::Search => "SEARCH_SERVICE_URL",
            Module::Bookings => "BOOKING_SERVICE_URL",
            Module::Notifications => "NOTIFICATION_SERVICE_URL",
        }
    }

    /// The module whose public routes hold `path`; `None` for the operations routes, the
    /// internal ones and anything else.
    pub fn owning(path: &str) -> Option<Module> {
        let mut segments = path.trim_start_matches('/').split('/');
        let first = segments.next()?;
        match first {
            "auth" => Some(Module::Auth),
            // Blocks are holds on the car's schedule, beside its bookings.
            "cars" if segments.nth(1) == Some("blocks") => Some(Module::Bookings),
            "cars" | "extras" => Some(Module::Cars),
            "search" => Some(Module::Search),
            "bookings" => Some(Module::Bookings),
            "admin" if path.starts_with("/admin/bookings") => Some(Module::Bookings),
            "notifications" => Some(Module::Notifications),
            _ => None,
        }
    }

    /// Whether this binary was built with the module's Cargo feature.
    pub fn compiled(self) -> bool {
        match self {
            Module::Auth => cfg!(feature = "auth"),
            Module::Cars => cfg!(feature = "cars"),
            Module::Search => cfg!(feature = "search"),
            Module::Bookings => cfg!(feature = "bookings"),
            Module::Notifications => cfg!(feature = "notifications"),
        }
    }

    /// Every module this binary was built with.
    pub fn all_compiled() -> Vec<Module> {
        Module::ALL.into_iter().filter(|m| m.compiled()).collect()
    }

    pub fn parse(name: &str) -> Result<Module, String> {
        let module = Module::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                format!("MODULES: unknown module {name:?} (expected auth, cars, search, bookings, notifications)")
            })?;
        if module.compiled() {
            Ok(module)
        } else {
            Err(format!(
                "MODULES names {name}, but this binary was built without the `{name}` feature"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_belong_to_their_module() {
        for (path, module) in [
            ("/auth/login", Some(Module::Auth)),
            ("/cars", Some(Module::Cars)),
            ("/cars/1/availability", Some(Module::Cars)),
            ("/search", Some(Module::Search)),
            ("/bookings/1/pickup", Some(Module::Bookings)),
            ("/admin/bookings", Some(Module::Bookings)),
            ("/notifications/subscribe/1", Some(Module::Notifications)),
            ("/health", None),
            ("/internal/cars/1", None),
            ("/admin/other", None),
            ("/carsx", None),
        ] {
            assert_eq!(Module::owning(path), module, "{path}");
        }
    }
}
