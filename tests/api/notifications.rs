use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp::{free_port, SmtpServer};

/// The messages but the signup's verification link (which every signup also queues).
fn without_verification(list: Vec<Value>) -> Vec<Value> {
    list.into_iter()
        .filter(|m| m["kind"] != "verify_email")
        .collect()
}

fn kinds(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|m| m["kind"].as_str().unwrap().to_owned())
        .collect()
}

db_test! {
    async fn messages_are_queued_with_their_change_and_only_then(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let body = app.signup("renter@example.com").await;
        let token = token_of(&body);
        let other = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);

        let list = wait_until(&app, &token, 5, |l| l.iter().all(|m| m["status"] == "sent")).await;
        let list = without_verification(list);
        assert_eq!(kinds(&list), ["welcome"]);
        let welcome = &list[0];
        assert_eq!(welcome["channel"], "email");
        assert_eq!(welcome["recipient"], "renter@example.com");
        assert_eq!(welcome["subject"], "Welcome to Car Rental");
        assert_eq!(welcome["status"], "sent", "the log provider delivers: {welcome}");
        assert_eq!(welcome["attempts"], 1);
        assert!(welcome["sentAt"].is_string() && welcome["createdAt"].is_string());

        let pickup = days_ahead(4);
        let booking: Value = app.book(&token, &car, pickup, 24).await.json().await.unwrap();
        // A refused booking sends nothing.
        assert_eq!(app.book(&other, &car, pickup, 24).await.status(), StatusCode::CONFLICT);
        assert_eq!(app.book(&token, &car, pickup, 5).await.status(), StatusCode::CONFLICT);
        let res = app.send(Method::PATCH, &format!("/bookings/{}", id_of(&booking)), &json!({"status": "cancelled"}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);

        let list = wait_until(&app, &token, 5, |l| l.len() == 4 && l.iter().all(|m| m["status"] == "sent")).await;
        let list = without_verification(list);
        assert_eq!(kinds(&list), ["booking_cancelled", "booking_confirmed", "welcome"], "newest first");
        assert!(list[1]["subject"].as_str().unwrap().starts_with("Booking confirmed"));
        assert_eq!(kinds(&without_verification(messages(&app, &other).await)), ["welcome"], "each sees only their own");
        assert_error(app.get("/notifications", None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;

        let metrics = app.metrics_of("notifications").await;
        assert!(metrics.contains(r#"carrental_notifications_total{channel="email",status="sent"}"#), "{metrics}");
        let ready = app.ready_of("notifications").await;
        assert_eq!(ready["checks"]["notifications"], json!({"status": "up", "provider": "log", "sms": "log", "push": false}));
    }
}

db_test! {
    async fn smtp_delivers_what_the_renter_needs(backend) {
        let smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, &[("NOTIFICATION_PROVIDER", "smtp"), ("SMTP_URL", &smtp.url()), ("SMTP_FROM", "Rentals <desk@example.com>")]).await;
        let admin = app.admin_token().await;
        let token = token_of(&app.signup("ada@example.com").await);
        let car = app.create_car(&admin, json!({"name": "Tesla Model 3", "pricePerDay": 120.5, "currency": "EUR"})).await;
        let pickup = days_ahead(3);
        let booking: Value = app.book(&token, &id_of(&car), pickup, 25).await.json().await.unwrap();

        // Ada's welcome, her verification link, her confirmation (the admin was made on the
        // command line).
        let mails = smtp.wait_for(3, 10).await;
        let to_ada: Vec<_> = mails.iter().filter(|m| m.to == ["ada@example.com"]).collect();
        assert_eq!(to_ada.len(), 3, "{mails:?}");
        assert_eq!(to_ada.iter().filter(|m| m.subject == "Welcome to Car Rental").count(), 1);
        let confirm = to_ada.iter().find(|m| m.subject == "Booking confirmed: Tesla Model 3").expect("confirmation");
        let data = &confirm.data;
        assert!(data.contains("From: Rentals <desk@example.com>"), "{data}");
        assert!(data.contains(booking["id"].as_str().unwrap()), "{data}");
        // In the car's zone (San Francisco), with its abbreviation; euros the English way.
        let local = pickup.with_timezone(&chrono_tz::America::Los_Angeles);
        assert!(data.contains(&format!("Pickup: {}", local.format("%-d %b %Y, %H:%M %Z"))), "{data}");
        assert!(data.contains("Total: =E2=82=AC241.00"), "quoted-printable €241.00: {data}");
        assert!(data.contains("text/plain") && data.contains("text/html"), "{data}");

        let list = wait_until(&app, &token, 5, |l| l.iter().all(|m| m["status"] == "sent")).await;
        assert!(list.iter().all(|m| m["status"] == "sent" && m["attempts"] == 1), "{list:?}");
        let ready = app.ready_of("notifications").await;
        assert_eq!(ready["checks"]["notifications"]["provider"], "smtp");
    }
}

db_test! {
    async fn an_unreachable_server_is_retried_until_it_answers(backend) {
        let port = free_port();
        let url = format!("smtp://127.0.0.1:{port}");
        let app = spawn_app_with(backend, &[("NOTIFICATION_PROVIDER", "smtp"), ("SMTP_URL", &url), ("NOTIFY_BACKOFF", "200ms")]).await;
        let token = token_of(&app.signup("ada@example.com").await);

        let list = wait_until(&app, &token, 30, |l| l[0]["attempts"].as_i64().unwrap_or(0) >= 3).await;
        assert_eq!(list[0]["status"], "pending", "still pending while the server is down");
        assert!(list[0]["attempts"].as_i64().unwrap() >= 3);
        assert_eq!(list[0]["sentAt"], Value::Null);

        let smtp = SmtpServer::start_on(port).await;
        // The welcome and the verification link.
        let mails = smtp.wait_for(2, 15).await;
        assert_eq!(mails.len(), 2);
        assert!(mails.iter().all(|m| m.to == ["ada@example.com"]));
        let list = wait_until(&app, &token, 5, |l| l.iter().all(|m| m["status"] == "sent")).await;
        assert!(list.iter().all(|m| m["status"] == "sent"), "{list:?}");
    }
}

db_test! {
    async fn the_last_failed_attempt_marks_the_message_failed(backend) {
        let url = format!("smtp://127.0.0.1:{}", free_port());
        let app = spawn_app_with(backend, &[("NOTIFICATION_PROVIDER", "smtp"), ("SMTP_URL", &url),
                                            ("NOTIFY_BACKOFF", "100ms"), ("NOTIFY_MAX_ATTEMPTS", "3")]).await;
        let token = token_of(&app.signup("ada@example.com").await);
        // The welcome and the verification link.
        let list = wait_until(&app, &token, 10, |l| l.iter().all(|m| m["status"] == "failed")).await;
        assert_eq!(list.len(), 2);
        for m in &list {
            assert_eq!((m["status"].as_str(), m["attempts"].as_i64()), (Some("failed"), Some(3)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let again = messages(&app, &token).await;
        assert!(again.iter().all(|m| m["attempts"] == 3), "no attempt after the last");
        let metrics = app.metrics_of("notifications").await;
        assert!(metrics.contains(r#"carrental_notifications_total{channel="email",status="failed"} 2"#), "{metrics}");
    }
}

db_test! {
    async fn push_subscriptions(backend) {
        let app = spawn_app(backend).await;
        let (a, b) = (app.customer_token().await, app.customer_token().await);
        let res = app.post("/notifications/subscribe", &json!({"token": "device-1", "platform": "IOS"}), Some(&a)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let sub: Value = res.json().await.unwrap();
        assert_eq!(sub["platform"], "ios");
        assert!(sub["createdAt"].is_string());

        let res = app.post("/notifications/subscribe", &json!({"token": "device-1", "platform": "ios"}), Some(&a)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap()["id"], sub["id"]);
        let res = app.post("/notifications/subscribe", &json!({"token": "device-1", "platform": "android"}), Some(&b)).await;
        assert_eq!(res.status(), StatusCode::CREATED);

        // A browser's PushSubscription: an https endpoint and its keys (a P-256 point and 16 bytes).
        let p256dh = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        let web = json!({"platform": "web", "endpoint": "https://push.example.net/send/abc", "keys": {"p256dh": p256dh, "auth": "BTBZMqHH6r4Tts7J_aSIgg"}});
        for (body, fields) in [
            (json!({"platform": "android"}), vec!["token"]),
            (json!({"token": "", "platform": "ios"}), vec!["token"]),
            (json!({"token": "device-2", "platform": "web"}), vec!["endpoint", "keys.p256dh", "keys.auth"]),
            (json!({"platform": "web", "endpoint": "http://push.example.net/x", "keys": web["keys"]}), vec!["endpoint"]),
            (json!({"platform": "web", "endpoint": web["endpoint"], "keys": {"p256dh": "AAAA", "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}), vec!["keys.p256dh"]),
            (json!({"platform": "web", "endpoint": web["endpoint"], "keys": {"p256dh": p256dh, "auth": "AAAA"}}), vec!["keys.auth"]),
            (json!({"token": "x", "platform": "pager"}), vec!["platform"]),
            (json!({}), vec!["token", "platform"]),
        ] {
            let res = app.post("/notifications/subscribe", &body, Some(&a)).await;
            assert_eq!(validation_fields(res).await, fields, "{body}");
        }
        assert_error(app.post("/notifications/subscribe", &json!({"token": "x", "platform": "ios"}), None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
        let res = app.post("/notifications/subscribe", &web, Some(&a)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let browser: Value = res.json().await.unwrap();
        assert_eq!(browser["platform"], "web");
        // The same endpoint again, with new keys: the same subscription.
        let mut again = web.clone();
        again["keys"]["auth"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
        let res = app.post("/notifications/subscribe", &again, Some(&a)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap()["id"], browser["id"]);
        assert_eq!(app.db.count("SELECT COUNT(*) AS n FROM push_subscriptions WHERE auth = 'AAAAAAAAAAAAAAAAAAAAAA'"), 1);

        let path = format!("/notifications/subscribe/{}", id_of(&sub));
        assert_error(app.send(Method::DELETE, &path, &json!({}), Some(&b)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_eq!(app.send(Method::DELETE, &path, &json!({}), Some(&a)).await.status(), StatusCode::NO_CONTENT);
        assert_error(app.send(Method::DELETE, &path, &json!({}), Some(&a)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_error(app.send(Method::DELETE, "/notifications/subscribe/xyz", &json!({}), Some(&a)).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

/// Two servers drain one PostgreSQL outbox: every one of 200 messages goes out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_database_send_each_message_once_postgres() {
    let smtp = SmtpServer::start().await;
    let settings = [
        ("NOTIFICATION_PROVIDER", "smtp"),
        ("SMTP_URL", &smtp.url() as &str),
    ];
    let first = spawn_app_with(Backend::Postgres, &settings).await;
    let _second = spawn_app_sharing(&first, &settings).await;
    let emails: Vec<String> = (0..200)
        .map(|i| format!("user{i:03}@example.com"))
        .collect();
    for chunk in emails.chunks(20) {
        let bodies: Vec<Value> = chunk
            .iter()
            .map(|e| json!({"email": e, "password": PASSWORD}))
            .collect();
        let signups = bodies.iter().map(|b| first.post("/auth/signup", b, None));
        for res in futures_util::future::join_all(signups).await {
            assert_eq!(res.status(), StatusCode::CREATED);
        }
    }
    // A welcome and a verification link each.
    smtp.wait_for(400, 60).await;
    // Room for any duplicate to arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = smtp.mails();
    assert!(mails.len() >= 400, "only {} of 400 arrived", mails.len());
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        *per_recipient
            .entry(format!("{} {}", m.to.join(","), m.subject))
            .or_default() += 1;
    }
    let twice: Vec<_> = per_recipient.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(per_recipient.len(), 400);
}

/// SIGKILL with messages pending: after a restart they all go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_survive_a_killed_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/kill.db", dir.path().display());
    let smtp_port = free_port();
    let start = |http_port: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_carrental"))
            .env("APP_ENV", "test")
            .env(
                "APP_CONFIG_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
            )
            .env("HOST", "127.0.0.1")
            .env("PORT", http_port.to_string())
            .env("DATABASE_URL", &db)
            .env("NOTIFICATION_PROVIDER", "smtp")
            .env("SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
            .env("NOTIFY_BACKOFF", "200ms")
            .env("NOTIFY_MAX_ATTEMPTS", "100")
            // Messages the killed worker had claimed are its own until their lease ends.
            .env("APP__NOTIFICATIONS__LEASE", "2s")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_up = |port: u16| async move {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server on {port} did not start");
    };
    let port = free_port();
    let mut child = start(port);
    wait_up(port).await;
    let client = reqwest::Client::new();
    for i in 0..20 {
        let res = client
            .post(format!("http://127.0.0.1:{port}/auth/signup"))
            .json(&json!({"email": format!("k{i}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    child.kill().unwrap(); // SIGKILL: no shutdown of any kind
    child.wait().unwrap();

    let smtp = SmtpServer::start_on(smtp_port).await;
    let port = free_port();
    let mut child = start(port);
    wait_up(port).await;
    // A welcome and a verification link each.
    let mails = smtp.wait_for(40, 30).await;
    let _ = child.kill();
    let _ = child.wait();
    let mut recipients: Vec<String> = mails.iter().map(|m| m.to.join(",")).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 20, "{recipients:?}");
}
