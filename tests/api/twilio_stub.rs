//! A small Twilio of our own (no fake Twilio installs): the Messages API as Twilio's API
//! reference describes it — `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with a
//! form body (`To`, `From` or `MessagingServiceSid`, `Body`) and basic auth, answering 201
//! with a Message resource, `GET …/Messages/{Sid}.json`, and Twilio's error body `{"code",
//! "message", "more_info", "status"}`. Twilio's magic test numbers behave as with test
//! credentials: +15005550001 is not a valid number (21211), +15005550004 is blocked
//! (unsubscribed, 21610), +15005550009 is not a mobile (21614). Faults on demand. Twilio's
//! own Python library checks it (`tests/channels/check_twilio_stub.py`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine;
use serde_json::{json, Value};

pub const ACCOUNT: &str = "AC00000000000000000000000000000001";
pub const TOKEN: &str = "stub-auth-token";
pub const FROM: &str = "+15005550006";

/// The next request to the Messages API meets this instead of a normal answer.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// 503: Twilio is down for a moment.
    Unavailable,
    /// 429 with Twilio's 20429 "Too Many Requests".
    TooMany,
    /// 400 with this Twilio error code, whatever the number.
    Code(i64),
}

/// A message as accepted.
#[derive(Debug, Clone)]
pub struct Texted {
    pub to: String,
    pub body: String,
}

#[derive(Default)]
struct State {
    count: u64,
    messages: HashMap<String, Value>,
    sent: Vec<Texted>,
    faults: VecDeque<Fault>,
}

pub struct TwilioStub {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

fn error(status: u16, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

fn authorised(req: &HttpRequest, account: &str) -> bool {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    account == ACCOUNT
        && req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(format!("Basic {expected}").as_str())
}

fn e164(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    body: String,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let account = path.into_inner();
    if !authorised(&req, &account) {
        return error(401, 20003, "Authenticate");
    }
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let Ok(form) = serde_urlencoded::from_str::<Vec<(String, String)>>(&body) else {
        return error(400, 20001, "Invalid form body");
    };
    if !is_form {
        return error(
            400,
            20001,
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let known = [
        "To",
        "From",
        "MessagingServiceSid",
        "Body",
        "StatusCallback",
    ];
    if let Some((unknown, _)) = form.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return error(400, 20001, &format!("Unknown parameter {unknown}"));
    }
    let Some(to) = field("To") else {
        return error(400, 21604, "A 'To' phone number is required.");
    };
    let from = field("From");
    let service = field("MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return error(
            400,
            21603,
            "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
        );
    }
    let Some(text) = field("Body").filter(|b| !b.is_empty()) else {
        return error(400, 21602, "Message body is required.");
    };
    if text.chars().count() > 1600 {
        return error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    let mut s = state.lock().unwrap();
    match s.faults.pop_front() {
        Some(Fault::Unavailable) => return error(503, 20503, "Service Unavailable"),
        Some(Fault::TooMany) => return error(429, 20429, "Too Many Requests"),
        Some(Fault::Code(code)) => return error(400, code, "Refused by the stub"),
        None => {}
    }
    if !e164(&to) || to == "+15005550001" {
        return error(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if to == "+15005550004" {
        return error(400, 21610, "Attempt to send to unsubscribed recipient");
    }
    if to == "+15005550009" {
        return error(
            400,
            21614,
            &format!("'To' number {to} is not a valid mobile number"),
        );
    }
    s.count += 1;
    let sid = format!("SM{:032x}", s.count);
    let now = chrono::Utc::now().to_rfc2822();
    let segments = text.chars().count().div_ceil(153).max(1);
    let message = json!({
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": text,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media.json")},
        "to": to,
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"),
    });
    s.messages.insert(sid, message.clone());
    s.sent.push(Texted { to, body: text });
    HttpResponse::Created().json(message)
}

async fn fetch(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let (account, sid) = path.into_inner();
    if !authorised(&req, &account) {
        return error(401, 20003, "Authenticate");
    }
    let sid = sid.trim_end_matches(".json").to_owned();
    match state.lock().unwrap().messages.get(&sid) {
        Some(m) => HttpResponse::Ok().json(m),
        None => error(404, 20404, &format!("The requested resource /2010-04-01/Accounts/{account}/Messages/{sid}.json was not found")),
    }
}

impl TwilioStub {
    pub async fn start() -> TwilioStub {
        let state: Arc<Mutex<State>> = Arc::default();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/2010-04-01/Accounts/{account}/Messages.json",
                    web::post().to(create),
                )
                .route(
                    "/2010-04-01/Accounts/{account}/Messages/{sid}",
                    web::get().to(fetch),
                )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind the Twilio stub");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        TwilioStub {
            url: format!("http://127.0.0.1:{port}"),
            state,
            server: handle,
        }
    }

    /// The settings that point the server at this stub.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SMS_PROVIDER", "twilio".into()),
            ("TWILIO_API_BASE", self.url.clone()),
            ("TWILIO_ACCOUNT_SID", ACCOUNT.into()),
            ("TWILIO_AUTH_TOKEN", TOKEN.into()),
            ("TWILIO_FROM", FROM.into()),
        ]
    }

    pub fn fail_next(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    pub fn sent(&self) -> Vec<Texted> {
        self.state.lock().unwrap().sent.clone()
    }

    /// Waits up to `secs` seconds for a message to `to` whose body contains `needle`.
    pub async fn wait_for(&self, to: &str, needle: &str, secs: u64) -> Texted {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(t) = self
                .sent()
                .into_iter()
                .find(|t| t.to == to && t.body.contains(needle))
            {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no SMS to {to} with {needle:?}: {:?}",
                self.sent()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The 6-digit code of the `n`th SMS (from 1) to `to`, waiting up to 10 s for it.
    pub async fn code(&self, to: &str, n: usize) -> String {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let to_them: Vec<Texted> = self.sent().into_iter().filter(|t| t.to == to).collect();
            if let Some(text) = to_them.get(n - 1) {
                return text
                    .body
                    .split(|c: char| !c.is_ascii_digit())
                    .find(|w| w.len() == 6)
                    .unwrap_or_else(|| panic!("no code in {:?}", text.body))
                    .to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no SMS #{n} to {to}: {:?}",
                self.sent()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TwilioStub {
    fn drop(&mut self) {
        let server = self.server.clone();
        tokio::spawn(async move { server.stop(false).await });
    }
}
