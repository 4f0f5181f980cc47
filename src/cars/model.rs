//! Car types: the input (create and partial update share it), the validated draft, the row
//! and the answer.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Utc};
use diesel::prelude::{AsChangeset, Insertable, Queryable, Selectable};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use crate::ids::{CarId, UploadId};

use crate::db::functions::normalize;
use crate::db::schema::cars;
use crate::db::{from_db, to_db};
use crate::error::{ApiError, FieldError};
use crate::http::schema::{self, Integer, ObjectOnly, Patch};
use crate::http::{check, parse_time, Choice, QueryParams};
use crate::money;
pub use crate::ports::{FuelType, Transmission};
use crate::pricing::{Pricing, PricingInput, PricingView};

/// Where a car stands; every field optional, as for [`CarInput`].
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationInput {
    /// Degrees, kept to 9 decimals (as is `longitude`).
    #[schema(value_type = f64, minimum = -90.0, maximum = 90.0)]
    #[serde(default)]
    pub latitude: Patch<f64>,
    #[schema(value_type = f64, minimum = -180.0, maximum = 180.0)]
    #[serde(default)]
    pub longitude: Patch<f64>,
    #[schema(schema_with = schema::text_schema::<255>)]
    #[serde(default)]
    pub address: Patch<String>,
    #[schema(schema_with = schema::text_schema::<100>)]
    #[serde(default)]
    pub city: Patch<String>,
    #[schema(schema_with = location_input_state_schema)]
    #[serde(default)]
    pub state: Patch<String>,
    #[schema(schema_with = schema::text_schema::<100>)]
    #[serde(default)]
    pub country: Patch<String>,
    #[schema(schema_with = location_input_postal_code_schema)]
    #[serde(default)]
    pub postal_code: Patch<String>,
    /// An IANA zone (`Europe/Paris`) the car's times are written in; without one (or with
    /// `null`) the zone of the coordinates, found again when they change.
    #[schema(value_type = Option<String>, nullable, example = "Europe/Paris")]
    #[serde(default)]
    pub time_zone: Patch<String>,
}

schema::field_schema!(
    location_input_state_schema,
    schema::nullable_text_schema::<100>(),
    Some("`null` clears it.")
);
schema::field_schema!(
    location_input_postal_code_schema,
    schema::nullable_text_schema::<20>(),
    Some("`null` clears it.")
);

/// An IANA zone name, as the tz database spells it.
fn time_zone_name(name: &str) -> Result<String, String> {
    name.trim()
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| "must be an IANA time zone such as Europe/Paris".to_owned())
}

