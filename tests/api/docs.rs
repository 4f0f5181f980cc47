//! The docs page as people meet it: Swagger UI in a real browser (headless Chromium, from
//! Debian's `chromium` package, which scripts/test.sh installs when it is missing).

use std::process::Command;

use crate::helpers::*;

fn chromium() -> String {
    let candidates = [
        std::env::var("CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
    ];
    candidates
        .into_iter()
        .find(|c| !c.is_empty() && std::path::Path::new(c).exists())
        .expect("no Chromium: install Debian's chromium (scripts/test.sh does) or set CHROMIUM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_every_operation_without_a_csp_violation() {
    let app = spawn_app(Backend::Sqlite).await;
    let profile = tempfile::tempdir().unwrap();
    let url = app.url("/docs");
    let browser = chromium();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=1",
                "--virtual-time-budget=10000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .output()
            .expect("run chromium")
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    let violations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Content Security Policy"))
        .collect();
    assert!(violations.is_empty(), "CSP violations: {violations:#?}");
    let doc: serde_json::Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let rendered = dom.matches("class=\"opblock-summary-path\"").count();
    assert_eq!(rendered, operations, "every operation is on the page");
    for tag in [
        "auth",
        "cars",
        "search",
        "bookings",
        "notifications",
        "operations",
    ] {
        assert!(
            dom.contains(&format!("data-tag=\"{tag}\"")),
            "the {tag} group"
        );
    }
    assert!(
        dom.contains("btn authorize"),
        "the bearer token can be entered"
    );
}
