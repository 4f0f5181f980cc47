//! Extras: what a desk sells beside the car (a child seat, GPS, a second driver), priced per
//! day or per rental, added to quotes and bookings after the discount.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::price;
use crate::db::schema::extras;
use crate::db::{from_db, to_db, DbConn};
use crate::error::FieldError;
use crate::http::schema::{self, Integer, Patch};
use crate::money;
use crate::pricing::ExtraPrice;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = extras, treat_none_as_null = true)]
pub struct ExtraRow {
    pub code: String,
    pub name: String,
    pub price_per_day: Option<i64>,
    pub price_per_rental: Option<i64>,
    pub currency: String,
    pub max_quantity: i32,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An extra as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Extra {
    #[schema(example = "child_seat")]
    pub code: String,
    #[schema(example = "Child seat")]
    pub name: String,
    /// Set when the extra is priced per day (then `pricePerRental` is null).
    #[schema(example = 8.5)]
    pub price_per_day: Option<f64>,
    /// Set when the extra is priced once per rental (then `pricePerDay` is null).
    pub price_per_rental: Option<f64>,
    pub currency: String,
    pub max_quantity: i32,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /extras` and `PATCH /extras/{code}` (only the fields sent change).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtraInput {
    /// Lower-case letters, digits, `_` and `-`, 2 to 32; required on create, not changeable.
    #[schema(value_type = String, pattern = "^[a-z0-9_-]{2,32}$", example = "child_seat")]
    #[serde(default)]
    pub code: Patch<String>,
    #[schema(schema_with = extra_input_name_schema)]
    #[serde(default)]
    pub name: Patch<String>,
    /// Exactly one of `pricePerDay` and `pricePerRental` is set (send the other as `null`
    /// to switch); greater than 0, at most 2 decimals.
    #[schema(value_type = Option<f64>, exclusive_minimum = 0.0, maximum = 100000.0, multiple_of = 0.01)]
    #[serde(default)]
    pub price_per_day: Patch<f64>,
    #[schema(value_type = Option<f64>, exclusive_minimum = 0.0, maximum = 100000.0, multiple_of = 0.01)]
    #[serde(default)]
    pub price_per_rental: Patch<f64>,
    #[schema(schema_with = extra_input_currency_schema)]
    #[serde(default)]
    pub currency: Patch<String>,
    /// 1 to 10; 1 when a new extra has none.
    #[schema(value_type = i32, minimum = 1, maximum = 10)]
    #[serde(default)]
    pub max_quantity: Patch<Integer>,
    /// `false` withdraws the extra: no new quote or booking can have it.
    #[schema(value_type = bool)]
    #[serde(default)]
    pub active: Patch<bool>,
}

schema::field_schema!(
    extra_input_name_schema,
    schema::text_schema::<100>(),
    Some("1 to 100 characters; required on create."),
    "Child seat"
);
schema::field_schema!(
    extra_input_currency_schema,
    money::currency_schema(),
    Some("`USD` when a new extra has none.")
);

fn valid_code(code: &str) -> bool {
    (2..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl ExtraInput {
    /// The row this input makes (over `base` for a change), or every field error.
    pub fn apply(
        self,
        base: Option<ExtraRow>,
        now: DateTime<Utc>,
    ) -> Result<ExtraRow, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: &str| errors.push(FieldError::new(field, message));
        let code = match (self.code, &base) {
            (Patch::Absent, Some(b)) => b.code.clone(),
            (Patch::Value(c), Some(b)) if c == b.code => c,
            (_, Some(b)) => {
                err("code", "cannot be changed");
                b.code.clone()
            }
            (Patch::Value(c), None) if valid_code(&c) => c,
            (Patch::Value(_), None) => {
                err("code", "must be 2 to 32 of a-z, 0-9, _ and -");
                String::new()
            }
            (_, None) => {
                err("code", "is required");
                String::new()
            }
        };
        let name = match (self.name, &base) {
            (Patch::Absent, Some(b)) => b.name.clone(),
            (Patch::Value(n), _) => schema::text(&n, 100).unwrap_or_else(|e| {
                err("name", &e);
                String::new()
            }),
            (Patch::Null, _) => {
                err("name", "must not be null");
                String::new()
            }
            (Patch::Absent, None) => {
                err("name", "is required");
                String::new()
            }
        };
        let mut amount = |field: &str, input: Patch<f64>, base: Option<i64>| match input {
            Patch::Absent => base,
            Patch::Null => None,
            Patch::Value(v) => price(v)
                .map_err(|e| errors.push(FieldError::new(field, e)))
                .ok(),
        };
        let per_day = amount(
            "pricePerDay",
            self.price_per_day,
            base.as_ref().and_then(|b| b.price_per_day),
        );
        let per_rental = amount(
            "pricePerRental",
            self.price_per_rental,
            base.as_ref().and_then(|b| b.price_per_rental),
        );
        if per_day.is_some() && per_rental.is_some() {
            errors.push(FieldError::new(
                "pricePerRental",
                "set pricePerDay or pricePerRental, not both",
            ));
        } else if per_day.is_none() && per_rental.is_none() && !errors_named(&errors, "price") {
            errors.push(FieldError::new(
                "pricePerDay",
                "one of pricePerDay and pricePerRental is required",
            ));
        }
        let mut err = |field: &str, message: &str| errors.push(FieldError::new(field, message));
        let currency = match (self.currency, &base) {
            (Patch::Absent, Some(b)) => b.currency.clone(),
            (Patch::Absent, None) => "USD".to_owned(),
            (Patch::Value(c), _) => money::currency(&c).unwrap_or_else(|| {
                err("currency", "must be an ISO 4217 code");
                String::new()
            }),
            (Patch::Null, _) => {
                err("currency", "must not be null");
                String::new()
            }
        };
        let max_quantity = match (self.max_quantity, &base) {
            (Patch::Absent, Some(b)) => b.max_quantity,
            (Patch::Absent, None) => 1,
            (Patch::Value(q), _) => q.within(1, 10).map(|q| q as i32).unwrap_or_else(|e| {
                err("maxQuantity", &e);
                1
            }),
            (Patch::Null, _) => {
                err("maxQuantity", "must not be null");
                1
            }
        };
        let active = match (self.active, &base) {
            (Patch::Absent, Some(b)) => b.active,
            (Patch::Absent, None) => true,
            (Patch::Value(a), _) => a,
            (Patch::Null, _) => {
                err("active", "must not be null");
                true
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ExtraRow {
            code,
            name,
            price_per_day: per_day,
            price_per_rental: per_rental,
            currency,
            max_quantity,
            active,
            created_at: base.as_ref().map_or(to_db(now), |b| b.created_at),
            updated_at: to_db(now),
        })
    }
}

fn errors_named(errors: &[FieldError], prefix: &str) -> bool {
    errors.iter().any(|e| e.field.starts_with(prefix))
}

impl ExtraRow {
    pub fn to_api(&self) -> Extra {
        Extra {
            code: self.code.clone(),
            name: self.name.clone(),
            price_per_day: self.price_per_day.map(money::to_major),
            price_per_rental: self.price_per_rental.map(money::to_major),
            currency: self.currency.clone(),
            max_quantity: self.max_quantity,
            active: self.active,
            created_at: from_db(self.created_at),
            updated_at: from_db(self.updated_at),
        }
    }

    pub fn price(&self) -> ExtraPrice {
        ExtraPrice {
            code: self.code.clone(),
            name: self.name.clone(),
            per_day_minor: self.price_per_day,
            per_rental_minor: self.price_per_rental,
            currency: self.currency.clone(),
            max_quantity: i64::from(self.max_quantity),
            active: self.active,
        }
    }
}

pub fn active(conn: &mut DbConn) -> QueryResult<Vec<ExtraRow>> {
    extras::table
        .filter(extras::active.eq(true))
        .order(extras::code.asc())
        .select(ExtraRow::as_select())
        .load(conn)
}

pub fn get(conn: &mut DbConn, code: &str) -> QueryResult<Option<ExtraRow>> {
    extras::table
        .find(code)
        .select(ExtraRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn get_many(conn: &mut DbConn, codes: &[String]) -> QueryResult<Vec<ExtraRow>> {
    extras::table
        .filter(extras::code.eq_any(codes))
        .select(ExtraRow::as_select())
        .load(conn)
}

pub fn insert(conn: &mut DbConn, row: &ExtraRow) -> QueryResult<usize> {
    diesel::insert_into(extras::table).values(row).execute(conn)
}

pub fn update(conn: &mut DbConn, row: &ExtraRow) -> QueryResult<usize> {
    diesel::update(extras::table.find(&row.code))
        .set(row)
        .execute(conn)
}
