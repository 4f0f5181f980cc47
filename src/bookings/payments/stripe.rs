//! `PAYMENT_PROVIDER=stripe`: Stripe's REST API at `STRIPE_API_BASE`, called with the one
//! HTTP client the server has (reqwest), form-encoded as Stripe takes it, in the API version
//! pinned here; and Stripe's webhook, verified as Stripe signs it. DESIGN.md says why this
//! is a few calls by hand rather than a generated SDK.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::Sha256;

use super::provider::{
    Capture, Intent, IntentStatus, NewIntent, Notification, PaymentProvider, ProviderError,
    ProviderRefund, RefundState, SetupIntent,
};
use super::{Built, Provider};
use crate::bookings::BookingsService;
use crate::config::PaymentSettings;
use crate::error::ApiError;
use crate::ids::UserId;

/// `PAYMENT_PROVIDER=stripe`.
pub const PROVIDER: Provider = Provider {
    name: "stripe",
    paths: &[WEBHOOK],
    build,
};

const WEBHOOK: &str = "/payments/webhooks/stripe";

/// The version of Stripe's API every call is made in (`Stripe-Version`): the objects read
/// here have its shapes. Webhook events come in the endpoint's own version, so the endpoint
/// is made with this one too (docs/operations.md).
pub const API_VERSION: &str = "2024-06-20";

/// How far a webhook's signed time may be from now, either way.
const TOLERANCE_SECONDS: i64 = 300;

fn build(settings: &PaymentSettings) -> anyhow::Result<Built> {
    let stripe = Arc::new(Stripe::new(settings)?);
    let secret = web::Data::new(WebhookSecret(settings.stripe_webhook_secret.clone()));
    Ok(Built {
        port: stripe,
        routes: Arc::new(move |cfg| {
            cfg.service(
                web::resource(WEBHOOK)
                    .app_data(secret.clone())
                    .route(web::post().to(webhook)),
            );
        }),
    })
}

pub(super) struct WebhookSecret(String);

/// Stripe's notification of a change (the raw body is what is signed). Public, without a
/// bearer, never rate-limited: it is verified by its signature instead.
#[utoipa::path(post, path = "/payments/webhooks/stripe", tag = "payments", operation_id = "receiveStripeWebhook",
    params(("Stripe-Signature" = String, Header,
            description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{body}\">[,v1=…]`")),
    request_body(content = serde_json::Value, content_type = "application/json",
                 description = "A Stripe event, exactly as Stripe sent it"),
    responses((status = 200, description = "Applied, or already applied, or of a type this server ignores",
               body = serde_json::Value, example = json!({"received": true})),
              (status = 404, body = crate::error::ErrorBody, description = "The payment provider is not Stripe: the route does not exist"),
              (status = 400, body = crate::error::ErrorBody,
               description = "The signature does not verify or is too old, or the body is not a Stripe event: nothing changed")))]
pub(super) async fn webhook(
    bookings: web::Data<BookingsService>,
    secret: web::Data<WebhookSecret>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let payments = super::payments(&bookings)?;
    let header = req
        .headers()
        .get("Stripe-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Err(why) = verify(&secret.0, header, &body, crate::time::now().timestamp()) {
        payments.count_webhook("unverified", "rejected");
        return Err(ApiError::field("Stripe-Signature", why));
    }
    let event: Event = serde_json::from_slice(&body)
        .map_err(|e| ApiError::field("body", format!("is not a Stripe event: {e}")))?;
    let notification = event
        .notification()
        .map_err(|e| ApiError::field("data.object", format!("is not what {} carries: {e}", event.kind)))?;
    payments.notify(&event.id, &event.kind, notification).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"received": true})))
}

