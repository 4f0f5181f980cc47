//! A small Stripe of our own for what localstripe does not model: `Idempotency-Key` (a
//! retry with the same key and parameters replays the first answer with `Idempotent-Replayed:
//! true`; the same key with other parameters is a 400 `idempotency_error`; a result is kept
//! once the endpoint began, 500s and declines included, not for a request refused by
//! validation) and faults on demand (down, failing, slow, declining). It follows Stripe's API
//! reference for the calls the server makes — form bodies with bracket keys, object shapes and
//! statuses, error bodies — and refuses what Stripe refuses (unknown parameters, a capture or
//! cancel in the wrong state, a refund above what is left). Stripe's own Python library checks
//! it (`tests/stripe/check_stub.py`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// Stripe's test payment methods the stub knows, and what charging them does.
pub const VISA: &str = "pm_card_visa";
pub const INSUFFICIENT_FUNDS: &str = "pm_card_chargeDeclinedInsufficientFunds";

/// What the next matching request meets instead of (or on top of) a normal answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Stripe cannot be reached (a 503 before any endpoint ran: nothing is kept).
    Down,
    /// A 500 `api_error` after the endpoint began: kept under its idempotency key.
    ApiError,
    /// The call is made and kept, but answered after this long.
    Slow(Duration),
    /// A 400 `invalid_request_error` that is not the customer's.
    Refused,
}

/// A request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub key: Option<String>,
    pub version: Option<String>,
    pub replayed: bool,
}

#[derive(Default)]
struct State {
    count: u64,
    customers: HashMap<String, Value>,
    intents: HashMap<String, Value>,
    setups: HashMap<String, Value>,
    /// Results kept by idempotency key: the request's fingerprint, status and body.
    kept: HashMap<String, (String, u16, Value)>,
    faults: VecDeque<(String, Fault)>,
    seen: Vec<Seen>,
    /// What was refunded of each intent.
    refunded: HashMap<String, i64>,
    /// Operations that moved money, as made (not replayed): "capture pi_…", "refund pi_…".
    moved: Vec<String>,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.count += 1;
        format!("{prefix}_stub{:010}", self.count)
    }
}

pub struct StripeStub {
    pub url: String,
    state: Arc<Mutex<State>>,
}

type Answer = (u16, Value);

fn error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: &str,
) -> Answer {
    let mut e = json!({"type": kind, "message": message});
    if let Some(code) = code {
        e["code"] = json!(code);
    }
    if let Some(param) = param {
        e["param"] = json!(param);
    }
    (status, json!({ "error": e }))
}

/// A parameter refused before the endpoint runs (never kept under the key).
struct Invalid(Answer);

fn unknown(param: &str) -> Invalid {
    Invalid(error(
        400,
        "invalid_request_error",
        Some("parameter_unknown"),
        Some(param),
        &format!("Received unknown parameter: {param}"),
    ))
}

fn invalid(param: &str, message: &str) -> Invalid {
    Invalid(error(
        400,
        "invalid_request_error",
        Some("parameter_invalid"),
        Some(param),
        message,
    ))
}

fn missing(param: &str) -> Invalid {
    Invalid(error(
        400,
        "invalid_request_error",
        Some("parameter_missing"),
        Some(param),
        &format!("Missing required param: {param}."),
    ))
}

fn no_such(kind: &str, id: &str, param: &str) -> Answer {
    error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        Some(param),
        &format!("No such {kind}: '{id}'"),
    )
}

/// A form body's fields; `allowed` are names or `prefix[` families.
struct Form(Vec<(String, String)>);

impl Form {
    fn check(&self, allowed: &[&str]) -> Result<(), Invalid> {
        for (name, _) in &self.0 {
            let known = allowed.iter().any(|a| {
                name == a || (a.ends_with('[') && name.starts_with(a) && name.ends_with(']'))
            });
            if !known {
                return Err(unknown(name));
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn family(&self, prefix: &str) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .filter_map(|(n, v)| {
                let key = n
                    .strip_prefix(prefix)?
                    .strip_prefix('[')?
                    .strip_suffix(']')?;
                Some((key.to_owned(), json!(v)))
            })
            .collect()
    }

    fn amount(&self, name: &str) -> Result<Option<i64>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(invalid(name, &format!("Invalid integer: {raw}"))),
            },
        }
    }

    fn flag(&self, name: &str) -> Result<bool, Invalid> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(invalid(name, &format!("Invalid boolean: {other}"))),
        }
    }

    fn choice(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
            Some(_) => Err(invalid(
                name,
                &format!("Invalid {name}: must be one of {}", allowed.join(", ")),
            )),
        }
    }

    fn types(&self) -> Result<Vec<String>, Invalid> {
        let types: Vec<String> = self
            .family("payment_method_types")
            .into_values()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        match types.iter().find(|t| t.as_str() != "card") {
            Some(other) => Err(invalid(
                "payment_method_types",
                &format!("The payment method type {other:?} is invalid."),
            )),
            None if types.is_empty() => Ok(vec!["card".into()]),
            None => Ok(types),
        }
    }
}

