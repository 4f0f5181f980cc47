//! Booking types: the request, its validation, the row and the answer.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::{Insertable, Queryable, Selectable};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use diesel::deserialize::FromSqlRow;
use diesel::expression::AsExpression;

use crate::ids::{BlockId, BookingId, CarId, HoldId, UploadId, UserId};

use crate::db::schema::{bookings, car_holds};
use crate::db::{from_db, to_db};
use crate::error::FieldError;
use crate::http::schema;
use crate::http::{Choice, QueryParams};
use crate::money;
use crate::ports::{hold_end, Busy, CarSummary, HoldKind};

use crate::http::schema::Integer;
use crate::http::{body_id, parse_time, required_time};
pub use crate::pricing::{rental_days, rental_window, MAX_RENTAL_DAYS};
use crate::pricing::{rental_price, ExtraRequest, Line, LineKind, LineView, Pricing, RentalPrice};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, AsExpression, FromSqlRow,
)]
#[serde(rename_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Status {
    /// Holding its slot until `holdExpiresAt`, waiting for its payment.
    PendingPayment,
    Confirmed,
    Active,
    Completed,
    Cancelled,
    /// Not paid in time: it holds nothing.
    Expired,
}

impl Choice for Status {
    const ALL: &'static [(&'static str, Self)] = &[
        ("pending_payment", Self::PendingPayment),
        ("confirmed", Self::Confirmed),
        ("active", Self::Active),
        ("completed", Self::Completed),
        ("cancelled", Self::Cancelled),
        ("expired", Self::Expired),
    ];
}

crate::stored_as_name!(Status);

/// A change of a booking's state, by whom and from which state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Cancel,
    PickUp,
    Return,
}

impl Transition {
    /// The booking state machine, one line a transition: the states it leaves, the state
    /// it reaches, and why it is refused from any other. (A cancellation also needs the
    /// pickup still ahead: `store::transition` checks it in the same statement.)
    const fn rule(self) -> (&'static [Status], Status, &'static str) {
        match self {
            Transition::Cancel => (
                &[Status::PendingPayment, Status::Confirmed],
                Status::Cancelled,
                "Only a pending or confirmed booking can be cancelled, and only before pickup",
            ),
            Transition::PickUp => (
                &[Status::Confirmed],
                Status::Active,
                "Only a confirmed booking can be picked up",
            ),
            Transition::Return => (
                &[Status::Active],
                Status::Completed,
                "Only an active booking can be returned",
            ),
        }
    }

    pub fn from(self) -> &'static [Status] {
        self.rule().0
    }

    pub fn to(self) -> Status {
        self.rule().1
    }

    /// Why it is refused when the booking is in none of [`Transition::from`].
    pub fn refusal(self) -> &'static str {
        self.rule().2
    }
}

/// `PATCH /bookings/{id}`: a status change; the only one a renter may ask for is
/// `cancelled` (any letter case).
pub fn requested_transition(body: &UpdateBooking) -> Result<Transition, FieldError> {
    match Status::parse(&body.status) {
        Ok(Status::Cancelled) => Ok(Transition::Cancel),
        _ => Err(FieldError::new("status", "only \"cancelled\" can be set")),
    }
}

/// Filters of the booking lists.
#[derive(Debug, Default, Clone)]
pub struct BookingFilter {
    pub user_id: Option<UserId>,
    pub car_id: Option<CarId>,
    pub status: Option<Status>,
}

impl BookingFilter {
    /// `status`, `carId` and `userId` from a query string, each error naming its parameter.
    pub fn parse(query: &QueryParams, errors: &mut Vec<FieldError>) -> BookingFilter {
        BookingFilter {
            user_id: query.parse("userId", errors),
            car_id: query.parse("carId", errors),
            status: query.get("status").and_then(|raw| {
                Status::parse(raw)
                    .map_err(|m| errors.push(FieldError::new("status", m)))
                    .ok()
            }),
        }
    }

    /// A customer's own list: only `status` filters it.
    pub fn mine(user: UserId, query: &QueryParams, errors: &mut Vec<FieldError>) -> BookingFilter {
        BookingFilter {
            user_id: Some(user),
            car_id: None,
            status: Self::parse(query, errors).status,
        }
    }
}

