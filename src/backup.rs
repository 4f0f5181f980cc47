//! `carrental backup` and `carrental restore`. PostgreSQL through `pg_dump -Fc` and
//! `pg_restore` (on `PATH`, of the server's major version or newer); SQLite through
//! `VACUUM INTO`. Backups are `carrental-<UTC time>.dump` or `.db` in one directory, of
//! which the newest `keep` are kept. Verifying restores a backup into a scratch database
//! and compares the row count of every table with the counts the backup was taken at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::{DbConn, DbUrl};

const PREFIX: &str = "carrental-";

/// Rows per table.
type Counts = BTreeMap<String, i64>;

/// What a backup made.
#[derive(Debug)]
pub struct Made {
    pub file: PathBuf,
    pub tables: usize,
    pub rows: i64,
    pub verified: bool,
    pub removed: Vec<PathBuf>,
}

/// Backs the database up into `dir`, verifies the backup when asked, then deletes all but
/// the newest `keep` backups there. A backup that fails to verify is kept and is an error.
pub fn backup(database_url: &str, dir: &Path, keep: usize, verify: bool) -> anyhow::Result<Made> {
    ensure!(keep >= 1, "BACKUP_KEEP must be at least 1");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let url = DbUrl::parse(database_url).map_err(anyhow::Error::msg)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
    let (extension, counts) = match &url {
        DbUrl::Postgres(url) => ("dump", {
            let file = dir.join(format!("{PREFIX}{stamp}.dump"));
            (file.clone(), postgres::dump(url, &file)?)
        }),
        DbUrl::Sqlite(path) => ("db", {
            let file = dir.join(format!("{PREFIX}{stamp}.db"));
            (file.clone(), sqlite::dump(path, &file)?)
        }),
    };
    let (file, counts) = counts;
    if verify {
        let restored = match &url {
            DbUrl::Postgres(url) => postgres::scratch_counts(url, &file)?,
            DbUrl::Sqlite(_) => sqlite::scratch_counts(&file)?,
        };
        compare(&counts, &restored)
            .with_context(|| format!("{} does not restore what was backed up", file.display()))?;
    }
    let removed = prune(dir, extension, keep)?;
    Ok(Made {
        tables: counts.len(),
        rows: counts.values().sum(),
        file,
        verified: verify,
        removed,
    })
}

/// Replaces the database's contents with the backup's. Stop the servers first.
pub fn restore(database_url: &str, input: &Path) -> anyhow::Result<Counts> {
    ensure!(input.is_file(), "no backup at {}", input.display());
    match DbUrl::parse(database_url).map_err(anyhow::Error::msg)? {
        DbUrl::Postgres(url) => postgres::restore(&url, input),
        DbUrl::Sqlite(path) => sqlite::restore(&path, input),
    }
}

fn compare(taken: &Counts, restored: &Counts) -> anyhow::Result<()> {
    let mut differences = Vec::new();
    for (table, n) in taken {
        match restored.get(table) {
            Some(m) if m == n => {}
            Some(m) => differences.push(format!("{table}: {n} rows, restored {m}")),
            None => differences.push(format!("{table}: missing from the restore")),
        }
    }
    for table in restored.keys().filter(|t| !taken.contains_key(*t)) {
        differences.push(format!("{table}: not in the database backed up"));
    }
    ensure!(differences.is_empty(), "{}", differences.join("; "));
    Ok(())
}

/// Deletes all but the newest `keep` backups with this extension; the names sort by time.
fn prune(dir: &Path, extension: &str, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(&format!(".{extension}")))
        })
        .collect();
    backups.sort();
    let old = backups.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = backups.into_iter().take(old).collect();
    for path in &removed {
        std::fs::remove_file(path).with_context(|| format!("cannot delete {}", path.display()))?;
    }
    Ok(removed)
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows per table, `tables` naming the tables (a query answering `name`).
fn counts(conn: &mut DbConn, tables: &str) -> anyhow::Result<Counts> {
    let names: Vec<Name> = diesel::sql_query(tables).load(conn)?;
    let mut out = Counts::new();
    for Name { name } in names {
        let sql = format!("SELECT count(*) AS n FROM {}", quoted(&name));
        let Count { n } = diesel::sql_query(sql).get_result(conn)?;
        out.insert(name, n);
    }
    Ok(out)
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Runs a command, failing with its own words when it fails.
fn run(mut command: Command) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("{program} is not installed (it must be on PATH)")
        }
        _ => anyhow::anyhow!("cannot run {program}: {e}"),
    })?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{program} failed: {}",
            said.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    Ok(())
}

