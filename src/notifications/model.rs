//! Notification types: messages as listed, push subscriptions.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::{Insertable, Queryable, Selectable};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use diesel::deserialize::FromSqlRow;
use diesel::expression::AsExpression;

use crate::ids::{MessageId, SubscriptionId, UserId};
use crate::ports::MessageStatus;

use crate::db::from_db;
use crate::db::schema::{messages, push_subscriptions};
use crate::error::FieldError;
use crate::http::schema;
use crate::http::Choice;
use crate::messages::preferences::{preference_kinds, Channel};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: MessageId,
    pub user_id: UserId,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub status: MessageStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// A message as `GET /notifications` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[schema(value_type = uuid::Uuid)]
    pub id: MessageId,
    #[schema(example = "booking_confirmed")]
    pub kind: String,
    #[schema(example = "email")]
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    #[schema(value_type = String, example = "sent")]
    pub status: MessageStatus,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl MessageRow {
    pub fn to_api(&self) -> Message {
        Message {
            id: self.id,
            kind: self.kind.clone(),
            channel: self.channel.clone(),
            recipient: self.recipient.clone(),
            subject: self.subject.clone(),
            status: self.status,
            attempts: self.attempts,
            created_at: from_db(self.created_at),
            sent_at: self.sent_at.map(from_db),
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, AsExpression, FromSqlRow,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Platform {
    Web,
    Ios,
    Android,
}

impl Choice for Platform {
    const ALL: &'static [(&'static str, Self)] = &[
        ("web", Self::Web),
        ("ios", Self::Ios),
        ("android", Self::Android),
    ];
}

crate::stored_as_name!(Platform);

/// A device to push to. `ios`/`android`: `{"platform", "token"}`; `web`: the browser's
/// `PushSubscription` JSON `{"platform": "web", "endpoint", "keys": {"p256dh", "auth"}}`.
/// The same token or endpoint again is the same subscription (a browser's keys updated).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRequest {
    pub token: Option<String>,
    pub platform: Option<String>,
    pub endpoint: Option<String>,
    pub keys: Option<PushKeys>,
}

impl utoipa::PartialSchema for SubscribeRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let base64url = |what: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z0-9_-]+={0,2}$"))
                .description(Some(what))
        };
        let device = ObjectBuilder::new()
            .title(Some("A phone"))
            .property("platform", schema::names_schema(&["ios", "android"]))
            .required("platform")
            .property("token", schema::text_schema::<4096>())
            .required("token");
        let keys = ObjectBuilder::new()
            .property("p256dh", base64url("The browser's P-256 public key, 65 bytes (uncompressed point), base64url"))
            .required("p256dh")
            .property("auth", base64url("The 16-byte authentication secret, base64url"))
            .required("auth");
        let browser = ObjectBuilder::new()
            .title(Some("A browser's PushSubscription"))
            .property("platform", schema::names_schema(&["web"]))
            .required("platform")
            .property(
                "endpoint",
                ObjectBuilder::new().schema_type(Type::String).max_length(Some(4096)).description(Some(
                    "The push service URL: https://, or http://127.0.0.1 / localhost outside production",
                )),
            )
            .required("endpoint")
            .property("keys", keys)
            .required("keys");
        utoipa::openapi::schema::Schema::from(OneOfBuilder::new().item(device).item(browser)).into()
    }
}

impl utoipa::ToSchema for SubscribeRequest {}

/// A browser's keys, base64url.
#[derive(Debug, Clone, Deserialize)]
pub struct PushKeys {
    pub p256dh: Option<String>,
    pub auth: Option<String>,
}

/// A subscription asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub platform: Platform,
    /// The device token or the endpoint.
    pub token: String,
    pub keys: Option<(String, String)>,
}