/// A booking to make. `pickupTime` must be in the future, `dropoffTime` after it and at most
/// 90 days later (a 400 names `pickupTime` or `dropoffTime` otherwise).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBooking {
    #[schema(required = true, schema_with = schema::uuid_schema)]
    pub car_id: Option<String>,
    #[schema(required = true, schema_with = create_booking_pickup_time_schema)]
    pub pickup_time: Option<String>,
    #[schema(required = true, schema_with = create_booking_dropoff_time_schema)]
    pub dropoff_time: Option<String>,
    /// Active extras of the car's currency, each code once, 1 to its `maxQuantity` (else 400
    /// naming `extras[i].code` or `extras[i].quantity`).
    #[schema(max_items = 20)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<ExtraRequest>,
}

schema::field_schema!(
    create_booking_pickup_time_schema,
    schema::date_time_schema(),
    None,
    "2026-12-01T10:00:00Z"
);
schema::field_schema!(
    create_booking_dropoff_time_schema,
    schema::date_time_schema(),
    None,
    "2026-12-04T10:00:00Z"
);

/// A booking request that passed every rule that does not need the database.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub car_id: CarId,
    pub pickup: DateTime<Utc>,
    pub dropoff: DateTime<Utc>,
    pub extras: Vec<ExtraRequest>,
}

impl CreateBooking {
    pub fn validate(&self, now: DateTime<Utc>) -> Result<NewBooking, Vec<FieldError>> {
        let mut errors = Vec::new();
        let car_id: Option<CarId> = body_id("carId", self.car_id.as_deref(), true, &mut errors);
        let window = rental_window(
            self.pickup_time.as_deref(),
            self.dropoff_time.as_deref(),
            now,
            &mut errors,
        );
        match (car_id, window) {
            (Some(car_id), Some((pickup, dropoff))) if errors.is_empty() => Ok(NewBooking {
                car_id,
                pickup,
                dropoff,
                extras: self.extras.clone(),
            }),
            _ => Err(errors),
        }
    }
}

/// The one change a renter may ask for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBooking {
    #[schema(schema_with = update_booking_status_schema)]
    pub status: String,
}

schema::field_schema!(update_booking_status_schema, cancelled_schema(), None, "cancelled");

fn cancelled_schema() -> utoipa::openapi::schema::Schema {
    schema::names_schema(&["cancelled"])
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = bookings)]
pub struct BookingRow {
    pub id: BookingId,
    pub user_id: UserId,
    pub car_id: CarId,
    pub pickup_time: NaiveDateTime,
    pub dropoff_time: NaiveDateTime,
    pub days: i32,
    pub total_price: i64,
    pub currency: String,
    pub status: Status,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub cancelled_at: Option<NaiveDateTime>,
    pub picked_up_at: Option<NaiveDateTime>,
    pub returned_at: Option<NaiveDateTime>,
    /// The price's lines ([`Line`]s as JSON) as they were when the booking was made, and the
    /// return's when it came back.
    pub lines: Option<String>,
    /// [`Handover`]s as JSON.
    pub pickup_record: Option<String>,
    pub return_record: Option<String>,
    /// The car's daily price when the booking was made, in hundredths (late fees use it).
    pub day_rate: Option<i64>,
    /// Until when a `pending_payment` booking holds its slot.
    pub hold_expires_at: Option<NaiveDateTime>,
    /// What it still owes, in hundredths (a charge at return that was declined).
    pub balance_due: i64,
    /// Its payment is disputed at the provider.
    pub disputed: bool,
    /// The provider's saved card its later charges (deposit, return) use.
    pub payment_method: Option<String>,
}

