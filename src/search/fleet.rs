//! The database engine's copy of the searchable cars, held in the process and brought up to
//! date before every search ([`crate::db::follow`]): a search answers from memory what the
//! table says at that moment (docs/DESIGN.md, "Where a search's time goes").
//!
//! Cars sit in cells of an eighth of a degree, keyed `row * ROW + column`, in one array
//! ordered by cell, so that a row of the search's box is one run of the array. A car is
//! inside the circle by the dot product of unit vectors, and by its great-circle distance
//! where that product is too close to call. A search visits the cells of its box best first
//! (nearest, or cheapest) and, once its page is full, only counts the cells none of whose
//! cars could enter it: a cell wholly inside the circle by its length when nothing else is
//! asked, so that the total stays exact without a look at each of its cars.

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
/// A cell with more pricings than this is not bounded for a search by quote: every car of
/// it is quoted.
const PRICINGS_PER_CELL: usize = 8;

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
    /// The price of each cell's cheapest car, as `starts`.
    cheapest: Vec<i64>,
    /// Each cell's pricings with the price of its cheapest car under each: the cell's are
    /// `priced[priced_from[i]..priced_from[i + 1]]`, none when it holds more pricings than
    /// [`PRICINGS_PER_CELL`] (or one no bound holds for).
    priced: Vec<(Option<Arc<Pricing>>, i64)>,
    priced_from: Vec<usize>,
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
        self.cheapest.clear();
        self.priced.clear();
        self.priced_from.clear();
        let mut unbounded = false;
        for (at, car) in self.cars.iter().enumerate() {
            let cell = car.cell();
            if self.starts.last().is_none_or(|&(last, _)| last != cell) {
                self.starts.push((cell, at));
                self.cheapest.push(car.price);
                self.priced_from.push(self.priced.len());
                unbounded = false;
            } else if let Some(cheapest) = self.cheapest.last_mut() {
                *cheapest = (*cheapest).min(car.price);
            }
            if unbounded {
                continue;
            }
            let from = self.priced_from.last().copied().unwrap_or(0);
            let same = |p: &Option<Arc<Pricing>>| match (p, &car.pricing) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (a, b) => a.is_none() && b.is_none(),
            };
            let kept = self.priced.len() - from;
            match self.priced[from..].iter_mut().find(|(p, _)| same(p)) {
                Some((_, cheapest)) => *cheapest = (*cheapest).min(car.price),
                None if kept < PRICINGS_PER_CELL
                    && car.pricing.as_deref().is_none_or(grows_with_price) =>
                {
                    self.priced.push((car.pricing.clone(), car.price))
                }
                None => {
                    self.priced.truncate(from);
                    unbounded = true;
                }
            }
        }
        self.sorted = self.cars.len();
    }

    fn shrink(&mut self) {
        self.cars.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.cheapest.shrink_to_fit();
        self.priced.shrink_to_fit();
        self.priced_from.shrink_to_fit();
        self.cell_of.shrink_to_fit();
    }
}

impl Cars {
    fn remove(&mut self, id: CarId) {
        let Some(cell) = self.cell_of.remove(&id) else {
            return;
        };
        self.changed = true;
        let sorted = self.sorted;
        let filed = self.cell_cars_mut(cell..=cell);
        if let Some(car) = filed.iter_mut().find(|c| c.id == id && c.live) {
            car.live = false;
        } else if let Some(car) = self.cars[sorted..].iter_mut().find(|c| c.id == id && c.live) {
            // Applied since the copy was last put in order (a car written twice during a
            // first load): rare, so looked for among all of those.
            car.live = false;
        }
    }

    /// Which entries of `starts` are the cells with keys in `keys`.
    fn cells_between(&self, keys: RangeInclusive<i32>) -> Range<usize> {
        let first = self.starts.partition_point(|&(key, _)| key < *keys.start());
        let end = self.starts.partition_point(|&(key, _)| key <= *keys.end());
        first..end.max(first)
    }

