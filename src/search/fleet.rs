//! The database engine's copy of the searchable cars, held in the process and brought up to
//! date before every search ([`crate::db::follow`]): a search answers from memory what the
//! table says at that moment (docs/DESIGN.md, "Where a search's time goes").
//!
//! Cars sit in cells of an eighth of a degree, keyed `row * ROW + column`, in one array
//! ordered by cell, so that a row of the search's box is one run of the array. A car is
//! inside the circle by the dot product of unit vectors, and by its great-circle distance
//! where that product is too close to call.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::{Range, RangeInclusive};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use foldhash::{HashMap, HashMapExt, HashSet};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text};

use super::model::{SearchQuery, SortBy};
use crate::db::functions::{haversine_km, EARTH_RADIUS_KM};
use crate::db::follow::{CarCopy, Follower};
use crate::db::DbConn;
use crate::http::Choice;
use crate::ids::CarId;
use crate::ports::{FuelType, Transmission};
use crate::pricing::{rental_total, Pricing};

const PER_DEGREE: f64 = 8.0;
const ROW: i32 = 10_000;
/// Dot products of unit vectors this close to the circle's are settled by the distance.
const SLACK_KM: f64 = 1e-3;

#[derive(QueryableByName)]
pub struct Row {
    #[diesel(sql_type = Text)]
    id: CarId,
    #[diesel(sql_type = Double)]
    latitude: f64,
    #[diesel(sql_type = Double)]
    longitude: f64,
    #[diesel(sql_type = Text)]
    fuel_type: String,
    #[diesel(sql_type = Text)]
    transmission: String,
    #[diesel(sql_type = Integer)]
    seats: i32,
    #[diesel(sql_type = BigInt)]
    price_per_day: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pricing: Option<String>,
    #[diesel(sql_type = Text)]
    search_text: String,
    #[diesel(sql_type = Bool)]
    searchable: bool,
    #[diesel(sql_type = BigInt)]
    change_seq: i64,
}

/// One searchable car, kept small: a fleet holds many.
struct Car {
    id: CarId,
    lat: f64,
    lng: f64,
    unit: [f64; 3],
    price: i64,
    pricing: Option<Arc<Pricing>>,
    text: u32,
    seats: u8,
    fuel: FuelType,
    gearbox: Transmission,
    /// False once a newer row of the car replaced it, until the array is compacted.
    live: bool,
}

impl Car {
    fn cell(&self) -> i32 {
        cell_of(self.lat, self.lng)
    }
}

#[derive(Default)]
pub struct Cars {
    /// Ordered by cell once [`CarCopy::applied`]; the cars a catching up pushes follow.
    cars: Vec<Car>,
    /// Each cell's key and where its cars start in `cars`, by key.
    starts: Vec<(i32, usize)>,
    /// How many of `cars` are in order.
    sorted: usize,
    /// The cell each car was filed under.
    cell_of: HashMap<CarId, i32>,
    changed: bool,
    /// Each distinct search text once, numbered.
    texts: HashMap<Box<str>, u32>,
    /// Each distinct pricing once, so that cars priced alike are quoted once.
    pricings: HashMap<Box<str>, Arc<Pricing>>,
}

/// The searchable cars of this process.
#[derive(Default)]
pub struct Fleet(Follower<Cars>);

/// A car of a search's page: how far it is and, for a search with a window, what renting
/// it for the window costs (days, minor units).
pub struct Hit {
    pub id: CarId,
    pub km: f64,
    pub quote: Option<(i64, i64)>,
}

/// What a search found: its page in order, and how many cars match in all.
pub type Found = (Vec<Hit>, i64);

fn unit(lat: f64, lng: f64) -> [f64; 3] {
    let (phi, lambda) = (lat.to_radians(), lng.to_radians());
    [phi.cos() * lambda.cos(), phi.cos() * lambda.sin(), phi.sin()]
}

