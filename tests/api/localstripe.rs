//! localstripe, the stateful fake Stripe the test script starts (`TEST_STRIPE_URL`): the
//! server under test talks to it as to Stripe, and the tests play what a browser does with
//! Stripe.js (a card, then the intent's confirmation) and what Stripe sends that localstripe
//! does not (the `setup_intent.succeeded` event), signed as Stripe signs.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

/// The key the server and the tests use (localstripe takes any `sk_test_…`).
pub const SECRET_KEY: &str = "sk_test_carrental";
/// What webhooks are signed with, by localstripe and by the tests.
pub const WEBHOOK_SECRET: &str = "whsec_carrental_tests";

/// localstripe's address, when the test script started one.
pub fn url() -> Option<String> {
    std::env::var("TEST_STRIPE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The settings of a server on localstripe.
pub fn settings(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PAYMENT_PROVIDER", "stripe".into()),
        ("STRIPE_API_BASE", base.to_owned()),
        ("STRIPE_SECRET_KEY", SECRET_KEY.into()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
    ]
}

/// Has localstripe send the payment events to the app's webhook.
pub async fn register_webhook(base: &str, app: &TestApp) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let form = [
        ("url", app.url("/payments/webhooks/stripe")),
        ("secret", WEBHOOK_SECRET.to_owned()),
        ("events[0]", "payment_intent.succeeded".to_owned()),
        ("events[1]", "payment_intent.payment_failed".to_owned()),
        ("events[2]", "payment_intent.canceled".to_owned()),
    ];
    let res = reqwest::Client::new()
        .post(format!("{base}/_config/webhooks/{id}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("a form"))
        .send()
        .await
        .expect("localstripe answers");
    assert_eq!(res.status(), StatusCode::OK, "webhook registered");
}

/// A call to localstripe with the secret key: its status and JSON body.
pub async fn call(base: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let request = if form.is_empty() && !path.ends_with("/confirm") && !path.ends_with("/attach") {
        client.get(format!("{base}{path}"))
    } else {
        client
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("a form"))
    };
    let res = request
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .expect("localstripe answers");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The object id a client secret belongs to (`pi_…_secret_…`), as Stripe.js reads it.
pub fn id_of_secret(secret: &str) -> String {
    secret
        .split("_secret_")
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A card as Stripe.js makes one from the form: a payment method.
async fn card(base: &str, number: &str) -> String {
    let (status, pm) = call(
        base,
        "/v1/payment_methods",
        &[
            ("type", "card"),
            ("card[number]", number),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2034"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pm}");
    pm["id"].as_str().unwrap().to_owned()
}

/// What Stripe.js's confirmCardPayment does with a payment's client secret and a card:
/// `Ok` when paid, `Err((status, message))` when refused (402 for a declined card).
pub async fn pay(base: &str, client_secret: &str, number: &str) -> Result<(), (u16, String)> {
    let intent = id_of_secret(client_secret);
    let (_, current) = call(base, &format!("/v1/payment_intents/{intent}"), &[]).await;
    let pm = card(base, number).await;
    let refused = |status: StatusCode, body: &Value| {
        Err((
            status.as_u16(),
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ))
    };
    // setup_future_usage: the card is the customer's from now on.
    if let Some(customer) = current["customer"].as_str() {
        let (status, body) = call(
            base,
            &format!("/v1/payment_methods/{pm}/attach"),
            &[("customer", customer)],
        )
        .await;
        if status != StatusCode::OK {
            return refused(status, &body);
        }
    }
    let path = format!("/v1/payment_intents/{intent}");
    let (status, body) = call(base, &path, &[("payment_method", &pm)]).await;
    if status != StatusCode::OK {
        return refused(status, &body);
    }
    let (status, body) = call(base, &format!("{path}/confirm"), &[]).await;
    if status != StatusCode::OK {
        return refused(status, &body);
    }
    Ok(())
}

/// What Stripe.js's confirmCardSetup does with a setup's client secret and a card; then
/// Stripe's `setup_intent.succeeded` event (which localstripe does not send) is delivered to
/// the app, signed.
pub async fn save_card(
    base: &str,
    app: &TestApp,
    client_secret: &str,
    number: &str,
) -> Result<(), (u16, String)> {
    let setup = id_of_secret(client_secret);
    let (status, body) = call(
        base,
        &format!("/v1/setup_intents/{setup}/confirm"),
        &[
            ("client_secret", client_secret),
            ("payment_method_data[type]", "card"),
            ("payment_method_data[card][number]", number),
            ("payment_method_data[card][exp_month]", "12"),
            ("payment_method_data[card][exp_year]", "2034"),
            ("payment_method_data[card][cvc]", "123"),
        ],
    )
    .await;
    if status != StatusCode::OK {
        let message = body["error"]["message"].as_str().unwrap_or_default();
        return Err((status.as_u16(), message.to_owned()));
    }
    let res = deliver(app, &event("setup_intent.succeeded", body)).await;
    assert_eq!(res.status(), StatusCode::OK);
    Ok(())
}

/// An event as Stripe writes one.
pub fn event(kind: &str, object: Value) -> Value {
    json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "api_version": "2024-06-20",
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "pending_webhooks": 1,
        "type": kind,
        "data": {"object": object},
    })
}

/// `Stripe-Signature` for a body signed at `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts an event to the app's webhook, signed now with the tests' secret.
pub async fn deliver(app: &TestApp, event: &Value) -> reqwest::Response {
    let body = event.to_string();
    let header = signature(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
    deliver_raw(app, &body, Some(&header)).await
}

pub async fn deliver_raw(app: &TestApp, body: &str, header: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/payments/webhooks/stripe"))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body.to_owned());
    if let Some(header) = header {
        request = request.header("Stripe-Signature", header);
    }
    request.send().await.expect("the app answers")
}
