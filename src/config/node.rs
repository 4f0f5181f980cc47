//! What a deployment of the Node/Prisma version of this system already sets, read the way
//! it meant it: `NODE_ENV` for `APP_ENV`, a Prisma `DATABASE_URL`, and a notice for each
//! variable of that version that does nothing here.

use std::collections::HashMap;
use std::time::Duration;

use super::{AppEnv, DatabaseSettings, SettingsError};

/// The environment: `APP_ENV`, or the Node version's `NODE_ENV` when that is unset; a notice
/// for every variable of that version that does nothing here.
pub fn environment(
    vars: &HashMap<String, String>,
    notices: &mut Vec<String>,
) -> Result<AppEnv, SettingsError> {
    let env = match (vars.get("APP_ENV"), vars.get("NODE_ENV")) {
        (Some(app), node) => {
            if node.is_some_and(|n| !n.eq_ignore_ascii_case(app)) {
                notices.push("NODE_ENV is ignored: APP_ENV is set and wins".to_owned());
            }
            AppEnv::parse(app)?
        }
        (None, Some(node)) => AppEnv::parse(node).map_err(|_| {
            SettingsError(format!(
                "NODE_ENV: unknown environment {node:?} (expected development, test, staging or production)"
            ))
        })?,
        (None, None) => AppEnv::Development,
    };
    for name in vars.keys() {
        if let Some(why) = unused_node_setting(name) {
            notices.push(format!(
                "{name} is a setting of the Node version and does nothing here: {why}"
            ));
        }
    }
    Ok(env)
}

/// Why a variable the Node/Prisma version read does nothing here, if it is one.
fn unused_node_setting(name: &str) -> Option<&'static str> {
    match name {
        "NODE_OPTIONS" | "UV_THREADPOOL_SIZE" => Some("there is no Node.js runtime"),
        "REDIS_URL" => Some("set RATE_LIMIT_REDIS_URL to share rate-limit counters in Redis"),
        "CORS_ORIGIN" => Some("set FRONTEND_URL to the origins CORS allows"),
        _ if name.starts_with("PRISMA_") => Some("there is no Prisma engine"),
        _ => None,
    }
}

/// A PostgreSQL URL as Prisma reads it, made one libpq reads. Prisma's own parameters are
/// taken out: `ssl=true` and `sslaccept` become `sslmode`, `connection_limit` the pool
/// size, `pool_timeout` (seconds) the wait for a connection, `schema` the search path;
/// those with no equivalent are dropped with a notice. libpq's own parameters stay.
pub fn prisma_url(
    url: &str,
    db: &mut DatabaseSettings,
    notices: &mut Vec<String>,
) -> Result<String, SettingsError> {
    let bad = |what: String| SettingsError(format!("DATABASE_URL: {what}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if parsed.query().is_none() {
        return Ok(url.to_owned());
    }
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut sslmode = None;
    for (key, value) in parsed.query_pairs() {
        let (key, value) = (key.into_owned(), value.into_owned());
        let number = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| bad(format!("{key}={value:?} is not {what}")))
        };
        match key.as_str() {
            "ssl" => match value.as_str() {
                "true" | "1" => sslmode = sslmode.or(Some("require")),
                "false" | "0" => sslmode = sslmode.or(Some("disable")),
                _ => return Err(bad(format!("ssl={value:?} is not true or false"))),
            },
            "sslaccept" => match value.as_str() {
                "strict" => sslmode = Some("verify-full"),
                "accept_invalid_certs" => sslmode = Some("require"),
                _ => {
                    return Err(bad(format!(
                        "sslaccept={value:?} is not strict or accept_invalid_certs"
                    )))
                }
            },
            "connection_limit" => {
                let n = number("a number of connections")?;
                db.pool_size = u32::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(format!("connection_limit={value:?} is not a pool size")))?;
            }
            "pool_timeout" => db.connect_timeout = Duration::from_secs(number("seconds")?),
            "schema" => kept.push(("options".into(), format!("-c search_path={value}"))),
            "pgbouncer"
            | "statement_cache_size"
            | "socket_timeout"
            | "sslidentity"
            | "sslpassword" => {
                notices.push(format!("DATABASE_URL: {key} is a Prisma parameter with no equivalent here; it is ignored"));
            }
            "sslmode" => {
                sslmode = Some(match value.as_str() {
                    "disable" => "disable",
                    "prefer" => "prefer",
                    "require" => "require",
                    "verify-ca" => "verify-ca",
                    "verify-full" => "verify-full",
                    "allow" => "allow",
                    _ => return Err(bad(format!("sslmode={value:?} is not a libpq sslmode"))),
                })
            }
            _ => kept.push((key, value)),
        }
    }
    if let Some(mode) = sslmode {
        kept.push(("sslmode".into(), mode.into()));
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(parsed.into())
}

#[cfg(test)]
mod tests {
    use super::super::tests::vars;
    use super::super::Settings;
    use super::*;

    #[test]
    fn prisma_urls_become_libpq_urls_and_settings() {
        let s = Settings::from_vars(vars(&[(
            "DATABASE_URL",
            "postgresql://user:pass@host:5432/db?ssl=true&connection_limit=20&pool_timeout=30&schema=rental&application_name=api",
        )]))
        .unwrap();
        assert_eq!(
            s.database.url,
            "postgresql://user:pass@host:5432/db?options=-c+search_path%3Drental&application_name=api&sslmode=require"
        );
        assert_eq!(s.database.pool_size, 20);
        assert_eq!(s.database.connect_timeout, Duration::from_secs(30));

        let s = Settings::from_vars(vars(&[(
            "DATABASE_URL",
            "postgres://u@h/db?sslmode=verify-full&ssl=true&pgbouncer=true",
        )]))
        .unwrap();
        assert_eq!(s.database.url, "postgres://u@h/db?sslmode=verify-full");
        assert!(
            s.notices.iter().any(|n| n.contains("pgbouncer")),
            "{:?}",
            s.notices
        );
        let plain = "postgres://u:p@h:5432/db";
        let s = Settings::from_vars(vars(&[("DATABASE_URL", plain)])).unwrap();
        assert_eq!(s.database.url, plain);
        for bad in [
            "postgres://h/db?ssl=maybe",
            "postgres://h/db?connection_limit=0",
            "postgres://h/db?pool_timeout=soon",
        ] {
            let err = Settings::from_vars(vars(&[("DATABASE_URL", bad)])).unwrap_err();
            assert!(err.0.starts_with("DATABASE_URL: "), "{err}");
        }
    }

    #[test]
    fn node_env_stands_in_for_app_env() {
        let s = Settings::from_vars(vars(&[("NODE_ENV", "test")])).unwrap();
        assert_eq!(s.env, AppEnv::Test);
        let s =
            Settings::from_vars(vars(&[("NODE_ENV", "production"), ("APP_ENV", "test")])).unwrap();
        assert_eq!(s.env, AppEnv::Test);
        assert_eq!(s.notices, ["NODE_ENV is ignored: APP_ENV is set and wins"]);
        assert!(Settings::from_vars(vars(&[("NODE_ENV", "qa")]))
            .unwrap_err()
            .0
            .contains("NODE_ENV"));
        let s = Settings::from_vars(vars(&[
            ("APP_ENV", "test"),
            ("REDIS_URL", "redis://x"),
            ("PRISMA_HIDE_UPDATE_MESSAGE", "1"),
        ]))
        .unwrap();
        assert_eq!(s.notices.len(), 2, "{:?}", s.notices);
        assert!(
            s.notices[1].starts_with("REDIS_URL is a setting of the Node version"),
            "{:?}",
            s.notices
        );
    }
}
