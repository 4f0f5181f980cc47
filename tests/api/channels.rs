//! Channels, reminders and languages (API.md): phone numbers verified by SMS, Twilio's
//! answers, preferences per kind and channel, messages in the user's language with dates in
//! the car's zone, reminders nobody triggers, Web Push to a browser.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::smtp::SmtpServer;
use crate::twilio_stub::{Fault, TwilioStub};

async fn sms_app(backend: Backend, stub: &TwilioStub, more: &[(&str, &str)]) -> TestApp {
    let settings = stub.settings();
    let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(more);
    spawn_app_with(backend, &all).await
}

async fn patch_me(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.send(Method::PATCH, "/auth/me", &body, Some(token))
        .await
}

async fn verify(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    app.post("/auth/me/phone/verify", &json!({"code": code}), Some(token))
        .await
}

/// Gives the caller a verified number through the stub; `n` is how many SMS that number got before.
async fn verified_phone(app: &TestApp, stub: &TwilioStub, token: &str, phone: &str) {
    let before = stub.sent().iter().filter(|t| t.to == phone).count();
    assert_eq!(
        patch_me(app, token, json!({"phone": phone})).await.status(),
        StatusCode::OK
    );
    let code = stub.code(phone, before + 1).await;
    let me: Value = verify(app, token, &code).await.json().await.unwrap();
    assert_eq!(me["phoneVerified"], true, "{me}");
}

fn of_kind<'a>(list: &'a [Value], kind: &str) -> Vec<&'a Value> {
    list.iter().filter(|m| m["kind"] == kind).collect()
}