impl StripeStub {
    pub async fn start() -> StripeStub {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .default_service(web::to(handle))
        })
        .workers(2)
        .listen(listener)
        .expect("listens")
        .run();
        tokio::spawn(server);
        StripeStub {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next request whose path starts with `path` meets `fault`.
    pub fn fail(&self, path: &str, fault: Fault) {
        self.state().faults.push_back((path.to_owned(), fault));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    pub fn moved(&self) -> Vec<String> {
        self.state().moved.clone()
    }

    /// What a browser does with the client secret: pays the intent with a test card.
    pub fn pay(&self, id: &str, card: &str) -> Value {
        let mut state = self.state();
        let charge = state.id("ch");
        let intent = state.intents.get_mut(id).expect("the intent exists");
        intent["payment_method"] = json!(card);
        intent["latest_charge"] = json!(charge);
        intent["last_payment_error"] = Value::Null;
        let amount = intent["amount"].clone();
        if intent["capture_method"] == "manual" {
            intent["status"] = json!("requires_capture");
            intent["amount_capturable"] = amount;
        } else {
            intent["status"] = json!("succeeded");
            intent["amount_received"] = amount;
        }
        intent.clone()
    }
}

async fn handle(
    state: web::Data<Arc<Mutex<State>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let key = header("Idempotency-Key");
    let authorized = header("Authorization").is_some_and(|a| {
        a.strip_prefix("Bearer sk_test_")
            .is_some_and(|rest| !rest.is_empty())
    });
    let form = Form(serde_urlencoded::from_bytes(&body).unwrap_or_default());
    let fingerprint = format!("{method} {path} {:?}", {
        let mut sorted = form.0.clone();
        sorted.sort();
        sorted
    });
    let (fault, kept) = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let kept = key.as_ref().and_then(|k| s.kept.get(k).cloned());
        s.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            key: key.clone(),
            version: header("Stripe-Version"),
            replayed: kept.as_ref().is_some_and(|(f, _, _)| *f == fingerprint),
        });
        let fault = s
            .faults
            .iter()
            .position(|(prefix, _)| path.starts_with(prefix.as_str()))
            .and_then(|i| s.faults.remove(i))
            .map(|(_, f)| f);
        (fault, kept)
    };
    let respond = |(status, body): Answer, replayed: bool| {
        let mut answer =
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a status"));
        answer.insert_header(("Request-Id", "req_stub"));
        if replayed {
            answer.insert_header(("Idempotent-Replayed", "true"));
        }
        answer.json(body)
    };
    if !authorized {
        return respond(
            error(
                401,
                "invalid_request_error",
                None,
                None,
                "Invalid API Key provided",
            ),
            false,
        );
    }
    if let Some((first, status, body)) = kept {
        if first == fingerprint {
            return respond((status, body), true);
        }
        let message = format!(
            "Keys for idempotent requests can only be used with the same parameters they were \
             first used with. Try using a key other than '{}' if you meant to execute a \
             different request.",
            key.as_deref().unwrap_or_default()
        );
        return respond(error(400, "idempotency_error", None, None, &message), false);
    }
    if matches!(fault, Some(Fault::Down)) {
        return respond(
            error(503, "api_error", None, None, "Stripe is unavailable."),
            false,
        );
    }
    let answer = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = match fault {
            Some(Fault::ApiError) => Ok(error(
                500,
                "api_error",
                None,
                None,
                "An unknown error occurred.",
            )),
            Some(Fault::Refused) => Ok(error(
                400,
                "invalid_request_error",
                Some("account_invalid"),
                None,
                "The account is not set up to take this request.",
            )),
            _ => route(&mut s, &method, &path, &form),
        };
        match outcome {
            Ok(answer) => {
                if let (Some(key), "POST") = (&key, method.as_str()) {
                    s.kept
                        .insert(key.clone(), (fingerprint, answer.0, answer.1.clone()));
                }
                answer
            }
            Err(Invalid(answer)) => answer,
        }
    };
    if let Some(Fault::Slow(delay)) = fault {
        tokio::time::sleep(delay).await;
    }
    respond(answer, false)
}

