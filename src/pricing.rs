//! What a rental costs under a car's pricing rules, day by day, in minor units (hundredths):
//! integer arithmetic, so every amount is exact and the discount's rounding is the one
//! written here (half up), never a float's.
//!
//! Day k of a rental (from 0) starts at `pickup + k × 24 h`; its rate is the price of the
//! season holding that instant's UTC date, else the weekend price on a Saturday or Sunday
//! (when set), else the car's daily price. Days are 24-hour spans in UTC, so a rental across
//! a daylight-saving change is priced as any other.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;
use crate::http::required_time;
use crate::http::schema::Integer;
use crate::money;

/// The longest rental, in days.
pub const MAX_RENTAL_DAYS: i64 = 90;

/// Whole days charged: every started 24 hours, at least one.
pub fn rental_days(pickup: DateTime<Utc>, dropoff: DateTime<Utc>) -> i64 {
    let ms = (dropoff - pickup).num_milliseconds();
    let day = TimeDelta::days(1).num_milliseconds();
    ((ms + day - 1) / day).max(1)
}

/// A rental's window as bookings and quotes take it: both times required (RFC 3339),
/// `pickupTime` in the future, `dropoffTime` after it and at most 90 days later. Errors are
/// added to `errors`, naming the field.
pub fn rental_window(
    pickup: Option<&str>,
    dropoff: Option<&str>,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let pickup = required_time("pickupTime", pickup, errors);
    let dropoff = required_time("dropoffTime", dropoff, errors);
    if pickup.is_some_and(|p| p <= now) {
        errors.push(FieldError::new("pickupTime", "must be in the future"));
    }
    let (p, d) = (pickup?, dropoff?);
    if d <= p {
        errors.push(FieldError::new("dropoffTime", "must be after pickupTime"));
        return None;
    }
    if d - p > TimeDelta::days(MAX_RENTAL_DAYS) {
        errors.push(FieldError::new(
            "dropoffTime",
            "the rental may last at most 90 days",
        ));
        return None;
    }
    (p > now).then_some((p, d))
}

/// A season: inclusive dates, one daily price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Season {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub price_minor: i64,
}

/// A car's rules beyond its daily price (stored as this, in minor units).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub weekend_minor: Option<i64>,
    pub weekly_discount_percent: i64,
    pub monthly_discount_percent: i64,
    pub seasons: Vec<Season>,
}

/// A car's `pricing` as sent: every field optional (discounts 0, no seasons, no weekend
/// price when absent).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricingInput {
    #[schema(schema_with = pricing_input_weekend_price_per_day_schema)]
    #[serde(default)]
    pub weekend_price_per_day: Option<f64>,
    /// From rentals of 7 days; 0 to 90.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 90)]
    #[serde(default)]
    pub weekly_discount_percent: Option<Integer>,
    /// From rentals of 28 days; 0 to 90.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 90)]
    #[serde(default)]
    pub monthly_discount_percent: Option<Integer>,
    /// At most 20, none overlapping.
    #[schema(max_items = 20)]
    #[serde(default)]
    pub seasons: Option<Vec<SeasonInput>>,
}

crate::http::schema::field_schema!(
    pricing_input_weekend_price_per_day_schema,
    nullable_price_schema(),
    Some("Greater than 0, at most 2 decimals; `null` or absent: weekends cost `pricePerDay`.")
);

/// Inclusive dates (`YYYY-MM-DD`, UTC), `from` not after `to`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeasonInput {
    #[schema(format = Date, example = "2026-07-01")]
    pub from: String,
    #[schema(format = Date, example = "2026-08-31")]
    pub to: String,
    #[schema(schema_with = price_schema)]
    pub price_per_day: f64,
}

/// The highest daily price, in the major unit (a car's `pricePerDay` has the same bound).
pub const MAX_PRICE: f64 = 100_000.0;

pub fn price_schema() -> utoipa::openapi::schema::Schema {
    crate::http::schema::money_schema(MAX_PRICE)
}