/// Checks a `Stripe-Signature` header against the raw body: some `v1` is the HMAC-SHA256 of
/// `"{t}.{body}"` under the secret (compared in constant time), and `t` is within
/// [`TOLERANCE_SECONDS`] of `now`.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), &'static str> {
    let mut signed_at = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) if signed_at.is_none() => signed_at = Some(t),
            Some(("t", _)) => return Err("has more than one t"),
            Some(("v1", v1)) => signatures.push(v1),
            Some(_) => {}
            None => return Err("is not a list of key=value pairs"),
        }
    }
    let signed_at = signed_at.ok_or("has no t")?;
    let seconds: i64 = signed_at.parse().map_err(|_| "has a t that is not a time")?;
    if (now - seconds).abs() > TOLERANCE_SECONDS {
        return Err("was signed too long ago (or in the future)");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| "cannot be checked with this secret")?;
    mac.update(signed_at.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = signatures
        .iter()
        .filter_map(|hex_signature| hex::decode(hex_signature).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if matches {
        Ok(())
    } else if signatures.is_empty() {
        Err("has no v1 signature")
    } else {
        Err("does not match the body")
    }
}

/// A Stripe event, as much of it as is read.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: serde_json::Value,
}

impl Event {
    /// What the event says, in the port's terms.
    fn notification(&self) -> Result<Notification, serde_json::Error> {
        let object = || self.data.object.clone();
        Ok(match self.kind.as_str() {
            "payment_intent.succeeded"
            | "payment_intent.payment_failed"
            | "payment_intent.canceled"
            | "payment_intent.amount_capturable_updated" => {
                match serde_json::from_value::<StripeIntent>(object())?.into_intent() {
                    Ok(intent) => Notification::Intent(intent),
                    Err(e) => {
                        tracing::warn!(error = %e, event = %self.id, "stripe: unreadable intent");
                        Notification::Other
                    }
                }
            }
            "setup_intent.succeeded" => {
                match serde_json::from_value::<StripeSetup>(object())?.into_setup() {
                    Ok(setup) => Notification::Setup(setup),
                    Err(e) => {
                        tracing::warn!(error = %e, event = %self.id, "stripe: unreadable setup");
                        Notification::Other
                    }
                }
            }
            "charge.refunded" => {
                let charge: StripeCharge = serde_json::from_value(object())?;
                match charge.payment_intent {
                    Some(intent) => Notification::Refunded {
                        intent,
                        refunded: charge.amount_refunded,
                    },
                    None => Notification::Other,
                }
            }
            "charge.dispute.created" => {
                let dispute: StripeDispute = serde_json::from_value(object())?;
                match dispute.payment_intent {
                    Some(intent) => Notification::Disputed {
                        intent,
                        reason: dispute.reason.unwrap_or_else(|| "general".into()),
                    },
                    None => Notification::Other,
                }
            }
            _ => Notification::Other,
        })
    }
}

/// Stripe at `STRIPE_API_BASE` with the secret key.
pub struct Stripe {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Stripe {
    pub fn new(settings: &PaymentSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Stripe {
            http,
            base: settings.stripe_api_base.trim_end_matches('/').to_owned(),
            key: settings.stripe_secret_key.clone(),
        })
    }

