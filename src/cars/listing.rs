//! The listing's copy of the fleet ([`crate::db::follow`]): `GET /cars` finds a page's cars
//! and counts the matches in memory, in the listing's order (newest first, then by id), and
//! reads only the page's rows from the table. A page deep into the fleet then skips entries
//! of one array rather than thousands of index entries in the database; a filter set's
//! total is counted on the smallest shelf that holds its cars, once until a car changes.

use std::cmp::Reverse;
use std::sync::Mutex;

use chrono::NaiveDateTime;
use foldhash::HashMap;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Text, Timestamp};

use super::model::CarFilter;
use crate::db::follow::{CarCopy, Follower};
use crate::db::DbConn;
use crate::http::Choice;
use crate::ids::CarId;
use crate::ports::{FuelType, Transmission};

#[derive(QueryableByName)]
pub struct Row {
    #[diesel(sql_type = Text)]
    id: CarId,
    #[diesel(sql_type = Timestamp)]
    created_at: NaiveDateTime,
    #[diesel(sql_type = Text)]
    city_key: String,
    #[diesel(sql_type = Text)]
    brand_key: String,
    #[diesel(sql_type = Text)]
    fuel_type: String,
    #[diesel(sql_type = Text)]
    transmission: String,
    #[diesel(sql_type = Integer)]
    seats: i32,
    #[diesel(sql_type = BigInt)]
    price_per_day: i64,
    #[diesel(sql_type = Bool)]
    is_active: bool,
    #[diesel(sql_type = Bool)]
    listed: bool,
    #[diesel(sql_type = BigInt)]
    change_seq: i64,
}

/// Filter sets whose totals are kept at most (a price filter takes any value).
const MAX_TOTALS: usize = 10_000;

/// The listing's order: newest first, then by id.
type Place = (Reverse<NaiveDateTime>, CarId);

/// What the listing's filters look at; city and brand keys by their number in `names`.
#[derive(Clone, Copy)]
struct Facets {
    price: i64,
    city: u32,
    brand: u32,
    seats: u8,
    fuel: FuelType,
    gearbox: Transmission,
    active: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Shelf {
    All,
    City(u32),
    Brand(u32),
    Fuel(FuelType),
}

/// The cars that are not deleted.
#[derive(Default)]
pub struct Cars {
    /// In the listing's order once [`CarCopy::applied`]; `None` for a car's old place.
    order: Vec<(Place, Option<Facets>)>,
    /// How many of `order`'s first places are in order: those a catching up pushes follow.
    sorted: usize,
    changed: bool,
    names: HashMap<Box<str>, u32>,
    /// Where the active cars are in `order`, all of them and by city, brand and fuel: a
    /// page with one of those filters (or none) is a slice of one shelf.
    shelves: HashMap<Shelf, Vec<u32>>,
    /// How many cars match, by filter set, since the last change.
    totals: Mutex<HashMap<String, i64>>,
}

/// The listing of this process.
#[derive(Default)]
pub struct Listing(Follower<Cars>);

impl Listing {
    pub fn catch_up(&self, conn: &mut DbConn) -> QueryResult<()> {
        self.0.catch_up(conn)
    }

    /// The ids of one page of `filter`'s cars, in order, and how many match in all, as the
    /// table says now.
    pub fn page(
        &self,
        conn: &mut DbConn,
        filter: &CarFilter,
        offset: i64,
        limit: i64,
    ) -> QueryResult<(Vec<CarId>, i64)> {
        self.0.read(conn, |cars| cars.page(filter, offset, limit))
    }
}

impl CarCopy for Cars {
    type Row = Row;
    const COLUMNS: &'static str = "id, created_at, city_key, brand_key, fuel_type, transmission, \
        seats, price_per_day, is_active, deleted_at IS NULL AS listed, change_seq";

    fn key(row: &Row) -> (i64, String) {
        (row.change_seq, row.id.to_string())
    }