fn nullable_price_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .exclusive_minimum(Some(0.0))
        .maximum(Some(MAX_PRICE))
        .multiple_of(Some(0.01))
        .into()
}

/// A car's `pricing` as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricingView {
    pub weekend_price_per_day: Option<f64>,
    pub weekly_discount_percent: i64,
    pub monthly_discount_percent: i64,
    pub seasons: Vec<SeasonView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeasonView {
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    pub price_per_day: f64,
}

impl Pricing {
    pub fn view(&self) -> PricingView {
        PricingView {
            weekend_price_per_day: self.weekend_minor.map(money::to_major),
            weekly_discount_percent: self.weekly_discount_percent,
            monthly_discount_percent: self.monthly_discount_percent,
            seasons: self
                .seasons
                .iter()
                .map(|s| SeasonView {
                    from: s.from.to_string(),
                    to: s.to.to_string(),
                    price_per_day: money::to_major(s.price_minor),
                })
                .collect(),
        }
    }
}

impl PricingInput {
    /// The rules, or every field error named under `at` (`pricing`). `price` checks an
    /// amount as the car's `pricePerDay` is checked.
    pub fn validate(
        self,
        at: &str,
        price: impl Fn(f64) -> Result<i64, String>,
    ) -> Result<Pricing, Vec<FieldError>> {
        let mut errors = Vec::new();
        let weekend_minor = match self.weekend_price_per_day.map(&price) {
            None => None,
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                errors.push(FieldError::new(format!("{at}.weekendPricePerDay"), e));
                None
            }
        };
        let mut percent = |name: &str, value: Option<Integer>| match value.map_or(0, |v| v.0) {
            p @ 0..=90 => p,
            _ => {
                errors.push(FieldError::new(
                    format!("{at}.{name}"),
                    "must be an integer from 0 to 90",
                ));
                0
            }
        };
        let weekly_discount_percent =
            percent("weeklyDiscountPercent", self.weekly_discount_percent);
        let monthly_discount_percent =
            percent("monthlyDiscountPercent", self.monthly_discount_percent);
        let given = self.seasons.unwrap_or_default();
        if given.len() > 20 {
            errors.push(FieldError::new(
                format!("{at}.seasons"),
                "at most 20 seasons",
            ));
        }
        let mut seasons: Vec<(usize, Season)> = Vec::new();
        for (i, s) in given.into_iter().enumerate().take(20) {
            let field = |name: &str| format!("{at}.seasons[{i}].{name}");
            let date = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
            let from = date(&s.from);
            let to = date(&s.to);
            if from.is_none() {
                errors.push(FieldError::new(field("from"), "must be a date, YYYY-MM-DD"));
            }
            match (from, to) {
                (_, None) => {
                    errors.push(FieldError::new(field("to"), "must be a date, YYYY-MM-DD"))
                }
                (Some(f), Some(t)) if t < f => {
                    errors.push(FieldError::new(field("to"), "must not be before from"))
                }
                _ => {}
            }
            let price_minor = match price(s.price_per_day) {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(FieldError::new(field("pricePerDay"), e));
                    None
                }
            };
            if let (Some(from), Some(to), Some(price_minor)) = (from, to, price_minor) {
                if to < from {
                    continue;
                }
                if seasons.iter().any(|(_, o)| o.from <= to && from <= o.to) {
                    errors.push(FieldError::new(field("from"), "overlaps another season"));
                    continue;
                }
                seasons.push((
                    i,
                    Season {
                        from,
                        to,
                        price_minor,
                    },
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut seasons: Vec<Season> = seasons.into_iter().map(|(_, s)| s).collect();
        seasons.sort_by_key(|s| s.from);
        Ok(Pricing {
            weekend_minor,
            weekly_discount_percent,
            monthly_discount_percent,
            seasons,
        })
    }
}

/// The rental part of a price: the sum of the day rates, and the discount (0 or negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RentalPrice {
    pub days: i64,
    pub amount_minor: i64,
    pub discount_percent: i64,
    pub discount_minor: i64,
}

impl RentalPrice {
    pub fn total_minor(&self) -> i64 {
        self.amount_minor + self.discount_minor
    }
}

/// What a line of a price is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Rental,
    Discount,
    Extra,
    LateFee,
    ExtraKm,
    /// Recorded at return, at the amount the desk gave it.
    Damage,
    /// What a late cancellation keeps (positive).
    CancellationFee,
    /// What a cancellation gave back (negative).
    Refund,
}

