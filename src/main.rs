use std::process::ExitCode;

use clap::{Parser, Subcommand};

use carrental::config::Settings;
use carrental::db::Db;
#[cfg(any(feature = "auth", feature = "cars", feature = "search"))]
use carrental::ports::Ports;
use carrental::startup::{shutdown_signal, Application};
use carrental::telemetry;

#[derive(Parser)]
#[command(name = "carrental", version, about = "Car rental backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply, revert or list database migrations.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Add a demo fleet of cars.
    Seed {
        /// How many cars.
        #[arg(long, default_value_t = 50)]
        cars: usize,
    },
    /// Rebuild the search index from the database, without downtime.
    Reindex,
    /// Back the database up into a directory (pg_dump -Fc, or SQLite's VACUUM INTO), keeping
    /// the newest BACKUP_KEEP backups there.
    Backup {
        /// The directory the backups are kept in.
        #[arg(long)]
        output: std::path::PathBuf,
        /// How many backups to keep, the newest.
        #[arg(long, env = "BACKUP_KEEP", default_value_t = 14)]
        keep: usize,
        /// Restore the new backup into a scratch database and compare every table's rows.
        #[arg(long)]
        verify: bool,
    },
    /// Replace the database's contents with a backup's (stop the servers first).
    Restore {
        /// A file `carrental backup` made.
        #[arg(long)]
        input: std::path::PathBuf,
    },
    /// Photos and documents in the store.
    Media {
        #[command(subcommand)]
        action: MediaAction,
    },
    /// Print the OpenAPI document as JSON.
    Openapi,
    /// Exit 0 when the server on this machine answers `/health` (a container health check
    /// that needs no curl).
    Healthcheck,
}

#[derive(Subcommand, Clone, Copy)]
enum MigrateAction {
    /// Apply every pending migration (the default).
    Run,
    /// Revert the most recent migration.
    Revert,
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Subcommand, Clone, Copy)]
enum MediaAction {
    /// List the stored objects no row needs, older than a day; delete them with --apply.
    Gc {
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Create an admin, or promote an existing account and set its password.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!(
                "{}",
                text.lines().next().unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Openapi => {
            use std::io::Write;
            let written = writeln!(
                std::io::stdout(),
                "{}",
                carrental::openapi::whole_api_json()
            );
            // A reader that stops early (`| head`) is not an error.
            return match written {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            };
        }
        Command::Healthcheck => return healthcheck().await,
        _ => {}
    }
    let settings = Settings::load()?;
    // MODULES names modules of this binary, whatever the command.
    carrental::startup::served(&settings)?;
    telemetry::init(&settings.log);
    for notice in &settings.notices {
        tracing::warn!("{notice}");
    }
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "listening");
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate { action } => {
            migrate(settings, action.unwrap_or(MigrateAction::Run)).await?
        }
        Command::Admin {
            action:
                AdminAction::Create {
                    email,
                    password,
                    name,
                },
        } => create_admin(settings, &email, &password, name.as_deref()).await?,
        Command::Seed { cars } => seed(settings, cars).await?,
        Command::Reindex => reindex(settings).await?,
        Command::Media {
            action: MediaAction::Gc { apply },
        } => media_gc(settings, apply).await?,
        Command::Backup {
            output,
            keep,
            verify,
        } => {
            let url = settings.database.url.clone();
            let made = tokio::task::spawn_blocking(move || {
                carrental::backup::backup(&url, &output, keep, verify)
            })
            .await??;
            println!(
                "backed up {} rows of {} tables into {}{}",
                made.rows,
                made.tables,
                made.file.display(),
                if made.verified { ", verified" } else { "" }
            );
            for old in made.removed {
                println!("deleted {}", old.display());
            }
        }
        Command::Restore { input } => {
            let url = settings.database.url.clone();
            let restored =
                tokio::task::spawn_blocking(move || carrental::backup::restore(&url, &input))
                    .await??;
            println!(
                "restored {} rows of {} tables from a backup at migration {}{}{}",
                restored.counts.values().sum::<i64>(),
                restored.counts.len(),
                restored.version,
                match restored.migrated.len() {
                    0 => String::new(),
                    n => format!(", then applied {n} newer migration(s)"),
                },
                restored
                    .kept
                    .map(|kept| format!("; the database it replaced is kept as {}", kept.display()))
                    .unwrap_or_default()
            );
        }
        Command::Openapi | Command::Healthcheck => {}
    }
    Ok(())
}

/// Asks the local server's liveness route. The port is the server's own setting, so the
/// check follows `PORT` and the config files alike.
async fn healthcheck() -> anyhow::Result<()> {
    let port = match Settings::load() {
        Ok(settings) => settings.server.port,
        Err(_) => std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(8080),
    };
    let url = format!("http://127.0.0.1:{port}/health");
    let res = carrental::http::client::http_client()
        .map_err(anyhow::Error::msg)?
        .get(&url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    anyhow::ensure!(res.status().is_success(), "{url} answered {}", res.status());
    Ok(())
}

/// The database for a one-shot command, migrated first.
#[cfg(any(feature = "auth", feature = "cars", feature = "search"))]
async fn connect(settings: &Settings) -> anyhow::Result<Db> {
    let db_settings = settings.database.clone();
    Ok(tokio::task::spawn_blocking(move || Db::connect_for_command(&db_settings, true)).await??)
}

/// The ports as the server would have them.
#[cfg(any(feature = "auth", feature = "cars", feature = "search"))]
fn ports(settings: &Settings, db: &Db) -> anyhow::Result<Ports> {
    let services = carrental::startup::services(settings)?;
    let served = carrental::startup::served(settings)?;
    Ok(carrental::startup::ports(settings, &served, db, &services))
}

async fn migrate(settings: Settings, action: MigrateAction) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let migrate_first = matches!(action, MigrateAction::Run);
        let db = Db::connect_for_command(&settings.database, migrate_first)?;
        let mut conn = db
            .get()
            .map_err(|_| anyhow::anyhow!("database unavailable"))?;
        match action {
            MigrateAction::Run => println!("migrations are up to date"),
            MigrateAction::Revert => println!("reverted {}", conn.revert_last_migration()?),
            MigrateAction::Status => {
                for (name, applied) in conn.migration_status()? {
                    println!("[{}] {name}", if applied { "x" } else { " " });
                }
            }
        }
        Ok(())
    })
    .await?
}

