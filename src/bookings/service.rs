//! Booking rules: no overlap ever, the lifecycle, who may see what; and the `Availability`
//! other modules use.

use actix_web::web;
use chrono::{DateTime, NaiveDateTime, Utc};
use uuid::Uuid;

use super::model::{Booking, BookingRow, CreateBooking, Status};
use super::store::{self, BookingFilter};
use crate::db::{self, Backend, Db, DbConn};
use crate::http::auth::AuthUser;
use crate::http::{violated_constraint, ApiError, Choice, PageRequest, Paginated};
use crate::ports::{Availability, CarSummary, Contact, Interval, OutgoingMessage, Ports};
use crate::telemetry::Metrics;

const OVERLAP: &str = "The car is already booked for part of that time";
/// The PostgreSQL exclusion constraint that makes overlaps impossible.
const NO_OVERLAP_CONSTRAINT: &str = "bookings_no_overlap";

pub struct BookingsService {
    db: Db,
    ports: Ports,
    metrics: web::Data<Metrics>,
}

impl BookingsService {
    pub fn new(db: Db, ports: Ports, metrics: web::Data<Metrics>) -> Self {
        BookingsService { db, ports, metrics }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Books a car. Of any number of simultaneous requests for overlapping times exactly one
    /// wins: PostgreSQL's exclusion constraint refuses the others; on SQLite the transaction
    /// holds the write lock from its start, so the overlap check and the insert are one step.
    pub async fn create(&self, user: AuthUser, input: CreateBooking) -> Result<Booking, ApiError> {
        let now = db::now();
        let req = input.validate(now).map_err(ApiError::Validation)?;
        let (catalog, users, notifier) = (
            self.ports.catalog.clone(),
            self.ports.users.clone(),
            self.ports.notifier.clone(),
        );
        let result = self
            .db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    let car = catalog
                        .car_for_booking(conn, req.car_id)?
                        .filter(|c| !c.deleted)
                        .ok_or(ApiError::NotFound)?;
                    if !car.is_active {
                        return Err(ApiError::conflict("The car is not available for booking"));
                    }
                    let row = BookingRow::new(user.id, &req, &car, now);
                    if conn.backend() == Backend::Sqlite
                        && store::overlaps(conn, &row.car_id, row.pickup_time, row.dropoff_time)?
                    {
                        return Err(ApiError::conflict(OVERLAP));
                    }
                    store::insert(conn, &row).map_err(|e| {
                        if violated_constraint(&e) == Some(NO_OVERLAP_CONSTRAINT) {
                            ApiError::conflict(OVERLAP)
                        } else {
                            e.into()
                        }
                    })?;
                    if let Some(contact) = users.contact(conn, user.id)? {
                        notifier.queue(conn, message(&row, &car, &contact, Notice::Confirmed))?;
                    }
                    Ok(row.to_api(Some(&car)))
                })
            })
            .await;
        match &result {
            Ok(_) => self.metrics.bookings_created.inc(),
            Err(ApiError::Conflict(m)) if m == OVERLAP => self.metrics.booking_conflicts.inc(),
            Err(_) => {}
        }
        result
    }

    /// The booking if `user` may see it: its owner or an admin. Anyone else gets 404.
    pub async fn get(&self, user: AuthUser, id: Uuid) -> Result<Booking, ApiError> {
        let catalog = self.ports.catalog.clone();
        self.db
            .run(move |conn| {
                let row = visible(conn, user, id)?;
                let car = catalog.car(conn, row.car_uuid())?;
                Ok(row.to_api(car.as_ref()))
            })
            .await
    }

    pub async fn list(
        &self,
        filter: BookingFilter,
        page: PageRequest,
    ) -> Result<Paginated<Booking>, ApiError> {
        let catalog = self.ports.catalog.clone();
        self.db
            .run(move |conn| {
                let (rows, total) = store::list(conn, &filter, page.offset(), page.limit())?;
                let ids: Vec<Uuid> = rows.iter().map(BookingRow::car_uuid).collect();
                let cars = catalog.cars(conn, &ids)?;
                let data = rows
                    .iter()
                    .map(|r| r.to_api(cars.get(&r.car_uuid())))
                    .collect();
                Ok(page.wrap(data, total))
            })
            .await
    }

    /// Cancels a confirmed booking before its pickup; the slot is free at once.
    pub async fn cancel(&self, user: AuthUser, id: Uuid) -> Result<Booking, ApiError> {
        const WHY: &str = "Only a confirmed booking can be cancelled, and only before pickup";
        self.change(user, id, WHY, store::cancel, Some(Notice::Cancelled))
            .await
    }

    pub async fn pick_up(&self, admin: AuthUser, id: Uuid) -> Result<Booking, ApiError> {
        const WHY: &str = "Only a confirmed booking can be picked up";
        self.change(admin, id, WHY, store::pick_up, None).await
    }

    pub async fn hand_back(&self, admin: AuthUser, id: Uuid) -> Result<Booking, ApiError> {
        const WHY: &str = "Only an active booking can be returned";
        self.change(admin, id, WHY, store::hand_back, None).await
    }

    /// Applies a state change to a booking the caller may see, and tells its renter when
    /// `notice` says so. The store function changes nothing when the booking's state
    /// forbids it: that is a 409 saying `why`.
    async fn change(
        &self,
        user: AuthUser,
        id: Uuid,
        why: &'static str,
        apply: fn(&mut DbConn, &str, NaiveDateTime) -> diesel::QueryResult<usize>,
        notice: Option<Notice>,
    ) -> Result<Booking, ApiError> {
        let (catalog, users, notifier) = (
            self.ports.catalog.clone(),
            self.ports.users.clone(),
            self.ports.notifier.clone(),
        );
        self.db
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    let row = visible(conn, user, id)?;
                    if apply(conn, &row.id, db::to_db(db::now()))? == 0 {
                        return Err(ApiError::conflict(why));
                    }
                    let row = store::get(conn, &row.id)?.ok_or(ApiError::NotFound)?;
                    let car = catalog.car(conn, row.car_uuid())?;
                    let renter = Uuid::parse_str(&row.user_id).unwrap_or_default();
                    if let (Some(notice), Some(car)) = (notice, &car) {
                        if let Some(contact) = users.contact(conn, renter)? {
                            notifier.queue(conn, message(&row, car, &contact, notice))?;
                        }
                    }
                    Ok(row.to_api(car.as_ref()))
                })
            })
            .await
    }
}