impl BookingRow {
    /// A booking priced as a quote made now: the rental under the car's rules, then the
    /// `extras` lines.
    /// `hold`: with a payment provider, how long it waits for its payment.
    pub fn new(
        user_id: UserId,
        req: &NewBooking,
        car: &CarSummary,
        extras: Vec<Line>,
        now: DateTime<Utc>,
        hold: Option<Duration>,
    ) -> Self {
        let days = rental_days(req.pickup, req.dropoff);
        let price = rental_price(
            car.price_per_day_minor,
            car.pricing.as_ref().unwrap_or(&Pricing::default()),
            req.pickup,
            days,
        );
        let mut lines = price.lines();
        lines.extend(extras);
        BookingRow {
            id: BookingId::random(),
            user_id,
            car_id: req.car_id,
            pickup_time: to_db(req.pickup),
            dropoff_time: to_db(req.dropoff),
            days: i32::try_from(days).unwrap_or(i32::MAX),
            total_price: lines.iter().map(|l| l.amount_minor).sum(),
            currency: car.currency.clone(),
            status: if hold.is_some() {
                Status::PendingPayment
            } else {
                Status::Confirmed
            },
            created_at: to_db(now),
            updated_at: to_db(now),
            cancelled_at: None,
            picked_up_at: None,
            returned_at: None,
            lines: serde_json::to_string(&lines).ok(),
            pickup_record: None,
            return_record: None,
            day_rate: Some(car.price_per_day_minor),
            hold_expires_at: hold.map(|h| to_db(now + h)),
            balance_due: 0,
            disputed: false,
            payment_method: None,
        }
    }

    /// Its state as of `now`: a `pending_payment` booking whose hold has run out is
    /// `expired` at that instant, whether or not the job that records it has run.
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        match (self.status, self.hold_expires_at) {
            (Status::PendingPayment, Some(until)) if from_db(until) <= now => Status::Expired,
            (status, _) => status,
        }
    }

    pub fn pickup(&self) -> Option<Handover> {
        serde_json::from_str(self.pickup_record.as_deref()?).ok()
    }

    pub fn handed_back(&self) -> Option<Handover> {
        serde_json::from_str(self.return_record.as_deref()?).ok()
    }

    /// The lines a return at `back` adds: a late fee past 59 minutes after the dropoff
    /// time (every started day at the daily price of booking time), the km driven beyond the
    /// car's allowance when it has one and both odometer readings are known, and each damage
    /// given an amount. An amount too large to hold is an error naming the input that made it.
    pub fn return_lines(
        &self,
        back: &Handover,
        car: Option<&CarSummary>,
    ) -> Result<Vec<Line>, FieldError> {
        let too_large = |field: &str| FieldError::new(field, TOO_LARGE);
        let mut lines = Vec::new();
        let dropoff = from_db(self.dropoff_time);
        if back.at - dropoff > Duration::minutes(59) {
            let late_days = rental_days(dropoff, back.at);
            let rate = self
                .day_rate
                .unwrap_or(self.total_price / i64::from(self.days.max(1)));
            lines.push(Line {
                kind: LineKind::LateFee,
                description: format!("Late return, {late_days} started day(s)"),
                code: None,
                quantity: Some(late_days),
                amount_minor: money::times(late_days, rate).ok_or_else(|| too_large("at"))?,
            });
        }
        let limit = car.and_then(|c| c.mileage_limit_km_per_day.zip(c.extra_km_price_minor));
        let driven = self
            .pickup()
            .and_then(|p| p.odometer_km)
            .zip(back.odometer_km)
            .map(|(from, to)| to - from);
        if let (Some((per_day, price)), Some(driven)) = (limit, driven) {
            let beyond = driven - per_day * i64::from(self.days);
            if beyond > 0 {
                lines.push(Line {
                    kind: LineKind::ExtraKm,
                    description: format!("{beyond} km beyond the {per_day} km a day included"),
                    code: None,
                    quantity: Some(beyond),
                    amount_minor: money::times(beyond, price)
                        .ok_or_else(|| too_large("odometerKm"))?,
                });
            }
        }
        for d in back.damages.iter().flatten() {
            if let Some(amount_minor) = d.amount.and_then(money::from_major) {
                lines.push(Line {
                    kind: LineKind::Damage,
                    description: d.description.clone(),
                    code: None,
                    quantity: None,
                    amount_minor,
                });
            }
        }
        Ok(lines)
    }

    /// The total with `added` lines, when it is an amount the API can hold (else an error
    /// naming the input of the last line).
    pub fn total_with(&self, added: &[Line]) -> Result<i64, FieldError> {
        let amounts = added.iter().map(|l| l.amount_minor);
        money::sum(std::iter::once(self.total_price).chain(amounts)).ok_or_else(|| {
            let field = match added.last().map(|l| l.kind) {
                Some(LineKind::ExtraKm) => "odometerKm",
                Some(LineKind::Damage) => "damages",
                _ => "at",
            };
            FieldError::new(field, TOO_LARGE)
        })
    }

    /// The stored lines; a booking made before lines existed has one: its rental.
    pub fn lines(&self) -> Vec<Line> {
        self.lines
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                RentalPrice {
                    days: i64::from(self.days),
                    amount_minor: self.total_price,
                    discount_percent: 0,
                    discount_minor: 0,
                }
                .lines()
            })
    }

    pub fn to_api(&self, car: Option<&CarSummary>) -> Booking {
        Booking {
            id: self.id,
            user_id: self.user_id,
            car_id: self.car_id,
            pickup_time: from_db(self.pickup_time),
            dropoff_time: from_db(self.dropoff_time),
            days: self.days,
            total_price: money::to_major(self.total_price),
            currency: self.currency.clone(),
            lines: self.lines().iter().map(Line::view).collect(),
            status: self.status_at(crate::time::now()),
            hold_expires_at: self.hold_expires_at.map(from_db),
            payment: None,
            balance_due: money::to_major(self.balance_due),
            disputed: self.disputed,
            car: car.map(|c| CarRef {
                id: c.id,
                name: c.name.clone(),
                images: c.images.clone(),
            }),
            created_at: from_db(self.created_at),
            updated_at: from_db(self.updated_at),
            cancelled_at: self.cancelled_at.map(from_db),
            picked_up_at: self.picked_up_at.map(from_db),
            returned_at: self.returned_at.map(from_db),
            pickup: self.pickup(),
            handed_back: self.handed_back(),
        }
    }
}

