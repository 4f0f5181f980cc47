//! What only the `stripe` provider has, on localstripe: its webhook (signatures, replays,
//! events out of order, disputes, refunds made at Stripe), the reconciliation poll for the
//! webhooks that never come, and its readiness.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::localstripe;
use crate::payments::{booking, payments_of, reconciles, records_until, Processor, GOOD};
use crate::stripe_stub::{self, Fault, StripeStub};

/// A paid booking of a 100-a-day car for two days on the app, and its intent at localstripe.
async fn paid_booking(app: &TestApp, token: &str, admin: &str) -> (Value, Value) {
    let car = id_of(&app.create_car(admin, json!({"pricePerDay": 100})).await);
    let res = app.book(token, &car, days_ahead(5), 48).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let booking: Value = res.json().await.unwrap();
    assert_eq!(
        Processor::Stripe.pay(app, token, &booking, GOOD).await,
        Ok(())
    );
    let base = localstripe::url().unwrap_or_default();
    let secret = booking["payment"]["clientSecret"].as_str().unwrap();
    let path = format!("/v1/payment_intents/{}", localstripe::id_of_secret(secret));
    let (_, intent) = localstripe::call(&base, &path, &[]).await;
    (booking, intent)
}

fn count(list: &[Value], kind: &str) -> usize {
    list.iter().filter(|m| m["kind"] == kind).count()
}