/// Moves a file finished under a temporary name to its name.
fn finish(partial: &Path, file: &Path) -> anyhow::Result<()> {
    std::fs::rename(partial, file).with_context(|| format!("cannot write {}", file.display()))
}

fn partial(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

mod postgres {
    use super::*;

    const TABLES: &str = "SELECT tablename::text AS name FROM pg_tables \
                          WHERE schemaname = current_schema() ORDER BY 1";

    fn connect(url: &str) -> anyhow::Result<DbConn> {
        Ok(DbConn::Pg(
            PgConnection::establish(url).context("connecting to PostgreSQL")?,
        ))
    }

    /// libpq's tools take the password from the environment, not from their command line
    /// (which anyone on the machine can read).
    fn tool(program: &str, url: &str) -> anyhow::Result<(Command, String)> {
        let mut parsed = url::Url::parse(url).context("DATABASE_URL")?;
        let mut command = Command::new(program);
        if let Some(password) = parsed.password() {
            let password = percent_encoding::percent_decode_str(password)
                .decode_utf8_lossy()
                .into_owned();
            command.env("PGPASSWORD", password);
            parsed
                .set_password(None)
                .map_err(|()| anyhow::anyhow!("DATABASE_URL: cannot remove the password"))?;
        }
        Ok((command, parsed.into()))
    }

    /// Dumps the database as one snapshot, and counts its rows in that same snapshot.
    pub fn dump(url: &str, file: &Path) -> anyhow::Result<Counts> {
        let mut conn = connect(url)?;
        conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        let snapshot: Name =
            diesel::sql_query("SELECT pg_export_snapshot() AS name").get_result(&mut conn)?;
        let counts = counts(&mut conn, TABLES)?;
        let partial = partial(file);
        let (mut dump, url) = tool("pg_dump", url)?;
        dump.args(["--format=custom", "--no-owner", "--no-privileges"])
            .arg(format!("--snapshot={}", snapshot.name))
            .arg(format!("--file={}", partial.display()))
            .arg(format!("--dbname={url}"));
        let dumped = run(dump);
        conn.batch_execute("COMMIT")?;
        if let Err(e) = dumped {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        finish(&partial, file)?;
        Ok(counts)
    }

    /// Restores `file` into a scratch database next to the real one, counts its rows and
    /// drops it.
    pub fn scratch_counts(url: &str, file: &Path) -> anyhow::Result<Counts> {
        let name = format!("carrental_verify_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(url).context("connecting to PostgreSQL")?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .context("creating the scratch database (the role needs CREATEDB)")?;
        let mut scratch = url::Url::parse(url).context("DATABASE_URL")?;
        scratch.set_path(&format!("/{name}"));
        let restored = (|| {
            let (mut restore, scratch) = tool("pg_restore", scratch.as_str())?;
            restore
                .args(["--no-owner", "--no-privileges", "--exit-on-error"])
                .arg(format!("--dbname={scratch}"))
                .arg(file);
            run(restore)?;
            let mut conn = connect(scratch.as_str())?;
            counts(&mut conn, TABLES)
        })();
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)?;
        restored
    }

    /// Replaces every object of the dump, in one transaction.
    pub fn restore(url: &str, file: &Path) -> anyhow::Result<Counts> {
        let (mut restore, tool_url) = tool("pg_restore", url)?;
        restore
            .args(["--clean", "--if-exists", "--no-owner", "--no-privileges"])
            .args(["--single-transaction", "--exit-on-error"])
            .arg(format!("--dbname={tool_url}"))
            .arg(file);
        run(restore)?;
        counts(&mut connect(url)?, TABLES)
    }
}

mod sqlite {
    use super::*;

    const TABLES: &str = "SELECT name FROM sqlite_schema \
                          WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1";

    fn open(path: &Path) -> anyhow::Result<DbConn> {
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())
            .with_context(|| format!("opening {}", path.display()))?;
        conn.batch_execute("PRAGMA busy_timeout = 10000")?;
        Ok(DbConn::Sqlite(conn))
    }

    fn literal(path: &Path) -> String {
        format!("'{}'", path.to_string_lossy().replace('\'', "''"))
    }

    /// Copies the database with `VACUUM INTO` while writers wait (reads go on), so that the
    /// copy and the counts are of one moment.
    pub fn dump(path: &Path, file: &Path) -> anyhow::Result<Counts> {
        ensure!(path.is_file(), "no database at {}", path.display());
        let mut holder = open(path)?;
        holder.batch_execute("BEGIN IMMEDIATE")?;
        let counts = counts(&mut holder, TABLES)?;
        let partial = partial(file);
        let copied = open(path).and_then(|mut copier| {
            Ok(copier.batch_execute(&format!("VACUUM INTO {}", literal(&partial)))?)
        });
        holder.batch_execute("ROLLBACK")?;
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        finish(&partial, file)?;
        Ok(counts)
    }

    /// Checks a backup file and counts its rows.
    fn check(file: &Path) -> anyhow::Result<Counts> {
        let mut conn = open(file)?;
        let Name { name: verdict } =
            diesel::sql_query("SELECT integrity_check AS name FROM pragma_integrity_check LIMIT 1")
                .get_result(&mut conn)?;
        ensure!(verdict == "ok", "{} is damaged: {verdict}", file.display());
        counts(&mut conn, TABLES)
    }

    /// Restores `file` into a scratch copy beside it, counts its rows and deletes it.
    pub fn scratch_counts(file: &Path) -> anyhow::Result<Counts> {
        let mut name = file.as_os_str().to_owned();
        name.push(".verify");
        let scratch = PathBuf::from(name);
        std::fs::copy(file, &scratch)
            .with_context(|| format!("cannot write {}", scratch.display()))?;
        let counted = check(&scratch);
        let _ = std::fs::remove_file(&scratch);
        counted
    }

    /// Puts the backup in the database file's place; the file it replaces is kept beside
    /// it as `.before-restore` (with its WAL, if any).
    pub fn restore(path: &Path, file: &Path) -> anyhow::Result<Counts> {
        let counts = check(file)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut current = path.as_os_str().to_owned();
            current.push(suffix);
            let current = PathBuf::from(current);
            if current.exists() {
                let mut kept = path.as_os_str().to_owned();
                kept.push(format!(".before-restore{suffix}"));
                std::fs::rename(&current, PathBuf::from(kept))
                    .with_context(|| format!("cannot move {} aside", current.display()))?;
            }
        }
        let partial = partial(path);
        std::fs::copy(file, &partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        finish(&partial, path)?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(pairs: &[(&str, i64)]) -> Counts {
        pairs.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    #[test]
    fn a_restore_must_hold_every_row_of_every_table() {
        let taken = counted(&[("cars", 3), ("users", 2)]);
        assert!(compare(&taken, &taken).is_ok());
        let err = compare(&taken, &counted(&[("cars", 3), ("users", 1)])).unwrap_err();
        assert_eq!(err.to_string(), "users: 2 rows, restored 1");
        let err = compare(&taken, &counted(&[("cars", 3)])).unwrap_err();
        assert_eq!(err.to_string(), "users: missing from the restore");
        let err = compare(&counted(&[("cars", 3)]), &taken).unwrap_err();
        assert_eq!(err.to_string(), "users: not in the database backed up");
    }

    #[test]
    fn only_the_newest_backups_of_the_kind_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "carrental-20260101T000000000Z.dump",
            "carrental-20260102T000000000Z.dump",
            "carrental-20260103T000000000Z.dump",
            "carrental-20260101T000000000Z.db",
            "notes.dump",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let removed = prune(dir.path(), "dump", 2).unwrap();
        assert_eq!(
            removed,
            [dir.path().join("carrental-20260101T000000000Z.dump")]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "carrental-20260101T000000000Z.db",
                "carrental-20260102T000000000Z.dump",
                "carrental-20260103T000000000Z.dump",
                "notes.dump"
            ]
        );
    }
}