/// What a handover writes beside the booking's new state: when it happened and its record
/// ([`Handover`] as JSON); a return also its final lines (as JSON) and total.
#[derive(Debug, Clone)]
pub struct Handed {
    pub at: NaiveDateTime,
    pub record: String,
    pub lines: Option<String>,
    pub total: i64,
}

/// Why an amount a return computes is refused.
const TOO_LARGE: &str = "makes an amount larger than this server can hold";

/// The highest odometer reading taken, in km.
pub const MAX_ODOMETER_KM: i64 = 10_000_000;

/// What happened at a pickup or a return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Handover {
    pub at: DateTime<Utc>,
    pub odometer_km: Option<i64>,
    pub fuel_percent: Option<i64>,
    pub notes: Option<String>,
    /// At return only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damages: Option<Vec<Damage>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Damage {
    /// 1 to 500 characters, not blank; tab and newline allowed.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = damage_amount_schema)]
    pub amount: Option<f64>,
    /// Completed `damage_photo` uploads of this booking, at most 10.
    #[serde(default, rename = "photoIds", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 10)]
    pub photo_ids: Option<Vec<UploadId>>,
    /// Links to the photos (5 minutes), in a booking read by its owner or an admin.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub photos: Option<Vec<DamagePhoto>>,
}

schema::field_schema!(
    damage_amount_schema,
    damage_money_schema(),
    Some("What it costs the renter (money > 0, in the booking's currency): a `damage` line.")
);

/// A link to a damage photo (its `large` WebP version), valid until `expiresAt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DamagePhoto {
    #[schema(value_type = uuid::Uuid)]
    pub id: UploadId,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// The most photos one damage may carry.
pub const MAX_DAMAGE_PHOTOS: usize = 10;

/// The most a damage may be charged, in the major unit.
pub const MAX_DAMAGE: i64 = 10_000_000;

fn damage_money_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Number)
        .exclusive_minimum(Some(0.0))
        .maximum(Some(MAX_DAMAGE as f64))
        .multiple_of(Some(0.01))
        .into()
}

