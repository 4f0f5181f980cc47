//! Search input, parsed once into a query that cannot be invalid, and the geometry of it.

use chrono::{DateTime, Duration, Utc};

use crate::db::functions::{normalize, EARTH_RADIUS_KM};
use crate::error::{ApiError, FieldError};
use crate::http::{check, parse_time, Choice, PageRequest, QueryParams};
use crate::money;
use crate::ports::{FuelType, Transmission};

pub const DEFAULT_RADIUS_KM: f64 = 10.0;
pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_RADIUS_KM: f64 = 500.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Distance,
    Price,
}

#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
    /// Normalized words, every one of which must match.
    pub text: Option<String>,
    pub fuel_type: Option<&'static str>,
    pub transmission: Option<&'static str>,
    pub min_seats: Option<i32>,
    pub min_price_minor: Option<i64>,
    pub max_price_minor: Option<i64>,
    /// Only cars free for the whole `[pickup, dropoff)`.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub sort: SortBy,
    pub page: PageRequest,
}

fn coordinate(
    query: &QueryParams,
    names: &[&str],
    bound: f64,
    errors: &mut Vec<FieldError>,
) -> f64 {
    match query.get_any(names) {
        None => {
            errors.push(FieldError::new(names[0], "is required"));
            0.0
        }
        Some((name, raw)) => match raw.parse::<f64>() {
            Ok(v) if v.is_finite() && v.abs() <= bound => crate::db::functions::degrees(v),
            _ => {
                errors.push(FieldError::new(
                    name,
                    format!("must be a number between -{bound} and {bound}"),
                ));
                0.0
            }
        },
    }
}

fn price(query: &QueryParams, name: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    let value = query.parse::<f64>(name, errors)?;
    match money::filter_amount(value) {
        Some(m) => Some(m),
        None => {
            errors.push(FieldError::new(
                name,
                "must be 0 to 100000000 with at most 2 decimals",
            ));
            None
        }
    }
}

impl SearchQuery {
    pub fn parse(query: &QueryParams) -> Result<SearchQuery, ApiError> {
        let mut errors = Vec::new();
        let latitude = coordinate(query, &["latitude", "lat"], 90.0, &mut errors);
        let longitude = coordinate(query, &["longitude", "lng", "lon"], 180.0, &mut errors);
        let radius_km = query
            .parse::<f64>("radius", &mut errors)
            .unwrap_or(DEFAULT_RADIUS_KM);
        if !(radius_km > 0.0 && radius_km <= MAX_RADIUS_KM) {
            errors.push(FieldError::new(
                "radius",
                "must be greater than 0 and at most 500 (km)",
            ));
        }
        let text = query.get("query").map(normalize).filter(|t| !t.is_empty());
        if query
            .get("query")
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            errors.push(FieldError::new("query", "must be at most 200 characters"));
        }
        let choice = |name: &str,
                      errors: &mut Vec<FieldError>,
                      parse: fn(&str) -> Result<&'static str, String>| {
            query.get(name).and_then(|raw| {
                parse(raw)
                    .map_err(|m| errors.push(FieldError::new(name, m)))
                    .ok()
            })
        };
        let fuel_type = choice("fuelType", &mut errors, |s| {
            FuelType::parse(s).map(Choice::name)
        });
        let transmission = choice("transmission", &mut errors, |s| {
            Transmission::parse(s).map(Choice::name)
        });
        let min_seats = query.parse::<i32>("seats", &mut errors);
        let min_price_minor = price(query, "minPrice", &mut errors);
        let max_price_minor = price(query, "maxPrice", &mut errors);
        if let (Some(lo), Some(hi)) = (min_price_minor, max_price_minor) {
            if hi < lo {
                errors.push(FieldError::new("maxPrice", "must not be below minPrice"));
            }
        }
        let time = |name: &str, errors: &mut Vec<FieldError>| {
            query
                .get(name)
                .and_then(|raw| parse_time(name, raw).map_err(|e| errors.push(e)).ok())
        };
        let pickup = time("pickupTime", &mut errors);
        let dropoff = time("dropoffTime", &mut errors);
        let window = match (
            query.get("pickupTime"),
            query.get("dropoffTime"),
            pickup,
            dropoff,
        ) {
            (Some(_), None, _, _) => {
                errors.push(FieldError::new(
                    "dropoffTime",
                    "is required with pickupTime",
                ));
                None
            }
            (None, Some(_), _, _) => {
                errors.push(FieldError::new(
                    "pickupTime",
                    "is required with dropoffTime",
                ));
                None
            }
            (_, _, Some(p), Some(d)) if d <= p => {
                errors.push(FieldError::new("dropoffTime", "must be after pickupTime"));
                None
            }
            (_, _, Some(p), Some(d)) if d - p > Duration::days(366) => {
                errors.push(FieldError::new(
                    "dropoffTime",
                    "must be at most 366 days after pickupTime",
                ));
                None
            }
            (_, _, Some(p), Some(d)) => Some((p, d)),
            _ => None,
        };
        let sort = match query.get("sort").map(str::to_ascii_lowercase) {
            None => SortBy::Distance,
            Some(s) if s == "distance" => SortBy::Distance,
            Some(s) if s == "price" => SortBy::Price,
            Some(_) => {
                errors.push(FieldError::new("sort", "must be distance or price"));
                SortBy::Distance
            }
        };
        let page = PageRequest::parse(query, &mut errors);
        check(errors)?;
        Ok(SearchQuery {
            latitude,
            longitude,
            radius_km,
            text,
            fuel_type,
            transmission,
            min_seats,
            min_price_minor,
            max_price_minor,
            window,
            sort,
            page,
        })
    }

    /// The smallest latitude/longitude box holding the whole circle.
    pub fn bounding_box(&self) -> BoundingBox {
        BoundingBox::around(self.latitude, self.longitude, self.radius_km)
    }
}