/// A car to create (`NewCar` in the document: the fields it requires must be sent), or
/// the fields of one to change (`CarChanges`: only the fields sent change). No field but
/// `location.state` and `location.postalCode` may be `null`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CarChanges)]
pub struct CarInput {
    #[schema(schema_with = car_input_name_schema)]
    #[serde(default)]
    pub name: Patch<String>,
    #[schema(schema_with = car_input_brand_schema)]
    #[serde(default)]
    pub brand: Patch<String>,
    #[schema(schema_with = car_input_model_schema)]
    #[serde(default)]
    pub model: Patch<String>,
    /// From 1900 to next year.
    #[schema(value_type = i32, minimum = 1900, example = 2023)]
    #[serde(default)]
    pub year: Patch<Integer>,
    #[schema(schema_with = car_input_fuel_type_schema)]
    #[serde(default)]
    pub fuel_type: Patch<String>,
    #[schema(schema_with = car_input_transmission_schema)]
    #[serde(default)]
    pub transmission: Patch<String>,
    #[schema(value_type = i32, minimum = 1, maximum = 20, example = 5)]
    #[serde(default)]
    pub seats: Patch<Integer>,
    #[schema(schema_with = car_input_price_per_day_schema)]
    #[serde(default)]
    pub price_per_day: Patch<f64>,
    #[schema(schema_with = car_input_currency_schema)]
    #[serde(default)]
    pub currency: Patch<String>,
    #[schema(schema_with = images_schema)]
    #[serde(default)]
    pub images: Patch<Vec<String>>,
    #[schema(schema_with = features_schema)]
    #[serde(default)]
    pub features: Patch<Vec<String>>,
    #[schema(value_type = LocationInput)]
    #[serde(default)]
    pub location: Patch<LocationInput>,
    /// `true` when a new car has none.
    #[schema(value_type = bool)]
    #[serde(default)]
    pub is_active: Patch<bool>,
    /// Weekend price, discounts and seasons; `null` removes them.
    #[schema(value_type = Option<PricingInput>)]
    #[serde(default)]
    pub pricing: Patch<ObjectOnly<PricingInput>>,
    /// Kilometres a rental day includes, 1 or more; `null`: no limit. With `extraKmPrice`,
    /// a return past `mileageLimitKmPerDay × days` is charged per km beyond.
    #[schema(value_type = Option<i64>, minimum = 1)]
    #[serde(default)]
    pub mileage_limit_km_per_day: Patch<Integer>,
    /// The price of a km beyond the limit; greater than 0, at most 2 decimals; `null`: none.
    #[schema(value_type = Option<f64>, exclusive_minimum = 0.0, maximum = 100000.0, multiple_of = 0.01)]
    #[serde(default)]
    pub extra_km_price: Patch<f64>,
    /// Turnaround minutes kept free after every rental (cleaning, checks); 0 to 1440, 0 when
    /// a new car has none. A change applies to bookings made after it.
    #[schema(value_type = i32, minimum = 0, maximum = 1440, example = 60)]
    #[serde(default)]
    pub buffer_minutes: Patch<Integer>,
    /// Held on the renter's card at pickup and settled at return (with a payment provider),
    /// in the car's currency: 0 to 100000, at most 2 decimals; 0 when a new car has none.
    #[schema(value_type = f64, minimum = 0.0, maximum = 100000.0, multiple_of = 0.01, example = 300.0)]
    #[serde(default)]
    pub deposit_amount: Patch<f64>,
}

schema::field_schema!(car_input_name_schema, schema::text_schema::<255>(), None, "Tesla Model 3");
schema::field_schema!(car_input_brand_schema, schema::text_schema::<100>(), None, "Tesla");
schema::field_schema!(car_input_model_schema, schema::text_schema::<100>(), None, "Model 3");
schema::field_schema!(
    car_input_fuel_type_schema,
    schema::choice_schema::<FuelType>(),
    None,
    "electric"
);
schema::field_schema!(
    car_input_transmission_schema,
    schema::choice_schema::<Transmission>(),
    None,
    "automatic"
);
schema::field_schema!(
    car_input_price_per_day_schema,
    price_schema(),
    Some("In the currency's major unit, at most 2 decimals."),
    120.5
);
schema::field_schema!(
    car_input_currency_schema,
    money::currency_schema(),
    Some("`USD` when a new car has none."),
    "USD"
);

fn price_schema() -> utoipa::openapi::schema::Schema {
    schema::money_schema(MAX_PRICE)
}

fn images_schema() -> utoipa::openapi::schema::Schema {
    let url = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(2048))
        .pattern(Some(schema::HTTP_URL));
    schema::array_schema(url.into(), 1, 20)
}

fn features_schema() -> utoipa::openapi::schema::Schema {
    schema::array_schema(schema::text_schema::<100>(), 0, 50)
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
    /// The IANA zone given; `None`: the one of the coordinates.
    pub time_zone: Option<String>,
    pub is_active: bool,
    pub pricing: Option<Pricing>,
    pub mileage_limit_km_per_day: Option<i32>,
    pub extra_km_price_minor: Option<i64>,
    pub buffer_minutes: i32,
    pub deposit_minor: i64,
}

use crate::ports::MAX_BUFFER_MINUTES;

/// The highest price per day, in the major unit.
pub use crate::pricing::MAX_PRICE;
const MAX_PRICE_MINOR: i64 = 100_000 * 100;

fn text(max: usize) -> impl Fn(String) -> Result<String, String> {
    move |s| schema::text(&s, max)
}

