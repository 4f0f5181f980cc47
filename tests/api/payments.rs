//! Payments (API.md, Payments), each scenario with the in-process mock provider and with
//! the `stripe` provider on localstripe: a booking that waits for its payment, holds that run
//! out, deposits, refunds by policy and by admins, and a ledger that adds up after every
//! scenario.

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::channels::decoded;
use crate::helpers::*;
use crate::localstripe;
use crate::smtp::SmtpServer;

pub const GOOD: &str = "4242424242424242";
pub const DECLINED: &str = "4000000000000002";
pub const NO_FUNDS: &str = "4000000000009995";
pub const LATER_DECLINED: &str = "4000000000000341";

/// Runs a scenario with each provider on each database: `sqlite_mock`, `postgres_mock`,
/// `split_mock` (a gateway and a process per module), `sqlite_stripe`, `postgres_stripe` (on
/// localstripe, when the test script started it).
macro_rules! payment_test {
    (async fn $name:ident($backend:ident, $pay:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: Backend, $pay: Processor) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_mock() {
                run(Backend::Sqlite, Processor::Mock).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_mock() {
                run(Backend::Postgres, Processor::Mock).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn split_mock() {
                run(Backend::Split, Processor::Mock).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_stripe() {
                run(Backend::Sqlite, Processor::Stripe).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_stripe() {
                run(Backend::Postgres, Processor::Stripe).await
            }
        }
    };
}

/// Who takes the card: the mock's own confirmation route, or localstripe paid as Stripe.js
/// would pay it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processor {
    Mock,
    Stripe,
}

impl Processor {
    /// A server with this provider and `more` settings; `None` (the scenario is skipped)
    /// for Stripe when no localstripe runs.
    pub async fn app(self, backend: Backend, more: &[(&str, &str)]) -> Option<TestApp> {
        match self {
            Processor::Mock => Some(mock_app(backend, more).await),
            Processor::Stripe => {
                let Some(base) = localstripe::url() else {
                    eprintln!(
                        "skipped: TEST_STRIPE_URL is not set (scripts/test.sh starts localstripe)"
                    );
                    return None;
                };
                let settings = localstripe::settings(&base);
                let mut all: Vec<(&str, &str)> =
                    settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
                all.extend_from_slice(more);
                let app = spawn_app_with(backend, &all).await;
                localstripe::register_webhook(&base, &app).await;
                Some(app)
            }
        }
    }

    /// Pays the booking's payment with `card` as a browser would, and waits until the
    /// server has heard of it: `Err((status, message))` when it was refused.
    pub async fn pay(
        self,
        app: &TestApp,
        token: &str,
        booking: &Value,
        card: &str,
    ) -> Result<(), (u16, String)> {
        let payment = &booking["payment"];
        match self {
            Processor::Mock => {
                let res = confirm(app, token, payment["id"].as_str().unwrap(), card).await;
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                if status == 200 {
                    Ok(())
                } else {
                    Err((
                        status,
                        body["error"]["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    ))
                }
            }
            Processor::Stripe => {
                let base = localstripe::url().unwrap_or_default();
                let secret = payment["clientSecret"].as_str().unwrap();
                let outcome = localstripe::pay(&base, secret, card).await;
                // Paid (and perhaps given back at once, when the booking no longer waited).
                let expected: &[&str] = match &outcome {
                    Ok(()) => &["succeeded", "refunded"],
                    Err((402, _)) => &["failed"],
                    Err(_) => return outcome,
                };
                let intent = localstripe::id_of_secret(secret);
                let id = id_of(booking);
                let heard = |r: &[Value]| {
                    r.iter().any(|p| {
                        p["providerRef"] == intent.as_str()
                            && expected.contains(&p["status"].as_str().unwrap_or_default())
                    })
                };
                let records = records_until(app, token, &id, heard).await;
                assert!(heard(&records), "the webhook told the server: {records:?}");
                outcome
            }
        }
    }

    /// Saves a card for the booking's later charges (`POST /bookings/{id}/payment-method`,
    /// then what the browser does with the setup's client secret).
    pub async fn save_card(
        self,
        app: &TestApp,
        token: &str,
        booking: &str,
        card: &str,
    ) -> Result<(), (u16, String)> {
        let res = app
            .post(
                &format!("/bookings/{booking}/payment-method"),
                &json!({}),
                Some(token),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let setup: Value = res.json().await.unwrap();
        let secret = setup["clientSecret"].as_str().unwrap();
        match self {
            Processor::Mock => {
                let res = confirm(app, token, setup["id"].as_str().unwrap(), card).await;
                match res.status().as_u16() {
                    200 => Ok(()),
                    status => Err((
                        status,
                        res.json::<Value>().await.unwrap()["error"]["message"].to_string(),
                    )),
                }
            }
            Processor::Stripe => {
                let base = localstripe::url().unwrap_or_default();
                localstripe::save_card(&base, app, secret, card).await
            }
        }
    }

    /// Cards declined when the customer pays, and the provider's message for each.
    pub fn declined_cards(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Processor::Mock => &[
                (DECLINED, "Your card was declined."),
                (NO_FUNDS, "Your card has insufficient funds."),
            ],
            // localstripe declines 0002 and 9995 when they are saved, before the intent
            // hears of them; 0341 is declined by the charge itself.
            Processor::Stripe => &[(LATER_DECLINED, "Your card was declined.")],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Processor::Mock => "mock",
            Processor::Stripe => "stripe",
        }
    }
}

pub async fn mock_app(backend: Backend, more: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![("PAYMENT_PROVIDER", "mock")];
    settings.extend_from_slice(more);
    spawn_app_with(backend, &settings).await
}

/// Confirms a payment (or a card setup) with a test card through the mock's route.
pub async fn confirm(app: &TestApp, token: &str, id: &str, card: &str) -> reqwest::Response {
    app.post(
        &format!("/payments/mock/{id}/confirm"),
        &json!({"card": card}),
        Some(token),
    )
    .await
}

pub async fn payments_of(app: &TestApp, token: &str, booking: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/bookings/{booking}/payments"), Some(token))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

pub async fn booking(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/bookings/{id}"), Some(token))
        .await
        .json()
        .await
        .unwrap()
}

/// Waits (up to 10 s) until `done` holds for the booking's payment records.
pub async fn records_until(
    app: &TestApp,
    token: &str,
    booking: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..100 {
        let list = payments_of(app, token, booking).await;
        if done(&list) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    payments_of(app, token, booking).await
}

fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap_or(0.0) * 100.0).round() as i64
}

/// The ledger reconciles with the booking to the cent: captured − refunded + balanceDue
/// equals `expected` (its totalPrice, or 0 when it was never paid, less admin refunds).
pub async fn reconciles(app: &TestApp, token: &str, id: &str, expected: i64) {
    let booking = booking(app, token, id).await;
    let records = payments_of(app, token, id).await;
    let captured: i64 = records
        .iter()
        .filter(|r| r["kind"] != "refund")
        .map(|r| cents(&r["capturedAmount"]))
        .sum();
    let refunded: i64 = records
        .iter()
        .filter(|r| r["kind"] == "refund" && r["status"] == "succeeded")
        .map(|r| cents(&r["amount"]))
        .sum();
    let by_sources: i64 = records
        .iter()
        .filter(|r| r["kind"] != "refund")
        .map(|r| cents(&r["refundedAmount"]))
        .sum();
    assert_eq!(
        refunded, by_sources,
        "refunds and their sources agree: {records:?}"
    );
    assert_eq!(
        captured - refunded + cents(&booking["balanceDue"]),
        expected,
        "{booking}\n{records:#?}"
    );
    let lines: i64 = booking["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| cents(&l["amount"]))
        .sum();
    assert_eq!(
        lines,
        cents(&booking["totalPrice"]),
        "lines sum to the total: {booking}"
    );
}

async fn book_paid(app: &TestApp, pay: Processor, token: &str, car: &str, days: i64) -> Value {
    let res = app.book(token, car, days_ahead(days), 48).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let booking: Value = res.json().await.unwrap();
    assert_eq!(pay.pay(app, token, &booking, GOOD).await, Ok(()));
    booking
}

db_test! {
    async fn without_a_provider_bookings_are_confirmed_at_once(backend) {
        let app = spawn_app(backend).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let booking: Value = app.book(&token, &car, days_ahead(2), 24).await.json().await.unwrap();
        assert_eq!(booking["status"], "confirmed");
        assert_eq!((booking["payment"].clone(), booking["holdExpiresAt"].clone()), (Value::Null, Value::Null));
        assert_eq!(booking["balanceDue"], 0.0);
        assert_eq!(payments_of(&app, &token, &id_of(&booking)).await, Vec::<Value>::new());
        let res = app.post(&format!("/bookings/{}/payment-method", id_of(&booking)), &json!({}), Some(&token)).await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;
        let res = app.get("/admin/payments", Some(&admin)).await;
        assert_eq!(res.json::<Value>().await.unwrap()["total"], 0);
        let ready: Value = app.ready_of("bookings").await;
        assert_eq!(ready["checks"]["payments"]["status"], "up", "{ready}");
    }
}

payment_test! {
    async fn a_booking_waits_for_its_payment_and_a_declined_card_may_try_again(backend, pay) {
        let Some(app) = pay.app(backend, &[]).await else { return };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100})).await);
        let res = app.book(&token, &car, days_ahead(3), 48).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let booking: Value = res.json().await.unwrap();
        let id = id_of(&booking);
        assert_eq!(booking["status"], "pending_payment");
        assert!(booking["holdExpiresAt"].is_string(), "{booking}");
        let payment = booking["payment"].clone();
        assert_eq!((payment["status"].as_str(), payment["amount"].as_f64(), payment["currency"].as_str()),
                   (Some("pending"), Some(200.0), Some("USD")), "{booking}");
        assert!(payment["clientSecret"].as_str().is_some_and(|s| !s.is_empty()));
        // The held slot blocks others exactly as a confirmed booking would.
        let other = app.customer_token().await;
        let res = app.book(&other, &car, days_ahead(3), 24).await;
        assert_error(res, StatusCode::CONFLICT, "CONFLICT").await;

        for (card, message) in pay.declined_cards() {
            let outcome = pay.pay(&app, &token, &booking, card).await;
            assert_eq!(outcome, Err((402, (*message).to_owned())));
            let now = booking_of(&app, &token, &id).await;
            assert_eq!(now["status"], "pending_payment");
            assert_eq!((now["payment"]["status"].as_str(), now["payment"]["failureMessage"].as_str()),
                       (Some("failed"), Some(*message)), "{now}");
        }
        let pid = payment["id"].as_str().unwrap();
        if pay == Processor::Mock {
            let res = confirm(&app, &token, pid, DECLINED).await;
            let body = assert_error(res, StatusCode::PAYMENT_REQUIRED, "PAYMENT_REQUIRED").await;
            assert_eq!(body["error"]["message"], "Your card was declined.");
            assert_eq!(validation_fields(confirm(&app, &token, pid, "1234123412341234").await).await, ["card"]);
            let stranger = app.customer_token().await;
            assert_error(confirm(&app, &stranger, pid, GOOD).await, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        }
        assert_eq!(pay.pay(&app, &token, &booking, GOOD).await, Ok(()));
        let records = payments_of(&app, &token, &id).await;
        let record = &records[0];
        assert_eq!((record["kind"].as_str(), record["status"].as_str(), record["capturedAmount"].as_f64(), record["provider"].as_str()),
                   (Some("rental"), Some("succeeded"), Some(200.0), Some(pay.name())), "{record}");
        assert!(record["providerRef"].as_str().is_some_and(|r| r.starts_with("pi_")));
        let now = booking_of(&app, &token, &id).await;
        assert_eq!((now["status"].as_str(), now["holdExpiresAt"].clone()), (Some("confirmed"), Value::Null), "{now}");
        // Confirmed at payment, not at creation: one confirmation, one receipt, one decline each.
        let declines = pay.declined_cards().len() + usize::from(pay == Processor::Mock);
        let kinds = |list: &[Value]| list.iter().map(|m| m["kind"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        let list = wait_until(&app, &token, 10, |l| {
            let k = kinds(l);
            k.contains(&"payment_received".to_owned()) && k.iter().filter(|k| *k == "payment_failed").count() >= declines
        }).await;
        let kinds = kinds(&list);
        assert_eq!(kinds.iter().filter(|k| *k == "booking_confirmed").count(), 1, "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| *k == "payment_failed").count(), declines, "{kinds:?}");
        if pay == Processor::Mock {
            // A second confirmation changes nothing.
            let again: Value = confirm(&app, &token, pid, GOOD).await.json().await.unwrap();
            assert_eq!(again["status"], "succeeded");
        }
        reconciles(&app, &token, &id, 20_000).await;
        let metrics = app.metrics_of("bookings").await;
        assert!(metrics.contains("carrental_payments_total{kind=\"rental\",status=\"succeeded\"} 1"), "{metrics}");
    }
}

// A payment's confirmation queues two messages together: each goes by the channels its
// renter chose for its kind, with the text the booking and the payment say.
payment_test! {
    async fn a_paid_booking_tells_the_renter_by_the_channels_chosen_for_each_kind(backend, pay) {
        let smtp = SmtpServer::start().await;
        let url = smtp.url();
        let Some(app) = pay.app(backend, &[("NOTIFICATION_PROVIDER", "smtp"), ("SMTP_URL", &url)]).await else { return };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let res = app.send(Method::PATCH, "/me/notification-preferences",
            &json!({"email": {"booking_confirmed": false}}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let car = id_of(&app.create_car(&admin, json!({"name": "Clio", "pricePerDay": 100})).await);
        let first = id_of(&book_paid(&app, pay, &token, &car, 3).await);
        let list = wait_until(&app, &token, 10, |l| l.iter().any(|m| m["kind"] == "payment_received" && m["status"] == "sent")).await;
        assert!(list.iter().all(|m| m["kind"] != "booking_confirmed"), "{list:?}");
        let receipt = mailed(&smtp, "Payment received", &first).await;
        assert!(receipt.contains("We received your payment of $200.00."), "{receipt}");

        // Turned back on, the next paid booking's confirmation goes by email too.
        let res = app.send(Method::PATCH, "/me/notification-preferences",
            &json!({"email": {"booking_confirmed": true}}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let second = id_of(&book_paid(&app, pay, &token, &car, 10).await);
        let confirmation = mailed(&smtp, "Booking confirmed: Clio", &second).await;
        assert!(confirmation.contains("Total: $200.00"), "{confirmation}");
        let receipt = mailed(&smtp, "Payment received", &second).await;
        assert!(receipt.contains("We received your payment of $200.00."), "{receipt}");
    }
}

/// The text of the mail with `subject` about `booking`, waited for up to 10 s.
async fn mailed(smtp: &SmtpServer, subject: &str, booking: &str) -> String {
    for _ in 0..200 {
        let texts = smtp
            .mails()
            .into_iter()
            .filter(|m| m.subject == subject)
            .map(|m| decoded(&m.data));
        if let Some(text) = texts.into_iter().find(|t| t.contains(booking)) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no mail {subject:?} about {booking}: {:?}", smtp.mails());
}

// 30 requests for one slot at once with a payment provider: one hold wins, the others are
// 409 and leave no payment record behind; the winner is paid and confirmed.
payment_test! {
    async fn simultaneous_bookings_of_one_slot_hold_it_once(backend, pay) {
        let Some(app) = pay.app(backend, &[]).await else { return };
        let admin = app.admin_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 80})).await);
        let mut tokens = Vec::new();
        for _ in 0..6 {
            tokens.push(app.customer_token().await);
        }
        let body = json!({"carId": car, "pickupTime": days_ahead(5).to_rfc3339(),
                          "dropoffTime": (days_ahead(5) + chrono::TimeDelta::hours(24)).to_rfc3339()});
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(30));
        let requests = (0..30).map(|i| {
            let (client, url, token, body, barrier) =
                (app.client.clone(), app.url("/bookings"), tokens[i % 6].clone(), body.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let res = client.post(url).bearer_auth(&token).json(&body).send().await.unwrap();
                (res.status(), token, res.json::<Value>().await.unwrap())
            })
        });
        let answers: Vec<_> = futures_util::future::join_all(requests).await.into_iter().map(Result::unwrap).collect();
        let statuses: Vec<StatusCode> = answers.iter().map(|a| a.0).collect();
        let won: Vec<_> = answers.iter().filter(|a| a.0 == StatusCode::CREATED).collect();
        let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
        assert_eq!((won.len(), conflicts), (1, 29), "{statuses:?}");
        let (_, token, booking) = won[0];
        assert_eq!(booking["status"], "pending_payment");
        let all: Value = app.get("/admin/payments", Some(&admin)).await.json().await.unwrap();
        assert_eq!(all["total"], 1, "{all}");
        assert_eq!(pay.pay(&app, token, booking, GOOD).await, Ok(()));
        assert_eq!(booking_of(&app, token, &id_of(booking)).await["status"], "confirmed");
        reconciles(&app, token, &id_of(booking), 8_000).await;
    }
}

async fn booking_of(app: &TestApp, token: &str, id: &str) -> Value {
    booking(app, token, id).await
}

payment_test! {
    async fn an_unpaid_hold_frees_its_slot_when_it_runs_out_and_a_late_payment_is_refunded(backend, pay) {
        let Some(app) = pay.app(backend, &[("PAYMENT_HOLD", "2s")]).await else { return };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({})).await);
        let first: Value = app.book(&token, &car, days_ahead(3), 24).await.json().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        // The slot is free at that instant, whether or not the expiry job has run.
        let other = app.customer_token().await;
        let res = app.book(&other, &car, days_ahead(3), 24).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(booking_of(&app, &token, &id_of(&first)).await["status"], "expired");
        // A payment landing now is given back in full (or cannot land: the intent is
        // cancelled), and the booking stays expired.
        let _ = pay.pay(&app, &token, &first, GOOD).await;
        let records = records_until(&app, &token, &id_of(&first), |r| {
            r.iter().any(|p| p["kind"] == "refund" && p["status"] == "succeeded")
                || r.iter().any(|p| p["kind"] == "rental" && p["status"] == "canceled")
        }).await;
        let rental = records.iter().find(|r| r["kind"] == "rental").unwrap();
        if rental["status"] == "refunded" || records.iter().any(|r| r["kind"] == "refund") {
            assert_eq!(rental["refundedAmount"], rental["capturedAmount"], "{records:?}");
        }
        assert_eq!(booking_of(&app, &token, &id_of(&first)).await["status"], "expired");
        reconciles(&app, &token, &id_of(&first), 0).await;
        let list = wait_until(&app, &token, 10, |l| l.iter().any(|m| m["kind"] == "hold_expired")).await;
        assert!(list.iter().any(|m| m["kind"] == "hold_expired"), "{list:?}");
    }
}

payment_test! {
    async fn cancelling_refunds_by_the_policy(backend, pay) {
        let Some(app) = pay.app(backend, &[("CANCELLATION_FREE_HOURS", "100")]).await else { return };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100})).await);
        // Not paid: the intent is cancelled, nothing was taken.
        let unpaid: Value = app.book(&token, &car, days_ahead(20), 24).await.json().await.unwrap();
        let res = app.send(Method::PATCH, &format!("/bookings/{}", id_of(&unpaid)), &json!({"status": "cancelled"}), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let records = records_until(&app, &token, &id_of(&unpaid), |r| r[0]["status"] == "canceled").await;
        assert_eq!(records[0]["status"], "canceled", "{records:?}");
        reconciles(&app, &token, &id_of(&unpaid), 0).await;

        // Paid, cancelled 10 days ahead (past the free 100 hours? no: 240 h ahead): in full.
        let early = book_paid(&app, pay, &token, &car, 10).await;
        let res = app.send(Method::PATCH, &format!("/bookings/{}", id_of(&early)), &json!({"status": "cancelled"}), Some(&token)).await;
        let cancelled: Value = res.json().await.unwrap();
        assert_eq!((cancelled["status"].as_str(), cancelled["totalPrice"].as_f64()), (Some("cancelled"), Some(0.0)), "{cancelled}");
        let kinds: Vec<&str> = cancelled["lines"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["rental", "refund"]);
        records_until(&app, &token, &id_of(&early), |r| r.iter().any(|p| p["kind"] == "refund" && p["status"] == "succeeded")).await;
        reconciles(&app, &token, &id_of(&early), 0).await;

        // Paid, cancelled 2 days ahead (within the 100 hours): half the rental is kept.
        let late = book_paid(&app, pay, &token, &car, 2).await;
        let res = app.send(Method::PATCH, &format!("/bookings/{}", id_of(&late)), &json!({"status": "cancelled"}), Some(&token)).await;
        let cancelled: Value = res.json().await.unwrap();
        assert_eq!(cancelled["totalPrice"], 100.0, "{cancelled}");
        let fee = cancelled["lines"].as_array().unwrap().iter().find(|l| l["kind"] == "cancellation_fee").unwrap().clone();
        assert_eq!(fee["amount"], 100.0);
        let records = records_until(&app, &token, &id_of(&late), |r| r.iter().any(|p| p["kind"] == "refund" && p["status"] == "succeeded")).await;
        let refund = records.iter().find(|r| r["kind"] == "refund").unwrap();
        assert_eq!(refund["amount"], 100.0, "{records:?}");
        assert_eq!(records.iter().find(|r| r["kind"] == "rental").unwrap()["status"], "partially_refunded");
        reconciles(&app, &token, &id_of(&late), 10_000).await;
        let list = wait_until(&app, &token, 10, |l| l.iter().filter(|m| m["kind"] == "refund_issued").count() == 2).await;
        assert_eq!(list.iter().filter(|m| m["kind"] == "refund_issued").count(), 2);
    }
}

