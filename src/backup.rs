//! `carrental backup` and `carrental restore`. PostgreSQL through `pg_dump -Fc` and
//! `pg_restore` (on `PATH`, of the server's major version or newer); SQLite through
//! `VACUUM INTO`. Backups are `carrental-<UTC time>.dump` or `.db` in one directory, of
//! which the newest `keep` are kept. Verifying restores a backup into a scratch database
//! and compares the row count of every table with the counts the backup was taken at.

use std::collections::{BTreeMap, BTreeSet};
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
    let stamp = stamp();
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

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub counts: Counts,
    /// The backup's migration version, and the migrations applied after it.
    pub version: String,
    pub migrated: Vec<String>,
    /// Where the database it replaced is kept (SQLite).
    pub kept: Option<PathBuf>,
}

/// Replaces the database's contents with the backup's, then migrates it. Stop the servers
/// first. Anything but a backup of this schema, at this binary's migration version or an
/// older one, is refused before the database is touched.
pub fn restore(database_url: &str, input: &Path) -> anyhow::Result<Restored> {
    ensure!(input.is_file(), "no backup at {}", input.display());
    match DbUrl::parse(database_url).map_err(anyhow::Error::msg)? {
        DbUrl::Postgres(url) => postgres::restore(&url, input),
        DbUrl::Sqlite(path) => sqlite::restore(&path, input),
    }
}

/// What a backup holds of the schema: the migrations applied to it and its tables.
#[derive(Debug, Default, PartialEq)]
struct Shape {
    versions: BTreeSet<String>,
    tables: BTreeSet<String>,
}

const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

impl Shape {
    /// Checks that `self` is this schema at one of this binary's migration versions: its
    /// migrations are the first ones of `known`, and its tables those that `tables_at`
    /// says that many migrations make. Answers the backup's version.
    fn check(
        &self,
        known: &[String],
        tables_at: impl FnOnce(usize) -> anyhow::Result<BTreeSet<String>>,
    ) -> anyhow::Result<String> {
        ensure!(
            self.tables.contains(MIGRATIONS_TABLE),
            "not a carrental backup: it has no migration history"
        );
        let unknown: Vec<&String> = self
            .versions
            .iter()
            .filter(|v| !known.contains(v))
            .collect();
        ensure!(
            unknown.is_empty(),
            "the backup has migrations this release does not know ({}): restore it with the release that made it",
            unknown.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
        );
        let n = self.versions.len();
        ensure!(
            n > 0,
            "not a carrental backup: no migration was ever applied to it"
        );
        ensure!(
            known[..n].iter().all(|v| self.versions.contains(v)),
            "not a carrental backup: its migrations are not this schema's history"
        );
        let expected = tables_at(n)?;
        let missing: Vec<&String> = expected.difference(&self.tables).collect();
        let extra: Vec<&String> = self.tables.difference(&expected).collect();
        ensure!(
            missing.is_empty() && extra.is_empty(),
            "not a backup of this schema at migration {}: tables missing {missing:?}, unexpected {extra:?}",
            known[n - 1]
        );
        Ok(known[n - 1].clone())
    }
}

/// The tables of a new database of `url`'s backend after the first `n` migrations.
fn tables_at(url: &DbUrl, tables: &str, n: usize) -> anyhow::Result<BTreeSet<String>> {
    let mut conn = DbConn::open(url).map_err(anyhow::Error::msg)?;
    conn.run_first_migrations(n)?;
    let names: Vec<Name> = diesel::sql_query(tables).load(&mut conn)?;
    Ok(names.into_iter().map(|n| n.name).collect())
}

