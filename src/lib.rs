//! Car rental backend: the application as a library, so tests and the binary start it alike.

pub mod backup;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod gateway;
pub mod http;
pub mod ids;
pub mod memory;
pub mod messages;
pub mod module;
pub mod money;
pub mod openapi;
pub mod ops;
pub mod outbox;
pub mod ports;
pub mod pricing;
pub mod startup;
#[cfg(any(feature = "cars", feature = "bookings"))]
pub mod storage;
pub mod telemetry;
pub mod time;

use module::Module;
use ports::Port;

/// Declares each module's folder (compiled with the Cargo feature of the module's name) and
/// its line of [`MODULES`].
macro_rules! modules {
    ($($name:literal in $folder:ident: $url:literal, routes $routes:tt, ports $ports:tt;)*) => {
        $(
            #[cfg(feature = $name)]
            pub mod $folder;
        )*

        /// Every module, in the order a process starts them. A module is its folder, its line
        /// here and its Cargo feature.
        pub static MODULES: &[Module] = &[$(
            Module {
                name: $name,
                url_variable: $url,
                routes: &$routes,
                ports: &$ports,
                #[cfg(feature = $name)]
                build: Some(&$folder::BUILD),
                #[cfg(not(feature = $name))]
                build: None,
            },
        )*];
    };
}

modules! {
    "auth" in auth: "AUTH_SERVICE_URL", routes ["/auth"], ports [Port::Users];
    "cars" in cars: "CAR_SERVICE_URL", routes ["/cars", "/extras", "/uploads", "/media", "/me/licence", "/admin/users/*/licence"],
        ports [Port::Catalog];
    "search" in search: "SEARCH_SERVICE_URL", routes ["/search"], ports [];
    "bookings" in bookings: "BOOKING_SERVICE_URL",
        routes ["/bookings", "/admin/bookings", "/cars/*/blocks", "/payments", "/admin/payments"],
        ports [Port::Availability];
    "notifications" in notifications: "NOTIFICATION_SERVICE_URL",
        routes ["/notifications", "/me/notification-preferences"], ports [];
}

/// The module whose public routes hold `path`; `None` for the operations routes, the
/// internal ones and anything else.
pub fn owning(path: &str) -> Option<&'static Module> {
    MODULES
        .iter()
        .filter_map(|m| m.claims(path).map(|n| (n, m)))
        .max_by_key(|(n, _)| *n)
        .map(|(_, m)| m)
}

/// The module answering `port`.
pub fn owner(port: Port) -> &'static Module {
    MODULES
        .iter()
        .find(|m| m.ports.contains(&port))
        .unwrap_or_else(|| panic!("no module in MODULES answers {port:?}"))
}

/// The modules `MODULES` names, in [`MODULES`] order: every one this binary was built with
/// when it is `None` (`all`); an unknown name, or one this binary was built without, is an
/// error naming it.
pub fn select(names: Option<&[String]>) -> Result<Vec<&'static Module>, String> {
    let Some(names) = names else {
        return Ok(MODULES.iter().filter(|m| m.build.is_some()).collect());
    };
    for name in names {
        let Some(module) = MODULES.iter().find(|m| m.name == name) else {
            let known: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
            return Err(format!(
                "MODULES: unknown module {name:?} (expected {})",
                known.join(", ")
            ));
        };
        if module.build.is_none() {
            return Err(format!(
                "MODULES names {name}, but this binary was built without the `{name}` feature"
            ));
        }
    }
    Ok(MODULES
        .iter()
        .filter(|m| names.iter().any(|n| n == m.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(path: &str) -> Option<&'static str> {
        owning(path).map(|m| m.name)
    }

    #[test]
    fn routes_belong_to_their_module() {
        for (path, module) in [
            ("/auth/login", Some("auth")),
            ("/cars", Some("cars")),
            ("/cars/1/availability", Some("cars")),
            ("/cars/1/blocks", Some("bookings")),
            ("/cars/1/blocks/2", Some("bookings")),
            ("/search", Some("search")),
            ("/bookings/1/pickup", Some("bookings")),
            ("/admin/bookings", Some("bookings")),
            ("/notifications/subscribe/1", Some("notifications")),
            ("/me/notification-preferences", Some("notifications")),
            ("/auth/me/phone/verify", Some("auth")),
            ("/health", None),
            ("/internal/cars/1", None),
            ("/admin/other", None),
            ("/carsx", None),
        ] {
            assert_eq!(name(path), module, "{path}");
        }
    }

    /// Every operation a module documents is a route of its own: the registry's patterns
    /// and the routes the module registers say the same.
    #[test]
    fn every_documented_route_is_owned_by_the_module_that_serves_it() {
        for module in MODULES {
            let Some(build) = module.build else { continue };
            let doc = (build.api)();
            for path in doc.paths.paths.keys() {
                assert_eq!(name(path), Some(module.name), "{path} of {}", module.name);
            }
        }
    }

    #[test]
    fn every_port_has_one_owner() {
        for port in [Port::Catalog, Port::Availability, Port::Users] {
            let owners = MODULES.iter().filter(|m| m.ports.contains(&port)).count();
            assert_eq!(owners, 1, "{port:?}");
        }
    }

    #[test]
    fn modules_all_some_or_none() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let chosen = |v: Option<&[&str]>| {
            select(v.map(names).as_deref()).map(|ms| ms.iter().map(|m| m.name).collect::<Vec<_>>())
        };
        let compiled: Vec<&str> = MODULES
            .iter()
            .filter(|m| m.build.is_some())
            .map(|m| m.name)
            .collect();
        assert_eq!(chosen(None), Ok(compiled));
        assert_eq!(chosen(Some(&[])), Ok(vec![]));
        if cfg!(all(feature = "auth", feature = "notifications")) {
            assert_eq!(
                chosen(Some(&["notifications", "auth"])),
                Ok(vec!["auth", "notifications"])
            );
        }
        assert!(chosen(Some(&["payments"]))
            .unwrap_err()
            .contains("unknown module \"payments\""));
    }
}
