//! Accounts: email verification, password reset and change, sessions (API.md, Accounts).
//! Links are read from the mails a real SMTP listener receives.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp::SmtpServer;

/// An app that sends its mail to a listener the test reads.
async fn app_with_mail(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let mut overrides = vec![
        ("NOTIFICATION_PROVIDER", "smtp"),
        ("SMTP_URL", url.as_str()),
    ];
    overrides.extend_from_slice(extra);
    (spawn_app_with(backend, &overrides).await, smtp)
}

/// The token of the `nth` (from 1) mail to `to` whose link goes to `path`, waiting up to
/// 15 s for it.
async fn token_mailed(smtp: &SmtpServer, to: &str, path: &str, nth: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<String> = smtp
            .mails()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .filter_map(|m| link_token(&m.data, path))
            .collect();
        if found.len() >= nth {
            return found[nth - 1].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no mail #{nth} to {to} with a {path} link"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mails_to(smtp: &SmtpServer, to: &str, subject: &str) -> usize {
    smtp.mails()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to) && m.subject.contains(subject))
        .count()
}

/// The mails to `to` about `subject`, once at least one arrived (15 s at most).
async fn mails_arriving(smtp: &SmtpServer, to: &str, subject: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    while mails_to(smtp, to, subject) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mails_to(smtp, to, subject)
}