    fn apply(&mut self, row: Row) {
        self.changed = true;
        // A car keeps its creation time for life (an update writes it back unchanged), so
        // its kept place, if any, is the one the row names.
        let place = (Reverse(row.created_at), row.id);
        let sorted = &self.order[..self.sorted];
        if let Ok(at) = sorted.binary_search_by_key(&&place, |(p, _)| p) {
            self.order[at].1 = None;
        }
        // A row's version applied since the copy was last put in order (a car written twice
        // during a first load) has the same place and is dropped by `applied`, which keeps
        // the last of a place; a row no longer listed leaves a `None` there for that.
        if !row.listed {
            self.order.push((place, None));
            return;
        }
        let (Ok(fuel), Ok(gearbox)) = (
            FuelType::parse(&row.fuel_type),
            Transmission::parse(&row.transmission),
        ) else {
            tracing::error!(car = %row.id, "a car with an unknown fuel type or gearbox is not listed");
            self.order.push((place, None));
            return;
        };
        let facets = Facets {
            active: row.is_active,
            city: self.name(row.city_key),
            brand: self.name(row.brand_key),
            seats: u8::try_from(row.seats).unwrap_or(u8::MAX),
            fuel,
            gearbox,
            price: row.price_per_day,
        };
        self.order.push((place, Some(facets)));
    }

    /// New places were pushed at the end: old places are dropped and the whole sorted
    /// again (a stable sort merges the pushed run into the sorted rest).
    fn applied(&mut self) {
        if std::mem::take(&mut self.changed) {
            // Stable: of the entries of one place, the last applied is last, and is kept.
            self.order.sort_by_key(|(place, _)| *place);
            self.order.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
            self.order.retain(|(_, facets)| facets.is_some());
            self.sorted = self.order.len();
            self.totals.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
            self.shelve();
        }
    }

    fn shrink(&mut self) {
        self.order.shrink_to_fit();
        self.shelves.values_mut().for_each(Vec::shrink_to_fit);
    }
}

impl Cars {
    fn name(&mut self, key: String) -> u32 {
        let next = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        *self.names.entry(key.into_boxed_str()).or_insert(next)
    }

    fn shelve(&mut self) {
        self.shelves.clear();
        for (at, (_, facets)) in (0u32..).zip(&self.order) {
            let Some(c) = facets.filter(|c| c.active) else {
                continue;
            };
            for shelf in [Shelf::All, Shelf::City(c.city), Shelf::Brand(c.brand), Shelf::Fuel(c.fuel)] {
                self.shelves.entry(shelf).or_default().push(at);
            }
        }
    }

    fn page(&self, f: &CarFilter, offset: i64, limit: i64) -> (Vec<CarId>, i64) {
        let known = |key: &Option<String>| match key {
            None => Some(None),
            Some(key) => self.names.get(key.as_str()).map(|n| Some(*n)),
        };
        let (fuel, gearbox) = (
            f.fuel_type.map(FuelType::parse).transpose(),
            f.transmission.map(Transmission::parse).transpose(),
        );
        // A city or brand no car has ever had matches nothing.
        let (Some(city), Some(brand), Ok(fuel), Ok(gearbox)) =
            (known(&f.city_key), known(&f.brand_key), fuel, gearbox)
        else {
            return (Vec::new(), 0);
        };
        let wanted = |c: &Facets| {
            (f.include_inactive || c.active)
                && city.is_none_or(|n| c.city == n)
                && brand.is_none_or(|n| c.brand == n)
                && fuel.is_none_or(|v| c.fuel == v)
                && gearbox.is_none_or(|v| c.gearbox == v)
                && f.min_seats.is_none_or(|v| i32::from(c.seats) >= v)
                && f.max_price_minor.is_none_or(|v| c.price <= v)
        };
        let matching = || {
            self.order
                .iter()
                .filter(move |(_, facets)| facets.as_ref().is_some_and(wanted))
        };
        let (offset, limit) = (
            usize::try_from(offset).unwrap_or(usize::MAX),
            usize::try_from(limit).unwrap_or(0),
        );
        if f.include_inactive {
            let total = self.total(f, || matching().count());
            let ids = matching().skip(offset).take(limit).map(|((_, id), _)| *id);
            return (ids.collect(), total);
        }
        let shelves = [
            city.map(Shelf::City),
            brand.map(Shelf::Brand),
            fuel.map(Shelf::Fuel),
        ];
        let asked = shelves.iter().flatten().count();
        let shelf: &[u32] = shelves
            .into_iter()
            .flatten()
            .chain([Shelf::All])
            .map(|shelf| self.shelves.get(&shelf).map_or(&[][..], Vec::as_slice))
            .min_by_key(|positions| positions.len())
            .unwrap_or(&[]);
        let others = f.transmission.is_some() || f.min_seats.is_some() || f.max_price_minor.is_some();
        let car = |at: &u32| self.order.get(*at as usize);
        // With at most one of city, brand and fuel and nothing else, the shelf is exactly
        // the matches.
        let exact = asked <= 1 && !others;
        let total = if exact {
            i64::try_from(shelf.len()).unwrap_or(i64::MAX)
        } else {
            self.total(f, || {
                shelf
                    .iter()
                    .filter_map(car)
                    .filter(|(_, facets)| facets.as_ref().is_some_and(wanted))
                    .count()
            })
        };
        let ids = if exact {
            // The page is a slice of the shelf.
            let page = shelf.get(offset..).unwrap_or(&[]);
            page.iter().take(limit).filter_map(car).map(|((_, id), _)| *id).collect()
        } else {
            shelf
                .iter()
                .filter_map(car)
                .filter(|(_, facets)| facets.as_ref().is_some_and(wanted))
                .skip(offset)
                .take(limit)
                .map(|((_, id), _)| *id)
                .collect()
        };
        (ids, total)
    }