fn images(list: Vec<String>) -> Result<Vec<String>, String> {
    if list.is_empty() || list.len() > 20 {
        return Err("must hold 1 to 20 URLs".into());
    }
    match list.iter().position(|s| !schema::is_http_url(s)) {
        Some(i) => Err(format!("item {i} is not an http(s) URL")),
        None => Ok(list),
    }
}

fn features(list: Vec<String>) -> Result<Vec<String>, String> {
    if list.len() > 50 {
        return Err("must hold at most 50 features".into());
    }
    list.into_iter().map(text(100)).collect()
}

fn coordinate(lo: f64, hi: f64) -> impl Fn(f64) -> Result<f64, String> {
    move |v| {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(crate::db::functions::degrees(v))
        } else {
            Err(format!("must be between {lo} and {hi}"))
        }
    }
}

/// A deposit: 0 to the highest price, at most 2 decimals.
fn deposit(v: f64) -> Result<i64, String> {
    match money::from_major(v) {
        Some(m) if (0..=MAX_PRICE_MINOR).contains(&m) => Ok(m),
        Some(_) => Err("must be from 0 to 100000".into()),
        None => Err("must be a number with at most 2 decimals".into()),
    }
}

pub(super) fn price(v: f64) -> Result<i64, String> {
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
    /// The parsed input when sent, else the base value; a missing value without base is an
    /// error ("is required"), and so is `null`.
    fn field<T, U>(
        &mut self,
        name: &str,
        input: Patch<T>,
        base: Option<U>,
        parse: impl FnOnce(T) -> Result<U, String>,
    ) -> Option<U> {
        let result = match (input.required(), base) {
            (Err(e), _) => Err(e),
            (Ok(Some(v)), _) => parse(v),
            (Ok(None), Some(b)) => Ok(b),
            (Ok(None), None) => Err("is required".into()),
        };
        self.keep(name, result)
    }

    /// A field `null` clears: the parsed input, `None` for `null`, else the base.
    fn nullable<T>(
        &mut self,
        name: &str,
        input: Patch<String>,
        base: Option<T>,
        parse: impl FnOnce(String) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let result = match input {
            Patch::Absent => Ok(base),
            Patch::Null => Ok(None),
            Patch::Value(v) => parse(v).map(Some),
        };
        self.keep(name, result)
    }

    fn keep<U>(&mut self, name: &str, result: Result<U, String>) -> Option<U> {
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
        let year = m.field("year", self.year, b.map(|b| b.year), |v| {
            v.within(1900, i64::from(max_year)).map(|y| y as i32)
        });
        let fuel_type = m.field("fuelType", self.fuel_type, b.map(|b| b.fuel_type), |s| {
            FuelType::parse(&s)
        });
        let transmission = m.field(
            "transmission",
            self.transmission,
            b.map(|b| b.transmission),
            |s| Transmission::parse(&s),
        );
        let seats = m.field("seats", self.seats, b.map(|b| b.seats), |v| {
            v.within(1, 20).map(|n| n as i32)
        });
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
        let l = match self.location.required() {
            Ok(Some(l)) => l,
            Ok(None) => {
                if b.is_none() {
                    m.errors.push(FieldError::new("location", "is required"));
                }
                LocationInput::default()
            }
            Err(e) => {
                m.errors.push(FieldError::new("location", e));
                LocationInput::default()
            }
        };
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
        let state = m.nullable(
            "location.state",
            l.state,
            b.and_then(|b| b.state.clone()),
            text(100),
        );
        let country = m.field(
            "location.country",
            l.country,
            b.map(|b| b.country.clone()),
            text(100),
        );
        let postal_code = m.nullable(
            "location.postalCode",
            l.postal_code,
            b.and_then(|b| b.postal_code.clone()),
            text(20),
        );
        // A zone given is kept until another is given; without one the car's zone follows
        // its coordinates (`null` returns to that).
        let time_zone = match l.time_zone {
            Patch::Absent => Some(b.and_then(|b| b.time_zone.clone())),
            Patch::Null => Some(None),
            Patch::Value(zone) => m.keep("location.timeZone", time_zone_name(&zone).map(Some)),
        };
        let pricing = match self.pricing {
            Patch::Absent => Some(b.and_then(|b| b.pricing.clone())),
            Patch::Null => Some(None),
            Patch::Value(ObjectOnly(input)) => match input.validate("pricing", price) {
                Ok(p) => Some(Some(p)),
                Err(errors) => {
                    m.errors.extend(errors);
                    None
                }
            },
        };
        let mileage_limit_km_per_day = match self.mileage_limit_km_per_day {
            Patch::Absent => Some(b.and_then(|b| b.mileage_limit_km_per_day)),
            Patch::Null => Some(None),
            Patch::Value(v) => m.keep(
                "mileageLimitKmPerDay",
                v.within(1, i64::from(i32::MAX)).map(|n| Some(n as i32)),
            ),
        };
        let extra_km_price_minor = match self.extra_km_price {
            Patch::Absent => Some(b.and_then(|b| b.extra_km_price_minor)),
            Patch::Null => Some(None),
            Patch::Value(v) => m.keep("extraKmPrice", price(v).map(Some)),
        };
        let buffer_minutes = m.field(
            "bufferMinutes",
            self.buffer_minutes,
            Some(b.map_or(0, |b| b.buffer_minutes)),
            |v| v.within(0, MAX_BUFFER_MINUTES).map(|n| n as i32),
        );
        let deposit_minor = m.field(
            "depositAmount",
            self.deposit_amount,
            Some(b.map_or(0, |b| b.deposit_minor)),
            deposit,
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
                time_zone: time_zone?,
                is_active: is_active?,
                pricing: pricing?,
                mileage_limit_km_per_day: mileage_limit_km_per_day?,
                extra_km_price_minor: extra_km_price_minor?,
                buffer_minutes: buffer_minutes?,
                deposit_minor: deposit_minor?,
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
    pub id: CarId,
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
    /// [`Pricing`] as JSON.
    pub pricing: Option<String>,
    pub mileage_limit_km_per_day: Option<i32>,
    pub extra_km_price: Option<i64>,
    pub buffer_minutes: i32,
    pub deposit_amount: i64,
    /// [`StoredPhoto`]s as JSON, in position order.
    pub photos: String,
}

/// A car photo as the car row keeps it: its upload's id, the keys and public URLs of its
/// derivatives, and what describes the `large` one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPhoto {
    pub id: UploadId,
    pub sha256: String,
    pub url: String,
    pub thumb_url: String,
    pub keys: Vec<String>,
    pub width: u32,
    pub height: u32,
    pub size: u64,
}

impl StoredPhoto {
    pub fn to_api(&self, position: usize) -> Photo {
        Photo {
            id: self.id,
            url: self.url.clone(),
            thumb_url: self.thumb_url.clone(),
            width: self.width,
            height: self.height,
            content_type: "image/webp".into(),
            size: self.size,
            position,
        }
    }
}

/// A photo of a car, as answers show it: `url`, size and type are those of its `large`
/// WebP version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Photo {
    #[schema(value_type = uuid::Uuid)]
    pub id: UploadId,
    pub url: String,
    pub thumb_url: String,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
    pub size: u64,
    /// From 0; the first is the cover.
    pub position: usize,
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl CarRow {
    pub fn new(id: CarId, draft: CarDraft, now: DateTime<Utc>) -> CarRow {
        let words = format!(
            "{} {} {} {}",
            draft.name,
            draft.brand,
            draft.model,
            draft.features.join(" ")
        );
        CarRow {
            id,
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
            pricing: draft
                .pricing
                .as_ref()
                .and_then(|p| serde_json::to_string(p).ok()),
            mileage_limit_km_per_day: draft.mileage_limit_km_per_day,
            extra_km_price: draft.extra_km_price_minor,
            buffer_minutes: draft.buffer_minutes,
            deposit_amount: draft.deposit_minor,
            photos: "[]".into(),
        }
    }

    pub fn photos(&self) -> Vec<StoredPhoto> {
        serde_json::from_str(&self.photos).unwrap_or_default()
    }

    pub fn set_photos(&mut self, photos: &[StoredPhoto]) {
        self.photos = serde_json::to_string(photos).unwrap_or_else(|_| "[]".into());
    }

    /// The photos' `large` URLs in order, then the URLs given directly.
    /// The IANA zone of the car's coordinates.
    pub fn zone_of_place(&self) -> String {
        crate::messages::time_zone_at(self.latitude, self.longitude)
    }

    pub fn all_images(&self) -> Vec<String> {
        let mut images: Vec<String> = self.photos().into_iter().map(|p| p.url).collect();
        images.extend(self.images());
        images
    }

    pub fn pricing(&self) -> Option<Pricing> {
        serde_json::from_str(self.pricing.as_deref()?).ok()
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
            time_zone: None,
            is_active: self.is_active,
            pricing: self.pricing(),
            mileage_limit_km_per_day: self.mileage_limit_km_per_day,
            extra_km_price_minor: self.extra_km_price,
            buffer_minutes: self.buffer_minutes,
            deposit_minor: self.deposit_amount,
        }
    }

    /// The car as the API answers it, its times in `time_zone`.
    fn to_api_in(&self, time_zone: String) -> Car {
        Car {
            id: self.id,
            name: self.name.clone(),
            brand: self.brand.clone(),
            model: self.model.clone(),
            year: self.year,
            fuel_type: self.fuel_type.clone(),
            transmission: self.transmission.clone(),
            seats: self.seats,
            price_per_day: money::to_major(self.price_per_day),
            currency: self.currency.clone(),
            images: self.all_images(),
            photos: self
                .photos()
                .iter()
                .enumerate()
                .map(|(i, p)| p.to_api(i))
                .collect(),
            features: parse_list(&self.features),
            location: Location {
                latitude: self.latitude,
                longitude: self.longitude,
                address: self.address.clone(),
                city: self.city.clone(),
                state: self.state.clone(),
                country: self.country.clone(),
                postal_code: self.postal_code.clone(),
                time_zone,
            },
            is_active: self.is_active,
            pricing: self.pricing().map(|p| p.view()),
            mileage_limit_km_per_day: self.mileage_limit_km_per_day,
            extra_km_price: self.extra_km_price.map(money::to_major),
            buffer_minutes: self.buffer_minutes,
            deposit_amount: money::to_major(self.deposit_amount),
            created_at: from_db(self.created_at),
            updated_at: from_db(self.updated_at),
        }
    }
}