async fn me(app: &TestApp, token: &str) -> Value {
    let res = app.get("/auth/me", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn status_of(app: &TestApp, path: &str, token: &str) -> StatusCode {
    app.get(path, Some(token)).await.status()
}

db_test! {
    local: async fn a_signup_verifies_its_address_once_with_the_mailed_link(backend) {
        let (app, smtp) = app_with_mail(backend, &[]).await;
        let body = app.signup("ver@example.com").await;
        assert_eq!(body["user"]["emailVerified"], false);
        let token = token_of(&body);
        let link = token_mailed(&smtp, "ver@example.com", "/verify-email", 1).await;
        assert_eq!(mails_to(&smtp, "ver@example.com", "Welcome"), 1, "the welcome stays");
        let sent = smtp.mails().into_iter().find(|m| m.subject.contains("Confirm")).unwrap();
        assert!(sent.data.contains("http://localhost:3000/verify-email?token="), "{}", sent.data);

        for bad in ["", "nope", &"0".repeat(64)] {
            let res = app.post("/auth/verify-email", &json!({"token": bad}), None).await;
            assert_error(res, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
        }
        let res = app.post("/auth/verify-email", &json!({"token": link}), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let user: Value = res.json().await.unwrap();
        assert_eq!(user["emailVerified"], true);
        assert_eq!(user["email"], "ver@example.com");
        assert_eq!(me(&app, &token).await["emailVerified"], true);
        let again = app.post("/auth/verify-email", &json!({"token": link}), None).await;
        assert_error(again, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;

        // Verified already: a resend is accepted and sends nothing.
        let res = app.post("/auth/verify-email/resend", &json!({}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(mails_to(&smtp, "ver@example.com", "Confirm"), 1);

        // The security message's body is gone once sent; the message itself is listed
        // without one, like every message.
        let listed = wait_until(&app, &token, 10, |l| l.iter().all(|m| m["status"] == "sent")).await;
        assert!(listed.iter().any(|m| m["kind"] == "verify_email"), "{listed:?}");
        assert!(listed.iter().all(|m| m.get("textBody").is_none() && m.get("body").is_none()));
        let kept = app.db.count(
            "SELECT COUNT(*) AS n FROM messages WHERE kind = 'verify_email' AND (text_body <> '' OR html_body <> '')",
        );
        assert_eq!(kept, 0, "the link stayed in the database");
        let welcome = app.db.count("SELECT COUNT(*) AS n FROM messages WHERE kind = 'welcome' AND text_body <> ''");
        assert_eq!(welcome, 1, "other messages keep their body");
    }
}

db_test! {
    local: async fn a_new_link_kills_the_old_and_resends_are_limited(backend) {
        let (app, smtp) = app_with_mail(backend, &[]).await;
        let token = token_of(&app.signup("again@example.com").await);
        let first = token_mailed(&smtp, "again@example.com", "/verify-email", 1).await;
        for _ in 0..3 {
            let res = app.post("/auth/verify-email/resend", &json!({}), Some(&token)).await;
            assert_eq!(res.status(), StatusCode::ACCEPTED);
        }
        let res = app.post("/auth/verify-email/resend", &json!({}), Some(&token)).await;
        let refused = assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        assert!(refused["error"]["message"].is_string());
        let res = app.post("/auth/verify-email/resend", &json!({}), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        let last = token_mailed(&smtp, "again@example.com", "/verify-email", 4).await;
        let old = app.post("/auth/verify-email", &json!({"token": first}), None).await;
        assert_error(old, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
        let res = app.post("/auth/verify-email", &json!({"token": last}), None).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
}

db_test! {
    local: async fn verification_links_expire(backend) {
        let (app, smtp) = app_with_mail(backend, &[("VERIFY_EMAIL_TTL", "1s")]).await;
        app.signup("late@example.com").await;
        let link = token_mailed(&smtp, "late@example.com", "/verify-email", 1).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let res = app.post("/auth/verify-email", &json!({"token": link}), None).await;
        assert_error(res, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
    }
}

db_test! {
    async fn admin_emails_make_an_admin_only_when_the_mailbox_resets_the_password(backend) {
        let (app, smtp) = app_with_mail(backend, &[("ADMIN_EMAILS", "boss@example.com, other@example.com"),
                                                   ("APP_LINK_BASE", "https://app.example.com/")]).await;
        // Whoever signs up first with the address holds a customer account, even once the
        // owner clicks the verification link sent for it.
        let squatter = app.signup("Boss@Example.com").await;
        assert_eq!(squatter["user"]["role"], "customer");
        let squatter_token = token_of(&squatter);
        let link = token_mailed(&smtp, "boss@example.com", "/verify-email", 1).await;
        let res = app.post("/auth/verify-email", &json!({"token": link}), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(me(&app, &squatter_token).await["role"], "customer");

        let res = app.post("/auth/password/forgot", &json!({"email": " BOSS@example.com"}), None).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let reset = token_mailed(&smtp, "boss@example.com", "/reset-password", 1).await;
        let sent = smtp.mails().into_iter().find(|m| m.subject.contains("Reset")).unwrap();
        assert!(sent.data.contains("https://app.example.com/reset-password?token="), "{}", sent.data);
        let res = app
            .post("/auth/password/reset", &json!({"token": reset, "password": "Owner1234"}), None)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let owner: Value = res.json().await.unwrap();
        assert_eq!(owner["user"]["role"], "admin");
        assert_eq!(owner["user"]["emailVerified"], true);
        assert_eq!(me(&app, &token_of(&owner)).await["role"], "admin");
        // The squatter's session is over.
        assert_eq!(status_of(&app, "/auth/me", &squatter_token).await, StatusCode::UNAUTHORIZED);
        let refresh = app
            .post("/auth/refresh", &json!({"refreshToken": squatter["refreshToken"]}), None)
            .await;
        assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);

        let clerk = app.signup("clerk@example.com").await;
        assert_eq!(clerk["user"]["role"], "customer");
    }
}

db_test! {
    local: async fn a_password_reset_is_single_use_and_ends_every_earlier_session(backend) {
        let (app, smtp) = app_with_mail(backend, &[]).await;
        let signed_up = app.signup("rose@example.com").await;
        let res = app.login("rose@example.com", PASSWORD).await;
        let second: Value = res.json().await.unwrap();

        app.post("/auth/password/forgot", &json!({"email": "rose@example.com"}), None).await;
        let first = token_mailed(&smtp, "rose@example.com", "/reset-password", 1).await;
        app.post("/auth/password/forgot", &json!({"email": "rose@example.com"}), None).await;
        let token = token_mailed(&smtp, "rose@example.com", "/reset-password", 2).await;

        let res = app.post("/auth/password/reset", &json!({"token": token, "password": "short"}), None).await;
        assert_eq!(validation_fields(res).await, vec!["password"]);
        let res = app.post("/auth/password/reset", &json!({"token": first, "password": "Newpass123"}), None).await;
        assert_error(res, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;

        let res = app.post("/auth/password/reset", &json!({"token": token, "password": "Newpass123"}), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let fresh: Value = res.json().await.unwrap();
        assert_eq!(fresh["user"]["email"], "rose@example.com");
        let res = app.post("/auth/password/reset", &json!({"token": token, "password": "Other1234"}), None).await;
        assert_error(res, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;

        for old in [&signed_up, &second] {
            assert_eq!(status_of(&app, "/auth/me", &token_of(old)).await, StatusCode::UNAUTHORIZED);
            let res = app.post("/auth/refresh", &json!({"refreshToken": old["refreshToken"]}), None).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(status_of(&app, "/auth/me", &token_of(&fresh)).await, StatusCode::OK);
        assert_eq!(app.login("rose@example.com", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(app.login("rose@example.com", "Newpass123").await.status(), StatusCode::OK);
        assert_eq!(mails_arriving(&smtp, "rose@example.com", "password was changed").await, 1);
    }
}

db_test! {
    local: async fn reset_links_expire(backend) {
        let (app, smtp) = app_with_mail(backend, &[("RESET_PASSWORD_TTL", "1s")]).await;
        app.signup("slow@example.com").await;
        app.post("/auth/password/forgot", &json!({"email": "slow@example.com"}), None).await;
        let token = token_mailed(&smtp, "slow@example.com", "/reset-password", 1).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let res = app.post("/auth/password/reset", &json!({"token": token, "password": "Newpass123"}), None).await;
        assert_error(res, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;
        assert_eq!(app.login("slow@example.com", PASSWORD).await.status(), StatusCode::OK);
    }
}

db_test! {
    local: async fn forgot_answers_the_same_body_as_quickly_for_unknown_addresses(backend) {
        let (app, smtp) = app_with_mail(backend, &[]).await;
        app.signup("known@example.com").await;
        let ask = |email: &'static str| {
            let app = &app;
            async move {
                let started = Instant::now();
                let res = app.post("/auth/password/forgot", &json!({"email": email}), None).await;
                let status = res.status();
                let body: Value = res.json().await.unwrap();
                (status, body, started.elapsed())
            }
        };
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for _ in 0..8 {
            let (status, body, took) = ask("known@example.com").await;
            assert_eq!(status, StatusCode::ACCEPTED);
            known.push((body, took));
            let (status, body, took) = ask("nobody@example.com").await;
            assert_eq!(status, StatusCode::ACCEPTED);
            unknown.push((body, took));
        }
        assert!(known.iter().chain(&unknown).all(|(b, _)| *b == known[0].0), "{known:?} {unknown:?}");
        let median = |v: &[(Value, Duration)]| {
            let mut t: Vec<Duration> = v.iter().map(|(_, d)| *d).collect();
            t.sort();
            t[t.len() / 2]
        };
        let (k, u) = (median(&known), median(&unknown));
        let gap = k.abs_diff(u);
        assert!(gap < Duration::from_millis(20) || gap < k.min(u) / 2, "known {k:?} unknown {u:?}");
        token_mailed(&smtp, "known@example.com", "/reset-password", 8).await;
        assert!(smtp.mails().iter().all(|m| !m.to.iter().any(|t| t == "nobody@example.com")));

        let res = app.post("/auth/password/forgot", &json!({"email": "not-an-address"}), None).await;
        assert_eq!(validation_fields(res).await, vec!["email"]);
    }
}

db_test! {
    local: async fn a_password_change_keeps_this_session_and_ends_the_others(backend) {
        let (app, smtp) = app_with_mail(backend, &[]).await;
        let here = app.signup("carl@example.com").await;
        let res = app.login("carl@example.com", PASSWORD).await;
        let there: Value = res.json().await.unwrap();
        let token = token_of(&here);

        let change = |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});
        let res = app.post("/auth/password/change", &change("Wrong1234", "Better123"), Some(&token)).await;
        assert_eq!(validation_fields(res).await, vec!["currentPassword"]);
        let res = app.post("/auth/password/change", &change(PASSWORD, "weak"), Some(&token)).await;
        assert_eq!(validation_fields(res).await, vec!["newPassword"]);
        let res = app.post("/auth/password/change", &change(PASSWORD, "Better123"), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        let res = app.post("/auth/password/change", &change(PASSWORD, "Better123"), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let pair: Value = res.json().await.unwrap();
        assert!(pair.get("user").is_none());
        let new_token = token_of(&pair);
        assert_eq!(status_of(&app, "/auth/me", &new_token).await, StatusCode::OK);
        // Every access token issued before is refused at once, this one's included.
        assert_eq!(status_of(&app, "/auth/me", &token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status_of(&app, "/auth/me", &token_of(&there)).await, StatusCode::UNAUTHORIZED);
        let res = app.post("/auth/refresh", &json!({"refreshToken": there["refreshToken"]}), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = app.post("/auth/refresh", &json!({"refreshToken": here["refreshToken"]}), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the old refresh token of this session");
        let res = app.post("/auth/refresh", &json!({"refreshToken": pair["refreshToken"]}), None).await;
        assert_eq!(res.status(), StatusCode::OK);

        let res = app.get("/auth/sessions", Some(&token_of(&res.json::<Value>().await.unwrap()))).await;
        let sessions: Vec<Value> = res.json().await.unwrap();
        assert_eq!(sessions.len(), 1, "{sessions:?}");
        assert_eq!(sessions[0]["current"], true);
        assert_eq!(app.login("carl@example.com", "Better123").await.status(), StatusCode::OK);
        assert_eq!(mails_arriving(&smtp, "carl@example.com", "password was changed").await, 1);
    }
}

db_test! {
    local: async fn sessions_are_listed_and_revoked_one_by_one_or_all(backend) {
        let app = spawn_app(backend).await;
        let first = app.signup("sam@example.com").await;
        let res = app
            .client
            .post(app.url("/auth/login"))
            .header("user-agent", "Phone/1.0")
            .json(&json!({"email": "sam@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let second: Value = res.json().await.unwrap();
        let token = token_of(&second);

        let res = app.get("/auth/sessions", Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["cache-control"].to_str().unwrap().contains("no-store"));
        let sessions: Vec<Value> = res.json().await.unwrap();
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        assert_eq!(sessions[0]["current"], true, "newest first");
        assert_eq!(sessions[0]["userAgent"], "Phone/1.0");
        assert_eq!(sessions[0]["ip"], "127.0.0.1");
        assert_eq!(sessions[1]["current"], false);
        for field in ["id", "createdAt", "lastUsedAt"] {
            assert!(sessions[1][field].is_string(), "{field}");
        }
        let other = sessions[1]["id"].as_str().unwrap().to_owned();

        // Another user cannot see or end it.
        let stranger = app.customer_token().await;
        let res = app.send(Method::DELETE, &format!("/auth/sessions/{other}"), &json!(null), Some(&stranger)).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let res = app.send(Method::DELETE, "/auth/sessions/not-a-uuid", &json!(null), Some(&token)).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_eq!(status_of(&app, "/auth/me", &token_of(&first)).await, StatusCode::OK);

        let res = app.send(Method::DELETE, &format!("/auth/sessions/{other}"), &json!(null), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(status_of(&app, "/auth/me", &token_of(&first)).await, StatusCode::UNAUTHORIZED);
        let res = app.post("/auth/refresh", &json!({"refreshToken": first["refreshToken"]}), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let sessions: Vec<Value> = app.get("/auth/sessions", Some(&token)).await.json().await.unwrap();
        assert_eq!(sessions.len(), 1);

        // A logout ends its session; logout-all ends every one, this one included.
        let third: Value = app.login("sam@example.com", PASSWORD).await.json().await.unwrap();
        let res = app.post("/auth/logout", &json!({"refreshToken": third["refreshToken"]}), None).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(status_of(&app, "/auth/me", &token_of(&third)).await, StatusCode::UNAUTHORIZED);
        let fourth: Value = app.login("sam@example.com", PASSWORD).await.json().await.unwrap();
        let res = app.post("/auth/logout-all", &json!({}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        for gone in [&second, &fourth] {
            assert_eq!(status_of(&app, "/auth/me", &token_of(gone)).await, StatusCode::UNAUTHORIZED);
            let res = app.post("/auth/refresh", &json!({"refreshToken": gone["refreshToken"]}), None).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(app.login("sam@example.com", PASSWORD).await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn a_revoked_session_stops_on_every_module_at_once(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = app.create_car(&admin, json!({})).await;
        let customer = app.signup("far@example.com").await;
        let token = token_of(&customer);
        let res = app.book(&token, car["id"].as_str().unwrap(), days_ahead(3), 24).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(status_of(&app, "/bookings", &token).await, StatusCode::OK);
        let res = app.post("/auth/logout-all", &json!({}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(status_of(&app, "/bookings", &token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status_of(&app, "/notifications", &token).await, StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    async fn booking_can_require_a_verified_email(backend) {
        let (app, smtp) = app_with_mail(backend, &[("REQUIRE_VERIFIED_EMAIL", "true")]).await;
        let admin = app.admin_token().await;
        let car = app.create_car(&admin, json!({})).await;
        let car_id = car["id"].as_str().unwrap();
        let token = token_of(&app.signup("unver@example.com").await);
        let res = app.book(&token, car_id, days_ahead(3), 24).await;
        assert_error(res, StatusCode::FORBIDDEN, "EMAIL_NOT_VERIFIED").await;
        let link = token_mailed(&smtp, "unver@example.com", "/verify-email", 1).await;
        let res = app.post("/auth/verify-email", &json!({"token": link}), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = app.book(&token, car_id, days_ahead(3), 24).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        // The admin made on the command line counts as verified.
        let res = app.book(&admin, car_id, days_ahead(6), 24).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
}

db_test! {
    async fn leaving_anonymises_the_account_and_keeps_its_bookings(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let body = app.signup("leaver@example.com").await;
        let token = token_of(&body);
        let id = body["user"]["id"].as_str().unwrap().to_owned();
        let res = app.post("/notifications/subscribe", &json!({"token": "device-9", "platform": "android"}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let booking = id_of(&app.book(&token, &car, days_ahead(2), 24).await.json::<Value>().await.unwrap());

        let leave = |body: Value| {
            let (app, token) = (&app, token.clone());
            async move { app.send(Method::DELETE, "/auth/me", &body, Some(&token)).await }
        };
        let res = leave(json!({"password": PASSWORD})).await;
        let refused = assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        assert!(refused["error"]["message"].as_str().unwrap().contains("holds a car"), "{refused}");
        let cancel = json!({"status": "cancelled"});
        let res = app.send(Method::PATCH, &format!("/bookings/{booking}"), &cancel, Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);

        let res = leave(json!({})).await;
        assert_eq!(validation_fields(res).await, vec!["password"]);
        let res = leave(json!({"password": "Wrong1234"})).await;
        assert_eq!(validation_fields(res).await, vec!["password"]);
        assert_eq!(app.send(Method::DELETE, "/auth/me", &json!({"password": PASSWORD}), None).await.status(), StatusCode::UNAUTHORIZED);
        let res = leave(json!({"password": PASSWORD})).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);

        assert_eq!(status_of(&app, "/auth/me", &token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.login("leaver@example.com", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        let res = app.post("/auth/refresh", &json!({"refreshToken": body["refreshToken"]}), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let kept = app.get(&format!("/bookings/{booking}"), Some(&admin)).await;
        assert_eq!(kept.status(), StatusCode::OK, "the booking stays for the records");
        assert_eq!(kept.json::<Value>().await.unwrap()["userId"], id.as_str());
        let gone = app.db.count(&format!(
            "SELECT COUNT(*) AS n FROM users WHERE id = '{id}' AND email IS NULL AND name IS NULL \
             AND password_hash IS NULL AND deleted_at IS NOT NULL"
        ));
        assert_eq!(gone, 1, "anonymised");
        let subscriptions = app.db.count(&format!("SELECT COUNT(*) AS n FROM push_subscriptions WHERE user_id = '{id}'"));
        assert_eq!(subscriptions, 0);
        // The address is free again.
        assert_eq!(app.signup("leaver@example.com").await["user"]["role"], "customer");
    }
}

db_test! {
    local: async fn an_account_with_money_outstanding_cannot_leave(backend) {
        let app = spawn_app_with(backend, &[("PAYMENT_PROVIDER", "mock")]).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let token = app.customer_token().await;
        // An unpaid booking holds its car until its hold runs out.
        let res = app.book(&token, &car, days_ahead(2), 24).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.json::<Value>().await.unwrap()["status"], "pending_payment");
        let res = app.send(Method::DELETE, "/auth/me", &json!({"password": PASSWORD}), Some(&token)).await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        assert_eq!(status_of(&app, "/auth/me", &token).await, StatusCode::OK);
    }
}

db_test! {
    async fn the_export_holds_everything_but_secrets(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let body = app.signup("mine@example.com").await;
        let token = token_of(&body);
        app.post("/notifications/subscribe", &json!({"token": "device-7", "platform": "ios"}), Some(&token)).await;
        let booking = id_of(&app.book(&token, &car, days_ahead(2), 24).await.json::<Value>().await.unwrap());
        assert!(all_sent(&app, &token).await);

        let res = app.get("/auth/me/export", Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()["cache-control"].to_str().unwrap().contains("no-store"));
        let export: Value = res.json().await.unwrap();
        assert_eq!(export["profile"]["email"], "mine@example.com");
        assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(export["bookings"][0]["id"], booking.as_str());
        assert!(export["bookings"][0]["lines"].is_array(), "{export}");
        assert_eq!(export["payments"], json!([]));
        assert_eq!(export["subscriptions"][0]["token"], "device-7");
        let messages = export["messages"].as_array().unwrap();
        let kinds: Vec<&str> = messages.iter().map(|m| m["kind"].as_str().unwrap()).collect();
        for kind in ["welcome", "verify_email", "booking_confirmed"] {
            assert!(kinds.contains(&kind), "{kinds:?}");
        }
        let verify = messages.iter().find(|m| m["kind"] == "verify_email").unwrap();
        assert_eq!(verify["text"], Value::Null, "a security message's body is never shown");
        let welcome = messages.iter().find(|m| m["kind"] == "welcome").unwrap();
        assert!(welcome["text"].as_str().unwrap().contains("mine@example.com"));
        let text = export.to_string();
        assert!(!text.contains("token=") && !text.contains("$2b$") && !text.contains("passwordHash"), "{text}");
        assert!(!text.contains(body["refreshToken"].as_str().unwrap()));

        let other = app.customer_token().await;
        let theirs: Value = app.get("/auth/me/export", Some(&other)).await.json().await.unwrap();
        assert_eq!(theirs["bookings"], json!([]), "each sees only their own");
        assert_eq!(app.get("/auth/me/export", None).await.status(), StatusCode::UNAUTHORIZED);
    }
}

db_test! {
    local: async fn the_public_account_routes_count_against_the_auth_limit(backend) {
        let app = spawn_app_with(backend, &[("AUTH_RATE_LIMIT_MAX", "3"), ("TRUSTED_PROXIES", "127.0.0.1, ::1")]).await;
        let post = |path: &'static str, body: Value, from: &'static str| {
            app.client.post(app.url(path)).header("X-Forwarded-For", from).json(&body).send()
        };
        // Per client: the verification, forgot and reset routes share the one auth quota.
        let asks = [
            ("/auth/verify-email", json!({"token": "nope"})),
            ("/auth/password/forgot", json!({"email": "a@example.com"})),
            ("/auth/password/reset", json!({"token": "nope", "password": PASSWORD})),
        ];
        for (path, body) in asks.clone() {
            let res = post(path, body, "198.51.100.1").await.unwrap();
            assert_ne!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        }
        for (path, body) in asks {
            let res = post(path, body, "198.51.100.1").await.unwrap();
            assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        }
        // Per email: a reset link asked for one address from many clients.
        for from in ["198.51.100.2", "198.51.100.3", "198.51.100.4"] {
            let res = post("/auth/password/forgot", json!({"email": "victim@example.com"}), from).await.unwrap();
            assert_eq!(res.status(), StatusCode::ACCEPTED, "{from}");
        }
        let res = post("/auth/password/forgot", json!({"email": " Victim@Example.com"}), "198.51.100.5").await.unwrap();
        assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    }
}

db_test! {
    local: async fn a_reset_stops_earlier_tokens_on_another_replica_at_once(backend) {
        let (app, smtp) = app_with_mail(backend, &[]).await;
        // Either replica's worker may deliver the reset mail, so both send to the listener.
        let url = smtp.url();
        let replica = spawn_app_sharing(&app, &[("NOTIFICATION_PROVIDER", "smtp"), ("SMTP_URL", &url)]).await;
        let old = app.signup("twin@example.com").await;
        assert_eq!(status_of(&replica, "/auth/me", &token_of(&old)).await, StatusCode::OK);
        app.post("/auth/password/forgot", &json!({"email": "twin@example.com"}), None).await;
        let token = token_mailed(&smtp, "twin@example.com", "/reset-password", 1).await;
        let res = app.post("/auth/password/reset", &json!({"token": token, "password": "Twin12345"}), None).await;
        let fresh: Value = res.json().await.unwrap();
        assert_eq!(status_of(&replica, "/auth/me", &token_of(&old)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status_of(&replica, "/bookings", &token_of(&old)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status_of(&replica, "/auth/me", &token_of(&fresh)).await, StatusCode::OK);
    }
}