fn cell_row(lat: f64) -> i32 {
    ((lat + 90.0) * PER_DEGREE).floor() as i32
}

fn cell_column(lng: f64) -> i32 {
    ((lng + 180.0) * PER_DEGREE).floor() as i32
}

fn cell_of(lat: f64, lng: f64) -> i32 {
    cell_row(lat) * ROW + cell_column(lng)
}

impl Fleet {
    pub fn catch_up(&self, conn: &mut DbConn) -> QueryResult<()> {
        self.0.catch_up(conn)
    }

    /// The page of `q` and its total, as the table says now. `texts` are the search texts
    /// that match the query's words (`None`: no text asked), `busy` the cars taken in its
    /// window.
    pub fn search(
        &self,
        conn: &mut DbConn,
        q: &SearchQuery,
        texts: Option<&[String]>,
        busy: &[CarId],
    ) -> QueryResult<Found> {
        self.0.read(conn, |cars| cars.search(q, texts, busy))
    }
}

impl CarCopy for Cars {
    type Row = Row;
    const COLUMNS: &'static str = "id, latitude, longitude, fuel_type, transmission, seats, \
        price_per_day, pricing, search_text, is_active AND deleted_at IS NULL AS searchable, \
        change_seq";

    fn key(row: &Row) -> (i64, String) {
        (row.change_seq, row.id.to_string())
    }

    fn apply(&mut self, row: Row) {
        self.remove(row.id);
        if !row.searchable {
            return;
        }
        let (Ok(fuel), Ok(gearbox)) = (
            FuelType::parse(&row.fuel_type),
            Transmission::parse(&row.transmission),
        ) else {
            tracing::error!(car = %row.id, "a car with an unknown fuel type or gearbox is not searchable");
            return;
        };
        let next = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        let text = *self
            .texts
            .entry(row.search_text.into_boxed_str())
            .or_insert(next);
        let pricing = row.pricing.and_then(|json| {
            if let Some(known) = self.pricings.get(json.as_str()) {
                return Some(known.clone());
            }
            let pricing: Arc<Pricing> = Arc::new(serde_json::from_str(&json).ok()?);
            self.pricings.insert(json.into_boxed_str(), pricing.clone());
            Some(pricing)
        });
        self.changed = true;
        self.cell_of.insert(row.id, cell_of(row.latitude, row.longitude));
        self.cars.push(Car {
            id: row.id,
            lat: row.latitude,
            lng: row.longitude,
            unit: unit(row.latitude, row.longitude),
            price: row.price_per_day,
            pricing,
            text,
            seats: u8::try_from(row.seats).unwrap_or(u8::MAX),
            fuel,
            gearbox,
            live: true,
        });
    }

    /// Cars replaced are dropped, the cars pushed merged in by cell (one stable sort of an
    /// array whose head is in order), and the cells' starts found again.
    fn applied(&mut self) {
        if !std::mem::take(&mut self.changed) {
            return;
        }
        self.cars.retain(|car| car.live);
        self.cars.sort_by_key(Car::cell);
        self.starts.clear();
        for (at, car) in self.cars.iter().enumerate() {
            let cell = car.cell();
            if self.starts.last().is_none_or(|&(last, _)| last != cell) {
                self.starts.push((cell, at));
            }
        }
        self.sorted = self.cars.len();
    }

    fn shrink(&mut self) {
        self.cars.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.cell_of.shrink_to_fit();
    }
}

impl Cars {
    fn remove(&mut self, id: CarId) {
        let Some(cell) = self.cell_of.remove(&id) else {
            return;
        };
        self.changed = true;
        let filed = self.cell_cars_mut(cell..=cell);
        if let Some(car) = filed.iter_mut().find(|c| c.id == id && c.live) {
            car.live = false;
        }
    }