/// Degrees. `longitudes` is `None` when the circle holds a pole (every longitude), and two
/// ranges when it crosses the antimeridian.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundingBox {
    pub min_lat: f64,
    pub max_lat: f64,
    pub longitudes: Option<Vec<(f64, f64)>>,
}

impl BoundingBox {
    pub fn around(lat: f64, lng: f64, radius_km: f64) -> BoundingBox {
        // A hair wider than exact, so floating point never drops a car on the circle.
        let d = radius_km / EARTH_RADIUS_KM * (1.0 + 1e-9) + 1e-12;
        let (phi, lambda) = (lat.to_radians(), lng.to_radians());
        let (min_phi, max_phi) = (phi - d, phi + d);
        let half_pi = std::f64::consts::FRAC_PI_2;
        if min_phi <= -half_pi || max_phi >= half_pi {
            return BoundingBox {
                min_lat: min_phi.max(-half_pi).to_degrees(),
                max_lat: max_phi.min(half_pi).to_degrees(),
                longitudes: None,
            };
        }
        let dl = (d.sin() / phi.cos()).min(1.0).asin();
        let (lo, hi) = ((lambda - dl).to_degrees(), (lambda + dl).to_degrees());
        let longitudes = if lo < -180.0 {
            vec![(lo + 360.0, 180.0), (-180.0, hi)]
        } else if hi > 180.0 {
            vec![(lo, 180.0), (-180.0, hi - 360.0)]
        } else {
            vec![(lo, hi)]
        };
        BoundingBox {
            min_lat: min_phi.to_degrees(),
            max_lat: max_phi.to_degrees(),
            longitudes: Some(longitudes),
        }
    }

    pub fn contains(&self, lat: f64, lng: f64) -> bool {
        lat >= self.min_lat
            && lat <= self.max_lat
            && self
                .longitudes
                .as_ref()
                .is_none_or(|ranges| ranges.iter().any(|(lo, hi)| lng >= *lo && lng <= *hi))
    }
}

/// `distanceKm` as answered: two decimals.
pub fn round_km(km: f64) -> f64 {
    (km * 100.0).round() / 100.0
}

/// Why the OpenSearch index cannot be used (either engine build answers it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexProblem {
    /// The cluster did not answer, or not well: try again later.
    Unavailable(String),
    /// The cluster answered that this cannot work as configured: waiting will not help.
    Misconfigured(String),
}

impl std::fmt::Display for IndexProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexProblem::Unavailable(e) | IndexProblem::Misconfigured(e) => f.write_str(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::functions::haversine_km;

    #[test]
    fn the_box_holds_every_point_of_the_circle() {
        for (lat, lng, r) in [
            (48.85, 2.35, 10.0),
            (0.0, 179.95, 50.0),
            (-33.9, -179.99, 500.0),
            (89.9, 10.0, 50.0),
            (-89.5, 0.0, 100.0),
            (64.0, -21.9, 500.0),
        ] {
            let b = BoundingBox::around(lat, lng, r);
            for i in 0..720 {
                // Points on the circle, found by walking the bearing.
                let bearing = f64::from(i) / 2.0;
                let (p1, l1, br, d) = (
                    lat.to_radians(),
                    lng.to_radians(),
                    bearing.to_radians(),
                    r / EARTH_RADIUS_KM,
                );
                let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * br.cos()).asin();
                let l2 = l1 + (br.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
                let lng2 = (l2.to_degrees() + 540.0) % 360.0 - 180.0;
                let on_circle = haversine_km(lat, lng, p2.to_degrees(), lng2);
                assert!((on_circle - r).abs() < 1e-6);
                assert!(
                    b.contains(p2.to_degrees(), lng2),
                    "{lat},{lng} r={r} bearing {bearing}: {b:?}"
                );
            }
        }
    }

    #[test]
    fn crossing_the_antimeridian_gives_two_ranges() {
        let b = BoundingBox::around(0.0, 179.9, 50.0);
        let ranges = b.longitudes.unwrap();
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[0].1, 180.0);
        assert_eq!(ranges[1].0, -180.0);
        assert!(BoundingBox::around(89.99, 0.0, 10.0).longitudes.is_none());
    }
}