payment_test! {
    async fn admins_refund_up_to_what_was_captured(backend, pay) {
        let Some(app) = pay.app(backend, &[]).await else { return };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100})).await);
        let paid = book_paid(&app, pay, &token, &car, 3).await;
        let id = id_of(&paid);
        let refund = |amount: Value, who: String| {
            let app = &app;
            let path = format!("/bookings/{id}/refunds");
            async move { app.post(&path, &json!({"amount": amount, "reason": "goodwill"}), Some(&who)).await }
        };
        assert_error(refund(json!(10), token.clone()).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        assert_eq!(validation_fields(refund(json!(0), admin.clone()).await).await, ["amount"]);
        assert_eq!(validation_fields(refund(json!(1.005), admin.clone()).await).await, ["amount"]);
        assert_error(refund(json!(200.01), admin.clone()).await, StatusCode::CONFLICT, "CONFLICT").await;
        let res = refund(json!(150), admin.clone()).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let record: Value = res.json().await.unwrap();
        assert_eq!((record["kind"].as_str(), record["amount"].as_f64()), (Some("refund"), Some(150.0)));
        assert_error(refund(json!(50.01), admin.clone()).await, StatusCode::CONFLICT, "CONFLICT").await;
        records_until(&app, &admin, &id, |r| r.iter().any(|p| p["kind"] == "refund" && p["status"] == "succeeded")).await;
        reconciles(&app, &admin, &id, 20_000 - 15_000).await;
        assert_eq!(refund(json!(50), admin.clone()).await.status(), StatusCode::CREATED);

        let all: Value = app.get("/admin/payments?kind=refund", Some(&admin)).await.json().await.unwrap();
        assert_eq!(all["total"], 2, "{all}");
        assert_error(app.get("/admin/payments", Some(&token)).await, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        assert_eq!(validation_fields(app.get("/admin/payments?status=lost", Some(&admin)).await).await, ["status"]);
        records_until(&app, &admin, &id, |r| r.iter().filter(|p| p["status"] == "succeeded" && p["kind"] == "refund").count() == 2).await;
        let summary: Value = app.get("/admin/payments/summary", Some(&admin)).await.json().await.unwrap();
        assert_eq!(summary["USD"], json!({"captured": 200.0, "refunded": 200.0, "net": 0.0, "heldDeposits": 0.0}), "{summary}");
        let from = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339().replace('+', "%2B");
        let later: Value = app.get(&format!("/admin/payments/summary?from={from}"), Some(&admin)).await.json().await.unwrap();
        assert_eq!(later, json!({}));
    }
}