/// The optional body of `POST /bookings/{id}/pickup` and `/return`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandoverInput {
    #[schema(schema_with = handover_input_at_schema)]
    pub at: Option<String>,
    /// 0 to 10,000,000; at return not below the pickup's.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10_000_000)]
    pub odometer_km: Option<Integer>,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 100)]
    pub fuel_percent: Option<Integer>,
    /// Up to 1000 characters; tab and newline allowed.
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub notes: Option<String>,
    /// At return: at most 20, each 1 to 500 characters.
    #[schema(max_items = 20)]
    pub damages: Option<Vec<Damage>>,
}

schema::field_schema!(
    handover_input_at_schema,
    schema::date_time_schema(),
    Some("When it happened; now when left out; not more than 5 minutes ahead, and a return not before its pickup.")
);

impl HandoverInput {
    /// The record, checked against `now` and, for a return, the pickup's record.
    pub fn validate(
        self,
        now: DateTime<Utc>,
        pickup: Option<&Handover>,
        is_return: bool,
    ) -> Result<Handover, Vec<FieldError>> {
        let mut errors = Vec::new();
        let at = match self.at.as_deref().map(|raw| parse_time("at", raw)) {
            None => now,
            Some(Ok(at)) => at,
            Some(Err(e)) => {
                errors.push(e);
                now
            }
        };
        if at > now + Duration::minutes(5) {
            errors.push(FieldError::new(
                "at",
                "must not be more than 5 minutes ahead",
            ));
        } else if let Some(p) = pickup.filter(|p| is_return && at < p.at) {
            errors.push(FieldError::new(
                "at",
                format!("must not be before the pickup ({})", p.at.to_rfc3339()),
            ));
        }
        let odometer_km = self.odometer_km.map(|v| v.0);
        if odometer_km.is_some_and(|km| !(0..=MAX_ODOMETER_KM).contains(&km)) {
            errors.push(FieldError::new(
                "odometerKm",
                "must be from 0 to 10,000,000",
            ));
        } else if let (Some(back), Some(out)) = (odometer_km, pickup.and_then(|p| p.odometer_km)) {
            if is_return && back < out {
                errors.push(FieldError::new(
                    "odometerKm",
                    format!("must not be below the pickup's {out}"),
                ));
            }
        }
        let fuel_percent = self.fuel_percent.map(|v| v.0);
        if fuel_percent.is_some_and(|f| !(0..=100).contains(&f)) {
            errors.push(FieldError::new("fuelPercent", "must be from 0 to 100"));
        }
        if self
            .notes
            .as_ref()
            .is_some_and(|n| n.chars().count() > 1000)
        {
            errors.push(FieldError::new("notes", "must be at most 1000 characters"));
        }
        let damages = if is_return { self.damages } else { None };
        if let Some(list) = &damages {
            if list.len() > 20 {
                errors.push(FieldError::new("damages", "at most 20 damages"));
            }
            for (i, d) in list.iter().enumerate().take(20) {
                let n = d.description.trim().chars().count();
                if !(1..=500).contains(&n) {
                    errors.push(FieldError::new(
                        format!("damages[{i}].description"),
                        "must be 1 to 500 characters",
                    ));
                }
                let photos = d.photo_ids.as_deref().unwrap_or_default();
                let mut seen = std::collections::HashSet::new();
                if photos.len() > MAX_DAMAGE_PHOTOS || !photos.iter().all(|p| seen.insert(p)) {
                    errors.push(FieldError::new(
                        format!("damages[{i}].photoIds"),
                        "at most 10 photos, each once",
                    ));
                }
                let amount = d.amount.map(money::from_major);
                if amount.is_some_and(|a| !a.is_some_and(|m| (1..=MAX_DAMAGE * 100).contains(&m))) {
                    errors.push(FieldError::new(
                        format!("damages[{i}].amount"),
                        "must be more than 0 and at most 10,000,000, with at most 2 decimals",
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Handover {
            at,
            odometer_km,
            fuel_percent,
            notes: self.notes,
            damages: damages.map(|list| {
                list.into_iter()
                    .map(|d| Damage {
                        description: d.description.trim().to_owned(),
                        amount: d.amount,
                        photo_ids: d.photo_ids,
                        photos: None,
                    })
                    .collect()
            }),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CarRef {
    #[schema(value_type = uuid::Uuid)]
    pub id: CarId,
    pub name: String,
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    #[schema(value_type = uuid::Uuid)]
    pub id: BookingId,
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[schema(value_type = uuid::Uuid)]
    pub car_id: CarId,
    pub pickup_time: DateTime<Utc>,
    pub dropoff_time: DateTime<Utc>,
    pub days: i32,
    #[schema(example = 360.0)]
    pub total_price: f64,
    pub currency: String,
    /// What the total is made of: the rental, then any discount.
    pub lines: Vec<LineView>,
    pub status: Status,
    /// While `pending_payment`: when the unpaid booking stops holding its slot.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// The rental's payment at the provider (`null` without a payment provider).
    pub payment: Option<super::payments::model::BookingPayment>,
    /// What the booking still owes: normally 0; above it when a charge at return was
    /// declined.
    #[schema(example = 0.0)]
    pub balance_due: f64,
    /// Its payment is disputed at the provider.
    pub disputed: bool,
    pub car: Option<CarRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub picked_up_at: Option<DateTime<Utc>>,
    pub returned_at: Option<DateTime<Utc>>,
    /// What was recorded at pickup; `null` before.
    pub pickup: Option<Handover>,
    /// What was recorded at return; `null` before.
    #[serde(rename = "return")]
    pub handed_back: Option<Handover>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_state_machine() {
        assert_eq!(
            (Transition::Cancel.from(), Transition::Cancel.to()),
            (
                &[Status::PendingPayment, Status::Confirmed][..],
                Status::Cancelled
            )
        );
        assert_eq!(
            (Transition::PickUp.from(), Transition::PickUp.to()),
            (&[Status::Confirmed][..], Status::Active)
        );
        assert_eq!(
            (Transition::Return.from(), Transition::Return.to()),
            (&[Status::Active][..], Status::Completed)
        );
        let body = |s: &str| UpdateBooking { status: s.into() };
        assert_eq!(
            requested_transition(&body("CANCELLED")),
            Ok(Transition::Cancel)
        );
        assert!(requested_transition(&body("active")).is_err());
    }

    #[test]
    fn days_round_up_to_started_days() {
        let p = at("2026-12-01T10:00:00Z");
        assert_eq!(rental_days(p, at("2026-12-01T11:00:00Z")), 1);
        assert_eq!(rental_days(p, at("2026-12-02T10:00:00Z")), 1);
        assert_eq!(rental_days(p, at("2026-12-02T11:00:00Z")), 2);
        assert_eq!(rental_days(p, at("2026-12-04T10:00:00Z")), 3);
        assert_eq!(rental_days(p, at("2026-12-02T10:00:00.001Z")), 2);
    }

    fn fields(body: serde_json::Value, now: &str) -> Vec<String> {
        let req: CreateBooking = serde_json::from_value(body).unwrap();
        req.validate(at(now))
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn rules_name_their_fields() {
        let now = "2026-11-01T00:00:00Z";
        let car = CarId::random().to_string();
        assert_eq!(
            fields(serde_json::json!({}), now),
            ["carId", "pickupTime", "dropoffTime"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"carId": "x", "pickupTime": "tomorrow", "dropoffTime": "2026-12-01T00:00:00Z"}),
                now
            ),
            ["carId", "pickupTime"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"carId": car, "pickupTime": "2026-10-01T00:00:00Z", "dropoffTime": "2026-10-02T00:00:00Z"}),
                now
            ),
            ["pickupTime"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"carId": car, "pickupTime": "2026-12-01T00:00:00Z", "dropoffTime": "2026-12-01T00:00:00Z"}),
                now
            ),
            ["dropoffTime"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"carId": car, "pickupTime": "2026-12-01T00:00:00Z", "dropoffTime": "2027-03-01T00:00:01Z"}),
                now
            ),
            ["dropoffTime"]
        );
        let ok: CreateBooking = serde_json::from_value(serde_json::json!({
            "carId": car, "pickupTime": "2026-12-01T12:00:00+02:00", "dropoffTime": "2027-03-01T10:00:00Z"}))
        .unwrap();
        let ok = ok.validate(at(now)).unwrap();
        assert_eq!(ok.pickup, at("2026-12-01T10:00:00Z"));
    }
}

/// A span a car is held for: a booking's (its id, its window plus its buffer) or a block.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = car_holds)]
pub struct HoldRow {
    pub id: HoldId,
    pub car_id: CarId,
    pub kind: HoldKind,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub reason: Option<String>,
    pub created_at: NaiveDateTime,
    /// An unpaid booking's hold holds nothing from then on.
    pub expires_at: Option<NaiveDateTime>,
}

impl HoldRow {
    /// What `booking` holds: its window and the car's turnaround buffer as it is now.
    pub fn of_booking(booking: &BookingRow, car: &CarSummary) -> HoldRow {
        let dropoff = from_db(booking.dropoff_time);
        HoldRow {
            id: booking.id.into(),
            car_id: booking.car_id,
            kind: HoldKind::Booking,
            starts_at: booking.pickup_time,
            ends_at: to_db(hold_end(dropoff, car.buffer_minutes)),
            reason: None,
            created_at: booking.created_at,
            expires_at: booking.hold_expires_at,
        }
    }