    /// Where in `cars` the cars of the `i`th cell start (the end of the cells when there
    /// is no `i`th).
    fn start_of(&self, i: usize) -> usize {
        self.starts.get(i).map_or(self.sorted, |&(_, start)| start)
    }

    /// Where the cars of the cells with keys in `keys` are in `cars`.
    fn cell_range(&self, keys: RangeInclusive<i32>) -> Range<usize> {
        let cells = self.cells_between(keys);
        self.start_of(cells.start)..self.start_of(cells.end)
    }

    fn cell_cars_mut(&mut self, keys: RangeInclusive<i32>) -> &mut [Car] {
        let range = self.cell_range(keys);
        &mut self.cars[range]
    }

    /// The cells of `q`'s box that hold cars, with what is known of each without looking
    /// at its cars.
    fn cells(&self, q: &SearchQuery, within: &Within) -> Vec<Cell> {
        let bbox = q.bounding_box();
        let columns: Vec<(i32, i32)> = match &bbox.longitudes {
            Some(ranges) => ranges
                .iter()
                .map(|&(lo, hi)| (cell_column(lo), cell_column(hi)))
                .collect(),
            None => vec![(0, cell_column(180.0))],
        };
        let mut cells = Vec::new();
        for row in cell_row(bbox.min_lat)..=cell_row(bbox.max_lat) {
            for &(lo, hi) in &columns {
                for i in self.cells_between(row * ROW + lo..=row * ROW + hi) {
                    let (key, start) = self.starts[i];
                    let (inside, nearest) = within.cell(key);
                    cells.push(Cell {
                        key,
                        cars: start..self.start_of(i + 1),
                        inside,
                        nearest,
                        cheapest: self.cheapest[i],
                        priced: self.priced_from[i]
                            ..self.priced_from.get(i + 1).copied().unwrap_or(self.priced.len()),
                    });
                }
            }
        }
        cells
    }

    /// Cells are visited best first (nearest, or cheapest), and once the page is full a
    /// cell none of whose cars could enter it is only counted: by its length when it lies
    /// wholly inside the circle and nothing else is asked.
    fn search(&self, q: &SearchQuery, texts: Option<&[String]>, busy: &[CarId]) -> Found {
        let texts: Option<HashSet<u32>> =
            texts.map(|t| t.iter().filter_map(|t| self.texts.get(t.as_str()).copied()).collect());
        let scan = Scan::new(self, q, texts.as_ref(), busy);
        let mut cells = self.cells(q, &scan.within);
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
                cells.sort_unstable_by(|a, b| b.nearest.total_cmp(&a.nearest));
                let mut best: Best<(Reverse<Dot>, CarId)> = Best::new(needed.saturating_add(NEAR_TIES));
                for cell in &cells {
                    if best.worst().is_some_and(|w| cell.nearest < w.0 .0 .0) {
                        total += scan.count(cell);
                        continue;
                    }
                    scan.each(cell, |car, dot| {
                        total += 1;
                        best.offer((Reverse(Dot(dot)), car.id), car);
                    });
                }
                let mut near: Vec<(&Car, f64)> = best.cars().map(|car| (car, km(car))).collect();
                near.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.id.cmp(&b.0.id)));
                near
            }
            (SortBy::Price, None) => {
                cells.sort_unstable_by_key(|cell| cell.cheapest);
                let mut best: Best<(i64, CarId)> = Best::new(needed);
                for cell in &cells {
                    if best.worst().is_some_and(|w| cell.cheapest > w.0) {
                        total += scan.count(cell);
                        continue;
                    }
                    scan.each(cell, |car, _| {
                        total += 1;
                        best.offer((car.price, car.id), car);
                    });
                }
                best.cars().map(|car| (car, km(car))).collect()
            }
            (SortBy::Price, Some((pickup, dropoff))) => {
                // What a cell's cars cost at least: the quote of its cheapest car under each
                // of its pricings.
                let mut quotes = Quotes::new(pickup, dropoff);
                let mut bounded: Vec<(i64, &Cell)> = cells
                    .iter()
                    .map(|cell| {
                        let priced = &self.priced[cell.priced.clone()];
                        let least = priced.iter().map(|(p, price)| quotes.of(*price, p.as_deref()));
                        (least.min().unwrap_or(i64::MIN), cell)
                    })
                    .collect();
                bounded.sort_unstable_by_key(|&(least, _)| least);
                let mut best = Best::new(needed);
                for (least, cell) in bounded {
                    if best.worst().is_some_and(|w: &(i64, CarId)| least > w.0) {
                        total += scan.count(cell);
                        continue;
                    }
                    scan.each(cell, |car, _| {
                        total += 1;
                        best.offer((quotes.of(car.price, car.pricing.as_deref()), car.id), car);
                    });
                }
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
        (hits, i64::try_from(total).unwrap_or(i64::MAX))
    }
}