    /// How many cars `f` lets through, counted once until a car changes.
    fn total(&self, f: &CarFilter, count: impl FnOnce() -> usize) -> i64 {
        let key = format!("{f:?}");
        if let Some(total) = self.totals.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return *total;
        }
        // Counted without the lock: readers of other filter sets do not wait for it.
        let total = i64::try_from(count()).unwrap_or(i64::MAX);
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        if totals.len() >= MAX_TOTALS {
            totals.clear();
        }
        totals.insert(key, total);
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: CarId, minute: i64, price: i64, listed: bool) -> Row {
        Row {
            id,
            created_at: chrono::DateTime::<chrono::Utc>::from_timestamp(1_900_000_000 + 60 * minute, 0)
                .unwrap_or_default()
                .naive_utc(),
            city_key: "lyon".into(),
            brand_key: "renault".into(),
            fuel_type: "petrol".into(),
            transmission: "manual".into(),
            seats: 5,
            price_per_day: price,
            is_active: true,
            listed,
            change_seq: minute,
        }
    }

    /// A first load applies every chunk before putting the copy in order once: a car
    /// written again meanwhile is applied twice, and only its last version may be kept.
    #[test]
    fn a_car_applied_twice_before_the_copy_is_in_order_is_kept_once_as_last_applied() {
        let (moved, dropped) = (CarId::random(), CarId::random());
        let others: Vec<CarId> = (0..5).map(|_| CarId::random()).collect();
        let mut cars = Cars::default();
        cars.apply(row(moved, 3, 5000, true));
        cars.apply(row(dropped, 4, 5000, true));
        for (i, id) in others.iter().enumerate() {
            cars.apply(row(*id, 10 + i as i64, 5000, true));
        }
        cars.apply(row(moved, 3, 9000, true));
        cars.apply(row(dropped, 4, 5000, false));
        cars.applied();
        let (ids, total) = cars.page(&CarFilter::default(), 0, 20);
        let mut want: Vec<CarId> = others.iter().rev().copied().collect();
        want.push(moved);
        assert_eq!((ids, total), (want, 6));
        let cheap = CarFilter {
            max_price_minor: Some(6000),
            ..CarFilter::default()
        };
        assert_eq!(cars.page(&cheap, 0, 20).1, 5, "the moved car's old price is gone");
        // Put in order, the same car written again is replaced where it stands.
        cars.apply(row(moved, 3, 5000, false));
        cars.applied();
        assert_eq!(cars.page(&CarFilter::default(), 0, 20).1, 5);
    }
}
