//! The traits between modules. A module reaches another only through these.
//!
//! The ones another process may answer ([`CarCatalog`], [`Availability`], [`UserDirectory`])
//! are async and take no database connection. Each has two implementations, chosen at
//! start-up: the owning module's own, in-process, when this process serves it; otherwise an
//! HTTP client of the owner's `/internal/...` routes ([`Remote`]), with a timeout, retries and
//! a circuit breaker.
//!
//! [`Notifier`] and [`SearchIndexer`] stay a row written in the caller's transaction (the
//! outbox): every process of a split deployment shares one database, and whichever process
//! serves notifications or search drains them.
//!
//! # Guarantees that cross modules, and how each is kept across processes
//!
//! - **No booking of a deleted or inactive car, and the price at booking time.** Cars and
//!   bookings both take [`lock`] (an advisory lock on the car's id, on the
//!   shared database) in the transaction that decides: cars while it updates or deletes the
//!   car, bookings while it books it. A booking reads the car through [`CarCatalog`] *after*
//!   taking the lock, so it sees the last committed state and price, and no change to the car
//!   commits between that read and the booking's own commit. (On SQLite the write
//!   transaction holds the whole database, which gives the same order.)
//! - **No deletion of a car with a booking to come.** The deletion takes the same lock and
//!   then asks [`Availability::has_upcoming_booking`]; a booking of the car either committed
//!   before (and is seen) or waits for the lock, then reads the car as deleted and is a 404.
//! - **Messages and index updates.** Written in the same transaction as their cause
//!   ([`Notifier`], [`SearchIndexer`]); drained at least once by whichever process serves the
//!   module, so they survive any process stopping.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ids::{BookingId, CarId, MessageId, UploadId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use diesel::deserialize::FromSqlRow;
use diesel::expression::AsExpression;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::{messages, push_subscriptions};
use crate::db::{self, DbConn};
use crate::error::ApiError;
use crate::http::auth::{Accounts, AuthUser};
use crate::http::client::ServiceClient;
use crate::http::oidc::Identity;
use crate::http::Choice;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FuelType {
    Petrol,
    Diesel,
    Electric,
    Hybrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transmission {
    Automatic,
    Manual,
}

impl Choice for FuelType {
    const ALL: &'static [(&'static str, Self)] = &[
        ("petrol", Self::Petrol),
        ("diesel", Self::Diesel),
        ("electric", Self::Electric),
        ("hybrid", Self::Hybrid),
    ];
}

impl Choice for Transmission {
    const ALL: &'static [(&'static str, Self)] =
        &[("automatic", Self::Automatic), ("manual", Self::Manual)];
}

/// What other modules may know of a car.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CarSummary {
    #[schema(value_type = uuid::Uuid)]
    pub id: CarId,
    pub name: String,
    pub images: Vec<String>,
    /// Hundredths of the currency's major unit.
    pub price_per_day_minor: i64,
    pub currency: String,
    pub is_active: bool,
    pub deleted: bool,
    /// The rules beyond the daily price, in minor units.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub pricing: Option<crate::pricing::Pricing>,
    #[serde(default)]
    pub mileage_limit_km_per_day: Option<i64>,
    /// Hundredths.
    #[serde(default)]
    pub extra_km_price_minor: Option<i64>,
    /// Minutes a booking made now holds the car after its dropoff.
    #[serde(default)]
    pub buffer_minutes: i64,
    /// The deposit held at pickup, in hundredths.
    #[serde(default)]
    pub deposit_minor: i64,
    /// The IANA zone its times are written in (`UTC` from a cars process older than it).
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// A car as search needs it: the public JSON and the fields it filters on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CarDocument {
    #[schema(value_type = uuid::Uuid)]
    pub id: CarId,
    /// The car exactly as `GET /cars/{id}` answers it.
    #[schema(value_type = Object)]
    pub json: serde_json::Value,
    pub is_active: bool,
    pub latitude: f64,
    pub longitude: f64,
    pub price_per_day_minor: i64,
    pub fuel_type: String,
    pub transmission: String,
    pub seats: i32,
    /// Name, brand, model and features as normalized words.
    pub search_text: String,
}