/// A cell of a search's box: where its cars are in the array, whether every point of it
/// is inside the circle, the greatest dot product with the centre's any point of it can
/// have (the nearer, the greater), its cheapest car's price, and where its pricings are in
/// `priced`.
struct Cell {
    key: i32,
    cars: Range<usize>,
    inside: bool,
    nearest: f64,
    cheapest: i64,
    priced: Range<usize>,
}

/// The circle of a search: its centre's unit vector, and the dot products sure to be
/// inside and outside it.
struct Within {
    lat: f64,
    lng: f64,
    radius_km: f64,
    centre: [f64; 3],
    surely_in: f64,
    surely_out: f64,
}

impl Within {
    fn new(q: &SearchQuery) -> Self {
        let angle = |km: f64| (km.max(0.0) / EARTH_RADIUS_KM).min(std::f64::consts::PI).cos();
        Within {
            lat: q.latitude,
            lng: q.longitude,
            radius_km: q.radius_km,
            centre: unit(q.latitude, q.longitude),
            surely_in: angle(q.radius_km - SLACK_KM),
            surely_out: angle(q.radius_km + SLACK_KM),
        }
    }

    fn dot(&self, unit: &[f64; 3]) -> f64 {
        (0..3).map(|i| unit[i] * self.centre[i]).sum()
    }

    /// The car's dot product with the centre's, when it is inside the circle.
    fn car(&self, car: &Car, in_inside_cell: bool) -> Option<f64> {
        let dot = self.dot(&car.unit);
        let inside = in_inside_cell
            || dot > self.surely_in
            || (dot >= self.surely_out
                && haversine_km(self.lat, self.lng, car.lat, car.lng) <= self.radius_km);
        inside.then_some(dot)
    }

    /// Whether the cell lies wholly inside the circle, and the greatest dot product with
    /// the centre's of any point of it. The point of a cell farthest from any point is one
    /// of its corners (along a parallel the distance grows with the difference in
    /// longitude, along a meridian it has one minimum), so the corners settle the first;
    /// the second is bounded through the cell's middle by the triangle inequality (a centre
    /// within the cell's reach of its middle may be anywhere in it: 1).
    fn cell(&self, key: i32) -> (bool, f64) {
        let (row, column) = (key.div_euclid(ROW), key.rem_euclid(ROW));
        let lat = |r: i32| (f64::from(r) / PER_DEGREE - 90.0).clamp(-90.0, 90.0);
        let lng = |c: i32| f64::from(c) / PER_DEGREE - 180.0;
        let (south, north, west, east) = (lat(row), lat(row + 1), lng(column), lng(column + 1));
        let corners = [
            unit(south, west),
            unit(south, east),
            unit(north, west),
            unit(north, east),
        ];
        let inside = corners.iter().all(|c| self.dot(c) > self.surely_in);
        let middle = unit((south + north) / 2.0, (west + east) / 2.0);
        let apart = |a: &[f64; 3], b: &[f64; 3]| {
            (0..3).map(|i| a[i] * b[i]).sum::<f64>().clamp(-1.0, 1.0).acos()
        };
        let reach = corners.iter().map(|c| apart(&middle, c)).fold(0.0, f64::max);
        let gap = apart(&self.centre, &middle) - reach - 1e-6;
        (inside, if gap > 0.0 { gap.cos() } else { 1.0 })
    }
}