    /// One call: a form body for a POST, `key` as its `Idempotency-Key`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
        key: Option<&str>,
    ) -> Result<T, ProviderError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("Stripe-Version", API_VERSION);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if method == Method::POST {
            let body = serde_urlencoded::to_string(form)
                .map_err(|e| ProviderError::Refused(format!("{path}: {e}")))?;
            request = request
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let unavailable = |e: reqwest::Error| ProviderError::Unavailable(format!("{path}: {e}"));
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(unavailable)?;
        if !(200..300).contains(&status) {
            return Err(error(path, status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Refused(format!("{path}: an answer not understood: {e}")))
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
        key: &str,
    ) -> Result<T, ProviderError> {
        self.call(Method::POST, path, form, Some(key)).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ProviderError> {
        self.call(Method::GET, path, &[], None).await
    }
}

/// An object's id as a path segment: Stripe's ids are letters, digits and underscores.
fn segment(id: &str) -> Result<&str, ProviderError> {
    let fine = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    fine.then_some(id)
        .ok_or_else(|| ProviderError::Refused(format!("not a Stripe id: {id:?}")))
}

/// Stripe's error body: `{"error": {"type", "code", "decline_code", "message", "param"}}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: StripeError,
}

#[derive(Debug, Default, Deserialize)]
struct StripeError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

/// What an error answer means here: a `card_error` (Stripe answers those 402) is the
/// customer's; an `api_error`, a 5xx, a rate limit (429) or a concurrent use of the same
/// idempotency key (409) is Stripe unavailable for now, to try again; anything else is a
/// request Stripe refuses.
fn error(path: &str, status: u16, body: &[u8]) -> ProviderError {
    let e = serde_json::from_slice::<ErrorBody>(body)
        .unwrap_or_default()
        .error;
    let kind = e.kind.as_deref().unwrap_or("unknown");
    let message = e.message.clone().unwrap_or_else(|| format!("HTTP {status}"));
    if kind == "card_error" || status == 402 {
        return ProviderError::Declined(message);
    }
    let detail = format!(
        "{path}: {status} {kind} (code {}, decline_code {}, param {}): {message}",
        e.code.as_deref().unwrap_or("-"),
        e.decline_code.as_deref().unwrap_or("-"),
        e.param.as_deref().unwrap_or("-"),
    );
    if kind == "api_error" || status >= 500 || status == 429 || status == 409 {
        ProviderError::Unavailable(detail)
    } else {
        ProviderError::Refused(detail)
    }
}

/// An id, or the object it names when expanded.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Reference {
    Id(String),
    Object { id: String },
}

impl Reference {
    fn id(self) -> String {
        match self {
            Reference::Id(id) | Reference::Object { id } => id,
        }
    }
}

#[derive(Debug, Deserialize)]
struct StripeIntent {
    id: String,
    status: String,
    amount: i64,
    #[serde(default)]
    amount_received: i64,
    client_secret: Option<String>,
    payment_method: Option<Reference>,
    last_payment_error: Option<LastError>,
}

#[derive(Debug, Deserialize)]
struct LastError {
    message: Option<String>,
}

impl StripeIntent {
    fn into_intent(self) -> Result<Intent, ProviderError> {
        Ok(Intent {
            status: status(&self.status)?,
            id: self.id,
            amount: self.amount,
            amount_received: self.amount_received,
            client_secret: self.client_secret,
            payment_method: self.payment_method.map(Reference::id),
            error: self.last_payment_error.map(|e| {
                e.message
                    .unwrap_or_else(|| "The payment was declined.".into())
            }),
        })
    }
}

#[derive(Debug, Deserialize)]
struct StripeSetup {
    id: String,
    status: String,
    client_secret: Option<String>,
    payment_method: Option<Reference>,
}

impl StripeSetup {
    fn into_setup(self) -> Result<SetupIntent, ProviderError> {
        Ok(SetupIntent {
            status: status(&self.status)?,
            id: self.id,
            client_secret: self.client_secret,
            payment_method: self.payment_method.map(Reference::id),
        })
    }
}

fn status(name: &str) -> Result<IntentStatus, ProviderError> {
    IntentStatus::parse(name)
        .ok_or_else(|| ProviderError::Refused(format!("unknown intent status {name:?}")))
}

#[derive(Debug, Deserialize)]
struct StripeRefund {
    id: String,
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StripeCharge {
    payment_intent: Option<String>,
    #[serde(default)]
    amount_refunded: i64,
}

#[derive(Debug, Deserialize)]
struct StripeDispute {
    payment_intent: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

#[async_trait]
impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn create_customer(&self, user: UserId, key: &str) -> Result<String, ProviderError> {
        let form = [("metadata[user_id]", user.to_string())];
        let made: Created = self.post("/v1/customers", &form, key).await?;
        Ok(made.id)
    }

