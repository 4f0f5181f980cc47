//! `carrental backup` and `carrental restore`, run as an operator would, against the
//! database a server uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn cli(db_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carrental"))
        .args(args)
        .env("APP_ENV", "test")
        .env(
            "APP_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("DATABASE_URL", db_url)
        .env_remove("BACKUP_KEEP")
        .output()
        .expect("the command runs")
}

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