db_test! {
    async fn a_phone_number_is_verified_by_the_code_sent_to_it(backend) {
        let stub = TwilioStub::start().await;
        let app = sms_app(backend, &stub, &[]).await;
        let token = app.customer_token().await;
        let me: Value = app.get("/auth/me", Some(&token)).await.json().await.unwrap();
        assert_eq!((me["phone"].clone(), me["phoneVerified"].clone(), me["locale"].clone()), (Value::Null, json!(false), json!("en")));

        for bad in [json!("0612345678"), json!("+1234567"), json!("+1234567890123456"), json!("+33 6 12"), json!(33612345678u64)] {
            assert_eq!(validation_fields(patch_me(&app, &token, json!({"phone": bad})).await).await, ["phone"], "{bad}");
        }
        assert_eq!(validation_fields(patch_me(&app, &token, json!({"locale": "de"})).await).await, ["locale"]);
        assert_eq!(validation_fields(verify(&app, &token, "12345").await).await, ["code"]);
        // No code was ever sent.
        assert_error(verify(&app, &token, "123456").await, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;

        let res = patch_me(&app, &token, json!({"phone": "+33612345678"})).await;
        assert_eq!(res.status(), StatusCode::OK);
        let me: Value = res.json().await.unwrap();
        assert_eq!((me["phone"].clone(), me["phoneVerified"].clone()), (json!("+33612345678"), json!(false)));
        let code = stub.code("+33612345678", 1).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert_eq!(validation_fields(verify(&app, &token, wrong).await).await, ["code"]);
        let me: Value = verify(&app, &token, &code).await.json().await.unwrap();
        assert_eq!(me["phoneVerified"], true, "{me}");
        assert_eq!(app.get("/auth/me", Some(&token)).await.json::<Value>().await.unwrap()["phoneVerified"], true);
        // Used: the same code again is dead.
        assert_error(verify(&app, &token, &code).await, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;

        let list = wait_until(&app, &token, 10, |l| l.iter().all(|m| m["status"] == "sent")).await;
        let codes = of_kind(&list, "phone_code");
        assert_eq!(codes.len(), 1, "by SMS only: {list:?}");
        assert_eq!((codes[0]["channel"].clone(), codes[0]["recipient"].clone()), (json!("sms"), json!("+33612345678")));
        let in_db = app.db.count("SELECT COUNT(*) AS n FROM messages WHERE kind = 'phone_code' AND text_body <> ''");
        assert_eq!(in_db, 0, "the code is erased once sent");

        // The same verified number again changes nothing and sends nothing.
        assert_eq!(patch_me(&app, &token, json!({"phone": "+33612345678"})).await.json::<Value>().await.unwrap()["phoneVerified"], true);
        // A new number is unverified until its own code comes back.
        let me: Value = patch_me(&app, &token, json!({"phone": "+33687654321"})).await.json().await.unwrap();
        assert_eq!(me["phoneVerified"], false);
        // Removing it.
        let me: Value = patch_me(&app, &token, json!({"phone": null})).await.json().await.unwrap();
        assert_eq!((me["phone"].clone(), me["phoneVerified"].clone()), (Value::Null, json!(false)));
        assert_error(app.send(Method::PATCH, "/auth/me", &json!({}), None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
    }
}

db_test! {
    local:
    async fn five_wrong_codes_kill_it_and_a_fourth_code_in_an_hour_is_429(backend) {
        let stub = TwilioStub::start().await;
        let app = sms_app(backend, &stub, &[]).await;
        let token = app.customer_token().await;
        assert_eq!(patch_me(&app, &token, json!({"phone": "+447700900001"})).await.status(), StatusCode::OK);
        let code = stub.code("+447700900001", 1).await;
        let wrong = if code == "999999" { "888888" } else { "999999" };
        for _ in 0..5 {
            assert_eq!(validation_fields(verify(&app, &token, wrong).await).await, ["code"]);
        }
        assert_error(verify(&app, &token, &code).await, StatusCode::BAD_REQUEST, "INVALID_TOKEN").await;

        assert_eq!(patch_me(&app, &token, json!({"phone": "+447700900002"})).await.status(), StatusCode::OK);
        assert_eq!(patch_me(&app, &token, json!({"phone": "+447700900003"})).await.status(), StatusCode::OK);
        let res = patch_me(&app, &token, json!({"phone": "+447700900004", "locale": "fr"})).await;
        assert!(res.headers().get("retry-after").is_some());
        assert_error(res, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
        let me: Value = app.get("/auth/me", Some(&token)).await.json().await.unwrap();
        assert_eq!((me["phone"].clone(), me["locale"].clone()), (json!("+447700900003"), json!("en")), "a 429 changes nothing");
        // The third code is live and works.
        let code = stub.code("+447700900003", 1).await;
        assert_eq!(verify(&app, &token, &code).await.status(), StatusCode::OK);
    }
}

db_test! {
    local:
    async fn twilio_refusing_a_number_fails_the_sms_at_once_and_unverifies_it(backend) {
        let stub = TwilioStub::start().await;
        let app = sms_app(backend, &stub, &[("NOTIFY_BACKOFF", "100ms")]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        verified_phone(&app, &stub, &token, "+33611111111").await;
        let car = id_of(&app.create_car(&admin, json!({})).await);

        // Twilio busy, then down: retried like email, then sent.
        stub.fail_next(Fault::TooMany);
        stub.fail_next(Fault::Unavailable);
        let booking: Value = app.book(&token, &car, days_ahead(3), 24).await.json().await.unwrap();
        let cancel = |id: String| {
            let app = &app;
            let token = token.clone();
            async move { app.send(Method::PATCH, &format!("/bookings/{id}"), &json!({"status": "cancelled"}), Some(&token)).await }
        };
        assert_eq!(cancel(id_of(&booking)).await.status(), StatusCode::OK);
        let list = wait_until(&app, &token, 10, |l| of_kind(l, "booking_cancelled").iter().all(|m| m["status"] == "sent") && of_kind(l, "booking_cancelled").len() == 2).await;
        let sms: Vec<&Value> = of_kind(&list, "booking_cancelled").into_iter().filter(|m| m["channel"] == "sms").collect();
        assert_eq!(sms.len(), 1, "{list:?}");
        assert_eq!((sms[0]["status"].clone(), sms[0]["attempts"].clone()), (json!("sent"), json!(3)));
        // booking_confirmed is off for SMS by default: email only.
        assert_eq!(of_kind(&list, "booking_confirmed").iter().map(|m| m["channel"].clone()).collect::<Vec<_>>(), [json!("email")]);

        // The number unsubscribed (21610): failed at the first attempt, no longer verified.
        stub.fail_next(Fault::Code(21610));
        let booking: Value = app.book(&token, &car, days_ahead(5), 24).await.json().await.unwrap();
        assert_eq!(cancel(id_of(&booking)).await.status(), StatusCode::OK);
        let failed = |l: &[Value]| l.iter().any(|m| m["channel"] == "sms" && m["status"] == "failed");
        let list = wait_until(&app, &token, 10, failed).await;
        let sms = list.iter().find(|m| m["channel"] == "sms" && m["status"] == "failed").expect("a failed SMS");
        assert_eq!(sms["attempts"], 1, "{sms}");
        let me: Value = app.get("/auth/me", Some(&token)).await.json().await.unwrap();
        assert_eq!((me["phone"].clone(), me["phoneVerified"].clone()), (json!("+33611111111"), json!(false)));
        // Unverified: the next cancellation goes by email only.
        let booking: Value = app.book(&token, &car, days_ahead(7), 24).await.json().await.unwrap();
        assert_eq!(cancel(id_of(&booking)).await.status(), StatusCode::OK);
        let list = wait_until(&app, &token, 5, |l| of_kind(l, "booking_cancelled").len() >= 5).await;
        assert_eq!(of_kind(&list, "booking_cancelled").len(), 5, "2 + 2 + 1 (email): {list:?}");
        let metrics = app.metrics_of("notifications").await;
        assert!(metrics.contains(r#"carrental_notifications_total{channel="sms",status="failed"} 1"#), "{metrics}");
        assert!(metrics.contains(r#"carrental_notifications_total{channel="sms",status="sent"}"#), "{metrics}");
    }
}

db_test! {
    async fn preferences_choose_the_channels_and_security_messages_ignore_them(backend) {
        let stub = TwilioStub::start().await;
        let app = sms_app(backend, &stub, &[]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let res = app.get("/me/notification-preferences", Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let prefs: Value = res.json().await.unwrap();
        for channel in ["email", "sms", "push"] {
            let kinds = prefs[channel].as_object().unwrap_or_else(|| panic!("{prefs}"));
            for security in ["verify_email", "password_reset", "password_changed", "phone_code"] {
                assert!(!kinds.contains_key(security), "{security} in {prefs}");
            }
            for (kind, on) in kinds {
                let expected = channel != "sms" || kind == "pickup_reminder" || kind == "booking_cancelled";
                assert_eq!(on, &json!(expected), "{channel}.{kind}");
            }
        }
        for kind in ["welcome", "booking_confirmed", "booking_cancelled", "pickup_reminder", "return_reminder", "overdue_return", "payment_received"] {
            assert!(prefs["email"].get(kind).is_some(), "{kind} in {prefs}");
        }

        let res = app.send(Method::PATCH, "/me/notification-preferences",
            &json!({"email": {"booking_confirmed": false}, "sms": {"booking_confirmed": true}}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let prefs: Value = res.json().await.unwrap();
        assert_eq!((prefs["email"]["booking_confirmed"].clone(), prefs["sms"]["booking_confirmed"].clone()), (json!(false), json!(true)));
        assert_eq!(prefs["email"]["booking_cancelled"], true, "the rest unchanged: {prefs}");
        assert_eq!(app.get("/me/notification-preferences", Some(&token)).await.json::<Value>().await.unwrap(), prefs);

        for (body, field) in [
            (json!({"fax": {"welcome": true}}), "fax"),
            (json!({"sms": {"verify_email": false}}), "sms.verify_email"),
            (json!({"sms": {"no_such_kind": false}}), "sms.no_such_kind"),
            (json!({"email": {"welcome": "yes"}}), "email.welcome"),
            (json!({"push": true}), "push"),
        ] {
            let res = app.send(Method::PATCH, "/me/notification-preferences", &body, Some(&token)).await;
            assert_eq!(validation_fields(res).await, [field], "{body}");
        }
        assert_error(app.get("/me/notification-preferences", None).await, StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;

        verified_phone(&app, &stub, &token, "+33622222222").await;
        let car = id_of(&app.create_car(&admin, json!({"name": "Zoé"})).await);
        assert_eq!(app.book(&token, &car, days_ahead(2), 24).await.status(), StatusCode::CREATED);
        stub.wait_for("+33622222222", "Zoé", 10).await;
        let list = wait_until(&app, &token, 10, |l| !of_kind(l, "booking_confirmed").is_empty()).await;
        let confirmed: Vec<Value> = of_kind(&list, "booking_confirmed").iter().map(|m| m["channel"].clone()).collect();
        assert_eq!(confirmed, [json!("sms")], "by SMS, not by email: {list:?}");
        // A security message goes whatever the preferences say.
        assert_eq!(app.send(Method::PATCH, "/me/notification-preferences", &json!({"email": {"welcome": false}}), Some(&token)).await.status(), StatusCode::OK);
        assert_eq!(app.post("/auth/verify-email/resend", &json!({}), Some(&token)).await.status(), StatusCode::ACCEPTED);
        let list = messages(&app, &token).await;
        assert_eq!(of_kind(&list, "verify_email").len(), 2, "{list:?}");
        assert!(of_kind(&list, "verify_email").iter().all(|m| m["channel"] == "email"));
    }
}

db_test! {
    async fn messages_speak_the_users_language_with_the_cars_time_and_money(backend) {
        let smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, &[("NOTIFICATION_PROVIDER", "smtp"), ("SMTP_URL", &smtp.url())]).await;
        let admin = app.admin_token().await;
        let res = app
            .client
            .post(app.url("/auth/signup"))
            .header("Accept-Language", "de-DE, fr-FR;q=0.8, en;q=0.5")
            .json(&json!({"email": "zoe@example.com", "password": PASSWORD, "name": "Zoé <b>D</b>"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["user"]["locale"], "fr");
        let token = token_of(&body);
        let english = app.customer_token().await;
        assert_eq!(app.get("/auth/me", Some(&english)).await.json::<Value>().await.unwrap()["locale"], "en");

        let car = app.create_car(&admin, json!({
            "name": "Clio <script>alert(1)</script>", "pricePerDay": 1234.5, "currency": "EUR",
            "location": {"latitude": 48.8566, "longitude": 2.3522, "city": "Paris", "country": "France", "state": null, "postalCode": "75001"},
        })).await;
        assert_eq!(car["location"]["timeZone"], "Europe/Paris", "{car}");
        let sf = app.create_car(&admin, json!({})).await;
        assert_eq!(sf["location"]["timeZone"], "America/Los_Angeles");

        // 2027-01-15 09:00 UTC is 10:00 in Paris (CET).
        let pickup = chrono::DateTime::parse_from_rfc3339("2027-01-15T09:00:00Z").unwrap().to_utc();
        assert_eq!(app.book(&token, &id_of(&car), pickup, 24).await.status(), StatusCode::CREATED);
        // Two welcomes, two verification links, the confirmation.
        let mails = smtp.wait_for(5, 10).await;
        let mail = mails
            .iter()
            .find(|m| m.to == ["zoe@example.com"] && decoded(&m.data).contains("Votre réservation est confirmée"))
            .unwrap_or_else(|| panic!("{mails:?}"));
        let data = mail.data.replace("=\r\n", "").replace("\r\n", "\n");
        assert!(data.contains("multipart/alternative"), "{data}");
        assert!(data.contains("text/plain") && data.contains("text/html"), "{data}");
        let text = decoded(&data);
        assert!(text.contains("15 janv. 2027 à 10:00 CET"), "{text}");
        assert!(text.contains("1 234,50 €"), "{text}");
        assert!(text.contains("Bonjour Zoé <b>D</b>"), "the plain text as typed: {text}");
        assert!(text.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;") && text.contains("Zoé &lt;b&gt;D&lt;&#x2f;b&gt;"), "escaped in HTML: {text}");
        assert!(!text.contains("<b>D</b></p>") && !text.contains("<script>alert(1)</script></p>"), "{text}");
        let welcome = mails.iter().find(|m| m.to == ["zoe@example.com"] && m.subject == "Bienvenue chez Car Rental");
        assert!(welcome.is_some(), "{mails:?}");

        // Back to English: the next message is English, with the same zone and money the English way.
        let me: Value = app.send(Method::PATCH, "/auth/me", &json!({"locale": "en"}), Some(&token)).await.json().await.unwrap();
        assert_eq!(me["locale"], "en");
        let second = pickup + chrono::Duration::days(3);
        assert_eq!(app.book(&token, &id_of(&car), second, 24).await.status(), StatusCode::CREATED);
        let mails = smtp.wait_for(6, 10).await;
        let mail = mails.iter().find(|m| m.subject.starts_with("Booking confirmed")).unwrap_or_else(|| panic!("{mails:?}"));
        let text = decoded(&mail.data);
        assert!(text.contains("18 Jan 2027, 10:00 CET") && text.contains("€1,234.50"), "{text}");
    }
}

/// The mail's text with quoted-printable and base64 parts decoded.
pub fn decoded(data: &str) -> String {
    use base64::Engine;
    let data = data.replace("\r\n", "\n").replace("=\n", "");
    let mut out = String::new();
    for part in data.split("\n\n") {
        let compact: String = part.lines().collect();
        match base64::engine::general_purpose::STANDARD.decode(compact.trim()) {
            Ok(bytes) if compact.len() > 16 => out.push_str(&String::from_utf8_lossy(&bytes)),
            _ => out.push_str(&quoted_printable(part)),
        }
        out.push('\n');
    }
    out
}

fn quoted_printable(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

db_test! {
    async fn reminders_go_once_when_due_and_never_for_a_booking_that_moved_on(backend) {
        let leads = [("REMINDER_BEFORE_PICKUP", "12s"), ("REMINDER_BEFORE_RETURN", "12s"), ("OVERDUE_AFTER", "2s")];
        let app = spawn_app_with(backend, &leads).await;
        // A second replica on the same database: each reminder must still go once.
        let replica = if backend == Backend::Split { None } else { Some(spawn_app_sharing(&app, &leads).await) };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let other_car = id_of(&app.create_car(&admin, json!({})).await);
        let third_car = id_of(&app.create_car(&admin, json!({})).await);
        let now = chrono::Utc::now();
        let at = |secs: i64| now + chrono::Duration::seconds(secs);
        let book = |car: String, from: i64, to: i64| {
            let app = &app;
            let token = token.clone();
            async move {
                let res = app.post("/bookings", &json!({"carId": car, "pickupTime": at(from), "dropoffTime": at(to)}), Some(&token)).await;
                assert_eq!(res.status(), StatusCode::CREATED);
                id_of(&res.json::<Value>().await.unwrap())
            }
        };
        // Picked up at once, due back in 20 s: return reminder at ~8 s, overdue at ~22 s.
        let active = book(car.clone(), 2, 20).await;
        // Pickup in 25 s: reminder at ~13 s.
        let upcoming = book(other_car.clone(), 25, 3600).await;
        // Cancelled before its reminder is due: none.
        let cancelled = book(third_car.clone(), 25, 3600).await;
        // Made 5 s before its pickup, within the lead time: no pickup reminder.
        let late = book(third_car.clone(), 5, 10).await;
        let res = app.post(&format!("/bookings/{active}/pickup"), &json!({}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
        let res = app.send(Method::PATCH, &format!("/bookings/{cancelled}"), &json!({"status": "cancelled"}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);

        let reminders = |l: &[Value]| -> Vec<(String, String)> {
            l.iter()
                .filter(|m| ["pickup_reminder", "return_reminder", "overdue_return"].contains(&m["kind"].as_str().unwrap()))
                .map(|m| (m["kind"].as_str().unwrap().to_owned(), m["subject"].as_str().unwrap().to_owned()))
                .collect()
        };
        wait_until(&app, &token, 40, |l| reminders(l).len() >= 3).await;
        // Time for a duplicate to show, were there one.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let list = reminders(&messages(&app, &token).await);
        let mut kinds: Vec<&str> = list.iter().map(|(k, _)| k.as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(kinds, ["overdue_return", "pickup_reminder", "return_reminder"], "{list:?}");
        let claimed = app.db.count(&format!(
            "SELECT COUNT(*) AS n FROM bookings WHERE id = '{upcoming}' AND pickup_reminded_at IS NOT NULL"
        ));
        assert_eq!(claimed, 1);
        for id in [&cancelled, &late] {
            let queued = app.db.count(&format!(
                "SELECT COUNT(*) AS n FROM messages m WHERE m.kind = 'pickup_reminder' AND m.text_body LIKE '%{id}%'"
            ));
            assert_eq!(queued, 0, "{id}");
        }
        drop(replica);
    }
}

/// The Python with twilio, http_ece and pywebpush that scripts/test.sh installs.
fn channels_python() -> Option<String> {
    let python = std::env::var("TEST_CHANNELS_PYTHON").ok();
    if python.is_none() {
        eprintln!("skipped: TEST_CHANNELS_PYTHON is not set (scripts/test.sh installs twilio, http_ece and pywebpush)");
    }
    python
}

fn script(name: &str) -> String {
    format!("{}/tests/channels/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn the_twilio_stub_answers_twilios_own_library_as_twilio_would() {
    let Some(python) = channels_python() else {
        return;
    };
    let stub = TwilioStub::start().await;
    let args = [
        script("check_twilio_stub.py"),
        stub.url.clone(),
        crate::twilio_stub::ACCOUNT.into(),
        crate::twilio_stub::TOKEN.into(),
        crate::twilio_stub::FROM.into(),
    ];
    run_python(python, args.to_vec()).await;
}

/// A browser, played by `tests/channels/push_receiver.py`.
struct Browser {
    child: std::process::Child,
    url: String,
    client: reqwest::Client,
}

impl Browser {
    async fn start(python: &str) -> Browser {
        let port = crate::smtp::free_port();
        let child = std::process::Command::new(python)
            .args([script("push_receiver.py"), "serve".into(), port.to_string()])
            .spawn()
            .expect("the receiver starts");
        let browser = Browser {
            child,
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        for _ in 0..100 {
            if browser
                .client
                .get(format!("{}/received", browser.url))
                .send()
                .await
                .is_ok()
            {
                return browser;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the push receiver did not start");
    }

    /// A new `PushSubscription` whose endpoint answers `answers` in turn.
    async fn subscription(&self, name: &str, answers: &str) -> Value {
        let mut sub: Value = self
            .read(&format!("/subscribe?name={name}&answers={answers}"))
            .await;
        sub["platform"] = json!("web");
        sub
    }

    async fn received(&self, name: &str) -> Vec<Value> {
        let all: Vec<Value> = self.read("/received").await;
        all.into_iter().filter(|r| r["name"] == name).collect()
    }

    async fn read<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let res = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the receiver answers");
        res.json().await.expect("JSON from the receiver")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A VAPID key pair as the usual tools print it: base64url of the uncompressed point and of
/// the raw scalar.
fn vapid_keys() -> (String, String) {
    use base64::Engine;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let secret = loop {
        if let Ok(s) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            break s;
        }
    };
    (
        b64.encode(secret.public_key().to_encoded_point(false).as_bytes()),
        b64.encode(secret.to_bytes()),
    )
}

db_test! {
    async fn web_push_reaches_the_browser_encrypted_and_signed(backend) {
        let Some(python) = channels_python() else { return };
        let browser = Browser::start(&python).await;
        let (public, private) = vapid_keys();
        let app = spawn_app_with(backend, &[
            ("VAPID_PUBLIC_KEY", &public), ("VAPID_PRIVATE_KEY", &private),
            ("VAPID_SUBJECT", "mailto:ops@example.com"), ("NOTIFY_BACKOFF", "100ms"),
        ]).await;
        let res = app.get("/notifications/vapid-public-key", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"publicKey": public}));

        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let user: Value = app.get("/auth/me", Some(&token)).await.json().await.unwrap();
        for (name, answers) in [("laptop", "201"), ("old-phone", "410"), ("tablet", "503,201")] {
            let sub = browser.subscription(&format!("{name}-{backend:?}"), answers).await;
            let res = app.post("/notifications/subscribe", &sub, Some(&token)).await;
            assert_eq!(res.status(), StatusCode::CREATED, "{name}");
        }
        let car = id_of(&app.create_car(&admin, json!({"name": "Zoé"})).await);
        let booking = id_of(&app.book(&token, &car, days_ahead(2), 24).await.json::<Value>().await.unwrap());

        let list = wait_until(&app, &token, 15, |l| l.iter().any(|m| m["channel"] == "push" && m["status"] == "sent")).await;
        let push = list.iter().find(|m| m["channel"] == "push").unwrap_or_else(|| panic!("{list:?}"));
        assert_eq!((push["kind"].clone(), push["status"].clone()), (json!("booking_confirmed"), json!("sent")), "{push}");
        assert_eq!(push["attempts"], 2, "the tablet's 503 had it tried again: {push}");

        let got = browser.received(&format!("laptop-{backend:?}")).await;
        let first = got.first().unwrap_or_else(|| panic!("nothing reached the laptop"));
        assert!(first.get("error").is_none(), "{first}");
        let payload = &first["payload"];
        assert_eq!(payload["kind"], "booking_confirmed");
        assert_eq!(payload["bookingId"], booking.as_str());
        assert_eq!(payload["url"], format!("/bookings/{booking}"));
        assert_eq!(payload["title"], "Booking confirmed: Zoé");
        assert!(payload["body"].as_str().is_some_and(|b| b.contains("Zoé")), "{payload}");
        assert_eq!(first["vapid"]["aud"], browser.url.as_str());
        assert_eq!(first["vapid"]["sub"], "mailto:ops@example.com");
        assert_eq!(first["vapid"]["k"], public.as_str());
        assert_eq!(first["encoding"], "aes128gcm");
        assert!(first["ttl"].as_str().is_some_and(|t| t.parse::<u64>().is_ok()), "{first}");
        let tablet = browser.received(&format!("tablet-{backend:?}")).await;
        assert_eq!(tablet.iter().map(|r| r["status"].clone()).collect::<Vec<_>>(), [json!(503), json!(201)]);
        assert_eq!(tablet[1]["payload"], *payload);
        // The push service said the old phone is gone (410): its subscription is too.
        let left = app.db.count(&format!("SELECT COUNT(*) AS n FROM push_subscriptions WHERE user_id = '{}'", user["id"].as_str().unwrap()));
        assert_eq!(left, 2);

        // pywebpush, sending to the same receiver, decrypts the same way: the receiver is right.
        run_python(python, vec![script("push_receiver.py"), "pywebpush".into(), browser.url.clone()]).await;
    }
}

db_test! {
    local:
    async fn without_a_vapid_key_there_is_no_web_push(backend) {
        let app = spawn_app(backend).await;
        assert_error(app.get("/notifications/vapid-public-key", None).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    }
}

db_test! {
    async fn a_cars_zone_comes_from_its_coordinates_unless_given(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let paris = json!({"latitude": 48.8566, "longitude": 2.3522});
        let tokyo = json!({"latitude": 35.6762, "longitude": 139.6503});
        let car = app.create_car(&admin, json!({"location": paris})).await;
        assert_eq!(car["location"]["timeZone"], "Europe/Paris");
        let path = format!("/cars/{}", id_of(&car));
        let patch = |body: Value| {
            let (app, admin, path) = (&app, admin.clone(), path.clone());
            async move { app.send(Method::PATCH, &path, &body, Some(&admin)).await }
        };
        // Derived: it follows the coordinates.
        let moved: Value = patch(json!({"location": tokyo})).await.json().await.unwrap();
        assert_eq!(moved["location"]["timeZone"], "Asia/Tokyo");
        // Given: kept, through a move too, until another is given or null returns to the derived one.
        let given: Value = patch(json!({"location": {"timeZone": "America/New_York"}})).await.json().await.unwrap();
        assert_eq!(given["location"]["timeZone"], "America/New_York");
        let moved: Value = patch(json!({"location": paris})).await.json().await.unwrap();
        assert_eq!(moved["location"]["timeZone"], "America/New_York");
        assert_eq!(app.get(&path, None).await.json::<Value>().await.unwrap()["location"]["timeZone"], "America/New_York");
        let reset: Value = patch(json!({"location": {"timeZone": null}})).await.json().await.unwrap();
        assert_eq!(reset["location"]["timeZone"], "Europe/Paris");
        let fields = validation_fields(patch(json!({"location": {"timeZone": "Europe/Lyon"}})).await).await;
        assert_eq!(fields, ["location.timeZone"]);
        let mut body = car_body();
        merge(&mut body, json!({"location": {"timeZone": "Mars/Olympus"}}));
        assert_eq!(validation_fields(app.post("/cars", &body, Some(&admin)).await).await, ["location.timeZone"]);
        let created = app.create_car(&admin, json!({"location": {"timeZone": "Europe/Madrid"}})).await;
        assert_eq!(created["location"]["timeZone"], "Europe/Madrid", "given at create, far from its coordinates");
    }
}