    async fn create_intent(&self, new: NewIntent<'_>, key: &str) -> Result<Intent, ProviderError> {
        let mut form = vec![
            ("amount", new.amount.to_string()),
            ("currency", new.currency.to_ascii_lowercase()),
            ("customer", new.customer.to_owned()),
            ("payment_method_types[0]", "card".to_owned()),
            (
                "capture_method",
                match new.capture {
                    Capture::Automatic => "automatic",
                    Capture::Manual => "manual",
                }
                .to_owned(),
            ),
            ("metadata[booking_id]", new.booking.to_string()),
        ];
        match new.off_session {
            Some(card) => form.extend([
                ("payment_method", card.to_owned()),
                ("off_session", "true".to_owned()),
                ("confirm", "true".to_owned()),
            ]),
            None => form.push(("setup_future_usage", "off_session".to_owned())),
        }
        let intent: StripeIntent = self.post("/v1/payment_intents", &form, key).await?;
        intent.into_intent()
    }

    async fn intent(&self, id: &str) -> Result<Intent, ProviderError> {
        let path = format!("/v1/payment_intents/{}", segment(id)?);
        self.get::<StripeIntent>(&path).await?.into_intent()
    }

    async fn capture(&self, id: &str, amount: i64, key: &str) -> Result<Intent, ProviderError> {
        let path = format!("/v1/payment_intents/{}/capture", segment(id)?);
        let form = [("amount_to_capture", amount.to_string())];
        self.post::<StripeIntent>(&path, &form, key)
            .await?
            .into_intent()
    }

    async fn cancel(&self, id: &str, key: &str) -> Result<Intent, ProviderError> {
        let path = format!("/v1/payment_intents/{}/cancel", segment(id)?);
        self.post::<StripeIntent>(&path, &[], key)
            .await?
            .into_intent()
    }

    async fn refund(
        &self,
        intent: &str,
        amount: i64,
        key: &str,
    ) -> Result<ProviderRefund, ProviderError> {
        let form = [
            ("payment_intent", segment(intent)?.to_owned()),
            ("amount", amount.to_string()),
        ];
        let refund: StripeRefund = self.post("/v1/refunds", &form, key).await?;
        Ok(ProviderRefund {
            id: refund.id,
            state: match refund.status.as_deref() {
                Some("succeeded") => RefundState::Succeeded,
                Some("failed" | "canceled") => RefundState::Failed,
                _ => RefundState::Pending,
            },
        })
    }

    async fn create_setup(&self, customer: &str, key: &str) -> Result<SetupIntent, ProviderError> {
        let form = [
            ("customer", customer.to_owned()),
            ("usage", "off_session".to_owned()),
            ("payment_method_types[0]", "card".to_owned()),
        ];
        self.post::<StripeSetup>("/v1/setup_intents", &form, key)
            .await?
            .into_setup()
    }

    async fn setup(&self, id: &str) -> Result<SetupIntent, ProviderError> {
        let path = format!("/v1/setup_intents/{}", segment(id)?);
        self.get::<StripeSetup>(&path).await?.into_setup()
    }