/// Cars, as bookings and search need them; answered by cars.
#[async_trait]
pub trait CarCatalog: Send + Sync {
    /// The car, deleted or not; `None` when no such car ever existed.
    async fn car(&self, id: CarId) -> Result<Option<CarSummary>, ApiError>;
    /// Several cars at once, for list pages.
    async fn cars(&self, ids: &[CarId]) -> Result<HashMap<CarId, CarSummary>, ApiError>;
    /// Whole cars as search shows and indexes them; deleted cars are left out.
    async fn documents(&self, ids: &[CarId]) -> Result<HashMap<CarId, CarDocument>, ApiError>;
    /// Ids of undeleted cars after `after`, in id order, `limit` at a time (for reindexing).
    async fn ids_after(&self, after: Option<CarId>, limit: i64) -> Result<Vec<CarId>, ApiError>;
    /// The extras of these codes (withdrawn ones included), by code.
    async fn extra_prices(
        &self,
        codes: &[String],
    ) -> Result<HashMap<String, crate::pricing::ExtraPrice>, ApiError>;
    /// Which of `ids` are completed damage photos of `booking`, each with the key of its
    /// `large` version (what its links open).
    async fn damage_photos(
        &self,
        booking: BookingId,
        ids: &[UploadId],
    ) -> Result<HashMap<UploadId, String>, ApiError>;
    /// Whether the user has a driving licence the desk verified.
    async fn licence_verified(&self, user: UserId) -> Result<bool, ApiError>;
    /// Removes the user's driving licence and its objects (the account is leaving).
    async fn forget_licence(&self, user: UserId) -> Result<(), ApiError>;
}

/// `POST /internal/cars/damage-photos`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DamagePhotos {
    #[schema(value_type = uuid::Uuid)]
    pub booking_id: BookingId,
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub ids: Vec<UploadId>,
}

/// What [`lock`] serialises.
#[derive(Debug, Clone, Copy)]
pub enum Lock {
    /// One car's state: cars holds it while it changes or deletes the car, bookings while
    /// it books it.
    Car(CarId),
    /// One user's bookings, while a booking counts those already held.
    User(UserId),
}

/// Takes a lock until the transaction ends ([`db::lock`]). Take a user's lock before a
/// car's, never the other way round.
pub fn lock(conn: &mut DbConn, what: Lock) -> QueryResult<()> {
    db::lock(
        conn,
        match what {
            Lock::Car(id) => format!("car:{id}"),
            Lock::User(id) => format!("user:{id}"),
        },
    )
}

/// What holds a car for a while.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, AsExpression, FromSqlRow,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = Text)]
pub enum HoldKind {
    /// A booking that is not cancelled; its hold ends after the car's turnaround buffer.
    Booking,
    /// Out of service.
    Block,
}

impl Choice for HoldKind {
    const ALL: &'static [(&'static str, Self)] =
        &[("booking", Self::Booking), ("block", Self::Block)];
}

crate::stored_as_name!(HoldKind);

/// A span the car is held for, half-open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Busy {
    pub start: DateTime<Utc>,
    /// For a booking, its dropoff plus the buffer it was made with.
    pub end: DateTime<Utc>,
    pub kind: HoldKind,
}

/// A car held for part of a window, and when its first hold in the window starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BusyCar {
    #[schema(value_type = uuid::Uuid)]
    pub car_id: CarId,
    pub first_start: DateTime<Utc>,
}

/// The longest turnaround buffer a car may have, in minutes.
pub const MAX_BUFFER_MINUTES: i64 = 1440;

/// Until when a rental ending at `dropoff` holds a car with a turnaround buffer of
/// `buffer_minutes`.
pub fn hold_end(dropoff: DateTime<Utc>, buffer_minutes: i64) -> DateTime<Utc> {
    dropoff + chrono::TimeDelta::minutes(buffer_minutes)
}

