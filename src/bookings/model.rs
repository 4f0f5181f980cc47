//! Booking types: the request, its validation, the row and the answer.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::{Insertable, Queryable, Selectable};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::bookings;
use crate::db::{from_db, to_db};
use crate::http::{parse_time, Choice, FieldError};
use crate::money;
use crate::ports::CarSummary;

pub const MAX_RENTAL_DAYS: i64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Confirmed,
    Active,
    Completed,
    Cancelled,
}

impl Choice for Status {
    const ALL: &'static [(&'static str, Self)] = &[
        ("confirmed", Self::Confirmed),
        ("active", Self::Active),
        ("completed", Self::Completed),
        ("cancelled", Self::Cancelled),
    ];
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBooking {
    pub car_id: Option<String>,
    #[schema(example = "2026-12-01T10:00:00Z")]
    pub pickup_time: Option<String>,
    #[schema(example = "2026-12-04T10:00:00Z")]
    pub dropoff_time: Option<String>,
}

/// A booking request that passed every rule that does not need the database.
#[derive(Debug, Clone, Copy)]
pub struct NewBooking {
    pub car_id: Uuid,
    pub pickup: DateTime<Utc>,
    pub dropoff: DateTime<Utc>,
}

impl CreateBooking {
    pub fn validate(&self, now: DateTime<Utc>) -> Result<NewBooking, Vec<FieldError>> {
        let mut errors = Vec::new();
        let required = |field: &str, v: &Option<String>, errors: &mut Vec<FieldError>| {
            if v.is_none() {
                errors.push(FieldError::new(field, "is required"));
            }
        };
        required("carId", &self.car_id, &mut errors);
        let car_id = self.car_id.as_deref().and_then(|s| {
            Uuid::parse_str(s.trim())
                .map_err(|_| errors.push(FieldError::new("carId", "must be a UUID")))
                .ok()
        });
        let mut time = |field: &str, v: &Option<String>| match v {
            None => {
                required(field, v, &mut errors);
                None
            }
            Some(raw) => parse_time(field, raw).map_err(|e| errors.push(e)).ok(),
        };
        let pickup = time("pickupTime", &self.pickup_time);
        let dropoff = time("dropoffTime", &self.dropoff_time);
        if pickup.is_some_and(|p| p <= now) {
            errors.push(FieldError::new("pickupTime", "must be in the future"));
        }
        if let (Some(p), Some(d)) = (pickup, dropoff) {
            if d <= p {
                errors.push(FieldError::new("dropoffTime", "must be after pickupTime"));
            } else if d - p > Duration::days(MAX_RENTAL_DAYS) {
                errors.push(FieldError::new(
                    "dropoffTime",
                    "the rental may last at most 90 days",
                ));
            }
        }
        match (car_id, pickup, dropoff) {
            (Some(car_id), Some(pickup), Some(dropoff)) if errors.is_empty() => Ok(NewBooking {
                car_id,
                pickup,
                dropoff,
            }),
            _ => Err(errors),
        }
    }
}

/// Whole days charged: every started 24 hours, at least one.
pub fn rental_days(pickup: DateTime<Utc>, dropoff: DateTime<Utc>) -> i64 {
    let ms = (dropoff - pickup).num_milliseconds();
    let day = Duration::days(1).num_milliseconds();
    ((ms + day - 1) / day).max(1)
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBooking {
    #[schema(example = "cancelled")]
    pub status: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = bookings)]
pub struct BookingRow {
    pub id: String,
    pub user_id: String,
    pub car_id: String,
    pub pickup_time: NaiveDateTime,
    pub dropoff_time: NaiveDateTime,
    pub days: i32,
    pub total_price: i64,
    pub currency: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub cancelled_at: Option<NaiveDateTime>,
    pub picked_up_at: Option<NaiveDateTime>,
    pub returned_at: Option<NaiveDateTime>,
}

impl BookingRow {
    pub fn new(user_id: Uuid, req: &NewBooking, car: &CarSummary, now: DateTime<Utc>) -> Self {
        let days = rental_days(req.pickup, req.dropoff);
        BookingRow {
            id: Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            car_id: req.car_id.to_string(),
            pickup_time: to_db(req.pickup),
            dropoff_time: to_db(req.dropoff),
            days: i32::try_from(days).unwrap_or(i32::MAX),
            total_price: days * car.price_per_day_minor,
            currency: car.currency.clone(),
            status: Status::Confirmed.name().to_owned(),
            created_at: to_db(now),
            updated_at: to_db(now),
            cancelled_at: None,
            picked_up_at: None,
            returned_at: None,
        }
    }

    pub fn uuid(&self) -> Uuid {
        Uuid::parse_str(&self.id).unwrap_or_default()
    }

    pub fn car_uuid(&self) -> Uuid {
        Uuid::parse_str(&self.car_id).unwrap_or_default()
    }

    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Cancelled)
    }

    pub fn to_api(&self, car: Option<&CarSummary>) -> Booking {
        Booking {
            id: self.uuid(),
            user_id: Uuid::parse_str(&self.user_id).unwrap_or_default(),
            car_id: self.car_uuid(),
            pickup_time: from_db(self.pickup_time),
            dropoff_time: from_db(self.dropoff_time),
            days: self.days,
            total_price: money::to_major(self.total_price),
            currency: self.currency.clone(),
            status: self.status(),
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
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CarRef {
    pub id: Uuid,
    pub name: String,
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    pub id: Uuid,
    pub user_id: Uuid,
    pub car_id: Uuid,
    pub pickup_time: DateTime<Utc>,
    pub dropoff_time: DateTime<Utc>,
    pub days: i32,
    #[schema(example = 360.0)]
    pub total_price: f64,
    pub currency: String,
    pub status: Status,
    pub car: Option<CarRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub picked_up_at: Option<DateTime<Utc>>,
    pub returned_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
        let car = Uuid::new_v4().to_string();
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