/// What a search asks of a car besides where it is and when it is free.
struct Wanted<'a> {
    /// `Some(None)`: a name the query was checked against and no car has.
    fuel: Option<Option<FuelType>>,
    gearbox: Option<Option<Transmission>>,
    seats: Option<i32>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    texts: Option<&'a HashSet<u32>>,
}

impl<'a> Wanted<'a> {
    fn new(q: &SearchQuery, texts: Option<&'a HashSet<u32>>) -> Self {
        Wanted {
            fuel: q.fuel_type.map(|f| FuelType::parse(f).ok()),
            gearbox: q.transmission.map(|t| Transmission::parse(t).ok()),
            seats: q.min_seats,
            min_price: q.min_price_minor,
            max_price: q.max_price_minor,
            texts,
        }
    }

    fn asks_nothing(&self) -> bool {
        self.fuel.is_none()
            && self.gearbox.is_none()
            && self.seats.is_none()
            && self.min_price.is_none()
            && self.max_price.is_none()
            && self.texts.is_none()
    }

    fn car(&self, car: &Car) -> bool {
        self.fuel.is_none_or(|f| f == Some(car.fuel))
            && self.gearbox.is_none_or(|t| t == Some(car.gearbox))
            && self.seats.is_none_or(|s| i32::from(car.seats) >= s)
            && self.min_price.is_none_or(|p| car.price >= p)
            && self.max_price.is_none_or(|p| car.price <= p)
            && self.texts.is_none_or(|t| t.contains(&car.text))
    }
}

/// One search's look at the cars of its cells.
struct Scan<'a> {
    cars: &'a [Car],
    within: Within,
    wanted: Wanted<'a>,
    busy: HashSet<CarId>,
    /// With no filter asked, how many of each cell's cars are taken in the window.
    busy_in: HashMap<i32, usize>,
}

impl<'a> Scan<'a> {
    fn new(cars: &'a Cars, q: &SearchQuery, texts: Option<&'a HashSet<u32>>, busy: &[CarId]) -> Self {
        let wanted = Wanted::new(q, texts);
        let busy: HashSet<CarId> = busy.iter().copied().collect();
        let mut busy_in: HashMap<i32, usize> = HashMap::new();
        if wanted.asks_nothing() {
            for cell in busy.iter().filter_map(|id| cars.cell_of.get(id)) {
                *busy_in.entry(*cell).or_default() += 1;
            }
        }
        Scan {
            cars: &cars.cars,
            within: Within::new(q),
            wanted,
            busy,
            busy_in,
        }
    }