db_test! {
    local:
    async fn webhooks_are_verified_applied_once_and_never_rate_limited(backend) {
        let Some(app) = Processor::Stripe.app(backend, &[]).await else { return };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let (paid, intent) = paid_booking(&app, &token, &admin).await;
        let id = id_of(&paid);
        assert_eq!(intent["status"], "succeeded", "{intent}");

        // Not signed by our secret, signed too long ago, not signed: 400, nothing changes.
        let mut failed = intent.clone();
        failed["status"] = json!("requires_payment_method");
        failed["last_payment_error"] = json!({"type": "card_error", "code": "card_declined", "message": "Forged."});
        let forged = localstripe::event("payment_intent.payment_failed", failed.clone()).to_string();
        let now = chrono::Utc::now().timestamp();
        for header in [
            Some(localstripe::signature("whsec_someone_else", now, &forged)),
            Some(localstripe::signature(localstripe::WEBHOOK_SECRET, now - 301, &forged)),
            Some(format!("t={now}")),
            None,
            Some(localstripe::signature(localstripe::WEBHOOK_SECRET, now, "{}")),
        ] {
            let res = localstripe::deliver_raw(&app, &forged, header.as_deref()).await;
            assert_eq!(validation_fields(res).await, ["Stripe-Signature"]);
        }
        let body = "not json";
        let res = localstripe::deliver_raw(&app, body, Some(&localstripe::signature(localstripe::WEBHOOK_SECRET, now, body))).await;
        assert_eq!(validation_fields(res).await, ["body"]);
        let records = payments_of(&app, &token, &id).await;
        assert_eq!((records.len(), records[0]["status"].as_str()), (1, Some("succeeded")), "{records:?}");

        // A failure older than the success, signed: 200, and it changes nothing.
        let res = localstripe::deliver(&app, &localstripe::event("payment_intent.payment_failed", failed)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(payments_of(&app, &token, &id).await[0]["status"], "succeeded");
        // The success again under its own id, twice: applied once (it already was).
        let success = localstripe::event("payment_intent.succeeded", intent.clone());
        for _ in 0..2 {
            assert_eq!(localstripe::deliver(&app, &success).await.status(), StatusCode::OK);
        }
        // A type this server does not act on.
        let other = localstripe::event("customer.created", json!({"id": "cus_x", "object": "customer"}));
        assert_eq!(localstripe::deliver(&app, &other).await.status(), StatusCode::OK);

        // A dispute: the booking says so and every admin is told, once.
        let dispute = json!({"id": "dp_test", "object": "dispute", "amount": 20000, "currency": "usd",
            "charge": intent["latest_charge"]["id"], "payment_intent": intent["id"], "reason": "fraudulent",
            "status": "warning_needs_response"});
        for _ in 0..2 {
            let res = localstripe::deliver(&app, &localstripe::event("charge.dispute.created", dispute.clone())).await;
            assert_eq!(res.status(), StatusCode::OK);
        }
        assert_eq!(booking(&app, &token, &id).await["disputed"], true);

        // Money given back from Stripe's dashboard, not through this server: recorded, so the
        // ledger still matches Stripe.
        let base = localstripe::url().unwrap_or_default();
        let pi = intent["id"].as_str().unwrap();
        let (status, _) = localstripe::call(&base, "/v1/refunds", &[("payment_intent", pi), ("amount", "5000")]).await;
        assert_eq!(status, StatusCode::OK);
        let charge_path = format!("/v1/charges/{}", intent["latest_charge"]["id"].as_str().unwrap());
        let (_, charge) = localstripe::call(&base, &charge_path, &[]).await;
        assert_eq!(charge["amount_refunded"], 5000, "{charge}");
        let refunded = localstripe::event("charge.refunded", charge);
        for _ in 0..2 {
            assert_eq!(localstripe::deliver(&app, &refunded).await.status(), StatusCode::OK);
        }
        let records = payments_of(&app, &token, &id).await;
        let refunds: Vec<&Value> = records.iter().filter(|r| r["kind"] == "refund").collect();
        assert_eq!(refunds.len(), 1, "{records:?}");
        assert_eq!((refunds[0]["amount"].as_f64(), refunds[0]["status"].as_str()), (Some(50.0), Some("succeeded")));
        assert_eq!(records[0]["status"], "partially_refunded");
        reconciles(&app, &token, &id, 20_000 - 5_000).await;

        let list = wait_until(&app, &admin, 10, |l| count(l, "payment_disputed") >= 1).await;
        assert_eq!(count(&list, "payment_disputed"), 1, "{list:?}");
        let list = wait_until(&app, &token, 10, |l| count(l, "refund_issued") >= 1).await;
        assert_eq!((count(&list, "booking_confirmed"), count(&list, "payment_failed"), count(&list, "refund_issued")), (1, 0, 1), "{list:?}");
        let metrics = app.metrics_of("bookings").await;
        for line in [
            "carrental_webhooks_total{result=\"rejected\",type=\"unverified\"} 5",
            "carrental_webhooks_total{result=\"duplicate\",type=\"payment_intent.succeeded\"} 1",
            "carrental_webhooks_total{result=\"applied\",type=\"charge.dispute.created\"} 1",
            "carrental_webhooks_total{result=\"ignored\",type=\"charge.dispute.created\"} 1",
            "carrental_webhooks_total{result=\"ignored\",type=\"customer.created\"} 1",
        ] {
            assert!(metrics.contains(line), "{line} in {metrics}");
        }

        // Stripe's bursts are never turned away by the per-client rate limit.
        let base = localstripe::url().unwrap_or_default();
        let settings = localstripe::settings(&base);
        let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend([("RATE_LIMIT_MAX", "2"), ("RATE_LIMIT_WINDOW", "1m")]);
        let limited = spawn_app_sharing(&app, &all).await;
        for _ in 0..5 {
            let res = localstripe::deliver(&limited, &other).await;
            assert_eq!(res.status(), StatusCode::OK);
        }
        let answers = [limited.get("/cars", None).await.status(), limited.get("/cars", None).await.status(),
                       limited.get("/cars", None).await.status()];
        assert_eq!(answers, [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
    }
}

db_test! {
    local:
    async fn a_webhook_that_never_comes_is_made_up_by_the_reconciliation_poll(backend) {
        let Some(base) = localstripe::url() else { return };
        let settings = localstripe::settings(&base);
        let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend([("APP__PAYMENTS__RECONCILE_EVERY", "1s"), ("APP__PAYMENTS__RECONCILE_AFTER", "1s")]);
        // No webhook registered: only the poll can learn what happened at Stripe.
        let app = spawn_app_with(backend, &all).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 100})).await);
        let paid: Value = app.book(&token, &car, days_ahead(1), 24).await.json().await.unwrap();
        let id = id_of(&paid);
        let secret = paid["payment"]["clientSecret"].as_str().unwrap();
        assert_eq!(localstripe::pay(&base, secret, GOOD).await, Ok(()));
        let records = records_until(&app, &token, &id, |r| r[0]["status"] == "succeeded").await;
        assert_eq!(records[0]["status"], "succeeded", "{records:?}");
        assert_eq!(booking(&app, &token, &id).await["status"], "confirmed");

        // A card saved without its event: the poll applies it too.
        let res = app.post(&format!("/bookings/{id}/payment-method"), &json!({}), Some(&token)).await;
        let setup: Value = res.json().await.unwrap();
        let seti = localstripe::id_of_secret(setup["clientSecret"].as_str().unwrap());
        let (status, saved) = localstripe::call(&base, &format!("/v1/setup_intents/{seti}/confirm"), &[
            ("payment_method_data[type]", "card"), ("payment_method_data[card][number]", GOOD),
            ("payment_method_data[card][exp_month]", "12"), ("payment_method_data[card][exp_year]", "2034"),
            ("payment_method_data[card][cvc]", "123")]).await;
        assert_eq!(status, StatusCode::OK, "{saved}");
        let mut picked = StatusCode::IM_A_TEAPOT;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            picked = app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await.status();
            if picked == StatusCode::OK {
                break;
            }
        }
        assert_eq!(picked, StatusCode::OK);
        let records = payments_of(&app, &token, &id).await;
        let deposit = records.iter().find(|r| r["kind"] == "deposit").unwrap();
        assert_eq!(deposit["status"], "authorized", "{records:?}");
        reconciles(&app, &token, &id, 10_000).await;
    }
}