    /// Where the cars of the cells with keys in `keys` are in `cars`.
    fn cell_range(&self, keys: RangeInclusive<i32>) -> Range<usize> {
        let at = |i: usize| self.starts.get(i).map_or(self.sorted, |&(_, start)| start);
        let first = self.starts.partition_point(|&(key, _)| key < *keys.start());
        let end = self.starts.partition_point(|&(key, _)| key <= *keys.end());
        at(first)..at(end).max(at(first))
    }

    fn cell_cars(&self, keys: RangeInclusive<i32>) -> &[Car] {
        &self.cars[self.cell_range(keys)]
    }

    fn cell_cars_mut(&mut self, keys: RangeInclusive<i32>) -> &mut [Car] {
        let range = self.cell_range(keys);
        &mut self.cars[range]
    }

    /// Calls `found` with every car of the fleet matching `q` and its unit vector's dot
    /// product with the centre's (the greater, the nearer).
    fn matches<'a>(
        &'a self,
        q: &SearchQuery,
        texts: Option<&HashSet<u32>>,
        busy: &HashSet<CarId>,
        mut found: impl FnMut(&'a Car, f64),
    ) {
        let centre = unit(q.latitude, q.longitude);
        let angle = |km: f64| (km.max(0.0) / EARTH_RADIUS_KM).min(std::f64::consts::PI).cos();
        let (surely_in, surely_out) = (angle(q.radius_km - SLACK_KM), angle(q.radius_km + SLACK_KM));
        let bbox = q.bounding_box();
        // Names the query was checked against: one that is not matches nothing.
        let fuel = q.fuel_type.map(|f| FuelType::parse(f).ok());
        let gearbox = q.transmission.map(|t| Transmission::parse(t).ok());
        let columns: Vec<(i32, i32)> = match &bbox.longitudes {
            Some(ranges) => ranges
                .iter()
                .map(|&(lo, hi)| (cell_column(lo), cell_column(hi)))
                .collect(),
            None => vec![(0, cell_column(180.0))],
        };
        for row in cell_row(bbox.min_lat)..=cell_row(bbox.max_lat) {
            for &(lo, hi) in &columns {
                for car in self.cell_cars(row * ROW + lo..=row * ROW + hi) {
                    let wanted = fuel.is_none_or(|f| f == Some(car.fuel))
                        && gearbox.is_none_or(|t| t == Some(car.gearbox))
                        && q.min_seats.is_none_or(|s| i32::from(car.seats) >= s)
                        && q.min_price_minor.is_none_or(|p| car.price >= p)
                        && q.max_price_minor.is_none_or(|p| car.price <= p)
                        && texts.is_none_or(|t| t.contains(&car.text));
                    if !wanted {
                        continue;
                    }
                    let dot: f64 = (0..3).map(|i| car.unit[i] * centre[i]).sum();
                    let inside = dot > surely_in
                        || (dot >= surely_out
                            && haversine_km(q.latitude, q.longitude, car.lat, car.lng)
                                <= q.radius_km);
                    if inside && !busy.contains(&car.id) {
                        found(car, dot);
                    }
                }
            }
        }
    }