#[cfg(feature = "auth")]
async fn create_admin(
    settings: Settings,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> anyhow::Result<()> {
    use carrental::auth::model::{parse_name, Email, Password};
    use carrental::auth::AuthService;
    use carrental::http::auth::Jwt;
    use carrental::telemetry::Metrics;

    let invalid = |e: carrental::error::FieldError| anyhow::anyhow!("{}: {}", e.field, e.message);
    let email = Email::parse(email).map_err(invalid)?;
    let password = Password::parse(password).map_err(invalid)?;
    let name = name.map(parse_name).transpose().map_err(invalid)?;
    let db = connect(&settings).await?;
    let ports = ports(&settings, &db)?;
    let service = tokio::task::spawn_blocking(move || -> anyhow::Result<AuthService> {
        let jwt = actix_web::web::Data::new(Jwt::from_settings(&settings.auth));
        let metrics = actix_web::web::Data::new(Metrics::new()?);
        let link_base = settings.link_base();
        AuthService::new(db, ports, jwt, metrics, &settings.auth, link_base)
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await??;
    let (user, created) = service
        .create_admin(email, password, name)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let verb = if created { "created" } else { "promoted" };
    println!(
        "{verb} admin {} ({})",
        user.email.as_deref().unwrap_or_default(),
        user.id
    );
    Ok(())
}

#[cfg(not(feature = "auth"))]
async fn create_admin(_: Settings, _: &str, _: &str, _: Option<&str>) -> anyhow::Result<()> {
    anyhow::bail!("this binary was built without the auth feature")
}

#[cfg(feature = "cars")]
async fn seed(settings: Settings, cars: usize) -> anyhow::Result<()> {
    let db = connect(&settings).await?;
    let ports = ports(&settings, &db)?;
    let count = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut conn = db
            .get()
            .map_err(|_| anyhow::anyhow!("database unavailable"))?;
        let seed = rand::random();
        let fleet = carrental::cars::seed::fleet(cars, seed);
        carrental::cars::seed::insert(&mut conn, fleet, ports.indexer.as_ref())
            .map_err(|e| anyhow::anyhow!("{}", e.message()))
    })
    .await??;
    println!("added {count} cars");
    Ok(())
}

#[cfg(not(feature = "cars"))]
async fn seed(_: Settings, _: usize) -> anyhow::Result<()> {
    anyhow::bail!("this binary was built without the cars feature")
}

#[cfg(feature = "search")]
async fn reindex(settings: Settings) -> anyhow::Result<()> {
    let db = connect(&settings).await?;
    if settings.search.url.is_empty() {
        println!("search uses the database engine: nothing to rebuild");
        return Ok(());
    }
    let engine = carrental::search::opensearch::OpenSearchEngine::new(&settings.search)
        .map_err(anyhow::Error::msg)?;
    let ports = ports(&settings, &db)?;
    let (index, count) = carrental::search::service::reindex(&db, &ports, &engine)
        .await
        .map_err(|e| anyhow::anyhow!("reindex failed: {e}"))?;
    println!(
        "indexed {count} cars into {index}; alias {} now points to it",
        settings.search.index
    );
    Ok(())
}

/// `carrental media gc`: a dry run unless `apply`.
#[cfg(feature = "cars")]
async fn media_gc(settings: Settings, apply: bool) -> anyhow::Result<()> {
    let db = connect(&settings).await?;
    let ports = ports(&settings, &db)?;
    let media = carrental::cars::uploads::Media::new(db, &settings, ports.availability)?;
    let garbage = media
        .garbage(std::time::Duration::from_secs(24 * 3600))
        .await
        .map_err(|e| anyhow::anyhow!("cannot list the store: {e}"))?;
    for object in &garbage {
        if apply {
            media
                .store
                .delete(&object.key)
                .await
                .map_err(|e| anyhow::anyhow!("cannot delete {}: {e}", object.key))?;
            println!("deleted {}", object.key);
        } else {
            println!("{}  {}", object.modified.to_rfc3339(), object.key);
        }
    }
    match (apply, garbage.len()) {
        (_, 0) => println!("no object is left without a row"),
        (true, n) => println!("deleted {n} object(s) no row needs"),
        (false, n) => println!("{n} object(s) no row needs; run with --apply to delete them"),
    }
    Ok(())
}

#[cfg(not(feature = "cars"))]
async fn media_gc(_: Settings, _: bool) -> anyhow::Result<()> {
    anyhow::bail!("this binary was built without the cars feature")
}

#[cfg(not(feature = "search"))]
async fn reindex(_: Settings) -> anyhow::Result<()> {
    anyhow::bail!("this binary was built without the search feature")
}