payment_test! {
    async fn the_deposit_is_held_at_pickup_and_settled_at_return(backend, pay) {
        let Some(app) = pay.app(backend, &[]).await else { return };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 300,
            "mileageLimitKmPerDay": 100, "extraKmPrice": 1})).await);
        let paid = book_paid(&app, pay, &token, &car, 1).await;
        let id = id_of(&paid);
        let res = app.post(&format!("/bookings/{id}/pickup"), &json!({"odometerKm": 0}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let records = payments_of(&app, &token, &id).await;
        let deposit = records.iter().find(|r| r["kind"] == "deposit").unwrap();
        assert_eq!((deposit["status"].as_str(), deposit["amount"].as_f64()), (Some("authorized"), Some(300.0)));
        let summary: Value = app.get("/admin/payments/summary", Some(&admin)).await.json().await.unwrap();
        assert_eq!(summary["USD"]["heldDeposits"], 300.0, "{summary}");
        // 250 km beyond the allowance, and a damage of 80: 330 owed, 300 from the deposit.
        let res = app.post(&format!("/bookings/{id}/return"), &json!({"odometerKm": 450,
            "damages": [{"description": "Scratch", "amount": 80}]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let back: Value = res.json().await.unwrap();
        assert_eq!(back["status"], "completed");
        let kinds: Vec<&str> = back["lines"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["rental", "extra_km", "damage"]);
        let records = records_until(&app, &token, &id, |r| r.iter().any(|p| p["kind"] == "charge" && p["status"] != "pending")).await;
        let deposit = records.iter().find(|r| r["kind"] == "deposit").unwrap();
        assert_eq!((deposit["status"].as_str(), deposit["capturedAmount"].as_f64()), (Some("captured"), Some(300.0)), "{records:?}");
        let charge = records.iter().find(|r| r["kind"] == "charge").unwrap();
        assert_eq!((charge["status"].as_str(), charge["amount"].as_f64()), (Some("succeeded"), Some(30.0)), "{records:?}");
        reconciles(&app, &token, &id, 20_000 + 25_000 + 8_000).await;

        // Nothing owed: the whole hold is released.
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 300})).await);
        let second = book_paid(&app, pay, &token, &car, 1).await;
        let id = id_of(&second);
        assert_eq!(app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        assert_eq!(app.post(&format!("/bookings/{id}/return"), &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        let records = records_until(&app, &token, &id, |r| r.iter().any(|p| p["kind"] == "deposit" && p["status"] == "released")).await;
        assert!(records.iter().any(|p| p["kind"] == "deposit" && p["status"] == "released"), "{records:?}");
        reconciles(&app, &token, &id, 20_000).await;
        let list = wait_until(&app, &token, 10, |l| l.iter().any(|m| m["kind"] == "deposit_released")).await;
        assert!(list.iter().any(|m| m["kind"] == "deposit_captured"), "{list:?}");
    }
}

payment_test! {
    async fn a_card_declining_later_asks_for_another_and_a_declined_charge_leaves_a_balance(backend, pay) {
        let Some(app) = pay.app(backend, &[]).await else { return };
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 50})).await);
        let booking: Value = app.book(&token, &car, days_ahead(1), 24).await.json().await.unwrap();
        let id = id_of(&booking);
        // Paid; then the saved card is one that declines every charge without the customer.
        assert_eq!(pay.pay(&app, &token, &booking, GOOD).await, Ok(()));
        assert_eq!(pay.save_card(&app, &token, &id, LATER_DECLINED).await, Ok(()));
        let res = app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await;
        let body = assert_error(res, StatusCode::PAYMENT_REQUIRED, "PAYMENT_REQUIRED").await;
        assert_eq!(body["error"]["message"], "Your card was declined.");
        assert_eq!(booking_of(&app, &token, &id).await["status"], "confirmed");
        let records = payments_of(&app, &token, &id).await;
        let deposit = records.iter().find(|r| r["kind"] == "deposit").unwrap();
        assert_eq!((deposit["status"].as_str(), deposit["amount"].as_f64()), (Some("failed"), Some(50.0)), "{records:?}");
        // The desk asks for another card.
        assert_eq!(pay.save_card(&app, &token, &id, GOOD).await, Ok(()));
        assert_eq!(app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        let stranger = app.customer_token().await;
        let res = app.post(&format!("/bookings/{id}/payment-method"), &json!({}), Some(&stranger)).await;
        assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;

        // A car without deposit, the saved card declining later: the charge at return is
        // declined, the booking is completed and owes it.
        let plain = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "name": "Plain"})).await);
        let other: Value = app.book(&token, &plain, days_ahead(1), 24).await.json().await.unwrap();
        let oid = id_of(&other);
        assert_eq!(pay.pay(&app, &token, &other, GOOD).await, Ok(()));
        assert_eq!(pay.save_card(&app, &token, &oid, LATER_DECLINED).await, Ok(()));
        assert_eq!(app.post(&format!("/bookings/{oid}/pickup"), &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        let res = app.post(&format!("/bookings/{oid}/return"), &json!({"damages": [{"description": "Dent", "amount": 40}]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        records_until(&app, &token, &oid, |r| r.iter().any(|p| p["kind"] == "charge" && p["status"] == "failed")).await;
        let now = booking_of(&app, &token, &oid).await;
        assert_eq!((now["status"].as_str(), now["balanceDue"].as_f64()), (Some("completed"), Some(40.0)), "{now}");
        reconciles(&app, &token, &oid, 14_000).await;
        let list = wait_until(&app, &admin, 10, |l| l.iter().any(|m| m["kind"] == "balance_due")).await;
        assert!(list.iter().any(|m| m["kind"] == "balance_due"), "admins are told: {list:?}");
    }
}

db_test! {
    local:
    async fn the_mock_card_that_declines_later_pays_when_the_customer_is_there(backend) {
        let app = mock_app(backend, &[]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 50})).await);
        let booking: Value = app.book(&token, &car, days_ahead(1), 24).await.json().await.unwrap();
        let id = id_of(&booking);
        assert_eq!(confirm(&app, &token, booking["payment"]["id"].as_str().unwrap(), LATER_DECLINED).await.status(), StatusCode::OK);
        let res = app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await;
        assert_error(res, StatusCode::PAYMENT_REQUIRED, "PAYMENT_REQUIRED").await;
        reconciles(&app, &token, &id, 20_000 / 2).await;
    }
}

