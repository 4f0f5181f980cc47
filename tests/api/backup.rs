//! `carrental backup` and `carrental restore`, run as an operator would, against the
//! database a server uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("carrental-")
        })
        .collect();
    files.sort();
    files
}

db_test! {
    local: async fn a_restore_brings_the_backed_up_state_back(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let kept = id_of(&app.create_car(&admin, json!({"name": "Kept"})).await);
        app.signup("before@example.com").await;
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().to_string_lossy().into_owned();
        let url = app.db.url.clone();

        for _ in 0..3 {
            let out = cli(&url, &["backup", "--output", &out_dir, "--keep", "2", "--verify"]);
            assert!(out.status.success(), "{}", said(&out));
            assert!(said(&out).contains(", verified"), "{}", said(&out));
        }
        let files = backups(dir.path());
        assert_eq!(files.len(), 2, "the newest two are kept: {files:?}");
        let extension = if backend == Backend::Sqlite { "db" } else { "dump" };
        assert!(files.iter().all(|f| f.extension().unwrap() == extension), "{files:?}");
        let backup = files.last().unwrap().to_string_lossy().into_owned();

        // Written after the backup: gone after the restore.
        let later = id_of(&app.create_car(&admin, json!({"name": "Later"})).await);
        app.signup("after@example.com").await;
        let db = app.db.clone();
        drop(app);

        let damaged = dir.path().join("damaged.db");
        std::fs::write(&damaged, b"not a backup").unwrap();
        let out = cli(&url, &["restore", "--input", &damaged.to_string_lossy()]);
        assert!(!out.status.success(), "a damaged file is refused: {}", said(&out));

        let out = cli(&url, &["restore", "--input", &backup]);
        assert!(out.status.success(), "{}", said(&out));
        assert!(said(&out).starts_with("restored "), "{}", said(&out));

        let app = start_app(db, &[]).await;
        assert_eq!(app.get(&format!("/cars/{kept}"), None).await.status(), StatusCode::OK);
        assert_eq!(app.get(&format!("/cars/{later}"), None).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.login("before@example.com", PASSWORD).await.status(), StatusCode::OK);
        assert_eq!(app.login("after@example.com", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        // And it keeps serving writes on the restored database.
        app.create_car(&app.admin_token().await, json!({"name": "After the restore"})).await;
    }
}

#[test]
fn a_backup_needs_a_database_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}/none.db", dir.path().display());
    let out = cli(
        &missing,
        &["backup", "--output", &dir.path().to_string_lossy()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// The file's permission bits.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A database file that is not a backup of this schema, for `backend`: SQLite with an
/// unrelated table; a PostgreSQL dump of an unrelated database.
fn unrelated_backup(backend: Backend, dir: &Path) -> PathBuf {
    match backend {
        Backend::Sqlite => {
            use diesel::{Connection, RunQueryDsl};
            let file = dir.join("unrelated.db");
            let mut c = diesel::SqliteConnection::establish(&file.to_string_lossy()).unwrap();
            diesel::sql_query("CREATE TABLE notes (body TEXT)")
                .execute(&mut c)
                .unwrap();
            diesel::sql_query("INSERT INTO notes VALUES ('hello')")
                .execute(&mut c)
                .unwrap();
            file
        }
        _ => {
            let other = TestDatabase::new(Backend::Postgres);
            other.execute("CREATE TABLE notes (body TEXT)");
            other.execute("INSERT INTO notes VALUES ('hello')");
            let file = dir.join("unrelated.dump");
            let status = Command::new("pg_dump")
                .args(["--format=custom", "--no-owner"])
                .arg(format!("--file={}", file.display()))
                .arg(format!("--dbname={}", other.url))
                .status()
                .expect("pg_dump runs");
            assert!(status.success());
            file
        }
    }
}

db_test! {
    local: async fn a_restore_refuses_what_is_not_a_backup_of_this_schema_and_keeps_every_copy(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let kept = id_of(&app.create_car(&admin, json!({"name": "Kept"})).await);
        let dir = tempfile::tempdir().unwrap();
        let url = app.db.url.clone();

        // Backups are for their owner only; a directory named like one is not one.
        std::fs::create_dir(dir.path().join("carrental-20200101T000000000Z.db")).unwrap();
        std::fs::create_dir(dir.path().join("carrental-20200101T000000000Z.dump")).unwrap();
        let out = cli(&url, &["backup", "--output", &dir.path().to_string_lossy(), "--keep", "1"]);
        assert!(out.status.success(), "{}", said(&out));
        let files: Vec<PathBuf> = backups(dir.path()).into_iter().filter(|p| p.is_file()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(mode(&files[0]), 0o600, "{:?}", files[0]);
        assert!(dir.path().join("carrental-20200101T000000000Z.db").is_dir());
        let good = files[0].to_string_lossy().into_owned();

        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let unrelated = unrelated_backup(backend, dir.path());
        for bad in [&empty, &unrelated] {
            let out = cli(&url, &["restore", "--input", &bad.to_string_lossy()]);
            assert!(!out.status.success(), "{bad:?} is refused: {}", said(&out));
            assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1, "{}", said(&out));
            assert_eq!(app.get(&format!("/cars/{kept}"), None).await.status(), StatusCode::OK,
                       "nothing changed after {bad:?}");
        }

        let db = app.db.clone();
        drop(app);
        for _ in 0..2 {
            let out = cli(&url, &["restore", "--input", &good]);
            assert!(out.status.success(), "{}", said(&out));
        }
        if backend == Backend::Sqlite {
            let file = PathBuf::from(url.trim_start_matches("sqlite://"));
            let parent = file.parent().unwrap();
            let copies: Vec<_> = std::fs::read_dir(parent).unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("test.db.before-restore-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
                .collect();
            assert_eq!(copies.len(), 2, "each restore keeps its own copy: {copies:?}");
        }
        let app = start_app(db, &[]).await;
        assert_eq!(app.get(&format!("/cars/{kept}"), None).await.status(), StatusCode::OK);
    }
}

db_test! {
    local: async fn a_backup_from_an_older_migration_is_restored_and_migrated(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let kept = id_of(&app.create_car(&admin, json!({"name": "Older"})).await);
        let url = app.db.url.clone();
        let db = app.db.clone();
        drop(app);
        let dir = tempfile::tempdir().unwrap();
        let out = cli(&url, &["migrate", "revert"]);
        assert!(out.status.success(), "{}", said(&out));
        let out = cli(&url, &["backup", "--output", &dir.path().to_string_lossy()]);
        assert!(out.status.success(), "{}", said(&out));
        let older = backups(dir.path()).pop().unwrap().to_string_lossy().into_owned();
        let out = cli(&url, &["migrate", "run"]);
        assert!(out.status.success(), "{}", said(&out));

        let out = cli(&url, &["restore", "--input", &older]);
        assert!(out.status.success(), "{}", said(&out));
        assert!(said(&out).contains("then applied 1 newer migration"), "{}", said(&out));
        let app = start_app(db, &[]).await;
        assert_eq!(app.get(&format!("/cars/{kept}"), None).await.status(), StatusCode::OK);
        let status = cli(&app.db.url, &["migrate", "status"]);
        assert!(!said(&status).contains("[ ]"), "every migration applied: {}", said(&status));
    }
}