db_test! {
    local:
    async fn readiness_reports_whether_stripe_answers(backend) {
        let Some(app) = Processor::Stripe.app(backend, &[]).await else { return };
        let ready = app.ready_of("bookings").await;
        let payments = &ready["checks"]["payments"];
        assert_eq!((payments["status"].as_str(), payments["provider"].as_str()), (Some("up"), Some("stripe")), "{ready}");
        assert!(payments["latencyMs"].is_u64(), "{ready}");

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let nowhere = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let app = spawn_app_with(backend, &[("PAYMENT_PROVIDER", "stripe"), ("STRIPE_API_BASE", &nowhere),
            ("STRIPE_SECRET_KEY", "sk_test_x"), ("STRIPE_WEBHOOK_SECRET", "whsec_x")]).await;
        let res = app.client.get(app.url("/health/ready")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "a provider down degrades, it does not unready");
        let ready: Value = res.json().await.unwrap();
        assert_eq!(ready["checks"]["payments"]["status"], "down", "{ready}");
        // Booking needs it: 503, and the slot stays free.
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let res = app.book(&token, &car, days_ahead(2), 24).await;
        assert_error(res, StatusCode::SERVICE_UNAVAILABLE, "PAYMENT_UNAVAILABLE").await;
        let list: Value = app.get("/bookings", Some(&token)).await.json().await.unwrap();
        assert_eq!(list["total"], 0, "{list}");
    }
}

// What localstripe does not model, on the tests' own Stripe stub: idempotent replays and
// faults.

/// A server whose Stripe is the stub, answering within `APP__PAYMENTS__TIMEOUT=1s`.
async fn stub_app(backend: Backend, stub: &StripeStub, more: &[(&str, &str)]) -> TestApp {
    let mut all = vec![
        ("PAYMENT_PROVIDER", "stripe"),
        ("STRIPE_API_BASE", stub.url.as_str()),
        ("STRIPE_SECRET_KEY", localstripe::SECRET_KEY),
        ("STRIPE_WEBHOOK_SECRET", localstripe::WEBHOOK_SECRET),
        ("APP__PAYMENTS__TIMEOUT", "1s"),
    ];
    all.extend_from_slice(more);
    spawn_app_with(backend, &all).await
}

/// Books, pays at the stub with `card` and tells the server as Stripe would.
async fn stub_paid(app: &TestApp, stub: &StripeStub, token: &str, car: &str, card: &str) -> Value {
    let res = app.book(token, car, days_ahead(1), 24).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let made: Value = res.json().await.unwrap();
    let intent = localstripe::id_of_secret(made["payment"]["clientSecret"].as_str().unwrap());
    let paid = stub.pay(&intent, card);
    let res =
        localstripe::deliver(app, &localstripe::event("payment_intent.succeeded", paid)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        booking(app, token, &id_of(&made)).await["status"],
        "confirmed"
    );
    made
}

#[tokio::test]
async fn the_stub_answers_stripes_own_library_as_stripe_would() {
    let Ok(python) = std::env::var("TEST_STRIPE_PYTHON") else {
        eprintln!(
            "skipped: TEST_STRIPE_PYTHON is not set (scripts/test.sh installs stripe-python)"
        );
        return;
    };
    let stub = StripeStub::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stripe/check_stub.py");
    run_python(python, vec![script.to_owned(), stub.url.clone()]).await;
}