    pub fn block(car_id: CarId, block: &NewBlock, now: DateTime<Utc>) -> HoldRow {
        HoldRow {
            id: BlockId::random().into(),
            car_id,
            kind: HoldKind::Block,
            starts_at: to_db(block.from),
            ends_at: to_db(block.to),
            reason: Some(block.reason.clone()),
            created_at: to_db(now),
            expires_at: None,
        }
    }

    pub fn to_busy(&self) -> Busy {
        Busy {
            start: from_db(self.starts_at),
            end: from_db(self.ends_at),
            kind: self.kind,
        }
    }

    pub fn to_block(&self) -> Block {
        Block {
            id: BlockId::from(self.id.uuid()),
            car_id: self.car_id,
            from: from_db(self.starts_at),
            to: from_db(self.ends_at),
            reason: self.reason.clone().unwrap_or_default(),
            created_at: from_db(self.created_at),
        }
    }
}

/// A time the car is out of service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    #[schema(value_type = uuid::Uuid)]
    pub id: BlockId,
    #[schema(value_type = uuid::Uuid)]
    pub car_id: CarId,
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// `POST /cars/{id}/blocks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BlockInput {
    #[schema(required = true, schema_with = block_input_from_schema)]
    pub from: Option<String>,
    #[schema(required = true, schema_with = block_input_to_schema)]
    pub to: Option<String>,
    #[schema(required = true, schema_with = block_input_reason_schema)]
    pub reason: Option<String>,
}

