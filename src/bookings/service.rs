//! Booking rules: no overlap ever, the lifecycle, who may see what, the idempotent create;
//! and the `Availability` other modules use.

use actix_web::http::StatusCode;
use actix_web::{web, ResponseError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::idempotency::{self, Answer};
use super::notice::{message, Notice};
use super::model::{
    rental_days, Block, BlockInput, Booking, BookingFilter, BookingRow, CreateBooking, Handed,
    HandoverInput, HoldRow, Transition,
};
use super::store;
use crate::config::BookingSettings;
use crate::db::{self, Backend, Db, DbConn};
use crate::error::{violated_constraint, ApiError, FieldError};
use crate::http::auth::AuthUser;
use crate::http::{from_json_value, PageRequest, Paginated};
use crate::ids::{BlockId, BookingId, CarId, UploadId, UserId};
use crate::ports::{
    self, Availability, Busy, BusyCar, CarSummary, Contact, Lock, Ports,
};
use crate::telemetry::Metrics;
use crate::{pricing, time};
use std::sync::Arc;

use super::model::{DamagePhoto, Handover, Status};
use crate::storage::Store;
use super::payments::service::{Call, Payments};

const OVERLAP: &str = "The car is booked or blocked for part of that time";
/// The PostgreSQL exclusion constraint that makes overlapping holds impossible.
const NO_OVERLAP_CONSTRAINT: &str = "car_holds_no_overlap";

pub struct BookingsService {
    db: Db,
    ports: Ports,
    metrics: web::Data<Metrics>,
    /// With a payment provider: bookings wait for their payment.
    payments: Option<Arc<Payments>>,
    /// Confirmed bookings still to come a customer may hold.
    max_upcoming: i64,
    /// How long before its pickup time a booking may be picked up.
    pickup_early_window: chrono::Duration,
    require_verified_licence: bool,
    require_verified_email: bool,
    /// Where damage photos are, for the links the booking's answer shows.
    store: Arc<dyn Store>,
}

impl BookingsService {
    pub fn new(
        db: Db,
        ports: Ports,
        metrics: web::Data<Metrics>,
        settings: &BookingSettings,
        payments: Option<Arc<Payments>>,
        store: Arc<dyn Store>,
    ) -> Self {
        BookingsService {
            db,
            ports,
            metrics,
            payments,
            max_upcoming: settings.max_upcoming_per_user,
            pickup_early_window: chrono::Duration::from_std(settings.pickup_early_window)
                .unwrap_or(chrono::Duration::MAX),
            require_verified_licence: settings.require_verified_licence,
            require_verified_email: settings.require_verified_email,
            store,
        }
    }

    /// The schedule as this module answers it (the internal routes serve it).
    pub fn schedule(&self) -> Schedule {
        Schedule::new(self.db.clone())
    }

    /// `POST /bookings` with an `Idempotency-Key`: the first answer to (user, key) is kept
    /// and replayed for the same body, whatever it was (but a 5xx); another body is 422.
    pub async fn create_once(
        &self,
        user: AuthUser,
        key: &str,
        body: serde_json::Value,
        request_id: &str,
    ) -> Result<Answer, ApiError> {
        let hash = idempotency::body_hash(&body);
        let work = async {
            let result = match from_json_value::<CreateBooking>(body) {
                Ok(input) => self.create(user, input).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(booking) => Answer {
                    status: StatusCode::CREATED.as_u16(),
                    body: serde_json::to_string(&booking).unwrap_or_default(),
                },
                Err(e) => Answer {
                    status: e.status_code().as_u16(),
                    body: e.body(request_id).to_string(),
                },
            }
        };
        idempotency::once(&self.db, user.id, key, hash, work).await
    }

    /// Books a car. Of any number of simultaneous requests for overlapping times exactly one
    /// wins: PostgreSQL's exclusion constraint refuses the others; on SQLite the transaction
    /// holds the write lock from its start, so the overlap check and the insert are one step.
    /// The car is read under its lock (see `ports.rs`), so its state and price are the ones
    /// in force when the booking commits.
    pub async fn create(&self, user: AuthUser, input: CreateBooking) -> Result<Booking, ApiError> {
        let now = time::now();
        // Who may book is settled before what they asked for is read.
        let contact = self.ports.users.contact(user.id).await?;
        if self.require_verified_email && !contact.as_ref().is_some_and(|c| c.email_verified) {
            return Err(ApiError::EmailNotVerified);
        }
        let req = input.validate(now).map_err(ApiError::Validation)?;
        // A customer's upcoming bookings are counted under the user's lock, so that
        // simultaneous bookings cannot each see room for one more. Saying no needs no lock:
        // a customer already at the cap is refused before any is taken.
        let cap = (!user.is_admin()).then_some(self.max_upcoming);
        if let Some(cap) = cap {
            let (user_id, at) = (user.id, db::to_db(now));
            let held = self
                .db
                .run(move |conn| Ok(store::upcoming_of(conn, user_id, at)?))
                .await?;
            if held >= cap {
                return Err(at_cap(cap));
            }
        }
        let codes: Vec<String> = req.extras.iter().map(|e| e.code.clone()).collect();
        let catalogue = self.ports.catalog.extra_prices(&codes).await?;
        let result = self
            .in_car_lock(req.car_id, cap.map(|_| user.id), |car| {
                if !car.is_active {
                    return Err(ApiError::conflict("The car is not available for booking"));
                }
                let extras = pricing::extra_lines(
                    &req.extras,
                    &catalogue,
                    &car.currency,
                    rental_days(req.pickup, req.dropoff),
                    pricing::ExtrasField::Body,
                )
                .map_err(ApiError::Validation)?;
                let hold = self.payments.as_ref().map(|p| p.hold());
                let row = BookingRow::new(user.id, &req, &car, extras, now, hold);
                let held = HoldRow::of_booking(&row, &car);
                let notifier = self.ports.notifier.clone();
                let payments = self.payments.clone();
                Ok(move |conn: &mut DbConn| {
                    if let Some(cap) = cap {
                        if store::upcoming_of(conn, row.user_id, db::to_db(now))? >= cap {
                            return Err(at_cap(cap));
                        }
                    }
                    store::insert(conn, &row)?;
                    store::free_expired_holds(conn, row.car_id, db::to_db(now))?;
                    hold_car(conn, &held)?;
                    // With a payment provider it is confirmed when it is paid.
                    let payment = match &payments {
                        Some(payments) => Some(payments.record_rental(conn, &row)?),
                        None => None,
                    };
                    if let (None, Some(contact)) = (hold, &contact) {
                        notifier.queue(conn, message(&row, &car, contact, Notice::Confirmed))?;
                    }
                    Ok((row.to_api(Some(&car)), row, payment))
                })
            })
            .await;
        let result = match (result, &self.payments) {
            (Ok((mut booking, row, Some(record))), Some(payments)) => {
                // The provider could not be reached: the booking is not made.
                let payment = payments.open_rental(&row, record).await?;
                booking.payment = Some(payment.to_booking_payment());
                Ok(booking)
            }
            (result, _) => result.map(|(booking, _, _)| booking),
        };
        match &result {
            Ok(_) => self.metrics.bookings_created.inc(),
            Err(ApiError::Conflict(m)) if m == OVERLAP => self.metrics.booking_conflicts.inc(),
            Err(_) => {}
        }
        result
    }

    /// The bookings with their rental payment (none without a payment provider).
    async fn with_payments(&self, mut bookings: Vec<Booking>) -> Result<Vec<Booking>, ApiError> {
        let Some(payments) = &self.payments else {
            return Ok(bookings);
        };
        let rentals = payments
            .rentals(bookings.iter().map(|b| b.id).collect())
            .await?;
        for booking in &mut bookings {
            booking.payment = rentals
                .iter()
                .find(|p| p.booking_id == booking.id)
                .map(|p| p.to_booking_payment());
        }
        Ok(bookings)
    }

    async fn answer(&self, mut booking: Booking) -> Result<Booking, ApiError> {
        self.link_damage_photos(&mut booking).await?;
        self.with_payments(vec![booking])
            .await?
            .pop()
            .ok_or(ApiError::NotFound)
    }

    /// Every photo a return's damages name must be a completed damage photo of the booking.
    async fn check_damage_photos(&self, id: BookingId, input: &HandoverInput) -> Result<(), ApiError> {
        let named: Vec<(String, UploadId)> = input
            .damages
            .iter()
            .flatten()
            .enumerate()
            .flat_map(|(i, d)| {
                d.photo_ids
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(move |(j, p)| (format!("damages[{i}].photoIds[{j}]"), *p))
            })
            .collect();
        if named.is_empty() {
            return Ok(());
        }
        let ids: Vec<UploadId> = named.iter().map(|(_, p)| *p).collect();
        let found = self.ports.catalog.damage_photos(id, &ids).await?;
        crate::http::check(
            named
                .into_iter()
                .filter(|(_, p)| !found.contains_key(p))
                .map(|(field, _)| {
                    FieldError::new(field, "is not a completed damage photo of this booking")
                })
                .collect(),
        )
    }

    /// Fresh links (5 minutes) to the return's damage photos, for the owner and admins who
    /// read the booking.
    async fn link_damage_photos(&self, booking: &mut Booking) -> Result<(), ApiError> {
        let Some(damages) = booking.handed_back.as_mut().and_then(|r| r.damages.as_mut()) else {
            return Ok(());
        };
        let ids: Vec<UploadId> = damages.iter().flat_map(|d| d.photo_ids.iter().flatten().copied()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let keys = self.ports.catalog.damage_photos(booking.id, &ids).await?;
        for damage in damages {
            damage.photos = damage.photo_ids.as_ref().map(|ids| {
                ids.iter()
                    .filter_map(|id| {
                        let link = self.store.presign_get(keys.get(id)?);
                        Some(DamagePhoto {
                            id: *id,
                            url: link.url,
                            expires_at: link.expires_at,
                        })
                    })
                    .collect()
            });
        }
        Ok(())
    }

    /// The payments of `payments`, for the routes that need them.
    pub fn payments(&self) -> Option<&Arc<Payments>> {
        self.payments.as_ref()
    }

    /// Runs a write on a car that exists and is not deleted, holding the car's lock (and
    /// `user`'s, first, when given) from before the car is read until the write commits.
    /// `decide` sees the car and answers the write (or why there is none).
    async fn in_car_lock<T, W>(
        &self,
        car_id: CarId,
        user: Option<UserId>,
        decide: impl FnOnce(CarSummary) -> Result<W, ApiError>,
    ) -> Result<T, ApiError>
    where
        W: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let mut tx = self.db.begin().await?;
        tx.run(move |conn| {
            if let Some(user) = user {
                ports::lock(conn, Lock::User(user))?;
            }
            Ok(ports::lock(conn, Lock::Car(car_id))?)
        })
        .await?;
        let car = self.live_car(car_id).await?;
        let write = decide(car)?;
        let value = tx.run(write).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// The booking if `user` may see it (its owner or an admin; anyone else gets 404), and
    /// its car as the catalogue has it now.
    async fn visible_with_car(
        &self,
        user: AuthUser,
        id: BookingId,
    ) -> Result<(BookingRow, Option<CarSummary>), ApiError> {
        let row = self.db.run(move |conn| visible(conn, user, id)).await?;
        let car = self.ports.catalog.car(row.car_id).await?;
        Ok((row, car))
    }

    /// The booking if `user` may see it: its owner or an admin. Anyone else gets 404.
    pub async fn get(&self, user: AuthUser, id: BookingId) -> Result<Booking, ApiError> {
        let (row, car) = self.visible_with_car(user, id).await?;
        self.answer(row.to_api(car.as_ref())).await
    }

    /// The booking row if `user` may see it (its owner or an admin; anyone else gets 404).
    pub async fn visible_row(&self, user: AuthUser, id: BookingId) -> Result<BookingRow, ApiError> {
        self.db.run(move |conn| visible(conn, user, id)).await
    }

    pub async fn list(
        &self,
        filter: BookingFilter,
        page: PageRequest,
    ) -> Result<Paginated<Booking>, ApiError> {
        let (rows, total) = self
            .db
            .run(move |conn| Ok(store::list(conn, &filter, page.offset(), page.limit())?))
            .await?;
        let ids: Vec<CarId> = rows.iter().map(|r| r.car_id).collect();
        let cars = self.ports.catalog.cars(&ids).await?;
        let data = rows.iter().map(|r| r.to_api(cars.get(&r.car_id))).collect();
        Ok(page.wrap(self.with_payments(data).await?, total))
    }

    /// Cancels a booking the caller may see (its owner or an admin) and tells its renter. It
    /// changes nothing when the booking's state forbids it: that is a 409 saying why.
    pub async fn cancel(&self, user: AuthUser, id: BookingId) -> Result<Booking, ApiError> {
        let (row, car) = self.visible_with_car(user, id).await?;
        let contact = self.ports.users.contact(row.user_id).await?;
        self.change(row, car, Transition::Cancel, contact, |_| Ok(None))
            .await
    }

    /// Hands the car over (admins): `confirmed` → `active`, with what was recorded. Not
    /// before the booking was made, not earlier than the pickup window allows, and not while
    /// another booking of the car is out (checked under the car's lock).
    pub async fn pick_up(
        &self,
        admin: AuthUser,
        id: BookingId,
        input: HandoverInput,
    ) -> Result<Booking, ApiError> {
        let now = time::now();
        let record = input
            .validate(now, None, false)
            .map_err(ApiError::Validation)?;
        let (row, car) = self.visible_with_car(admin, id).await?;
        if self.require_verified_licence
            && row.status == Status::Confirmed
            && !self.ports.catalog.licence_verified(row.user_id).await?
        {
            return Err(ApiError::conflict(
                "The customer has no verified driving licence (REQUIRE_VERIFIED_LICENCE)",
            ));
        }
        let early = self.pickup_early_window;
        // The deposit is held once the pickup is known to be allowed, and released again if
        // the pickup does not happen after all.
        let deposit = match (&self.payments, &car) {
            (Some(payments), Some(car)) if row.status == Status::Confirmed => {
                pickup_allowed(&row, &record, early)?;
                payments.authorize_deposit(&row, car).await?
            }
            _ => None,
        };
        let picked = self
            .change(row, car, Transition::PickUp, None, move |current| {
                pickup_allowed(current, &record, early)?;
                Ok(Some(Handed {
                    at: db::to_db(record.at),
                    record: serde_json::to_string(&record).unwrap_or_default(),
                    lines: None,
                    total: current.total_price,
                }))
            })
            .await;
        if let (Err(_), Some(deposit)) = (&picked, deposit) {
            self.db
                .write(move |conn| Call::Cancel { payment: deposit.id }.queue(conn))
                .await?;
        }
        picked
    }

    /// Takes the car back (admins): `active` → `completed`. The late fee and the km beyond
    /// the allowance are added to the lines and the total in the same transaction, and the
    /// renter is sent the final lines.
    pub async fn hand_back(
        &self,
        admin: AuthUser,
        id: BookingId,
        input: HandoverInput,
    ) -> Result<Booking, ApiError> {
        let now = time::now();
        let (row, car) = self.visible_with_car(admin, id).await?;
        self.check_damage_photos(id, &input).await?;
        let contact = self.ports.users.contact(row.user_id).await?;
        let summary = car.clone();
        self.change(row, car, Transition::Return, contact, move |current| {
            let record = input
                .validate(now, current.pickup().as_ref(), true)
                .map_err(ApiError::Validation)?;
            let added = current
                .return_lines(&record, summary.as_ref())
                .and_then(|added| Ok((current.total_with(&added)?, added)));
            let (total, added) = added.map_err(|e| ApiError::Validation(vec![e]))?;
            let mut lines = current.lines();
            lines.extend(added);
            Ok(Some(Handed {
                at: db::to_db(record.at),
                record: serde_json::to_string(&record).unwrap_or_default(),
                lines: serde_json::to_string(&lines).ok(),
                total,
            }))
        })
        .await
    }

    /// Moves `row` along `t` in one transaction holding the car's lock: `handover` sees the
    /// booking as it is then and answers what the handover writes (or why there is none);
    /// the state must still be the one `t` leaves (else a 409), and for a pickup no other
    /// booking of the car may be out. The renter is told of a cancellation or a return.
    async fn change(
        &self,
        row: BookingRow,
        car: Option<CarSummary>,
        t: Transition,
        contact: Option<Contact>,
        handover: impl FnOnce(&BookingRow) -> Result<Option<Handed>, ApiError> + Send + 'static,
    ) -> Result<Booking, ApiError> {
        let notifier = self.ports.notifier.clone();
        let payments = self.payments.clone();
        let answer_car = car.clone();
        let row = self
            .db
            .write(move |conn| {
                ports::lock(conn, Lock::Car(row.car_id))?;
                let current = store::get(conn, row.id)?.ok_or(ApiError::NotFound)?;
                if !t.from().contains(&current.status_at(time::now())) {
                    return Err(ApiError::conflict(t.refusal()));
                }
                let handed = handover(&current)?;
                if t == Transition::PickUp && store::has_active(conn, current.car_id, current.id)? {
                    return Err(ApiError::conflict(
                        "Another booking of this car is still out: return it first",
                    ));
                }
                let now = db::to_db(time::now());
                if store::transition(conn, current.id, t, now, handed.as_ref())? == 0 {
                    return Err(ApiError::conflict(t.refusal()));
                }
                if t == Transition::Cancel {
                    store::release(conn, current.id)?;
                }
                if let Some(payments) = &payments {
                    match t {
                        Transition::Cancel => {
                            if let Some((lines, total)) =
                                payments.on_cancel(conn, &current, time::now())?
                            {
                                let lines = serde_json::to_string(&lines)
                                    .map_err(|e| ApiError::internal(format!("lines: {e}")))?;
                                store::set_lines(conn, current.id, &lines, total)?;
                            }
                        }
                        Transition::Return => payments.on_return(conn, current.id)?,
                        Transition::PickUp => {}
                    }
                }
                let done = store::get(conn, current.id)?.ok_or(ApiError::NotFound)?;
                let notice = match t {
                    Transition::Cancel => Some(Notice::Cancelled),
                    Transition::Return => Some(Notice::Completed),
                    Transition::PickUp => None,
                };
                if let (Some(notice), Some(car), Some(contact)) = (notice, &car, &contact) {
                    notifier.queue(conn, message(&done, car, contact, notice))?;
                }
                Ok(done)
            })
            .await?;
        self.answer(row.to_api(answer_car.as_ref())).await
    }
}

impl BookingsService {
    /// Takes a car out of service (admins) for a span no booking (with its buffer) nor
    /// other block holds; of a block and a booking racing for it, exactly one wins, as
    /// between bookings. A deleted or unknown car is a 404; an inactive one may be blocked.
    pub async fn create_block(&self, car_id: CarId, input: BlockInput) -> Result<Block, ApiError> {
        let block = input.validate().map_err(ApiError::Validation)?;
        let now = time::now();
        let row = HoldRow::block(car_id, &block, now);
        self.in_car_lock(car_id, None, |_| {
            Ok(move |conn: &mut DbConn| {
                store::free_expired_holds(conn, car_id, db::to_db(now))?;
                hold_car(conn, &row)?;
                Ok(row.to_block())
            })
        })
        .await
    }

    /// The car's blocks in `from` order: those that end after now, or every one.
    pub async fn blocks(
        &self,
        car_id: CarId,
        every: bool,
        page: PageRequest,
    ) -> Result<Paginated<Block>, ApiError> {
        self.live_car(car_id).await?;
        let after = (!every).then(|| db::to_db(time::now()));
        let (rows, total) = self
            .db
            .run(move |conn| {
                Ok(store::blocks(
                    conn,
                    car_id,
                    after,
                    page.offset(),
                    page.limit(),
                )?)
            })
            .await?;
        Ok(page.wrap(rows.iter().map(HoldRow::to_block).collect(), total))
    }

    /// Puts the car back in service for the block's span; an unknown block is a 404.
    pub async fn delete_block(&self, car_id: CarId, block_id: BlockId) -> Result<(), ApiError> {
        self.live_car(car_id).await?;
        let deleted = self
            .db
            .write(move |conn| Ok(store::delete_block(conn, car_id, block_id)?))
            .await?;
        if deleted == 0 {
            return Err(ApiError::NotFound);
        }
        Ok(())
    }

    /// 404 unless the car exists and is not deleted.
    async fn live_car(&self, car_id: CarId) -> Result<CarSummary, ApiError> {
        self.ports
            .catalog
            .car(car_id)
            .await?
            .filter(|c| !c.deleted)
            .ok_or(ApiError::NotFound)
    }
}

/// Takes the car for the hold's span, unless something else holds it for part of it: on
/// PostgreSQL the exclusion constraint refuses the overlap; on SQLite the caller's
/// transaction holds the write lock from its start, so the check and the insert are one step.
fn hold_car(conn: &mut DbConn, hold: &HoldRow) -> Result<(), ApiError> {
    if conn.backend() == Backend::Sqlite
        && store::held(conn, hold.car_id, hold.starts_at, hold.ends_at)?
    {
        return Err(ApiError::conflict(OVERLAP));
    }
    store::insert_hold(conn, hold).map_err(|e| {
        if violated_constraint(&e) == Some(NO_OVERLAP_CONSTRAINT) {
            ApiError::conflict(OVERLAP)
        } else {
            e.into()
        }
    })
}

/// A pickup at `record.at` is not before the booking was made (400) nor earlier than the
/// pickup window allows (409).
fn pickup_allowed(
    booking: &BookingRow,
    record: &Handover,
    early: chrono::Duration,
) -> Result<(), ApiError> {
    let made = db::from_db(booking.created_at);
    if record.at < made {
        return Err(ApiError::field(
            "at",
            format!("must not be before the booking was made ({})", made.to_rfc3339()),
        ));
    }
    let opens = db::from_db(booking.pickup_time) - early;
    if record.at < opens {
        return Err(ApiError::conflict(format!(
            "Too early: this booking can be picked up from {}",
            opens.to_rfc3339()
        )));
    }
    Ok(())
}

fn visible(conn: &mut DbConn, user: AuthUser, id: BookingId) -> Result<BookingRow, ApiError> {
    store::get(conn, id)?
        .filter(|row| user.is_admin() || row.user_id == user.id)
        .ok_or(ApiError::NotFound)
}

/// The in-process `Availability`.
pub struct Schedule {
    db: Db,
}

impl Schedule {
    pub fn new(db: Db) -> Self {
        Schedule { db }
    }
}

#[async_trait]
impl Availability for Schedule {
    async fn busy_cars(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BusyCar>, ApiError> {
        self.db
            .run(move |conn| {
                Ok(store::busy_cars(conn, db::to_db(from), db::to_db(to))?
                    .into_iter()
                    .map(|(car_id, start)| BusyCar {
                        car_id,
                        first_start: db::from_db(start),
                    })
                    .collect())
            })
            .await
    }

    async fn busy_intervals(
        &self,
        car_id: CarId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Busy>, ApiError> {
        self.db
            .run(move |conn| {
                Ok(
                    store::busy_intervals(conn, car_id, db::to_db(from), db::to_db(to))?
                        .iter()
                        .map(HoldRow::to_busy)
                        .collect(),
                )
            })
            .await
    }

    async fn has_upcoming_booking(
        &self,
        car_id: CarId,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        self.db
            .run(move |conn| Ok(store::has_upcoming(conn, car_id, db::to_db(now))?))
            .await
    }

    async fn was_picked_up(&self, booking: BookingId) -> Result<bool, ApiError> {
        self.db
            .run(move |conn| {
                Ok(store::get(conn, booking)?
                    .is_some_and(|b| matches!(b.status, Status::Active | Status::Completed)))
            })
            .await
    }

    async fn outstanding(&self, user: UserId) -> Result<Option<String>, ApiError> {
        self.db
            .run(move |conn| {
                let why = if store::holds_a_car(conn, user, db::to_db(time::now()))? {
                    Some("a booking that holds a car")
                } else if super::payments::store::holds_deposit_of(conn, user)? {
                    Some("a deposit held")
                } else if store::owes(conn, user)? {
                    Some("a balance due")
                } else {
                    None
                };
                Ok(why.map(str::to_owned))
            })
            .await
    }

    async fn personal_data(&self, user: UserId) -> Result<serde_json::Value, ApiError> {
        self.db
            .run(move |conn| {
                let bookings: Vec<Booking> =
                    store::all_of(conn, user)?.iter().map(|b| b.to_api(None)).collect();
                let payments: Vec<_> = super::payments::store::all_of(conn, user)?
                    .iter()
                    .map(|p| p.to_api())
                    .collect();
                Ok(serde_json::json!({"bookings": bookings, "payments": payments}))
            })
            .await
    }
}

fn at_cap(cap: i64) -> ApiError {
    ApiError::conflict(format!(
        "You already hold {cap} upcoming bookings, the most allowed"
    ))
}