/// A car as stored: its row and the column beyond diesel's 32 (`car_zones`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cars)]
pub struct CarRecord {
    #[diesel(embed)]
    pub row: CarRow,
    #[diesel(select_expression = diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>("cars.time_zone"))]
    #[diesel(select_expression_type = diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Text>>)]
    pub time_zone: Option<String>,
}

impl CarRecord {
    /// A car about to be stored: its zone the one given, or its coordinates'.
    pub fn new(id: CarId, draft: CarDraft, now: DateTime<Utc>) -> CarRecord {
        let given = draft.time_zone.clone();
        let row = CarRow::new(id, draft, now);
        let time_zone = Some(given.unwrap_or_else(|| row.zone_of_place()));
        CarRecord { row, time_zone }
    }

    /// The IANA zone its times are written in.
    pub fn time_zone(&self) -> String {
        self.time_zone.clone().unwrap_or_else(|| self.row.zone_of_place())
    }

    pub fn to_api(&self) -> Car {
        self.row.to_api_in(self.time_zone())
    }

    /// What a change starts from: the zone only when it was given (one derived follows the
    /// coordinates).
    pub fn draft(&self) -> CarDraft {
        let derived = self.row.zone_of_place();
        CarDraft {
            time_zone: self.time_zone.clone().filter(|z| *z != derived),
            ..self.row.draft()
        }
    }
}