    async fn ping(&self) -> Result<(), ProviderError> {
        self.get::<serde_json::Value>("/v1/balance").await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signatures_verify_as_stripe_signs_them() {
        let (secret, body, now) = ("whsec_test", r#"{"id":"evt_1"}"#, 1_700_000_000);
        let good = sign(secret, now, body);
        let other = sign("whsec_other", now, body);
        let ok = |header: &str| verify(secret, header, body.as_bytes(), now);
        assert_eq!(ok(&format!("t={now},v1={good}")), Ok(()));
        // Several v1 (a secret being rolled), other schemes and spaces are fine.
        assert_eq!(ok(&format!("t={now}, v1={other},v0=abc, v1={good}")), Ok(()));
        assert_eq!(ok(&format!("t={now},v1={other}")), Err("does not match the body"));
        assert_eq!(ok(&format!("t={now}")), Err("has no v1 signature"));
        assert_eq!(ok(&format!("v1={good}")), Err("has no t"));
        assert_eq!(ok(""), Err("is not a list of key=value pairs"));
        assert_eq!(ok(&format!("t={now},t={now},v1={good}")), Err("has more than one t"));
        assert_eq!(ok(&format!("t=soon,v1={good}")), Err("has a t that is not a time"));
        assert_eq!(ok(&format!("t={now},v1=zz{good}")), Err("does not match the body"));
        // Five minutes either way, and not a second more.
        for t in [now - 300, now + 300] {
            let header = format!("t={t},v1={}", sign(secret, t, body));
            assert_eq!(ok(&header), Ok(()));
        }
        for t in [now - 301, now + 301] {
            let header = format!("t={t},v1={}", sign(secret, t, body));
            assert_eq!(ok(&header), Err("was signed too long ago (or in the future)"));
        }
        // The signed time is part of what is signed.
        assert_eq!(ok(&format!("t={},v1={good}", now - 1)), Err("does not match the body"));
        let tampered = verify(secret, &format!("t={now},v1={good}"), br#"{"id":"evt_2"}"#, now);
        assert_eq!(tampered, Err("does not match the body"));
    }

    #[test]
    fn errors_are_sorted_as_api_md_says() {
        let body = |kind: &str| format!(r#"{{"error": {{"type": "{kind}", "code": "x", "message": "Said so."}}}}"#);
        let declined = error("/v1/x", 402, body("card_error").as_bytes());
        assert_eq!(declined, ProviderError::Declined("Said so.".into()));
        for (status, kind) in [(500, "api_error"), (503, "unknown"), (429, "invalid_request_error"), (409, "idempotency_error")] {
            let e = error("/v1/x", status, body(kind).as_bytes());
            assert!(matches!(e, ProviderError::Unavailable(_)), "{status} {kind}: {e:?}");
        }
        for (status, kind) in [(400, "invalid_request_error"), (400, "idempotency_error"), (401, "invalid_request_error"), (404, "invalid_request_error")] {
            let e = error("/v1/x", status, body(kind).as_bytes());
            assert!(matches!(e, ProviderError::Refused(_)), "{status} {kind}: {e:?}");
        }
        assert!(matches!(error("/v1/x", 502, b"<html>"), ProviderError::Unavailable(_)));
    }

    #[test]
    fn events_become_notifications() {
        let event = |kind: &str, object: serde_json::Value| Event {
            id: "evt_1".into(),
            kind: kind.into(),
            data: EventData { object },
        };
        let intent = serde_json::json!({"id": "pi_1", "object": "payment_intent", "status": "requires_payment_method",
            "amount": 1000, "amount_received": 0, "client_secret": "pi_1_secret_x", "payment_method": null,
            "last_payment_error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}});
        let Ok(Notification::Intent(read)) = event("payment_intent.payment_failed", intent).notification() else {
            panic!("an intent");
        };
        assert_eq!((read.status, read.error.as_deref()), (IntentStatus::RequiresPaymentMethod, Some("Your card was declined.")));
        let charge = serde_json::json!({"id": "ch_1", "payment_intent": "pi_1", "amount": 1000, "amount_refunded": 400});
        assert_eq!(event("charge.refunded", charge).notification().unwrap(),
                   Notification::Refunded { intent: "pi_1".into(), refunded: 400 });
        let dispute = serde_json::json!({"id": "dp_1", "charge": "ch_1", "payment_intent": "pi_1", "reason": "fraudulent"});
        assert_eq!(event("charge.dispute.created", dispute).notification().unwrap(),
                   Notification::Disputed { intent: "pi_1".into(), reason: "fraudulent".into() });
        assert_eq!(event("customer.created", serde_json::json!({})).notification().unwrap(), Notification::Other);
        assert!(event("charge.refunded", serde_json::json!({"amount_refunded": "lots"})).notification().is_err());
        let expanded = serde_json::json!({"id": "seti_1", "status": "succeeded", "client_secret": null,
            "payment_method": {"id": "pm_1", "object": "payment_method"}});
        let Ok(Notification::Setup(setup)) = event("setup_intent.succeeded", expanded).notification() else {
            panic!("a setup");
        };
        assert_eq!(setup.payment_method.as_deref(), Some("pm_1"));
    }
}
