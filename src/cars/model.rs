//! Car types: the input (create and partial update share it), the validated draft, the row
//! and the answer.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Utc};
use diesel::prelude::{AsChangeset, Insertable, Queryable, Selectable};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::functions::normalize;
use crate::db::schema::cars;
use crate::db::{from_db, to_db};
use crate::http::{check, parse_time, ApiError, Choice, FieldError, QueryParams};
use crate::money;
pub use crate::ports::{FuelType, Transmission};

/// `null` and absent differ for the optional text fields: `null` clears them.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationInput {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub address: Option<String>,
    pub city: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub state: Option<Option<String>>,
    pub country: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub postal_code: Option<Option<String>>,
}

/// A car to create, or the fields of one to change (only the fields sent change).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CarInput {
    #[schema(example = "Tesla Model 3")]
    pub name: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    #[schema(value_type = Option<FuelType>)]
    pub fuel_type: Option<String>,
    #[schema(value_type = Option<Transmission>)]
    pub transmission: Option<String>,
    pub seats: Option<i32>,
    #[schema(example = 120.5)]
    pub price_per_day: Option<f64>,
    #[schema(example = "USD")]
    pub currency: Option<String>,
    pub images: Option<Vec<String>>,
    pub features: Option<Vec<String>>,
    pub location: Option<LocationInput>,
    pub is_active: Option<bool>,
}

/// A complete, valid car.
#[derive(Debug, Clone, PartialEq)]
pub struct CarDraft {
    pub name: String,
    pub brand: String,
    pub model: String,
    pub year: i32,
    pub fuel_type: FuelType,
    pub transmission: Transmission,
    pub seats: i32,
    pub price_minor: i64,
    pub currency: String,
    pub images: Vec<String>,
    pub features: Vec<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub address: String,
    pub city: String,
    pub state: Option<String>,
    pub country: String,
    pub postal_code: Option<String>,
    pub is_active: bool,
}

const MAX_PRICE_MINOR: i64 = 100_000 * 100;

fn text(max: usize) -> impl Fn(String) -> Result<String, String> {
    move |s| {
        let s = s.trim().to_owned();
        match s.chars().count() {
            0 => Err("must not be empty".into()),
            n if n > max => Err(format!("must be at most {max} characters")),
            _ => Ok(s),
        }
    }
}

fn optional_text(max: usize) -> impl Fn(Option<String>) -> Result<Option<String>, String> {
    move |s| s.map(text(max)).transpose()
}

fn image_url(s: &str) -> bool {
    s.len() <= 2048
        && url::Url::parse(s)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn images(list: Vec<String>) -> Result<Vec<String>, String> {
    if list.is_empty() || list.len() > 20 {
        return Err("must hold 1 to 20 URLs".into());
    }
    match list.iter().position(|s| !image_url(s.trim())) {
        Some(i) => Err(format!("item {i} is not an http(s) URL")),
        None => Ok(list.into_iter().map(|s| s.trim().to_owned()).collect()),
    }
}

fn features(list: Vec<String>) -> Result<Vec<String>, String> {
    if list.len() > 50 {
        return Err("must hold at most 50 features".into());
    }
    list.into_iter().map(text(100)).collect()
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    lo: T,
    hi: T,
) -> impl Fn(T) -> Result<T, String> {
    move |v| {
        if v >= lo && v <= hi {
            Ok(v)
        } else {
            Err(format!("must be between {lo} and {hi}"))
        }
    }
}

fn coordinate(lo: f64, hi: f64) -> impl Fn(f64) -> Result<f64, String> {
    move |v| {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(format!("must be between {lo} and {hi}"))
        }
    }
}

fn price(v: f64) -> Result<i64, String> {
    match money::from_major(v) {
        Some(m) if m > 0 && m <= MAX_PRICE_MINOR => Ok(m),
        Some(_) => Err("must be greater than 0 and at most 100000".into()),
        None => Err("must be a number with at most 2 decimals".into()),
    }
}

/// Collects field errors while merging input over a base.
#[derive(Default)]
struct Merge {
    errors: Vec<FieldError>,
}

impl Merge {
    /// The parsed input when sent, else the base value; a missing value without base is
    /// an error ("is required").
    fn field<T, U>(
        &mut self,
        name: &str,
        input: Option<T>,
        base: Option<U>,
        parse: impl FnOnce(T) -> Result<U, String>,
    ) -> Option<U> {
        let result = match (input, base) {
            (Some(v), _) => parse(v),
            (None, Some(b)) => Ok(b),
            (None, None) => Err("is required".into()),
        };
        result
            .map_err(|m| self.errors.push(FieldError::new(name, m)))
            .ok()
    }
}