/// Which cars are taken when (bookings with their buffers, and blocks); answered by
/// bookings.
#[async_trait]
pub trait Availability: Send + Sync {
    /// Cars with a hold overlapping the half-open window `[from, to)`.
    async fn busy_cars(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BusyCar>, ApiError>;
    /// The holds of one car overlapping `[from, to)`, unclipped, in start order.
    async fn busy_intervals(
        &self,
        car_id: CarId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Busy>, ApiError>;
    /// Whether the car has a confirmed or active booking that has not ended by `now`.
    async fn has_upcoming_booking(
        &self,
        car_id: CarId,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError>;
    /// Whether the booking exists and its car was picked up (`active` or `completed`): the
    /// bookings damage photos may be taken for.
    async fn was_picked_up(&self, booking: BookingId) -> Result<bool, ApiError>;
    /// What keeps the user's account open, if anything: a booking that holds a car
    /// (`pending_payment`, `active`, or `confirmed` with its dropoff ahead), a deposit held,
    /// or a balance due.
    async fn outstanding(&self, user: UserId) -> Result<Option<String>, ApiError>;
    /// What bookings keeps about the user: `{"bookings": [...], "payments": [...]}`.
    async fn personal_data(&self, user: UserId) -> Result<serde_json::Value, ApiError>;
}

/// `POST /internal/users/oidc`: an identity provider's user, and whether their token makes
/// them an admin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcUser {
    pub identity: Identity,
    pub admin: bool,
}

/// Who users are; answered by auth. (Whether one still exists, every authenticated request
/// asks through [`Accounts`].)
#[async_trait]
pub trait UserDirectory: Accounts {
    async fn contact(&self, user_id: UserId) -> Result<Option<Contact>, ApiError>;
    /// The number stops counting as verified, if it is still the user's: an SMS provider
    /// refused it for good (invalid, unsubscribed, a landline). Whether it was.
    async fn phone_unreachable(&self, user: UserId, phone: &str) -> Result<bool, ApiError>;
    /// Every admin, with how to reach them (messages for the desk: a balance due, a
    /// dispute).
    async fn admins(&self) -> Result<Vec<(UserId, Contact)>, ApiError>;
}

pub use crate::messages::{Contact, Locale, OutgoingMessage};

/// Where a message stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, AsExpression, FromSqlRow,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = Text)]
pub enum MessageStatus {
    /// Not delivered yet (retries included).
    Pending,
    Sent,
    /// Given up on after the last attempt.
    Failed,
}

impl Choice for MessageStatus {
    const ALL: &'static [(&'static str, Self)] = &[
        ("pending", Self::Pending),
        ("sent", Self::Sent),
        ("failed", Self::Failed),
    ];
}

crate::stored_as_name!(MessageStatus);

/// Queues messages; notifications delivers them.
pub trait Notifier: Send + Sync {
    /// Writes the messages within the caller's transaction.
    fn queue_all(&self, conn: &mut DbConn, messages: Vec<OutgoingMessage>) -> Result<(), ApiError>;
    /// Writes the message within the caller's transaction.
    fn queue(&self, conn: &mut DbConn, message: OutgoingMessage) -> Result<(), ApiError> {
        self.queue_all(conn, vec![message])
    }
    /// The user's messages (a security message without its body) and push subscriptions:
    /// `{"messages": [...], "subscriptions": [...]}`.
    fn personal_data(&self, conn: &mut DbConn, user: UserId)
        -> Result<serde_json::Value, ApiError>;
    /// Deletes the user's push subscriptions and notification preferences, in the caller's
    /// transaction (the account is leaving; its messages stay, as the record of what was
    /// sent).
    fn forget(&self, conn: &mut DbConn, user: UserId) -> Result<(), ApiError>;
}

/// Messages carrying a secret (a link or a code): their body is kept only until it is sent
/// (or given up on), and no route ever shows it.
pub const SECURITY_MESSAGES: &[&str] = &["verify_email", "password_reset", "phone_code"];

/// The outbox topic of messages to deliver.
pub const MESSAGE_TOPIC: &str = "email";

/// Writes the message and its delivery job within the caller's transaction: if the change
/// rolls back, so does the message; if it commits, the message will go out. Every process
/// has it, whether or not it serves notifications.
pub struct MessageQueue;

