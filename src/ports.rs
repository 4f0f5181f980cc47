//! The traits between modules. A module reaches another only through these; each has an
//! in-process implementation in the owning module. Where the owning module is not served by
//! this process, [`NotServed`] answers 503 for it.
//!
//! Methods take the caller's connection so that an in-process implementation works inside
//! the caller's transaction (a booking and its confirmation email commit together).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::DbConn;
use crate::http::{ApiError, Choice};
use crate::Module;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FuelType {
    Petrol,
    Diesel,
    Electric,
    Hybrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// A half-open `[start, end)` time interval.
pub type Interval = (DateTime<Utc>, DateTime<Utc>);

/// What other modules may know of a car.
#[derive(Debug, Clone, PartialEq)]
pub struct CarSummary {
    pub id: Uuid,
    pub name: String,
    pub images: Vec<String>,
    /// Hundredths of the currency's major unit.
    pub price_per_day_minor: i64,
    pub currency: String,
    pub is_active: bool,
    pub deleted: bool,
}

/// Cars, as bookings and search need them.
pub trait CarCatalog: Send + Sync {
    /// The car, deleted or not; `None` when no such car ever existed.
    fn car(&self, conn: &mut DbConn, id: Uuid) -> Result<Option<CarSummary>, ApiError>;
    /// The car for a booking about to be written in the caller's transaction: also locks it
    /// (against deletion, and against other bookings of it) until that transaction ends.
    fn car_for_booking(&self, conn: &mut DbConn, id: Uuid) -> Result<Option<CarSummary>, ApiError>;
    /// Several cars at once, for list pages.
    fn cars(&self, conn: &mut DbConn, ids: &[Uuid]) -> Result<HashMap<Uuid, CarSummary>, ApiError>;
    /// Whole cars as search shows and indexes them; deleted cars are left out.
    fn documents(
        &self,
        conn: &mut DbConn,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, CarDocument>, ApiError>;
    /// Ids of undeleted cars after `after`, in id order, `limit` at a time (for reindexing).
    fn ids_after(
        &self,
        conn: &mut DbConn,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Uuid>, ApiError>;
}

/// A car as search needs it: the public JSON and the fields it filters on.
#[derive(Debug, Clone, PartialEq)]
pub struct CarDocument {
    pub id: Uuid,
    /// The car exactly as `GET /cars/{id}` answers it.
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

/// Which cars are taken when, answered by bookings.
pub trait Availability: Send + Sync {
    /// Cars with a non-cancelled booking overlapping the half-open window `[from, to)`.
    fn busy_cars(
        &self,
        conn: &mut DbConn,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, ApiError>;
    /// Non-cancelled bookings of one car overlapping `[from, to)`, unclipped, in start order.
    fn busy_intervals(
        &self,
        conn: &mut DbConn,
        car_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Interval>, ApiError>;
    /// Whether the car has a confirmed or active booking that has not ended by `now`.
    fn has_upcoming_booking(
        &self,
        conn: &mut DbConn,
        car_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError>;
}

/// A message another module wants sent.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub user_id: Uuid,
    pub kind: &'static str,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl OutgoingMessage {
    /// A message whose plain text and HTML say the same lines (the HTML escapes them).
    pub fn new(
        user_id: Uuid,
        kind: &'static str,
        recipient: &str,
        subject: String,
        lines: &[String],
    ) -> Self {
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let html = lines
            .iter()
            .map(|l| format!("<p>{}</p>", escape(l)))
            .collect::<Vec<_>>()
            .join("\n");
        OutgoingMessage {
            user_id,
            kind,
            recipient: recipient.to_owned(),
            subject,
            text: lines.join("\n"),
            html: format!("<!doctype html><html><body>{html}</body></html>"),
        }
    }
}

/// How to reach a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub email: String,
    pub name: Option<String>,
}

/// Who users are, answered by auth.
pub trait UserDirectory: Send + Sync {
    fn contact(&self, conn: &mut DbConn, user_id: Uuid) -> Result<Option<Contact>, ApiError>;
}

/// Queues messages; notifications delivers them.
pub trait Notifier: Send + Sync {
    /// Writes the message within the caller's transaction.
    fn queue(&self, conn: &mut DbConn, message: OutgoingMessage) -> Result<(), ApiError>;
}

/// Hears that a car changed, so search can follow.
pub trait SearchIndexer: Send + Sync {
    /// Records the change within the caller's transaction.
    fn car_changed(&self, conn: &mut DbConn, car_id: Uuid) -> Result<(), ApiError>;
}

/// The outbox topic of search index updates.
pub const SEARCH_TOPIC: &str = "search";

/// With OpenSearch: every car change becomes an index job in the change's transaction,
/// drained by whichever process serves search.
pub struct IndexJobs;

impl SearchIndexer for IndexJobs {
    fn car_changed(&self, conn: &mut DbConn, car_id: Uuid) -> Result<(), ApiError> {
        crate::outbox::enqueue(conn, SEARCH_TOPIC, &car_id.to_string())?;
        Ok(())
    }
}

/// With the database engine, search reads the cars table itself: nothing to index.
pub struct NoIndex;

impl SearchIndexer for NoIndex {
    fn car_changed(&self, _: &mut DbConn, _: Uuid) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Stands in for a module this process does not serve.
pub struct NotServed(pub Module);

impl NotServed {
    fn fail<T>(&self) -> Result<T, ApiError> {
        tracing::warn!(module = self.0.name(), "module not served by this process");
        Err(ApiError::Unavailable)
    }
}

impl CarCatalog for NotServed {
    fn car(&self, _: &mut DbConn, _: Uuid) -> Result<Option<CarSummary>, ApiError> {
        self.fail()
    }
    fn car_for_booking(&self, _: &mut DbConn, _: Uuid) -> Result<Option<CarSummary>, ApiError> {
        self.fail()
    }
    fn cars(&self, _: &mut DbConn, _: &[Uuid]) -> Result<HashMap<Uuid, CarSummary>, ApiError> {
        self.fail()
    }
    fn documents(
        &self,
        _: &mut DbConn,
        _: &[Uuid],
    ) -> Result<HashMap<Uuid, CarDocument>, ApiError> {
        self.fail()
    }
    fn ids_after(&self, _: &mut DbConn, _: Option<Uuid>, _: i64) -> Result<Vec<Uuid>, ApiError> {
        self.fail()
    }
}

impl Availability for NotServed {
    fn busy_cars(
        &self,
        _: &mut DbConn,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, ApiError> {
        self.fail()
    }
    fn busy_intervals(
        &self,
        _: &mut DbConn,
        _: Uuid,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<Interval>, ApiError> {
        self.fail()
    }
    fn has_upcoming_booking(
        &self,
        _: &mut DbConn,
        _: Uuid,
        _: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        self.fail()
    }
}

impl UserDirectory for NotServed {
    fn contact(&self, _: &mut DbConn, _: Uuid) -> Result<Option<Contact>, ApiError> {
        self.fail()
    }
}

impl Notifier for NotServed {
    fn queue(&self, _: &mut DbConn, _: OutgoingMessage) -> Result<(), ApiError> {
        self.fail()
    }
}

/// The implementations this process uses.
#[derive(Clone)]
pub struct Ports {
    pub catalog: Arc<dyn CarCatalog>,
    pub availability: Arc<dyn Availability>,
    pub notifier: Arc<dyn Notifier>,
    pub indexer: Arc<dyn SearchIndexer>,
    pub users: Arc<dyn UserDirectory>,
}