    /// Calls `found` with every match of the cell and its dot product with the centre's.
    fn each(&self, cell: &Cell, mut found: impl FnMut(&'a Car, f64)) {
        let cars: &'a [Car] = self.cars;
        for car in &cars[cell.cars.clone()] {
            if !self.wanted.car(car) {
                continue;
            }
            if let Some(dot) = self.within.car(car, cell.inside) {
                if !self.busy.contains(&car.id) {
                    found(car, dot);
                }
            }
        }
    }

    fn count(&self, cell: &Cell) -> usize {
        if cell.inside && self.wanted.asks_nothing() {
            return cell.cars.len() - self.busy_in.get(&cell.key).copied().unwrap_or(0);
        }
        let mut n = 0;
        self.each(cell, |_, _| n += 1);
        n
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

    /// The key a car must beat to be kept, once `keep` are.
    fn worst(&self) -> Option<&K> {
        (self.heap.len() == self.keep)
            .then(|| self.heap.peek())
            .flatten()
            .map(|r| &r.0)
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

    fn of(&mut self, price: i64, pricing: Option<&Pricing>) -> i64 {
        let key = (price, pricing.map_or(0, |p| p as *const Pricing as usize));
        let (pickup, dropoff) = self.window;
        *self
            .known
            .entry(key)
            .or_insert_with(|| rental_total(price, pricing, pickup, dropoff).1)
    }
}

/// Whether a quote under `pricing` never falls as the daily price rises, so that a cell's
/// cheapest car under it bounds what its others cost: the days at the car's own price are a
/// multiple of it, seasons and weekends do not depend on it, and a discount of at most all
/// of an amount (rounded to a minor unit) leaves a greater amount at least as much.
fn grows_with_price(pricing: &Pricing) -> bool {
    [pricing.weekly_discount_percent, pricing.monthly_discount_percent]
        .iter()
        .all(|p| (0..=100).contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::PageRequest;

    fn row(id: CarId, lat: f64, searchable: bool) -> Row {
        Row {
            id,
            latitude: lat,
            longitude: 4.84,
            fuel_type: "petrol".into(),
            transmission: "manual".into(),
            seats: 5,
            price_per_day: 5000,
            pricing: None,
            search_text: String::new(),
            searchable,
            change_seq: 0,
        }
    }

    /// A first load applies every chunk before putting the copy in order once: a car
    /// written again meanwhile is applied twice, and only its last version may be found.
    #[test]
    fn a_car_applied_twice_before_the_copy_is_in_order_is_found_once_where_it_went() {
        let (moved, dropped) = (CarId::random(), CarId::random());
        let mut cars = Cars::default();
        cars.apply(row(moved, 45.0, true));
        cars.apply(row(dropped, 45.0, true));
        for i in 0..5 {
            cars.apply(row(CarId::random(), 45.0 + f64::from(i) * 0.01, true));
        }
        cars.apply(row(moved, 46.0, true));
        cars.apply(row(dropped, 45.0, false));
        cars.applied();
        let search = |cars: &Cars, lat: f64| {
            let q = SearchQuery {
                latitude: lat,
                longitude: 4.84,
                radius_km: 20.0,
                text: None,
                fuel_type: None,
                transmission: None,
                min_seats: None,
                min_price_minor: None,
                max_price_minor: None,
                window: None,
                sort: SortBy::Distance,
                page: PageRequest { page: 1, limit: 20 },
            };
            let (hits, total) = cars.search(&q, None, &[]);
            (hits.into_iter().map(|h| h.id).collect::<Vec<_>>(), total)
        };
        assert_eq!(search(&cars, 46.0), (vec![moved], 1));
        let (near, total) = search(&cars, 45.0);
        assert_eq!(total, 5, "{near:?}");
        assert!(!near.contains(&moved) && !near.contains(&dropped));
        // Put in order, the same car written again is replaced where it stands.
        cars.apply(row(moved, 45.0, true));
        cars.applied();
        assert_eq!(search(&cars, 46.0).1, 0);
        assert_eq!(search(&cars, 45.0).1, 6);
    }

    /// A fleet dense enough that pages fill long before the box is done, so that cells are
    /// skipped and counted by length: every answer against a scan of every car.
    #[test]
    fn searches_that_skip_cells_answer_what_a_scan_of_every_car_finds() {
        let mut seed: u64 = 26;
        let mut rand = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        const FUELS: [&str; 4] = ["petrol", "diesel", "electric", "hybrid"];
        let day = chrono::TimeDelta::days(1);
        let pickup = DateTime::<Utc>::from_timestamp(1_900_000_000, 0).unwrap_or_default();
        let date = |days: i32| (pickup + day * days).date_naive();
        // Pricings that reorder cars by quote against their daily price: a cheap weekend,
        // a dear season inside some windows, discounts from seven days.
        let shared = [
            Pricing {
                weekend_minor: Some(900),
                ..Pricing::default()
            },
            Pricing {
                seasons: vec![crate::pricing::Season {
                    from: date(2),
                    to: date(9),
                    price_minor: 6000,
                }],
                ..Pricing::default()
            },
            Pricing {
                weekly_discount_percent: 40,
                monthly_discount_percent: 90,
                ..Pricing::default()
            },
        ];
        let mut cars = Cars::default();
        let mut fleet = Vec::new();
        for i in 0..4000 {
            let (lat, lng) = (45.76 + (rand() - 0.5) * 2.0, 4.84 + (rand() - 0.5) * 2.8);
            let fuel = FUELS[(rand() * 4.0) as usize % 4];
            // Few prices, so that the cheapest tie across cells.
            let price = 2000 + 500 * (rand() * 6.0) as i64;
            // In the west every car has its own pricing: more than a cell is bounded by.
            let pricing = if lng < 4.3 {
                Some(Pricing {
                    weekend_minor: Some(1000 + i),
                    ..Pricing::default()
                })
            } else {
                let pick = (rand() * 6.0) as usize;
                shared.get(pick).cloned()
            };
            let id = CarId::random();
            cars.apply(Row {
                id,
                latitude: lat,
                longitude: lng,
                fuel_type: fuel.into(),
                transmission: "manual".into(),
                seats: 5,
                price_per_day: price,
                pricing: pricing.as_ref().and_then(|p| serde_json::to_string(p).ok()),
                search_text: String::new(),
                searchable: true,
                change_seq: i,
            });
            fleet.push((id, lat, lng, fuel, price, pricing));
        }
        cars.applied();
        assert!(
            cars.priced_from.iter().zip(cars.priced_from.iter().skip(1)).any(|(a, b)| a == b),
            "no cell holds more pricings than are bounded"
        );
        let (mut crowded, mut checked) = (0, 0);
        while checked < 400 {
            let (lat, lng) = (45.76 + (rand() - 0.5) * 2.2, 4.84 + (rand() - 0.5) * 3.0);
            let radius = (3.0 + rand() * 120.0).round();
            if fleet
                .iter()
                .any(|c| (haversine_km(lat, lng, c.1, c.2) - radius).abs() < 1e-3)
            {
                continue;
            }
            let fuel = (rand() < 0.2).then(|| FUELS[(rand() * 4.0) as usize % 4]);
            let max_price = (rand() < 0.2).then_some(3500);
            let window = (rand() < 0.4).then(|| {
                let from = pickup + day * (rand() * 7.0) as i32;
                (from, from + day * (1 + (rand() * 30.0) as i32))
            });
            let busy: Vec<CarId> = match window {
                Some(_) => fleet.iter().filter(|_| rand() < 0.1).map(|c| c.0).collect(),
                None => Vec::new(),
            };
            let sort = if rand() < 0.4 { SortBy::Price } else { SortBy::Distance };
            let page = PageRequest {
                page: 1 + (rand() * 3.0) as u32,
                limit: 1 + (rand() * 20.0) as u32,
            };
            let q = SearchQuery {
                latitude: lat,
                longitude: lng,
                radius_km: radius,
                text: None,
                fuel_type: fuel,
                transmission: None,
                min_seats: None,
                min_price_minor: None,
                max_price_minor: max_price,
                window,
                sort,
                page,
            };
            let mut expected: Vec<(CarId, f64, i64)> = fleet
                .iter()
                .filter(|c| fuel.is_none_or(|f| f == c.3) && max_price.is_none_or(|p| c.4 <= p))
                .filter(|c| haversine_km(lat, lng, c.1, c.2) <= radius && !busy.contains(&c.0))
                .map(|c| {
                    let cost = match window {
                        Some((from, to)) => rental_total(c.4, c.5.as_ref(), from, to).1,
                        None => c.4,
                    };
                    (c.0, haversine_km(lat, lng, c.1, c.2), cost)
                })
                .collect();
            match sort {
                SortBy::Distance => {
                    expected.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                }
                SortBy::Price => expected.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0))),
            }
            let (hits, total) = cars.search(&q, None, &busy);
            assert_eq!(total, expected.len() as i64, "total of {q:?}");
            let want: Vec<CarId> = expected
                .iter()
                .skip(page.offset() as usize)
                .take(page.limit() as usize)
                .map(|c| c.0)
                .collect();
            let got: Vec<CarId> = hits.iter().map(|h| h.id).collect();
            assert_eq!(got, want, "page of {q:?}");
            crowded += usize::from(expected.len() > 200);
            checked += 1;
        }
        assert!(crowded > 100, "only {crowded} searches found more than a few pages");
    }
}