impl SubscribeRequest {
    /// `plain_http`: whether `http://` endpoints on this machine are allowed (not in production).
    pub fn validate(&self, plain_http: bool) -> Result<NewSubscription, Vec<FieldError>> {
        let token = || match self.token.as_deref() {
            None => Err(FieldError::new("token", "is required")),
            Some(t) => schema::text(t, 4096).map_err(|m| FieldError::new("token", m)),
        };
        let platform = match self.platform.as_deref() {
            None => Err(FieldError::new("platform", "is required")),
            Some(p) => Platform::parse(p).map_err(|m| FieldError::new("platform", m)),
        };
        let platform = match platform {
            Ok(p) => p,
            // Without a platform the body is judged as a device's (a token), unless it
            // holds a browser's endpoint.
            Err(e) if self.endpoint.is_none() => {
                return Err([token().err(), Some(e)].into_iter().flatten().collect())
            }
            Err(e) => return Err(vec![e]),
        };
        if platform != Platform::Web {
            return token()
                .map(|token| NewSubscription { platform, token, keys: None })
                .map_err(|e| vec![e]);
        }
        let mut errors = Vec::new();
        let endpoint = match self.endpoint.as_deref().map(str::trim) {
            None => {
                errors.push(FieldError::new("endpoint", "is required"));
                None
            }
            Some(e) => match endpoint(e, plain_http) {
                Ok(()) => Some(e.to_owned()),
                Err(m) => {
                    errors.push(FieldError::new("endpoint", m));
                    None
                }
            },
        };
        let keys = self.keys.as_ref();
        let p256dh = keys.and_then(|k| k.p256dh.clone());
        let auth = keys.and_then(|k| k.auth.clone());
        match (&p256dh, &auth) {
            (Some(p), Some(a)) => {
                if let Err((field, m)) = super::push::check_keys(p, a) {
                    errors.push(FieldError::new(field, m));
                }
            }
            _ => {
                if p256dh.is_none() {
                    errors.push(FieldError::new("keys.p256dh", "is required"));
                }
                if auth.is_none() {
                    errors.push(FieldError::new("keys.auth", "is required"));
                }
            }
        }
        match (endpoint, p256dh, auth) {
            (Some(token), Some(p), Some(a)) if errors.is_empty() => Ok(NewSubscription {
                platform,
                token,
                keys: Some((p, a)),
            }),
            _ => Err(errors),
        }
    }
}

/// A push service's URL: `https://`, or `http://` to this machine when allowed.
fn endpoint(text: &str, plain_http: bool) -> Result<(), String> {
    if text.len() > 4096 {
        return Err("must be at most 4096 characters".into());
    }
    let url = url::Url::parse(text).map_err(|_| "must be an https:// URL".to_owned())?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if plain_http && local => Ok(()),
        _ => Err("must be an https:// URL".into()),
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = push_subscriptions)]
pub struct SubscriptionRow {
    pub id: SubscriptionId,
    pub user_id: UserId,
    /// A device token, or a browser's endpoint.
    pub token: String,
    pub platform: Platform,
    pub created_at: NaiveDateTime,
    /// A browser's keys (base64url).
    pub p256dh: Option<String>,
    pub auth: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[schema(value_type = uuid::Uuid)]
    pub id: SubscriptionId,
    pub platform: Platform,
    pub created_at: DateTime<Utc>,
}

impl SubscriptionRow {
    pub fn to_api(&self) -> Subscription {
        Subscription {
            id: self.id,
            platform: self.platform,
            created_at: from_db(self.created_at),
        }
    }
}

/// The choices of a `PATCH /me/notification-preferences` body, checked: every channel and
/// kind known, every value a boolean.
pub fn preference_choices(
    body: &serde_json::Value,
) -> Result<Vec<(Channel, &'static str, bool)>, Vec<FieldError>> {
    let Some(channels) = body.as_object() else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut choices = Vec::new();
    let mut errors = Vec::new();
    for (name, kinds) in channels {
        let Ok(channel) = Channel::parse(name) else {
            errors.push(FieldError::new(name.clone(), "must be one of: email, sms, push"));
            continue;
        };
        let Some(kinds) = kinds.as_object() else {
            errors.push(FieldError::new(name.clone(), "must be an object of kind: true|false"));
            continue;
        };
        for (kind, on) in kinds {
            let field = format!("{name}.{kind}");
            match (preference_kinds().find(|k| k == kind), on.as_bool()) {
                (None, _) => errors.push(FieldError::new(field, "is not a kind of message one can turn off")),
                (_, None) => errors.push(FieldError::new(field, "must be true or false")),
                (Some(kind), Some(on)) => choices.push((channel, kind, on)),
            }
        }
    }
    if errors.is_empty() {
        Ok(choices)
    } else {
        Err(errors)
    }
}