    fn search(&self, q: &SearchQuery, texts: Option<&[String]>, busy: &[CarId]) -> Found {
        let texts: Option<HashSet<u32>> =
            texts.map(|t| t.iter().filter_map(|t| self.texts.get(t.as_str()).copied()).collect());
        let busy: HashSet<CarId> = busy.iter().copied().collect();
        let (offset, limit) = (
            usize::try_from(q.page.offset()).unwrap_or(usize::MAX),
            usize::try_from(q.page.limit()).unwrap_or(0),
        );
        let needed = offset.saturating_add(limit);
        let mut total = 0;
        let km = |car: &Car| haversine_km(q.latitude, q.longitude, car.lat, car.lng);
        let mut page: Vec<(&Car, f64)> = match (q.sort, q.window) {
            (SortBy::Distance, _) => {
                // The nearest by the dot product, and a few more, ordered again by their
                // exact distance: the order the contract gives, whatever the rounding.
                let mut best = Best::new(needed.saturating_add(NEAR_TIES));
                self.matches(q, texts.as_ref(), &busy, |car, dot| {
                    total += 1;
                    best.offer((Reverse(Dot(dot)), car.id), car);
                });
                let mut near: Vec<(&Car, f64)> = best.cars().map(|car| (car, km(car))).collect();
                near.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.id.cmp(&b.0.id)));
                near
            }
            (SortBy::Price, None) => {
                let mut best = Best::new(needed);
                self.matches(q, texts.as_ref(), &busy, |car, _| {
                    total += 1;
                    best.offer((car.price, car.id), car);
                });
                best.cars().map(|car| (car, km(car))).collect()
            }
            (SortBy::Price, Some((pickup, dropoff))) => {
                let mut quotes = Quotes::new(pickup, dropoff);
                let mut best = Best::new(needed);
                self.matches(q, texts.as_ref(), &busy, |car, _| {
                    total += 1;
                    best.offer((quotes.of(car), car.id), car);
                });
                best.cars().map(|car| (car, km(car))).collect()
            }
        };
        page.truncate(needed);
        let hits = page
            .into_iter()
            .skip(offset)
            .map(|(car, km)| Hit {
                id: car.id,
                km,
                quote: q.window.map(|(pickup, dropoff)| {
                    rental_total(car.price, car.pricing.as_deref(), pickup, dropoff)
                }),
            })
            .collect();
        (hits, total)
    }
}

/// Cars kept beyond a page by distance, then ordered again by exact distance: cars whose
/// dot products order them otherwise than their distances are within 1e-12 of each other.
const NEAR_TIES: usize = 32;

/// A dot product, ordered as `f64::total_cmp` orders it.
#[derive(PartialEq)]
struct Dot(f64);

impl Eq for Dot {}

impl PartialOrd for Dot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The `keep` cars of smallest key offered, without keeping the others: the one to beat
/// is on top of a heap, and most cars of a wide search are turned away by one comparison.
struct Best<'a, K> {
    keep: usize,
    heap: BinaryHeap<Ranked<'a, K>>,
}

struct Ranked<'a, K>(K, &'a Car);

impl<K: Ord> PartialEq for Ranked<'_, K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Ord> Eq for Ranked<'_, K> {}

impl<K: Ord> PartialOrd for Ranked<'_, K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> Ord for Ranked<'_, K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<'a, K: Ord> Best<'a, K> {
    fn new(keep: usize) -> Self {
        Best {
            keep,
            heap: BinaryHeap::new(),
        }
    }

    fn offer(&mut self, key: K, car: &'a Car) {
        if self.heap.len() < self.keep {
            self.heap.push(Ranked(key, car));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if key < worst.0 {
                *worst = Ranked(key, car);
            }
        }
    }

    /// The cars kept, smallest key first.
    fn cars(self) -> impl Iterator<Item = &'a Car> {
        self.heap.into_sorted_vec().into_iter().map(|r| r.1)
    }
}

/// What renting a car for one window costs, worked out once per price and pricing: cars
/// priced alike (most of a fleet) share one quote.
struct Quotes {
    window: (DateTime<Utc>, DateTime<Utc>),
    known: HashMap<(i64, usize), i64>,
}

impl Quotes {
    fn new(pickup: DateTime<Utc>, dropoff: DateTime<Utc>) -> Self {
        Quotes {
            window: (pickup, dropoff),
            known: HashMap::new(),
        }
    }

    fn of(&mut self, car: &Car) -> i64 {
        let pricing = car.pricing.as_deref();
        let key = (car.price, pricing.map_or(0, |p| p as *const Pricing as usize));
        let (pickup, dropoff) = self.window;
        *self
            .known
            .entry(key)
            .or_insert_with(|| rental_total(car.price, pricing, pickup, dropoff).1)
    }
}