fn route(s: &mut State, method: &str, path: &str, form: &Form) -> Result<Answer, Invalid> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["v1", "balance"]) => Ok((
            200,
            json!({"object": "balance", "available": [{"amount": 0, "currency": "usd"}],
                   "pending": [], "livemode": false}),
        )),
        ("POST", ["v1", "customers"]) => {
            form.check(&["metadata[", "email", "name", "description"])?;
            let id = s.id("cus");
            let customer = json!({"id": id, "object": "customer", "metadata": form.family("metadata"),
                                  "livemode": false});
            s.customers.insert(id, customer.clone());
            Ok((200, customer))
        }
        ("POST", ["v1", "payment_intents"]) => create_intent(s, form),
        ("GET", ["v1", "payment_intents", id]) => Ok(match s.intents.get(*id) {
            Some(intent) => (200, intent.clone()),
            None => no_such("payment_intent", id, "intent"),
        }),
        ("POST", ["v1", "payment_intents", id, "capture"]) => {
            form.check(&["amount_to_capture", "metadata["])?;
            let take = form.amount("amount_to_capture")?;
            let Some(intent) = s.intents.get_mut(*id) else {
                return Ok(no_such("payment_intent", id, "intent"));
            };
            if intent["status"] != "requires_capture" {
                return Ok(unexpected_state(intent, "captured", "requires_capture"));
            }
            let capturable = intent["amount_capturable"].as_i64().unwrap_or(0);
            let take = take.unwrap_or(capturable);
            if take > capturable {
                return Err(invalid(
                    "amount_to_capture",
                    "The amount to capture must be less than or equal to the amount capturable.",
                ));
            }
            intent["status"] = json!("succeeded");
            intent["amount_received"] = json!(take);
            intent["amount_capturable"] = json!(0);
            let answer = intent.clone();
            s.moved.push(format!("capture {id}"));
            Ok((200, answer))
        }
        ("POST", ["v1", "payment_intents", id, "cancel"]) => {
            form.check(&["cancellation_reason"])?;
            let Some(intent) = s.intents.get_mut(*id) else {
                return Ok(no_such("payment_intent", id, "intent"));
            };
            let cancelable = [
                "requires_payment_method",
                "requires_capture",
                "requires_confirmation",
                "requires_action",
                "processing",
            ];
            if !cancelable.contains(&intent["status"].as_str().unwrap_or_default()) {
                return Ok(unexpected_state(intent, "canceled", &cancelable.join(", ")));
            }
            intent["status"] = json!("canceled");
            intent["amount_capturable"] = json!(0);
            let answer = intent.clone();
            s.moved.push(format!("cancel {id}"));
            Ok((200, answer))
        }
        ("POST", ["v1", "refunds"]) => {
            form.check(&["payment_intent", "charge", "amount", "reason", "metadata["])?;
            let Some(id) = form.get("payment_intent") else {
                return Err(missing("payment_intent"));
            };
            let amount = form.amount("amount")?;
            let refunded = s.refunded.get(id).copied().unwrap_or(0);
            let Some(intent) = s.intents.get(id) else {
                return Ok(no_such("payment_intent", id, "payment_intent"));
            };
            if intent["status"] != "succeeded" {
                return Ok(error(
                    400,
                    "invalid_request_error",
                    Some("charge_not_refundable"),
                    None,
                    "This PaymentIntent does not have a successful charge to refund.",
                ));
            }
            let received = intent["amount_received"].as_i64().unwrap_or(0);
            let amount = amount.unwrap_or(received - refunded);
            if amount > received - refunded {
                return Err(invalid(
                    "amount",
                    &format!(
                        "Refund amount ({amount}) is greater than unrefunded amount on charge ({})",
                        received - refunded
                    ),
                ));
            }
            let (currency, charge) = (intent["currency"].clone(), intent["latest_charge"].clone());
            let id = id.to_owned();
            s.refunded.insert(id.clone(), refunded + amount);
            let refund_id = s.id("re");
            s.moved.push(format!("refund {id} {amount}"));
            Ok((
                200,
                json!({"id": refund_id, "object": "refund", "amount": amount, "currency": currency,
                       "charge": charge, "payment_intent": id, "status": "succeeded"}),
            ))
        }
        ("POST", ["v1", "setup_intents"]) => {
            form.check(&["customer", "usage", "payment_method_types[", "metadata["])?;
            form.choice("usage", &["on_session", "off_session"])?;
            let types = form.types()?;
            let customer = form.get("customer").map(str::to_owned);
            if let Some(c) = &customer {
                if !s.customers.contains_key(c) {
                    return Ok(no_such("customer", c, "customer"));
                }
            }
            let id = s.id("seti");
            let setup = json!({"id": id, "object": "setup_intent", "client_secret": format!("{id}_secret_stub"),
                "customer": customer, "payment_method": null, "payment_method_types": types,
                "status": "requires_payment_method", "usage": form.get("usage").unwrap_or("off_session"),
                "last_setup_error": null, "livemode": false});
            s.setups.insert(id, setup.clone());
            Ok((200, setup))
        }
        ("GET", ["v1", "setup_intents", id]) => Ok(match s.setups.get(*id) {
            Some(setup) => (200, setup.clone()),
            None => no_such("setup_intent", id, "intent"),
        }),
        _ => Ok(error(
            404,
            "invalid_request_error",
            None,
            None,
            &format!("Unrecognized request URL ({method}: {path})."),
        )),
    }
}