schema::field_schema!(
    block_input_from_schema,
    schema::date_time_schema(),
    None,
    "2026-12-01T08:00:00Z"
);
schema::field_schema!(
    block_input_to_schema,
    schema::date_time_schema(),
    Some("After `from`, at most 366 days later; exclusive."),
    "2026-12-03T18:00:00Z"
);
schema::field_schema!(
    block_input_reason_schema,
    schema::text_schema::<200>(),
    None,
    "Brake service"
);

/// The longest block, in days.
pub const MAX_BLOCK_DAYS: i64 = 366;

/// A block that passed every rule that does not need the database.
#[derive(Debug, Clone)]
pub struct NewBlock {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub reason: String,
}

impl BlockInput {
    pub fn validate(&self) -> Result<NewBlock, Vec<FieldError>> {
        let mut errors = Vec::new();
        let from = required_time("from", self.from.as_deref(), &mut errors);
        let to = required_time("to", self.to.as_deref(), &mut errors);
        let reason = match &self.reason {
            None => Err("is required".to_owned()),
            Some(raw) => schema::text(raw, 200),
        }
        .map_err(|m| errors.push(FieldError::new("reason", m)))
        .ok();
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                errors.push(FieldError::new("to", "must be after from"));
            } else if to - from > Duration::days(MAX_BLOCK_DAYS) {
                errors.push(FieldError::new("to", "a block may last at most 366 days"));
            }
        }
        match (from, to, reason) {
            (Some(from), Some(to), Some(reason)) if errors.is_empty() => {
                Ok(NewBlock { from, to, reason })
            }
            _ => Err(errors),
        }
    }
}
