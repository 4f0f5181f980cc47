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

/// A device to push to: the same token again is the same subscription.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRequest {
    #[schema(required = true, schema_with = schema::text_schema::<4096>)]
    pub token: Option<String>,
    #[schema(required = true, schema_with = schema::choice_schema::<Platform>)]
    pub platform: Option<String>,
}

impl SubscribeRequest {
    pub fn validate(&self) -> Result<(String, Platform), Vec<FieldError>> {
        let token = match self.token.as_deref() {
            None => Err(FieldError::new("token", "is required")),
            Some(t) => schema::text(t, 4096).map_err(|m| FieldError::new("token", m)),
        };
        let platform = match self.platform.as_deref() {
            None => Err(FieldError::new("platform", "is required")),
            Some(p) => Platform::parse(p).map_err(|m| FieldError::new("platform", m)),
        };
        match (token, platform) {
            (Ok(t), Ok(p)) => Ok((t, p)),
            (t, p) => Err([t.err(), p.err()].into_iter().flatten().collect()),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = push_subscriptions)]
pub struct SubscriptionRow {
    pub id: SubscriptionId,
    pub user_id: UserId,
    pub token: String,
    pub platform: Platform,
    pub created_at: NaiveDateTime,
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