/// A new file readable by its owner only (backups hold password and token hashes).
fn create_private(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ").to_string()
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

/// Deletes all but the newest `keep` backups with this extension (files named as its
/// backups are; anything else is left alone); the names sort by time.
fn prune(dir: &Path, extension: &str, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
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

/// Runs a command, failing with its own words when it fails; answers what it printed.
fn run(mut command: Command) -> anyhow::Result<Vec<u8>> {
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
    Ok(out.stdout)
}

/// Moves a file finished under a temporary name to its name.
fn finish(partial: &Path, file: &Path) -> anyhow::Result<()> {
    std::fs::rename(partial, file).with_context(|| format!("cannot write {}", file.display()))
}

fn partial(file: &Path) -> PathBuf {
    suffixed(file, ".partial")
}

/// `file` with `suffix` added to its name.
fn suffixed(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
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
        create_private(&partial)?;
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

    /// Runs `f` on a new database next to the one at `url`, dropped afterwards.
    fn with_scratch<T>(url: &str, f: impl FnOnce(&str) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let name = format!("carrental_scratch_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(url).context("connecting to PostgreSQL")?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .context("creating a scratch database (the role needs CREATEDB)")?;
        let mut scratch = url::Url::parse(url).context("DATABASE_URL")?;
        scratch.set_path(&format!("/{name}"));
        let done = f(scratch.as_str());
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)?;
        done
    }

    /// Restores `file` into a scratch database next to the real one, counts its rows and
    /// drops it.
    pub fn scratch_counts(url: &str, file: &Path) -> anyhow::Result<Counts> {
        with_scratch(url, |scratch| {
            let (mut restore, scratch) = tool("pg_restore", scratch)?;
            restore
                .args(["--no-owner", "--no-privileges", "--exit-on-error"])
                .arg(format!("--dbname={scratch}"))
                .arg(file);
            run(restore)?;
            let mut conn = connect(scratch.as_str())?;
            counts(&mut conn, TABLES)
        })
    }

    /// The tables and applied migrations a dump holds, read from its table of contents and
    /// its migration table's rows, without restoring anything.
    fn shape(file: &Path) -> anyhow::Result<Shape> {
        let mut list = Command::new("pg_restore");
        list.arg("--list").arg(file);
        let listed =
            run(list).with_context(|| format!("{} is not a PostgreSQL backup", file.display()))?;
        let tables = String::from_utf8_lossy(&listed)
            .lines()
            .filter(|line| !line.starts_with(';'))
            .filter_map(|line| {
                // `215; 1259 16390 TABLE public cars owner` (`TABLE DATA ...` is its rows)
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.get(3) == Some(&"TABLE") && fields.get(4) != Some(&"DATA"))
                    .then(|| fields.get(5).map(|name| (*name).to_owned()))
                    .flatten()
            })
            .collect::<BTreeSet<String>>();
        let mut rows = Command::new("pg_restore");
        rows.args(["--data-only", "--file=-"])
            .arg(format!("--table={MIGRATIONS_TABLE}"))
            .arg(file);
        let script = String::from_utf8_lossy(&run(rows)?).into_owned();
        let versions = script
            .lines()
            .skip_while(|line| !line.starts_with("COPY "))
            .skip(1)
            .take_while(|line| *line != "\\.")
            .filter_map(|line| line.split('\t').next())
            .map(str::to_owned)
            .collect();
        Ok(Shape { versions, tables })
    }

    /// Replaces the schema's contents with the dump's, in one transaction, once the dump is
    /// known to be this schema's; then migrates. The schema is emptied first (inside that
    /// transaction), so objects a newer migration made that the dump does not hold cannot
    /// stand in the way of migrating the restored database again. The dump's SQL comes
    /// from `pg_restore` and runs through `psql`; either failing rolls everything back.
    pub fn restore(url: &str, file: &Path) -> anyhow::Result<Restored> {
        let known = crate::db::known_migrations(crate::db::Backend::Postgres)?;
        let version = shape(file)?.check(&known, |n| {
            with_scratch(url, |scratch| {
                tables_at(&DbUrl::Postgres(scratch.to_owned()), TABLES, n)
            })
        })?;
        let Name { name: schema } = diesel::sql_query("SELECT current_schema()::text AS name")
            .get_result(&mut connect(url)?)?;
        let (mut psql, tool_url) = tool("psql", url)?;
        psql.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-f",
            "-",
        ])
        .arg(format!("--dbname={tool_url}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        let mut dump = Command::new("pg_restore");
        dump.args(["--no-owner", "--no-privileges", "--file=-"])
            .arg(file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut psql = psql
            .spawn()
            .context("cannot run psql (it must be on PATH)")?;
        let mut dump = dump
            .spawn()
            .context("cannot run pg_restore (it must be on PATH)")?;
        let fed = (|| -> anyhow::Result<()> {
            use std::io::Write;
            let mut into = psql.stdin.take().context("psql's input")?;
            let schema = quoted(&schema);
            writeln!(into, "DROP SCHEMA IF EXISTS {schema} CASCADE;")?;
            writeln!(into, "CREATE SCHEMA {schema};")?;
            let mut out = dump.stdout.take().context("pg_restore's output")?;
            std::io::copy(&mut out, &mut into)?;
            Ok(())
        })();
        let dumped = dump.wait_with_output()?;
        let restored = psql.wait_with_output()?;
        let said = |out: &std::process::Output| {
            String::from_utf8_lossy(&out.stderr)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        ensure!(
            dumped.status.success(),
            "pg_restore failed: {}",
            said(&dumped)
        );
        ensure!(
            restored.status.success(),
            "psql failed: {}",
            said(&restored)
        );
        fed.context("cannot pass the dump to psql")?;
        let mut conn = connect(url)?;
        let migrated = conn.run_migrations()?;
        Ok(Restored {
            counts: counts(&mut conn, TABLES)?,
            version,
            migrated,
            kept: None,
        })
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
        create_private(&partial)?;
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

    /// The tables and applied migrations of the database file at `file`.
    fn shape(conn: &mut DbConn) -> anyhow::Result<Shape> {
        let names: Vec<Name> = diesel::sql_query(TABLES).load(conn)?;
        let tables: BTreeSet<String> = names.into_iter().map(|n| n.name).collect();
        let versions = if tables.contains(MIGRATIONS_TABLE) {
            let rows: Vec<Name> = diesel::sql_query(format!(
                "SELECT CAST(version AS TEXT) AS name FROM {MIGRATIONS_TABLE}"
            ))
            .load(conn)?;
            rows.into_iter().map(|n| n.name).collect()
        } else {
            BTreeSet::new()
        };
        Ok(Shape { versions, tables })
    }

    /// Puts a copy of the backup, checked to be this schema's and migrated, in the database
    /// file's place. The file it replaces is kept beside it as `.before-restore-<time>`
    /// (with its WAL, if any), never over an earlier one.
    pub fn restore(path: &Path, file: &Path) -> anyhow::Result<Restored> {
        let stamp = stamp();
        let scratch = suffixed(path, &format!(".restore-{stamp}"));
        create_private(&scratch)?;
        let prepared = (|| {
            std::fs::copy(file, &scratch)
                .with_context(|| format!("cannot write {}", scratch.display()))?;
            check(&scratch)?;
            let known = crate::db::known_migrations(crate::db::Backend::Sqlite)?;
            let version = shape(&mut open(&scratch)?)?.check(&known, |n| {
                tables_at(&DbUrl::Sqlite(":memory:".into()), TABLES, n)
            })?;
            let mut conn =
                DbConn::open(&DbUrl::Sqlite(scratch.clone())).map_err(anyhow::Error::msg)?;
            let migrated = conn.run_migrations()?;
            let counts = counts(&mut conn, TABLES)?;
            Ok::<_, anyhow::Error>((version, migrated, counts))
        })();
        let (version, migrated, counts) = match prepared {
            Ok(done) => done,
            Err(e) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(suffixed(&scratch, suffix));
                }
                return Err(e.context(format!("{} was not restored", file.display())));
            }
        };
        let kept = suffixed(path, &format!(".before-restore-{stamp}"));
        for suffix in ["", "-wal", "-shm"] {
            let current = suffixed(path, suffix);
            let aside = suffixed(&kept, suffix);
            ensure!(!aside.exists(), "{} already exists", aside.display());
            if current.exists() {
                std::fs::rename(&current, &aside)
                    .with_context(|| format!("cannot move {} aside", current.display()))?;
            }
        }
        finish(&scratch, path)?;
        Ok(Restored {
            counts,
            version,
            migrated,
            kept: kept.exists().then_some(kept),
        })
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