fn unexpected_state(intent: &Value, done: &str, allowed: &str) -> Answer {
    let status = intent["status"].as_str().unwrap_or_default();
    let verb = if done == "captured" {
        "could not be captured"
    } else {
        "cannot be canceled"
    };
    let mut answer = error(
        400,
        "invalid_request_error",
        Some("payment_intent_unexpected_state"),
        None,
        &format!(
            "This PaymentIntent {verb} because it has a status of {status}. Only a \
             PaymentIntent with one of the following statuses may be {done}: {allowed}."
        ),
    );
    answer.1["error"]["payment_intent"] = intent.clone();
    answer
}

fn create_intent(s: &mut State, form: &Form) -> Result<Answer, Invalid> {
    form.check(&[
        "amount",
        "currency",
        "customer",
        "payment_method_types[",
        "capture_method",
        "metadata[",
        "setup_future_usage",
        "payment_method",
        "off_session",
        "confirm",
        "description",
    ])?;
    let amount = form.amount("amount")?.ok_or_else(|| missing("amount"))?;
    let currency = form.get("currency").ok_or_else(|| missing("currency"))?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(invalid(
            "currency",
            &format!("Invalid currency: {currency}."),
        ));
    }
    let capture = form
        .choice(
            "capture_method",
            &["automatic", "automatic_async", "manual"],
        )?
        .unwrap_or_else(|| "automatic".into());
    let future = form.choice("setup_future_usage", &["on_session", "off_session"])?;
    let confirm = form.flag("confirm")?;
    let off_session = form.flag("off_session")?;
    let types = form.types()?;
    if off_session && !confirm {
        return Err(invalid(
            "off_session",
            "off_session can only be used when confirm=true.",
        ));
    }
    let customer = form.get("customer").map(str::to_owned);
    if let Some(c) = &customer {
        if !s.customers.contains_key(c) {
            return Ok(no_such("customer", c, "customer"));
        }
    }
    let method = form.get("payment_method").map(str::to_owned);
    if confirm && method.is_none() {
        return Err(missing("payment_method"));
    }
    if let Some(pm) = &method {
        if !pm.starts_with("pm_") {
            return Ok(no_such("PaymentMethod", pm, "payment_method"));
        }
    }
    let id = s.id("pi");
    let mut intent = json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_received": 0, "capture_method": capture, "client_secret": format!("{id}_secret_stub"),
        "currency": currency, "customer": customer, "last_payment_error": null, "latest_charge": null,
        "metadata": form.family("metadata"), "payment_method": method,
        "payment_method_types": types, "setup_future_usage": future,
        "status": "requires_payment_method", "livemode": false,
    });
    if !confirm {
        s.intents.insert(id, intent.clone());
        return Ok((200, intent));
    }
    let charge = s.id("ch");
    intent["latest_charge"] = json!(charge);
    if method.as_deref() == Some(INSUFFICIENT_FUNDS) {
        let message = "Your card has insufficient funds.";
        intent["last_payment_error"] = json!({"type": "card_error", "code": "card_declined",
            "decline_code": "insufficient_funds", "message": message});
        s.intents.insert(id, intent.clone());
        let mut answer = error(402, "card_error", Some("card_declined"), None, message);
        answer.1["error"]["decline_code"] = json!("insufficient_funds");
        answer.1["error"]["charge"] = json!(charge);
        answer.1["error"]["payment_intent"] = intent;
        return Ok(answer);
    }
    if capture == "manual" {
        intent["status"] = json!("requires_capture");
        intent["amount_capturable"] = json!(amount);
    } else {
        intent["status"] = json!("succeeded");
        intent["amount_received"] = json!(amount);
        s.moved.push(format!("charge {id} {amount}"));
    }
    s.intents.insert(id, intent.clone());
    Ok((200, intent))
}