/// A line of a price, as stored with a booking (amounts in minor units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub kind: LineKind,
    pub description: String,
    pub code: Option<String>,
    pub quantity: Option<i64>,
    pub amount_minor: i64,
}

/// A line as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    pub kind: LineKind,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// Negative for a discount; at most 2 decimals.
    #[schema(example = 360.0)]
    pub amount: f64,
}

impl Line {
    pub fn view(&self) -> LineView {
        LineView {
            kind: self.kind,
            description: self.description.clone(),
            code: self.code.clone(),
            quantity: self.quantity,
            amount: money::to_major(self.amount_minor),
        }
    }
}

impl RentalPrice {
    /// The rental line, then the discount line when one applies.
    pub fn lines(&self) -> Vec<Line> {
        let unit = if self.days == 1 { "day" } else { "days" };
        let mut lines = vec![Line {
            kind: LineKind::Rental,
            description: format!("Rental, {} {unit}", self.days),
            code: None,
            quantity: Some(self.days),
            amount_minor: self.amount_minor,
        }];
        if self.discount_minor != 0 {
            let which = if self.days >= 28 { "Monthly" } else { "Weekly" };
            lines.push(Line {
                kind: LineKind::Discount,
                description: format!("{which} discount, {} %", self.discount_percent),
                code: None,
                quantity: None,
                amount_minor: self.discount_minor,
            });
        }
        lines
    }
}

/// An extra as prices need it (the catalogue's entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtraPrice {
    pub code: String,
    pub name: String,
    pub per_day_minor: Option<i64>,
    pub per_rental_minor: Option<i64>,
    pub currency: String,
    pub max_quantity: i64,
    pub active: bool,
}

/// One extra asked for: a code and a quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtraRequest {
    #[schema(pattern = "^[a-z0-9_-]{2,32}$", example = "child_seat")]
    pub code: String,
    #[schema(minimum = 1, maximum = 10, example = 1)]
    #[serde(deserialize_with = "crate::http::schema::integer")]
    pub quantity: i64,
}

/// Where the errors of the extras asked for are named: `extras[i].code` in a booking's
/// body, the `extras` parameter of a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtrasField {
    Body,
    Query,
}

impl ExtrasField {
    fn name(self, i: usize, part: &str) -> String {
        match self {
            ExtrasField::Body => format!("extras[{i}].{part}"),
            ExtrasField::Query => "extras".to_owned(),
        }
    }
}

/// The quote's `extras` parameter, `CODE:QTY,CODE:QTY`.
pub fn parse_extras_param(raw: &str) -> Result<Vec<ExtraRequest>, FieldError> {
    raw.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (code, quantity) = item.split_once(':').ok_or_else(|| {
                FieldError::new("extras", "must be CODE:QUANTITY, comma separated")
            })?;
            let quantity = quantity.trim().parse().map_err(|_| {
                FieldError::new(
                    "extras",
                    format!("the quantity of {} must be a whole number", code.trim()),
                )
            })?;
            Ok(ExtraRequest {
                code: code.trim().to_owned(),
                quantity,
            })
        })
        .collect()
}