impl std::ops::Deref for CarRecord {
    type Target = CarRow;
    fn deref(&self) -> &CarRow {
        &self.row
    }
}

impl std::ops::DerefMut for CarRecord {
    fn deref_mut(&mut self) -> &mut CarRow {
        &mut self.row
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
    /// The IANA zone of the coordinates: the one dates in messages about the car are
    /// written in.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Car {
    #[schema(value_type = uuid::Uuid)]
    pub id: CarId,
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
    /// The photos' `large` URLs in order, then the URLs given directly.
    pub images: Vec<String>,
    pub photos: Vec<Photo>,
    pub features: Vec<String>,
    pub location: Location,
    pub is_active: bool,
    /// `null`: every day costs `pricePerDay`, no discount.
    pub pricing: Option<PricingView>,
    pub mileage_limit_km_per_day: Option<i32>,
    pub extra_km_price: Option<f64>,
    /// Minutes the car stays held after each rental's dropoff.
    pub buffer_minutes: i32,
    /// Held on the renter's card while the car is out (with a payment provider).
    #[schema(example = 300.0)]
    pub deposit_amount: f64,
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
            money::filter_amount(p)
                .ok_or_else(|| {
                    errors.push(FieldError::new(
                        "maxPrice",
                        "must be 0 to 100000000 with at most 2 decimals",
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

/// What `GET /cars/{id}/quote` asks: a rental's window (as a booking's) and extras.
#[derive(Debug, Clone)]
pub struct QuoteRequest {
    pub pickup: DateTime<Utc>,
    pub dropoff: DateTime<Utc>,
    pub extras: Vec<crate::pricing::ExtraRequest>,
}

impl QuoteRequest {
    pub fn parse(query: &QueryParams) -> Result<QuoteRequest, ApiError> {
        let mut errors = Vec::new();
        let window = crate::pricing::rental_window(
            query.get("pickupTime"),
            query.get("dropoffTime"),
            crate::time::now(),
            &mut errors,
        );
        let extras = match query.get("extras").map(crate::pricing::parse_extras_param) {
            None => Vec::new(),
            Some(Ok(extras)) => extras,
            Some(Err(e)) => {
                errors.push(e);
                Vec::new()
            }
        };
        check(errors)?;
        match window {
            Some((pickup, dropoff)) => Ok(QuoteRequest {
                pickup,
                dropoff,
                extras,
            }),
            None => Err(ApiError::field("pickupTime", "is required")),
        }
    }
}

/// `GET /cars/{id}/quote`: what a booking of that window would cost now, line by line, and
/// whether it would be accepted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    #[schema(value_type = uuid::Uuid)]
    pub car_id: CarId,
    pub pickup_time: DateTime<Utc>,
    pub dropoff_time: DateTime<Utc>,
    /// Every started 24 hours, at least 1.
    pub days: i64,
    pub currency: String,
    /// Whether a booking of this window would be accepted now (the car active and free).
    pub available: bool,
    /// The rental, then the discount when one applies, then one line per extra.
    pub lines: Vec<crate::pricing::LineView>,
    /// The sum of the lines.
    #[schema(example = 360.0)]
    pub total_price: f64,
}

/// `GET /cars/{id}/availability`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CarAvailability {
    #[schema(value_type = uuid::Uuid)]
    pub car_id: CarId,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Bookings (ending after their turnaround buffer) and blocks, in start order.
    pub busy: Vec<crate::ports::Busy>,
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
            year: Patch::Value(Integer(1899)),
            seats: Patch::Value(Integer(21)),
            price_per_day: Patch::Value(10.999),
            currency: Patch::Value("ZZZ".into()),
            images: Patch::Value(vec!["ftp://x/y.png".into()]),
            fuel_type: Patch::Value("steam".into()),
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
        let cleared = clear.apply_to(changed.clone()).unwrap();
        assert_eq!(cleared.state, None);
        assert_eq!(cleared.postal_code, changed.postal_code);

        let nulls: CarInput =
            serde_json::from_value(serde_json::json!({"name": null, "location": null})).unwrap();
        assert_eq!(fields(nulls.apply_to(changed)), ["name", "location"]);
    }
}