impl Notifier for MessageQueue {
    /// One message per channel the recipient can be reached on and wants this kind on. Each
    /// recipient's choices are read once, and every message and its job are one statement
    /// each, however many messages there are.
    fn queue_all(&self, conn: &mut DbConn, all: Vec<OutgoingMessage>) -> Result<(), ApiError> {
        use crate::messages::preferences::{wanted, Channel, SECURITY_KINDS};
        let mut recipients: HashMap<UserId, Recipient> = HashMap::new();
        for m in all.iter().filter(|m| !SECURITY_KINDS.contains(&m.kind)) {
            if let std::collections::hash_map::Entry::Vacant(entry) = recipients.entry(m.user_id) {
                let kinds: Vec<&str> = all
                    .iter()
                    .filter(|o| o.user_id == m.user_id)
                    .map(|o| o.kind)
                    .collect();
                let wants = wanted(conn, m.user_id, &kinds)?;
                entry.insert(Recipient {
                    wants,
                    devices: None,
                });
            }
        }
        let now = db::to_db(crate::time::now());
        let mut rows: Vec<NewMessage> = Vec::new();
        for m in &all {
            let rendered = m.rendered().map_err(ApiError::internal)?;
            let security = SECURITY_KINDS.contains(&m.kind);
            let wants = recipients
                .get(&m.user_id)
                .and_then(|r| r.wants.get(m.kind))
                .cloned()
                .unwrap_or_default();
            let mut row = |channel: Channel, recipient: String, text: String, html: String| {
                rows.push(NewMessage {
                    id: MessageId::random(),
                    user_id: m.user_id,
                    kind: m.kind,
                    channel: channel.name(),
                    recipient,
                    subject: rendered.subject.clone(),
                    text_body: text,
                    html_body: html,
                    status: MessageStatus::Pending,
                    attempts: 0,
                    created_at: now,
                    updated_at: now,
                })
            };
            let email_ok = m.kind != "phone_code"
                && !m.to.email.is_empty()
                && (security || wants.contains(&Channel::Email));
            if email_ok {
                row(
                    Channel::Email,
                    m.to.email.clone(),
                    rendered.text.clone(),
                    rendered.html.clone(),
                );
            }
            if let Some(phone) = &m.to.phone {
                let sms_ok = if security {
                    m.kind == "phone_code"
                } else {
                    wants.contains(&Channel::Sms)
                };
                if sms_ok {
                    row(
                        Channel::Sms,
                        phone.clone(),
                        rendered.short.clone(),
                        String::new(),
                    );
                }
            }
            if wants.contains(&Channel::Push) {
                let devices = match recipients.get(&m.user_id).and_then(|r| r.devices) {
                    Some(devices) => devices,
                    None => {
                        let devices = web_push_devices(conn, m.user_id)?;
                        if let Some(r) = recipients.get_mut(&m.user_id) {
                            r.devices = Some(devices);
                        }
                        devices
                    }
                };
                if devices > 0 {
                    let payload = push_payload(m, &rendered.subject, &rendered.short);
                    row(
                        Channel::Push,
                        format!("{devices} device(s)"),
                        payload,
                        String::new(),
                    );
                }
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let insert = diesel::insert_into(messages::table).values(&rows);
        // A statement of many rows is written for one backend at a time.
        match conn {
            DbConn::Pg(c) => insert.execute(c)?,
            DbConn::Sqlite(c) => insert.execute(c)?,
        };
        let jobs: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
        crate::outbox::enqueue_many(conn, MESSAGE_TOPIC, &jobs)?;
        Ok(())
    }

    fn personal_data(
        &self,
        conn: &mut DbConn,
        user: UserId,
    ) -> Result<serde_json::Value, ApiError> {
        type Sent = (
            MessageId,
            String,
            String,
            String,
            String,
            String,
            MessageStatus,
            chrono::NaiveDateTime,
            Option<chrono::NaiveDateTime>,
        );
        let sent: Vec<Sent> = messages::table
            .filter(messages::user_id.eq(user))
            .order((messages::created_at.asc(), messages::id.asc()))
            .select((
                messages::id,
                messages::kind,
                messages::channel,
                messages::recipient,
                messages::subject,
                messages::text_body,
                messages::status,
                messages::created_at,
                messages::sent_at,
            ))
            .load(conn)?;
        let messages: Vec<serde_json::Value> = sent
            .into_iter()
            .map(
                |(id, kind, channel, recipient, subject, text, status, created, sent)| {
                    let body = (!SECURITY_MESSAGES.contains(&kind.as_str())).then_some(text);
                    serde_json::json!({
                        "id": id, "kind": kind, "channel": channel, "recipient": recipient,
                        "subject": subject, "text": body, "status": status,
                        "createdAt": db::from_db(created), "sentAt": sent.map(db::from_db),
                    })
                },
            )
            .collect();
        let subscriptions: Vec<(String, String, String, chrono::NaiveDateTime)> =
            push_subscriptions::table
                .filter(push_subscriptions::user_id.eq(user))
                .order(push_subscriptions::created_at.asc())
                .select((
                    push_subscriptions::id,
                    push_subscriptions::token,
                    push_subscriptions::platform,
                    push_subscriptions::created_at,
                ))
                .load(conn)?;
        let subscriptions: Vec<serde_json::Value> = subscriptions
            .into_iter()
            .map(|(id, token, platform, created)| {
                serde_json::json!({"id": id, "token": token, "platform": platform,
                                   "createdAt": db::from_db(created)})
            })
            .collect();
        Ok(serde_json::json!({"messages": messages, "subscriptions": subscriptions}))
    }

    fn forget(&self, conn: &mut DbConn, user: UserId) -> Result<(), ApiError> {
        diesel::delete(push_subscriptions::table.filter(push_subscriptions::user_id.eq(user)))
            .execute(conn)?;
        use crate::db::schema::notification_preferences as prefs;
        diesel::delete(prefs::table.filter(prefs::user_id.eq(user))).execute(conn)?;
        Ok(())
    }
}

/// What one recipient chose for the kinds being queued, and their browsers, read once.
struct Recipient {
    wants: HashMap<&'static str, Vec<crate::messages::preferences::Channel>>,
    devices: Option<i64>,
}

/// The browsers a user can be pushed to (a `web` token from before browsers' keys were
/// kept cannot be).
fn web_push_devices(conn: &mut DbConn, user: UserId) -> QueryResult<i64> {
    push_subscriptions::table
        .filter(push_subscriptions::user_id.eq(user))
        .filter(push_subscriptions::platform.eq("web"))
        .filter(push_subscriptions::p256dh.is_not_null())
        .count()
        .get_result(conn)
}

#[derive(Insertable)]
#[diesel(table_name = messages)]
struct NewMessage {
    id: MessageId,
    user_id: UserId,
    kind: &'static str,
    channel: &'static str,
    recipient: String,
    subject: String,
    text_body: String,
    html_body: String,
    status: MessageStatus,
    attempts: i32,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

/// A Web Push payload: `{"kind", "title", "body", "url", "bookingId"}`, at most
/// [`PUSH_PAYLOAD_MAX`] bytes (the body is shortened to fit).
fn push_payload(m: &OutgoingMessage, title: &str, body: &str) -> String {
    let make = |body: &str| {
        serde_json::json!({
            "kind": m.kind, "title": title, "body": body,
            "url": m.value("url"), "bookingId": m.value("bookingId"),
        })
        .to_string()
    };
    let mut payload = make(body);
    let mut keep = body.len();
    // Escaping may make the JSON longer than the text it holds: cut until it fits.
    while payload.len() > PUSH_PAYLOAD_MAX && keep > 0 {
        keep = keep.saturating_sub(payload.len() - PUSH_PAYLOAD_MAX + '…'.len_utf8());
        while !body.is_char_boundary(keep) {
            keep -= 1;
        }
        payload = make(&format!("{}…", &body[..keep]));
    }
    payload
}

/// The largest Web Push payload sent, in bytes (API.md).
pub const PUSH_PAYLOAD_MAX: usize = 3000;

/// Hears that a car changed, so search can follow.
pub trait SearchIndexer: Send + Sync {
    /// Records the change within the caller's transaction.
    fn car_changed(&self, conn: &mut DbConn, car_id: CarId) -> Result<(), ApiError>;
}

/// The outbox topic of search index updates.
pub const SEARCH_TOPIC: &str = "search";

/// With OpenSearch: every car change becomes an index job in the change's transaction,
/// drained by whichever process serves search.
pub struct IndexJobs;

impl SearchIndexer for IndexJobs {
    fn car_changed(&self, conn: &mut DbConn, car_id: CarId) -> Result<(), ApiError> {
        crate::outbox::enqueue(conn, SEARCH_TOPIC, &car_id.to_string())?;
        Ok(())
    }
}

/// With the database engine, search reads the cars table itself: nothing to index.
pub struct NoIndex;

impl SearchIndexer for NoIndex {
    fn car_changed(&self, _: &mut DbConn, _: CarId) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The ports a module may answer for the others (its registry line lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// [`CarCatalog`].
    Catalog,
    /// [`Availability`].
    Availability,
    /// [`UserDirectory`].
    Users,
}

/// The implementations this process uses.
#[derive(Clone)]
pub struct Ports {
    pub catalog: Arc<dyn CarCatalog>,
    pub availability: Arc<dyn Availability>,
    pub users: Arc<dyn UserDirectory>,
    pub notifier: Arc<dyn Notifier>,
    pub indexer: Arc<dyn SearchIndexer>,
}

impl Ports {
    /// Every port reached over HTTP, at the service `reach` names for it; start-up then puts
    /// in the in-process implementation of each module this process serves.
    pub fn remote(
        reach: impl Fn(Port) -> Arc<ServiceClient>,
        indexer: Arc<dyn SearchIndexer>,
    ) -> Ports {
        Ports {
            catalog: Arc::new(Remote(reach(Port::Catalog))),
            availability: Arc::new(Remote(reach(Port::Availability))),
            users: Arc::new(Remote(reach(Port::Users))),
            notifier: Arc::new(MessageQueue),
            indexer,
        }
    }
}

/// A port answered by another process, through its `/internal/...` routes.
pub struct Remote(pub Arc<ServiceClient>);

/// Times in internal query strings: RFC 3339 in UTC with a `Z`, nothing to escape.
pub fn query_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The body of the internal batch reads.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Codes {
    pub codes: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ids {
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub ids: Vec<CarId>,
}

#[async_trait]
impl CarCatalog for Remote {
    async fn car(&self, id: CarId) -> Result<Option<CarSummary>, ApiError> {
        self.0.get(&format!("/internal/cars/{id}")).await
    }

    async fn cars(&self, ids: &[CarId]) -> Result<HashMap<CarId, CarSummary>, ApiError> {
        let ids = Ids { ids: ids.to_vec() };
        self.0.read("/internal/cars/summaries", &ids).await
    }

    async fn documents(&self, ids: &[CarId]) -> Result<HashMap<CarId, CarDocument>, ApiError> {
        let ids = Ids { ids: ids.to_vec() };
        self.0.read("/internal/cars/documents", &ids).await
    }

    async fn ids_after(&self, after: Option<CarId>, limit: i64) -> Result<Vec<CarId>, ApiError> {
        let after = after.map(|a| format!("&after={a}")).unwrap_or_default();
        self.0
            .get(&format!("/internal/cars/ids?limit={limit}{after}"))
            .await
    }

    async fn extra_prices(
        &self,
        codes: &[String],
    ) -> Result<HashMap<String, crate::pricing::ExtraPrice>, ApiError> {
        let codes = Codes {
            codes: codes.to_vec(),
        };
        self.0.read("/internal/cars/extras", &codes).await
    }

    async fn damage_photos(
        &self,
        booking: BookingId,
        ids: &[UploadId],
    ) -> Result<HashMap<UploadId, String>, ApiError> {
        let asked = DamagePhotos {
            booking_id: booking,
            ids: ids.to_vec(),
        };
        self.0.read("/internal/cars/damage-photos", &asked).await
    }

    async fn licence_verified(&self, user: UserId) -> Result<bool, ApiError> {
        self.0.get(&format!("/internal/cars/licences/{user}")).await
    }

    async fn forget_licence(&self, user: UserId) -> Result<(), ApiError> {
        // Forgetting twice is forgetting once: safe to retry, as reads are.
        self.0
            .read::<_, bool>(&format!("/internal/cars/licences/{user}/forget"), &())
            .await
            .map(drop)
    }
}

#[async_trait]
impl Availability for Remote {
    async fn busy_cars(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BusyCar>, ApiError> {
        let (from, to) = (query_time(from), query_time(to));
        self.0
            .get(&format!("/internal/bookings/busy-cars?from={from}&to={to}"))
            .await
    }

    async fn busy_intervals(
        &self,
        car_id: CarId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Busy>, ApiError> {
        let (from, to) = (query_time(from), query_time(to));
        self.0
            .get(&format!(
                "/internal/bookings/cars/{car_id}/busy?from={from}&to={to}"
            ))
            .await
    }

    async fn has_upcoming_booking(
        &self,
        car_id: CarId,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        let now = query_time(now);
        self.0
            .get(&format!(
                "/internal/bookings/cars/{car_id}/upcoming?now={now}"
            ))
            .await
    }

    async fn was_picked_up(&self, booking: BookingId) -> Result<bool, ApiError> {
        self.0
            .get(&format!("/internal/bookings/{booking}/picked-up"))
            .await
    }

    async fn outstanding(&self, user: UserId) -> Result<Option<String>, ApiError> {
        self.0
            .get(&format!("/internal/bookings/users/{user}/outstanding"))
            .await
    }

    async fn personal_data(&self, user: UserId) -> Result<serde_json::Value, ApiError> {
        self.0
            .get(&format!("/internal/bookings/users/{user}/data"))
            .await
    }
}

#[async_trait]
impl Accounts for Remote {
    async fn oidc_user(
        &self,
        identity: &Identity,
        admin: bool,
    ) -> Result<Option<UserId>, ApiError> {
        // Finding or making the account again finds the same one: safe to retry.
        let asked = OidcUser {
            identity: identity.clone(),
            admin,
        };
        self.0.read("/internal/users/oidc", &asked).await
    }

    async fn accepts(&self, token: &AuthUser) -> Result<bool, ApiError> {
        let session = token
            .session
            .map(|s| format!("&sid={s}"))
            .unwrap_or_default();
        self.0
            .get(&format!(
                "/internal/users/{}/accepts?iat={}{session}",
                token.id, token.issued_at
            ))
            .await
    }
}

#[async_trait]
impl UserDirectory for Remote {
    async fn contact(&self, user_id: UserId) -> Result<Option<Contact>, ApiError> {
        self.0
            .get(&format!("/internal/users/{user_id}/contact"))
            .await
    }

    async fn phone_unreachable(&self, user: UserId, phone: &str) -> Result<bool, ApiError> {
        // Clearing the flag twice clears it once: safe to retry.
        let body = serde_json::json!({ "phone": phone });
        self.0
            .read(&format!("/internal/users/{user}/phone-unreachable"), &body)
            .await
    }

    async fn admins(&self) -> Result<Vec<(UserId, Contact)>, ApiError> {
        self.0.get("/internal/users/admins").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_payload_is_cut_to_fit() {
        let to = Contact {
            email: "a@x.io".into(),
            name: None,
            email_verified: true,
            phone: None,
            locale: Locale::Fr,
        };
        let m = OutgoingMessage::new(UserId::random(), "booking_confirmed", &to);
        for body in ["é\"<".repeat(2000), "x".repeat(10)] {
            let payload = push_payload(&m, "Title", &body);
            assert!(payload.len() <= PUSH_PAYLOAD_MAX, "{}", payload.len());
            let read: serde_json::Value = serde_json::from_str(&payload).unwrap();
            assert_eq!(read["kind"], "booking_confirmed");
            assert!(body.starts_with(read["body"].as_str().unwrap().trim_end_matches('…')));
        }
    }

    #[test]
    fn the_preferred_supported_language_wins() {
        assert_eq!(
            Locale::from_accept_language("fr-FR,fr;q=0.9,en;q=0.8"),
            Some(Locale::Fr)
        );
        assert_eq!(
            Locale::from_accept_language("de-DE, en;q=0.5, fr;q=0.7"),
            Some(Locale::Fr)
        );
        assert_eq!(Locale::from_accept_language("en-GB"), Some(Locale::En));
        assert_eq!(Locale::from_accept_language("de, fr;q=0"), None);
        assert_eq!(Locale::from_accept_language("*"), None);
    }

    #[test]
    fn a_contact_from_an_auth_without_verification_counts_as_verified() {
        let old: Contact = serde_json::from_str(r#"{"email": "a@x.io", "name": null}"#).unwrap();
        assert!(old.email_verified);
        let new: Contact =
            serde_json::from_str(r#"{"email": "a@x.io", "name": null, "email_verified": false}"#)
                .unwrap();
        assert!(!new.email_verified);
    }
}
