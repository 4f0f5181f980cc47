//! SMS: to the log, or through Twilio's Messages API (`POST
//! {base}/2010-04-01/Accounts/{sid}/Messages.json`, form body, basic auth).

use std::time::Duration;

use serde::Deserialize;

use crate::config::{NotificationSettings, SmsProvider};

/// Twilio's codes for a number that will never take a message: not a valid number (21211),
/// unsubscribed with STOP (21610), not a mobile (21614).
const UNREACHABLE: &[i64] = &[21211, 21610, 21614];

pub enum Sms {
    Log,
    Twilio {
        client: reqwest::Client,
        url: String,
        account: String,
        token: String,
        from: String,
    },
}

/// How a send went.
#[derive(Debug, PartialEq, Eq)]
pub enum Texted {
    Sent,
    /// 429, 5xx or no answer: retried like email.
    Retry(String),
    /// The number cannot take messages: failed at once, and it stops counting as verified.
    Unreachable(String),
    /// Refused for another reason (credentials, the sender): retrying will not help.
    Refused(String),
}

/// Twilio's error body.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

impl Sms {
    pub fn from_settings(s: &NotificationSettings) -> Result<Sms, String> {
        match s.sms_provider {
            SmsProvider::Log => Ok(Sms::Log),
            SmsProvider::Twilio => {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .map_err(|e| format!("HTTP client: {e}"))?;
                let base = s.twilio_api_base.trim_end_matches('/');
                url::Url::parse(base).map_err(|e| format!("TWILIO_API_BASE: {e}"))?;
                let account = s.twilio_account_sid.clone();
                Ok(Sms::Twilio {
                    client,
                    url: format!("{base}/2010-04-01/Accounts/{account}/Messages.json"),
                    account,
                    token: s.twilio_auth_token.clone(),
                    from: s.twilio_from.clone(),
                })
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Sms::Log => "log",
            Sms::Twilio { .. } => "twilio",
        }
    }

    pub async fn send(&self, to: &str, body: &str) -> Texted {
        match self {
            Sms::Log => {
                tracing::info!(to = %to, chars = body.chars().count(), "sms (log provider)");
                tracing::debug!(body = ?body, "sms body (log provider)");
                Texted::Sent
            }
            Sms::Twilio {
                client,
                url,
                account,
                token,
                from,
            } => {
                // A Messaging Service SID sends from its pool; anything else is the number.
                let sender = if from.starts_with("MG") { "MessagingServiceSid" } else { "From" };
                let form = [("To", to), (sender, from.as_str()), ("Body", body)];
                let form = match serde_urlencoded::to_string(form) {
                    Ok(form) => form,
                    Err(e) => return Texted::Refused(format!("encoding the SMS: {e}")),
                };
                let answer = client
                    .post(url)
                    .basic_auth(account, Some(token))
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await;
                let res = match answer {
                    Ok(res) => res,
                    Err(e) => return Texted::Retry(format!("Twilio: {e}")),
                };
                let status = res.status();
                if status.is_success() {
                    return Texted::Sent;
                }
                let text = res.text().await.unwrap_or_default();
                let error: Option<TwilioError> = serde_json::from_str(&text).ok();
                let code = error.as_ref().and_then(|e| e.code);
                let said = format!(
                    "Twilio answered {status}: {} ({})",
                    error
                        .and_then(|e| e.message)
                        .unwrap_or_else(|| text.chars().take(200).collect()),
                    code.map_or("no code".into(), |c| c.to_string()),
                );
                match status.as_u16() {
                    429 | 500..=599 => Texted::Retry(said),
                    _ if code.is_some_and(|c| UNREACHABLE.contains(&c)) => Texted::Unreachable(said),
                    _ => Texted::Refused(said),
                }
            }
        }
    }
}
