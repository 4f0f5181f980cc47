//! Payment types: the ledger's rows (one per movement at the provider), their states, and
//! the answers.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::deserialize::FromSqlRow;
use diesel::expression::AsExpression;
use diesel::prelude::{Insertable, Queryable, Selectable};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::from_db;
use crate::db::schema::{payment_setups, payments};
use crate::http::Choice;
use crate::ids::{BookingId, PaymentId, SetupId, UserId};
use crate::money;

/// What a movement of money is for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, AsExpression, FromSqlRow,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum PaymentKind {
    /// The booking's price, taken when it is reserved.
    Rental,
    /// Held on the card while the car is out, captured in part or released at return.
    Deposit,
    /// What the return added beyond the deposit, or what a late fee left owing.
    Charge,
    /// Money given back.
    Refund,
}

impl Choice for PaymentKind {
    const ALL: &'static [(&'static str, Self)] = &[
        ("rental", Self::Rental),
        ("deposit", Self::Deposit),
        ("charge", Self::Charge),
        ("refund", Self::Refund),
    ];
}

crate::stored_as_name!(PaymentKind);

/// Where a payment record stands. Rentals and charges: pending, succeeded, failed,
/// canceled, refunded, partially refunded; deposits: pending, authorized, captured, partially
/// captured, released, failed; refunds: pending, succeeded, failed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, AsExpression, FromSqlRow,
)]
#[serde(rename_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Canceled,
    Refunded,
    PartiallyRefunded,
    Authorized,
    Captured,
    PartiallyCaptured,
    Released,
}

impl Choice for PaymentStatus {
    const ALL: &'static [(&'static str, Self)] = &[
        ("pending", Self::Pending),
        ("succeeded", Self::Succeeded),
        ("failed", Self::Failed),
        ("canceled", Self::Canceled),
        ("refunded", Self::Refunded),
        ("partially_refunded", Self::PartiallyRefunded),
        ("authorized", Self::Authorized),
        ("captured", Self::Captured),
        ("partially_captured", Self::PartiallyCaptured),
        ("released", Self::Released),
    ];
}

crate::stored_as_name!(PaymentStatus);

impl PaymentStatus {
    /// How far along a record is: a provider's news only ever moves it forward, so an event
    /// that arrives late (a failure after the success) changes nothing.
    pub fn rank(self) -> u8 {
        match self {
            PaymentStatus::Pending => 0,
            PaymentStatus::Failed => 1,
            PaymentStatus::Authorized => 2,
            PaymentStatus::Succeeded
            | PaymentStatus::Canceled
            | PaymentStatus::Captured
            | PaymentStatus::PartiallyCaptured
            | PaymentStatus::Released => 3,
            PaymentStatus::PartiallyRefunded => 4,
            PaymentStatus::Refunded => 5,
        }
    }
}

/// One movement of money at the provider (one per attempt). Amounts in hundredths of the
/// booking's currency.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments)]
pub struct PaymentRow {
    pub id: PaymentId,
    pub booking_id: BookingId,
    pub user_id: UserId,
    pub kind: PaymentKind,
    pub status: PaymentStatus,
    pub amount: i64,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    pub currency: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    /// A refund's payment; a re-authorised deposit's predecessor.
    pub parent_id: Option<PaymentId>,
    pub reason: Option<String>,
    pub client_secret: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl PaymentRow {
    /// A new record, pending, before the provider has heard of it.
    pub fn new(
        kind: PaymentKind,
        booking_id: BookingId,
        user_id: UserId,
        amount: i64,
        currency: &str,
        provider: &str,
        now: NaiveDateTime,
    ) -> Self {
        PaymentRow {
            id: PaymentId::random(),
            booking_id,
            user_id,
            kind,
            status: PaymentStatus::Pending,
            amount,
            captured_amount: 0,
            refunded_amount: 0,
            currency: currency.to_owned(),
            provider: provider.to_owned(),
            provider_ref: None,
            parent_id: None,
            reason: None,
            client_secret: None,
            failure_message: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The key of one call that creates or changes money for this record: the same attempt
    /// retried replays, a new record has a key of its own.
    pub fn key(&self, operation: &str) -> String {
        format!("{}:{operation}", self.id)
    }

    /// What can still be refunded of it.
    pub fn refundable(&self) -> i64 {
        match self.kind {
            PaymentKind::Refund => 0,
            _ => (self.captured_amount - self.refunded_amount).max(0),
        }
    }

    pub fn to_api(&self) -> Payment {
        Payment {
            id: self.id,
            booking_id: self.booking_id,
            kind: self.kind,
            status: self.status,
            amount: money::to_major(self.amount),
            captured_amount: money::to_major(self.captured_amount),
            refunded_amount: money::to_major(self.refunded_amount),
            currency: self.currency.clone(),
            provider: self.provider.clone(),
            provider_ref: self.provider_ref.clone(),
            failure_message: self.failure_message.clone(),
            created_at: from_db(self.created_at),
            updated_at: from_db(self.updated_at),
        }
    }

    /// The booking's `payment`.
    pub fn to_booking_payment(&self) -> BookingPayment {
        BookingPayment {
            id: self.id,
            status: self.status,
            amount: money::to_major(self.amount),
            currency: self.currency.clone(),
            client_secret: self.client_secret.clone(),
            failure_message: self.failure_message.clone(),
        }
    }
}

/// A payment record as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    #[schema(value_type = uuid::Uuid)]
    pub id: PaymentId,
    #[schema(value_type = uuid::Uuid)]
    pub booking_id: BookingId,
    pub kind: PaymentKind,
    pub status: PaymentStatus,
    #[schema(example = 360.0)]
    pub amount: f64,
    pub captured_amount: f64,
    pub refunded_amount: f64,
    pub currency: String,
    /// `mock` or `stripe`.
    pub provider: String,
    /// The provider's id of it (`pi_…`, `re_…`).
    pub provider_ref: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A booking's rental payment, as the booking shows it: what the client confirms with the
/// provider's own libraries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingPayment {
    #[schema(value_type = uuid::Uuid)]
    pub id: PaymentId,
    pub status: PaymentStatus,
    pub amount: f64,
    pub currency: String,
    /// What the provider's client library confirms the payment with.
    pub client_secret: Option<String>,
    /// Why the last attempt was declined.
    pub failure_message: Option<String>,
}

/// A card saved for a booking's later charges (a SetupIntent).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payment_setups)]
pub struct SetupRow {
    pub id: SetupId,
    pub booking_id: BookingId,
    pub user_id: UserId,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub client_secret: Option<String>,
    pub status: PaymentStatus,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// `POST /bookings/{id}/payment-method`: a card to save.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Setup {
    #[schema(value_type = uuid::Uuid)]
    pub id: SetupId,
    pub client_secret: Option<String>,
}

/// `POST /bookings/{id}/refunds`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RefundInput {
    /// More than 0, at most what was captured less what was refunded (else 409).
    #[schema(required = true, value_type = f64, exclusive_minimum = 0.0, maximum = 9_999_999_999_999.99, multiple_of = 0.01)]
    pub amount: Option<f64>,
    #[schema(required = true, schema_with = refund_input_reason_schema)]
    pub reason: Option<String>,
}

crate::http::schema::field_schema!(
    refund_input_reason_schema,
    crate::http::schema::text_schema::<500>(),
    Some("Why, for the records: 1 to 500 characters.")
);

/// What a currency's records add up to over a span (`GET /admin/payments/summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub captured: f64,
    pub refunded: f64,
    /// Captured less refunded.
    pub net: f64,
    /// Deposits authorised and not yet captured or released.
    pub held_deposits: f64,
}