#[derive(Debug, Clone, Copy)]
enum Notice {
    Confirmed,
    Cancelled,
}

/// What the renter is told: the booking id, the car, the times in UTC and the price.
fn message(row: &BookingRow, car: &CarSummary, to: &Contact, notice: Notice) -> OutgoingMessage {
    let (kind, subject, headline) = match notice {
        Notice::Confirmed => (
            "booking_confirmed",
            "Booking confirmed",
            "Your booking is confirmed.",
        ),
        Notice::Cancelled => (
            "booking_cancelled",
            "Booking cancelled",
            "Your booking has been cancelled.",
        ),
    };
    let time = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M UTC").to_string();
    OutgoingMessage::new(
        Uuid::parse_str(&row.user_id).unwrap_or_default(),
        kind,
        &to.email,
        format!("{subject}: {}", car.name),
        &[
            format!("Hello {},", to.name.as_deref().unwrap_or(&to.email)),
            headline.to_owned(),
            format!("Booking: {}", row.id),
            format!("Car: {}", car.name),
            format!("Pickup: {}", time(row.pickup_time)),
            format!("Dropoff: {}", time(row.dropoff_time)),
            format!("Days: {}", row.days),
            format!(
                "Total: {:.2} {}",
                crate::money::to_major(row.total_price),
                row.currency
            ),
        ],
    )
}

fn visible(conn: &mut DbConn, user: AuthUser, id: Uuid) -> Result<BookingRow, ApiError> {
    store::get(conn, &id.to_string())?
        .filter(|row| user.is_admin() || row.user_id == user.id.to_string())
        .ok_or(ApiError::NotFound)
}

/// The in-process `Availability`.
pub struct Schedule;

impl Availability for Schedule {
    fn busy_cars(
        &self,
        conn: &mut DbConn,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, ApiError> {
        Ok(store::busy_cars(conn, db::to_db(from), db::to_db(to))?
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect())
    }

    fn busy_intervals(
        &self,
        conn: &mut DbConn,
        car_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Interval>, ApiError> {
        Ok(
            store::busy_intervals(conn, &car_id.to_string(), db::to_db(from), db::to_db(to))?
                .into_iter()
                .map(|(s, e)| (db::from_db(s), db::from_db(e)))
                .collect(),
        )
    }

    fn has_upcoming_booking(
        &self,
        conn: &mut DbConn,
        car_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        Ok(store::has_upcoming(
            conn,
            &car_id.to_string(),
            db::to_db(now),
        )?)
    }
}

/// `status` as a filter value.
pub fn status_filter(raw: &str) -> Result<&'static str, String> {
    Status::parse(raw).map(Choice::name)
}
