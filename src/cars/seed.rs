//! A demo fleet: `carrental seed --cars N`, and the benchmarks' data. Deterministic for a
//! given seed: a third of the cars crowd around five French cities, the rest spread over
//! the country.

use diesel::Connection;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use crate::ids::CarId;

use super::model::{CarDraft, CarRecord};
use super::store;
use crate::db::DbConn;
use crate::error::ApiError;
use crate::ports::{FuelType, SearchIndexer, Transmission};
use crate::time;

/// (name, latitude, longitude)
pub const CITIES: [(&str, f64, f64); 5] = [
    ("Paris", 48.8566, 2.3522),
    ("Lyon", 45.7640, 4.8357),
    ("Marseille", 43.2965, 5.3698),
    ("Bordeaux", 44.8378, -0.5792),
    ("Lille", 50.6292, 3.0573),
];
/// Mainland France, roughly.
const COUNTRY: ((f64, f64), (f64, f64)) = ((42.5, 51.0), (-4.5, 8.0));

const MODELS: [(&str, &str, FuelType, i32, &str); 8] = [
    ("Tesla", "Model 3", FuelType::Electric, 5, "Autopilot"),
    ("Renault", "Zoe", FuelType::Electric, 5, "Fast charging"),
    ("Peugeot", "308", FuelType::Diesel, 5, "GPS"),
    ("Citroen", "Berlingo", FuelType::Diesel, 7, "Roof rack"),
    ("Toyota", "Yaris", FuelType::Hybrid, 5, "Bluetooth"),
    ("BMW", "X5", FuelType::Petrol, 5, "Panoramic roof"),
    ("Volkswagen", "Golf", FuelType::Petrol, 5, "Apple CarPlay"),
    ("Fiat", "500", FuelType::Petrol, 4, "Convertible"),
];

pub fn fleet(n: usize, seed: u64) -> Vec<CarDraft> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let (city, lat, lng) = if rng.random_bool(1.0 / 3.0) {
                let (name, lat, lng) = CITIES[rng.random_range(0..CITIES.len())];
                // Within about 20 km of the centre, denser near it.
                let r = 20.0 * rng.random::<f64>().powi(2) / 111.2;
                let a = rng.random::<f64>() * std::f64::consts::TAU;
                (
                    name,
                    lat + r * a.sin(),
                    lng + r * a.cos() / lat.to_radians().cos(),
                )
            } else {
                let ((lat0, lat1), (lng0, lng1)) = COUNTRY;
                (
                    "Countryside",
                    rng.random_range(lat0..lat1),
                    rng.random_range(lng0..lng1),
                )
            };
            let (brand, model, fuel, seats, feature) = MODELS[rng.random_range(0..MODELS.len())];
            CarDraft {
                name: format!("{brand} {model}"),
                brand: brand.into(),
                model: model.into(),
                year: rng.random_range(2015..=2025),
                fuel_type: fuel,
                transmission: if rng.random_bool(0.6) {
                    Transmission::Automatic
                } else {
                    Transmission::Manual
                },
                seats,
                price_minor: rng.random_range(30..=300) * 100
                    + if rng.random_bool(0.5) { 50 } else { 0 },
                currency: "EUR".into(),
                images: vec![format!("https://img.example.com/cars/{}.jpg", i % 97)],
                features: vec![feature.into()],
                latitude: lat.clamp(-90.0, 90.0),
                longitude: lng.clamp(-180.0, 180.0),
                address: format!("{} Rue de la Gare", 1 + i % 200),
                city: city.into(),
                state: None,
                country: "France".into(),
                postal_code: None,
                time_zone: None,
                is_active: true,
                pricing: None,
                mileage_limit_km_per_day: None,
                extra_km_price_minor: None,
                buffer_minutes: 0,
                deposit_minor: 0,
            }
        })
        .collect()
}

/// Inserts the cars in batches, each batch one transaction; returns how many.
pub fn insert(
    conn: &mut DbConn,
    drafts: Vec<CarDraft>,
    indexer: &dyn SearchIndexer,
) -> Result<usize, ApiError> {
    let mut count = 0;
    let mut drafts = drafts.into_iter().peekable();
    while drafts.peek().is_some() {
        // Each with its zone, as a car made through the API (reads then need not derive it).
        let batch: Vec<CarRecord> = drafts
            .by_ref()
            .take(1000)
            .map(|d| CarRecord::new(CarId::random(), d, time::now()))
            .collect();
        conn.transaction(|conn| {
            store::insert_records(conn, &batch)?;
            for car in &batch {
                indexer.car_changed(conn, car.row.id)?;
            }
            Ok::<_, ApiError>(())
        })?;
        count += batch.len();
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleets_are_deterministic_and_valid() {
        let a = fleet(300, 7);
        assert_eq!(a, fleet(300, 7));
        assert_ne!(a, fleet(300, 8));
        assert!(a
            .iter()
            .all(|c| (30..=300).contains(&(c.price_minor / 100)) && c.images.len() == 1));
        let in_paris = a.iter().filter(|c| c.city == "Paris").count();
        assert!(in_paris > 5, "{in_paris}");
    }
}