db_test! {
    async fn a_providers_routes_are_404_where_another_is_in_use(backend) {
        for (provider, absent) in [
            ("none", ["/payments/mock/00000000-0000-4000-8000-000000000000/confirm", "/payments/webhooks/stripe"]),
            ("mock", ["/payments/webhooks/stripe", "/payments/webhooks/stripe"]),
        ] {
            let app = spawn_app_with(backend, &[("PAYMENT_PROVIDER", provider)]).await;
            let token = app.customer_token().await;
            for path in absent {
                let res = app.post(path, &json!({"card": GOOD}), Some(&token)).await;
                assert_error(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
                let res = app.send(Method::GET, path, &json!({}), Some(&token)).await;
                assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{provider}: GET {path}");
            }
        }
    }
}

#[test]
fn payment_settings_are_checked_at_start() {
    for (pairs, named) in [
        (vec![("PAYMENT_PROVIDER", "paypal")], "PAYMENT_PROVIDER"),
        (vec![("PAYMENT_PROVIDER", "stripe")], "STRIPE_SECRET_KEY"),
        (
            vec![
                ("PAYMENT_PROVIDER", "stripe"),
                ("STRIPE_SECRET_KEY", "sk_test_x"),
            ],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (
            vec![("LATE_CANCELLATION_FEE_PERCENT", "101")],
            "LATE_CANCELLATION_FEE_PERCENT",
        ),
    ] {
        let err = test_settings_result(&pairs).unwrap_err();
        assert!(err.contains(named), "{err}");
    }
}

db_test! {
    local:
    async fn a_deposit_held_long_is_authorised_anew_before_it_lapses(backend) {
        // Authorisations lapse at the processor after 7 days; here "long" is a second.
        let app = mock_app(backend, &[("APP__PAYMENTS__REAUTHORIZE_AFTER", "1s"),
                                      ("APP__PAYMENTS__RECONCILE_EVERY", "1s")]).await;
        let admin = app.admin_token().await;
        let token = app.customer_token().await;
        let car = id_of(&app.create_car(&admin, json!({"pricePerDay": 100, "depositAmount": 300})).await);
        let paid = book_paid(&app, Processor::Mock, &token, &car, 1).await;
        let id = id_of(&paid);
        assert_eq!(app.post(&format!("/bookings/{id}/pickup"), &json!({}), Some(&admin)).await.status(), StatusCode::OK);
        let records = records_until(&app, &token, &id, |r| {
            r.iter().any(|p| p["kind"] == "deposit" && p["status"] == "released")
                && r.iter().any(|p| p["kind"] == "deposit" && p["status"] == "authorized")
        }).await;
        let deposits: Vec<&Value> = records.iter().filter(|r| r["kind"] == "deposit").collect();
        assert!(deposits.len() >= 2, "{records:?}");
        assert_eq!(deposits[0]["status"], "released", "the first hold is let go: {records:?}");
        assert_eq!(deposits.last().unwrap()["status"], "authorized", "{records:?}");
        // The return settles from the newest hold.
        let res = app.post(&format!("/bookings/{id}/return"), &json!({"damages": [{"description": "Scratch", "amount": 80}]}), Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let records = records_until(&app, &token, &id, |r| r.iter().any(|p| p["kind"] == "deposit" && p["status"] == "partially_captured")).await;
        assert_eq!(records.iter().filter(|r| r["kind"] == "deposit" && r["capturedAmount"] == 80.0).count(), 1, "{records:?}");
        reconciles(&app, &token, &id, 20_000 + 8_000).await;
    }
}