/// One line per extra asked for: `pricePerDay × days × quantity` or
/// `pricePerRental × quantity`. An unknown or withdrawn code, a code given twice, a
/// currency other than the car's or a quantity outside 1..maxQuantity is an error naming
/// the item (or the `extras` parameter).
pub fn extra_lines(
    asked: &[ExtraRequest],
    catalogue: &std::collections::HashMap<String, ExtraPrice>,
    currency: &str,
    days: i64,
    field: ExtrasField,
) -> Result<Vec<Line>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    for (i, item) in asked.iter().enumerate() {
        let code_error = |message: String| FieldError::new(field.name(i, "code"), message);
        let Some(extra) = catalogue.get(&item.code).filter(|e| e.active) else {
            errors.push(code_error(format!("no extra {} is offered", item.code)));
            continue;
        };
        if asked[..i].iter().any(|other| other.code == item.code) {
            errors.push(code_error(format!("{} is asked for twice", item.code)));
            continue;
        }
        if extra.currency != currency {
            errors.push(code_error(format!(
                "{} is priced in {}, the car in {currency}",
                item.code, extra.currency
            )));
            continue;
        }
        if !(1..=extra.max_quantity).contains(&item.quantity) {
            errors.push(FieldError::new(
                field.name(i, "quantity"),
                format!("must be from 1 to {}", extra.max_quantity),
            ));
            continue;
        }
        let amount_minor = match (extra.per_day_minor, extra.per_rental_minor) {
            (Some(per_day), _) => per_day * days * item.quantity,
            (None, Some(per_rental)) => per_rental * item.quantity,
            (None, None) => 0,
        };
        lines.push(Line {
            kind: LineKind::Extra,
            description: extra.name.clone(),
            code: Some(extra.code.clone()),
            quantity: Some(item.quantity),
            amount_minor,
        });
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

/// The rate of the day starting at `start`.
pub fn day_rate(price_per_day_minor: i64, pricing: &Pricing, start: DateTime<Utc>) -> i64 {
    let date = start.date_naive();
    if let Some(season) = pricing
        .seasons
        .iter()
        .find(|s| s.from <= date && date <= s.to)
    {
        return season.price_minor;
    }
    match (date.weekday(), pricing.weekend_minor) {
        (Weekday::Sat | Weekday::Sun, Some(weekend)) => weekend,
        _ => price_per_day_minor,
    }
}

/// `amount × percent / 100`, rounded half up to a whole minor unit.
pub fn percent_of(amount_minor: i64, percent: i64) -> i64 {
    let scaled = i128::from(amount_minor) * i128::from(percent);
    let rounded = (scaled + 50).div_euclid(100);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// The price of `days` days from `pickup`.
pub fn rental_price(
    price_per_day_minor: i64,
    pricing: &Pricing,
    pickup: DateTime<Utc>,
    days: i64,
) -> RentalPrice {
    let amount_minor = (0..days)
        .map(|k| day_rate(price_per_day_minor, pricing, pickup + TimeDelta::days(k)))
        .sum();
    let discount_percent = if days >= 28 {
        pricing.monthly_discount_percent
    } else if days >= 7 {
        pricing.weekly_discount_percent
    } else {
        0
    };
    RentalPrice {
        days,
        amount_minor,
        discount_percent,
        discount_minor: -percent_of(amount_minor, discount_percent),
    }
}

/// The days and the price, without extras, of renting a car for `[pickup, dropoff)`.
pub fn rental_total(
    price_per_day_minor: i64,
    pricing: Option<&Pricing>,
    pickup: DateTime<Utc>,
    dropoff: DateTime<Utc>,
) -> (i64, i64) {
    let days = rental_days(pickup, dropoff);
    let price = rental_price(
        price_per_day_minor,
        pricing.unwrap_or(&Pricing::default()),
        pickup,
        days,
    );
    (days, price.total_minor())
}

// Amounts are written as units_hundredths (140_00 is 140.00).
#[allow(clippy::inconsistent_digit_grouping)]
#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rules() -> Pricing {
        Pricing {
            weekend_minor: Some(140_00),
            weekly_discount_percent: 10,
            monthly_discount_percent: 25,
            seasons: vec![Season {
                from: date("2026-07-01"),
                to: date("2026-08-31"),
                price_minor: 160_00,
            }],
        }
    }

    #[test]
    fn weekend_rate_on_saturday_and_sunday_only() {
        // 2026-06-05 is a Friday.
        let p = rental_price(100_00, &rules(), at("2026-06-05T10:00:00Z"), 4);
        // Friday, Saturday, Sunday, Monday.
        assert_eq!(p.amount_minor, 100_00 + 140_00 + 140_00 + 100_00);
        assert_eq!(p.discount_minor, 0);
    }

    #[test]
    fn a_season_starting_mid_rental_prices_its_days_only() {
        // 2026-06-29 (Monday) to 2026-07-03: two June weekdays, then three season days.
        let p = rental_price(100_00, &rules(), at("2026-06-29T09:00:00Z"), 5);
        assert_eq!(p.amount_minor, 2 * 100_00 + 3 * 160_00);
    }

    #[test]
    fn a_season_wins_over_the_weekend_rate() {
        // 2026-07-04 is a Saturday inside the season.
        assert_eq!(
            day_rate(100_00, &rules(), at("2026-07-04T12:00:00Z")),
            160_00
        );
    }

    #[test]
    fn the_day_is_the_utc_date_of_its_start() {
        // Friday 23:30 UTC: the first day is a Friday, the second starts on Saturday.
        let p = rental_price(100_00, &rules(), at("2026-06-05T23:30:00Z"), 2);
        assert_eq!(p.amount_minor, 100_00 + 140_00);
        // The same instant written with an offset is the same rental.
        let q = rental_price(100_00, &rules(), at("2026-06-06T01:30:00+02:00"), 2);
        assert_eq!(p, q);
    }

    #[test]
    fn discounts_start_at_7_and_28_days() {
        let none = Pricing {
            weekend_minor: None,
            ..rules()
        };
        let start = at("2026-03-02T10:00:00Z");
        let price = |days| rental_price(100_00, &none, start, days);
        assert_eq!(price(6).discount_percent, 0);
        assert_eq!(price(7).discount_percent, 10);
        assert_eq!(price(7).discount_minor, -70_00);
        assert_eq!(price(27).discount_percent, 10);
        assert_eq!(price(28).discount_percent, 25);
        assert_eq!(price(28).discount_minor, -700_00);
        assert_eq!(price(28).total_minor(), 2100_00);
    }

    #[test]
    fn the_discount_rounds_half_up_to_the_cent() {
        assert_eq!(percent_of(12345, 10), 1235, "1234.5 → 1235");
        assert_eq!(percent_of(12344, 10), 1234, "1234.4 → 1234");
        assert_eq!(percent_of(1, 50), 1, "0.5 → 1");
        assert_eq!(percent_of(1, 49), 0);
        assert_eq!(percent_of(0, 25), 0);
        let odd = Pricing {
            weekend_minor: None,
            weekly_discount_percent: 15,
            ..Pricing::default()
        };
        // 7 × 33.33 = 233.31; 15 % = 34.9965 → 35.00.
        let p = rental_price(33_33, &odd, at("2026-03-02T10:00:00Z"), 7);
        assert_eq!(p.amount_minor, 233_31);
        assert_eq!(p.discount_minor, -35_00);
    }

    #[test]
    fn a_daylight_saving_change_moves_nothing() {
        // Europe's clocks go forward on 2026-03-29; days stay 24-hour spans in UTC.
        let flat = Pricing::default();
        let p = rental_price(50_00, &flat, at("2026-03-28T09:00:00+01:00"), 3);
        assert_eq!(p.amount_minor, 150_00);
        let across = rental_price(
            50_00,
            &Pricing {
                weekend_minor: Some(70_00),
                ..Pricing::default()
            },
            at("2026-03-28T09:00:00+01:00"),
            3,
        );
        // Saturday 28th, Sunday 29th, Monday 30th (UTC dates of 08:00 UTC each day).
        assert_eq!(across.amount_minor, 70_00 + 70_00 + 50_00);
    }
}