db_test! {
    local:
    async fn a_late_answer_is_replayed_and_the_money_moves_once(backend) {
        let stub = StripeStub::start().await;
        let app = stub_app(backend, &stub, &[]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 300})).await);
        let paid = stub_paid(&app, &stub, &token, &car, stripe_stub::VISA).await;
        let id = id_of(&paid);
        assert_eq!(app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        let records = payments_of(&app, &token, &id).await;
        let deposit = records.iter().find(|r| r["kind"] == "deposit").unwrap().clone();
        let held = deposit["providerRef"].as_str().unwrap().to_owned();
        // Stripe captures, but its answer comes after the server stopped waiting.
        let capture = format!("/v1/payment_intents/{held}/capture");
        stub.fail(&capture, Fault::Slow(Duration::from_millis(1500)));
        let res = app.post(&format!("/bookings/{id}/return"), &json!({"damages": [{"description": "Scratch", "amount": 80}]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap()["status"], "completed");
        let records = records_until(&app, &token, &id, |r| r.iter().any(|p| p["kind"] == "deposit" && p["status"] == "partially_captured")).await;
        let deposit = records.iter().find(|r| r["kind"] == "deposit").unwrap();
        assert_eq!((deposit["status"].as_str(), deposit["capturedAmount"].as_f64()), (Some("partially_captured"), Some(80.0)), "{records:?}");
        let calls: Vec<_> = stub.seen().into_iter().filter(|s| s.path == capture).collect();
        assert!(calls.len() >= 2, "retried: {calls:?}");
        let key = format!("{}:capture", deposit["id"].as_str().unwrap());
        assert!(calls.iter().all(|c| c.key.as_deref() == Some(key.as_str())), "one key for the attempt: {calls:?}");
        assert!(calls.iter().skip(1).all(|c| c.replayed), "the retry is a replay: {calls:?}");
        assert_eq!(stub.moved().iter().filter(|m| m.starts_with("capture")).count(), 1, "{:?}", stub.moved());
        reconciles(&app, &token, &id, 10_000 + 8_000).await;
    }
}

db_test! {
    local:
    async fn stripe_down_at_return_is_settled_when_it_is_back(backend) {
        let stub = StripeStub::start().await;
        let app = stub_app(backend, &stub, &[]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 50})).await);
        let paid = stub_paid(&app, &stub, &token, &car, stripe_stub::VISA).await;
        let id = id_of(&paid);
        assert_eq!(app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        for _ in 0..3 {
            stub.fail("/v1/payment_intents", Fault::Down);
        }
        // 80 owed: 50 from the deposit, 30 charged to the card, once Stripe is back.
        let res = app.post(&format!("/bookings/{id}/return"), &json!({"damages": [{"description": "Dent", "amount": 80}]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK, "the return does not wait for Stripe");
        assert_eq!(res.json::<Value>().await.unwrap()["status"], "completed");
        let records = records_until(&app, &token, &id, |r| r.iter().any(|p| p["kind"] == "charge" && p["status"] == "succeeded")).await;
        let deposit = records.iter().find(|r| r["kind"] == "deposit").unwrap();
        assert_eq!((deposit["status"].as_str(), deposit["capturedAmount"].as_f64()), (Some("captured"), Some(50.0)), "{records:?}");
        let charge = records.iter().find(|r| r["kind"] == "charge").unwrap();
        assert_eq!(charge["amount"], 30.0, "{records:?}");
        let moved = stub.moved();
        assert_eq!((moved.iter().filter(|m| m.starts_with("capture")).count(), moved.iter().filter(|m| m.ends_with(" 3000")).count()), (1, 1), "{moved:?}");
        reconciles(&app, &token, &id, 10_000 + 8_000).await;
    }
}

db_test! {
    local:
    async fn stripe_faults_at_booking_free_the_slot_and_say_whose_they_are(backend) {
        let stub = StripeStub::start().await;
        let app = stub_app(backend, &stub, &[]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        for (fault, status, code) in [
            (Fault::Down, StatusCode::SERVICE_UNAVAILABLE, "PAYMENT_UNAVAILABLE"),
            (Fault::ApiError, StatusCode::SERVICE_UNAVAILABLE, "PAYMENT_UNAVAILABLE"),
            (Fault::Slow(Duration::from_millis(1500)), StatusCode::SERVICE_UNAVAILABLE, "PAYMENT_UNAVAILABLE"),
            (Fault::Refused, StatusCode::BAD_GATEWAY, "PAYMENT_PROVIDER_ERROR"),
        ] {
            stub.fail("/v1/payment_intents", fault);
            assert_error(app.book(&token, &car, days_ahead(2), 24).await, status, code).await;
        }
        let list: Value = app.get("/bookings", Some(&token)).await.json().await.unwrap();
        assert_eq!(list["total"], 0, "no booking was made: {list}");
        let res = app.book(&token, &car, days_ahead(2), 24).await;
        assert_eq!(res.status(), StatusCode::CREATED, "the slot is free");
        // Every call in the pinned version, with the secret key; every POST with a key of
        // its own (a payment record's id and the operation, or the user's customer).
        let seen = stub.seen();
        assert!(seen.iter().all(|s| s.version.as_deref() == Some("2024-06-20")), "{seen:?}");
        for post in seen.iter().filter(|s| s.method == "POST") {
            let key = post.key.as_deref().unwrap_or_default();
            let (record, operation) = key.rsplit_once(':').unwrap_or_default();
            assert!(matches!((record, operation), ("customer", _) | (_, "create")) || uuid::Uuid::parse_str(record).is_ok(), "{key}");
            if post.path == "/v1/payment_intents" {
                assert!(uuid::Uuid::parse_str(record).is_ok() && operation == "create", "{key}");
            } else {
                assert!(key.starts_with("customer:"), "{key}");
            }
        }
        let intents: Vec<_> = seen.iter().filter(|s| s.path == "/v1/payment_intents").collect();
        let keys: std::collections::HashSet<_> = intents.iter().map(|s| s.key.clone()).collect();
        assert_eq!(keys.len(), intents.len(), "each attempt has its own record, so its own key: {intents:?}");
    }
}

db_test! {
    local:
    async fn a_declined_deposit_is_a_402_with_stripes_message(backend) {
        let stub = StripeStub::start().await;
        let app = stub_app(backend, &stub, &[]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 300})).await);
        let paid = stub_paid(&app, &stub, &token, &car, stripe_stub::INSUFFICIENT_FUNDS).await;
        let id = id_of(&paid);
        let res = app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await;
        let body = assert_error(res, StatusCode::PAYMENT_REQUIRED, "PAYMENT_REQUIRED").await;
        assert_eq!(body["error"]["message"], "Your card has insufficient funds.");
        assert_eq!(booking(&app, &token, &id).await["status"], "confirmed");
        let records = payments_of(&app, &token, &id).await;
        let deposit = records.iter().find(|r| r["kind"] == "deposit").unwrap();
        assert_eq!((deposit["status"].as_str(), deposit["failureMessage"].as_str()),
                   (Some("failed"), Some("Your card has insufficient funds.")), "{records:?}");
        reconciles(&app, &token, &id, 10_000).await;
    }
}