impl CarInput {
    /// A new car: every required field must be sent.
    pub fn into_new(self) -> Result<CarDraft, Vec<FieldError>> {
        self.merge(None)
    }

    /// `base` with the sent fields changed.
    pub fn apply_to(self, base: CarDraft) -> Result<CarDraft, Vec<FieldError>> {
        self.merge(Some(base))
    }

    fn merge(self, base: Option<CarDraft>) -> Result<CarDraft, Vec<FieldError>> {
        let b = base.as_ref();
        let max_year = Utc::now().year() + 1;
        let mut m = Merge::default();
        let name = m.field("name", self.name, b.map(|b| b.name.clone()), text(255));
        let brand = m.field("brand", self.brand, b.map(|b| b.brand.clone()), text(100));
        let model = m.field("model", self.model, b.map(|b| b.model.clone()), text(100));
        let year = m.field(
            "year",
            self.year,
            b.map(|b| b.year),
            in_range(1900, max_year),
        );
        let fuel_type = m.field("fuelType", self.fuel_type, b.map(|b| b.fuel_type), |s| {
            FuelType::parse(&s)
        });
        let transmission = m.field(
            "transmission",
            self.transmission,
            b.map(|b| b.transmission),
            |s| Transmission::parse(&s),
        );
        let seats = m.field("seats", self.seats, b.map(|b| b.seats), in_range(1, 20));
        let price_minor = m.field(
            "pricePerDay",
            self.price_per_day,
            b.map(|b| b.price_minor),
            price,
        );
        let currency = m.field(
            "currency",
            self.currency,
            Some(b.map_or_else(|| "USD".to_owned(), |b| b.currency.clone())),
            |s| money::currency(&s).ok_or_else(|| "must be an ISO 4217 code".to_owned()),
        );
        let images = m.field("images", self.images, b.map(|b| b.images.clone()), images);
        let features = m.field(
            "features",
            self.features,
            Some(b.map_or_else(Vec::new, |b| b.features.clone())),
            features,
        );
        let is_active = m.field(
            "isActive",
            self.is_active,
            Some(b.is_none_or(|b| b.is_active)),
            Ok,
        );
        if self.location.is_none() && b.is_none() {
            m.errors.push(FieldError::new("location", "is required"));
        }
        let l = self.location.unwrap_or_default();
        let latitude = m.field(
            "location.latitude",
            l.latitude,
            b.map(|b| b.latitude),
            coordinate(-90.0, 90.0),
        );
        let longitude = m.field(
            "location.longitude",
            l.longitude,
            b.map(|b| b.longitude),
            coordinate(-180.0, 180.0),
        );
        let address = m.field(
            "location.address",
            l.address,
            b.map(|b| b.address.clone()),
            text(255),
        );
        let city = m.field(
            "location.city",
            l.city,
            b.map(|b| b.city.clone()),
            text(100),
        );
        let state = m.field(
            "location.state",
            l.state,
            Some(b.and_then(|b| b.state.clone())),
            optional_text(100),
        );
        let country = m.field(
            "location.country",
            l.country,
            b.map(|b| b.country.clone()),
            text(100),
        );
        let postal_code = m.field(
            "location.postalCode",
            l.postal_code,
            Some(b.and_then(|b| b.postal_code.clone())),
            optional_text(20),
        );
        // Every field is Some exactly when no error was recorded.
        let draft = (|| {
            Some(CarDraft {
                name: name?,
                brand: brand?,
                model: model?,
                year: year?,
                fuel_type: fuel_type?,
                transmission: transmission?,
                seats: seats?,
                price_minor: price_minor?,
                currency: currency?,
                images: images?,
                features: features?,
                latitude: latitude?,
                longitude: longitude?,
                address: address?,
                city: city?,
                state: state?,
                country: country?,
                postal_code: postal_code?,
                is_active: is_active?,
            })
        })();
        match draft {
            Some(draft) if m.errors.is_empty() => Ok(draft),
            _ => Err(m.errors),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = cars, treat_none_as_null = true)]
pub struct CarRow {
    pub id: String,
    pub name: String,
    pub brand: String,
    pub brand_key: String,
    pub model: String,
    pub year: i32,
    pub fuel_type: String,
    pub transmission: String,
    pub seats: i32,
    pub price_per_day: i64,
    pub currency: String,
    pub images: String,
    pub features: String,
    pub latitude: f64,
    pub longitude: f64,
    pub address: String,
    pub city: String,
    pub city_key: String,
    pub state: Option<String>,
    pub country: String,
    pub postal_code: Option<String>,
    pub search_text: String,
    pub is_active: bool,
    pub deleted_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl CarRow {
    pub fn new(id: Uuid, draft: CarDraft, now: DateTime<Utc>) -> CarRow {
        let words = format!(
            "{} {} {} {}",
            draft.name,
            draft.brand,
            draft.model,
            draft.features.join(" ")
        );
        CarRow {
            id: id.to_string(),
            search_text: normalize(&words),
            brand_key: draft.brand.to_lowercase(),
            city_key: draft.city.to_lowercase(),
            name: draft.name,
            brand: draft.brand,
            model: draft.model,
            year: draft.year,
            fuel_type: draft.fuel_type.name().to_owned(),
            transmission: draft.transmission.name().to_owned(),
            seats: draft.seats,
            price_per_day: draft.price_minor,
            currency: draft.currency,
            images: json_list(&draft.images),
            features: json_list(&draft.features),
            latitude: draft.latitude,
            longitude: draft.longitude,
            address: draft.address,
            city: draft.city,
            state: draft.state,
            country: draft.country,
            postal_code: draft.postal_code,
            is_active: draft.is_active,
            deleted_at: None,
            created_at: to_db(now),
            updated_at: to_db(now),
        }
    }

    pub fn uuid(&self) -> Uuid {
        Uuid::parse_str(&self.id).unwrap_or_default()
    }

    pub fn images(&self) -> Vec<String> {
        parse_list(&self.images)
    }

    pub fn draft(&self) -> CarDraft {
        CarDraft {
            name: self.name.clone(),
            brand: self.brand.clone(),
            model: self.model.clone(),
            year: self.year,
            fuel_type: FuelType::parse(&self.fuel_type).unwrap_or(FuelType::Petrol),
            transmission: Transmission::parse(&self.transmission)
                .unwrap_or(Transmission::Automatic),
            seats: self.seats,
            price_minor: self.price_per_day,
            currency: self.currency.clone(),
            images: self.images(),
            features: parse_list(&self.features),
            latitude: self.latitude,
            longitude: self.longitude,
            address: self.address.clone(),
            city: self.city.clone(),
            state: self.state.clone(),
            country: self.country.clone(),
            postal_code: self.postal_code.clone(),
            is_active: self.is_active,
        }
    }

    pub fn to_api(&self) -> Car {
        Car {
            id: self.uuid(),
            name: self.name.clone(),
            brand: self.brand.clone(),
            model: self.model.clone(),
            year: self.year,
            fuel_type: self.fuel_type.clone(),
            transmission: self.transmission.clone(),
            seats: self.seats,
            price_per_day: money::to_major(self.price_per_day),
            currency: self.currency.clone(),
            images: self.images(),
            features: parse_list(&self.features),
            location: Location {
                latitude: self.latitude,
                longitude: self.longitude,
                address: self.address.clone(),
                city: self.city.clone(),
                state: self.state.clone(),
                country: self.country.clone(),
                postal_code: self.postal_code.clone(),
            },
            is_active: self.is_active,
            created_at: from_db(self.created_at),
            updated_at: from_db(self.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub address: String,
    pub city: String,
    pub state: Option<String>,
    pub country: String,
    pub postal_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Car {
    pub id: Uuid,
    pub name: String,
    pub brand: String,
    pub model: String,
    pub year: i32,
    #[schema(example = "electric")]
    pub fuel_type: String,
    #[schema(example = "automatic")]
    pub transmission: String,
    pub seats: i32,
    #[schema(example = 120.5)]
    pub price_per_day: f64,
    pub currency: String,
    pub images: Vec<String>,
    pub features: Vec<String>,
    pub location: Location,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of `GET /cars`.
#[derive(Debug, Default, Clone)]
pub struct CarFilter {
    pub city_key: Option<String>,
    pub brand_key: Option<String>,
    pub fuel_type: Option<&'static str>,
    pub transmission: Option<&'static str>,
    pub min_seats: Option<i32>,
    pub max_price_minor: Option<i64>,
    pub include_inactive: bool,
}

fn choice<T: Choice>(query: &QueryParams, name: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    let raw = query.get(name)?;
    T::parse(raw)
        .map_err(|m| errors.push(FieldError::new(name, m)))
        .ok()
}

impl CarFilter {
    /// The filters of a query string; `includeInactive` counts only for admins.
    pub fn parse(query: &QueryParams, admin: bool, errors: &mut Vec<FieldError>) -> CarFilter {
        let max_price_minor = query.parse::<f64>("maxPrice", errors).and_then(|p| {
            money::from_major(p)
                .filter(|m| *m >= 0)
                .ok_or_else(|| {
                    errors.push(FieldError::new(
                        "maxPrice",
                        "must be a non-negative amount with at most 2 decimals",
                    ))
                })
                .ok()
        });
        CarFilter {
            city_key: query.get("city").map(|c| c.trim().to_lowercase()),
            brand_key: query.get("brand").map(|b| b.trim().to_lowercase()),
            fuel_type: choice::<FuelType>(query, "fuelType", errors).map(Choice::name),
            transmission: choice::<Transmission>(query, "transmission", errors).map(Choice::name),
            min_seats: query.parse("minSeats", errors),
            max_price_minor,
            include_inactive: query
                .parse::<bool>("includeInactive", errors)
                .unwrap_or(false)
                && admin,
        }
    }
}

/// The window of `GET /cars/{id}/availability`: `from` defaults to now, `to` to 30 days
/// later, at most 366 days apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Window {
    pub const MAX_DAYS: i64 = 366;

    pub fn parse(query: &QueryParams) -> Result<Window, ApiError> {
        let mut errors = Vec::new();
        let mut time = |name: &str| {
            query
                .get(name)
                .and_then(|raw| parse_time(name, raw).map_err(|e| errors.push(e)).ok())
        };
        let (from, to) = (time("from"), time("to"));
        check(errors)?;
        let from = from.unwrap_or_else(crate::time::now);
        let to = to.unwrap_or(from + Duration::days(30));
        if to <= from {
            return Err(ApiError::field("to", "must be after from"));
        }
        if to - from > Duration::days(Self::MAX_DAYS) {
            return Err(ApiError::field("to", "must be at most 366 days after from"));
        }
        Ok(Window { from, to })
    }
}

/// `GET /cars/{id}/availability`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CarAvailability {
    pub car_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub busy: Vec<BusyInterval>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BusyInterval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> CarInput {
        serde_json::from_value(serde_json::json!({
            "name": "Tesla Model 3", "brand": "Tesla", "model": "Model 3", "year": 2023,
            "fuelType": "ELECTRIC", "transmission": "Automatic", "seats": 5, "pricePerDay": 120.5,
            "images": ["https://img.example.com/1.jpg"],
            "location": {"latitude": 37.77, "longitude": -122.41, "address": "1 Market St",
                         "city": "San Francisco", "country": "USA"}
        }))
        .unwrap()
    }

    fn fields(result: Result<CarDraft, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_full_input_becomes_a_draft_with_defaults() {
        let draft = full().into_new().unwrap();
        assert_eq!(draft.fuel_type, FuelType::Electric);
        assert_eq!(draft.price_minor, 12050);
        assert_eq!(draft.currency, "USD");
        assert!(draft.features.is_empty() && draft.is_active && draft.state.is_none());
    }

    #[test]
    fn missing_and_bad_fields_are_all_named() {
        assert_eq!(
            fields(CarInput::default().into_new()),
            [
                "name",
                "brand",
                "model",
                "year",
                "fuelType",
                "transmission",
                "seats",
                "pricePerDay",
                "images",
                "location",
                "location.latitude",
                "location.longitude",
                "location.address",
                "location.city",
                "location.country"
            ]
        );
        let bad = CarInput {
            year: Some(1899),
            seats: Some(21),
            price_per_day: Some(10.999),
            currency: Some("ZZZ".into()),
            images: Some(vec!["ftp://x/y.png".into()]),
            fuel_type: Some("steam".into()),
            ..full()
        };
        assert_eq!(
            fields(bad.into_new()),
            [
                "year",
                "fuelType",
                "seats",
                "pricePerDay",
                "currency",
                "images"
            ]
        );
    }

    #[test]
    fn partial_update_changes_only_what_is_sent() {
        let base = full().into_new().unwrap();
        let patch: CarInput = serde_json::from_value(serde_json::json!({
            "pricePerDay": 99, "location": {"city": "Oakland", "state": "CA"}
        }))
        .unwrap();
        let changed = patch.apply_to(base.clone()).unwrap();
        assert_eq!(changed.price_minor, 9900);
        assert_eq!(changed.city, "Oakland");
        assert_eq!(changed.state.as_deref(), Some("CA"));
        assert_eq!(changed.name, base.name);
        assert_eq!(changed.latitude, base.latitude);

        let clear: CarInput =
            serde_json::from_value(serde_json::json!({"location": {"state": null}})).unwrap();
        assert_eq!(clear.apply_to(changed).unwrap().state, None);
    }
}