db_test! {
    local:
    async fn a_payment_that_lands_after_the_hold_expired_is_refunded_in_full(backend) {
        let stub = StripeStub::start().await;
        let app = stub_app(backend, &stub, &[("PAYMENT_HOLD", "1s")]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100})).await);
        let made: Value = app.book(&token, &car, days_ahead(2), 24).await.json().await.unwrap();
        let id = id_of(&made);
        let intent = localstripe::id_of_secret(made["payment"]["clientSecret"].as_str().unwrap());
        // Paid at Stripe, but the server has not heard of it when the hold runs out: its
        // cancellation is refused (the intent succeeded), and what it then reads is applied.
        stub.pay(&intent, stripe_stub::VISA);
        let records = records_until(&app, &token, &id, |r| r.iter().any(|p| p["kind"] == "refund" && p["status"] == "succeeded")).await;
        let rental = records.iter().find(|r| r["kind"] == "rental").unwrap();
        assert_eq!((rental["status"].as_str(), rental["refundedAmount"].as_f64()), (Some("refunded"), Some(100.0)), "{records:?}");
        assert_eq!(booking(&app, &token, &id).await["status"], "expired");
        assert!(stub.moved().contains(&format!("refund {intent} 10000")), "{:?}", stub.moved());
        reconciles(&app, &token, &id, 0).await;
    }
}

/// Through a gateway the raw body reaches the bookings process unchanged, so its signature
/// still verifies there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_reaches_bookings_through_the_gateway() {
    let Some(app) = Processor::Stripe.app(Backend::Split, &[]).await else {
        return;
    };
    let admin = app.admin_token().await;
    let token = app.customer_token().await;
    let (paid, _) = paid_booking(&app, &token, &admin).await;
    assert_eq!(
        booking(&app, &token, &id_of(&paid)).await["status"],
        "confirmed"
    );
    let metrics = app.metrics_of("bookings").await;
    assert!(
        metrics.contains(
            "carrental_webhooks_total{result=\"applied\",type=\"payment_intent.succeeded\"}"
        ),
        "{metrics}"
    );
}
