//! Car queries: the `cars` table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{CarFilter, CarRow};
use crate::db::schema::cars;
use crate::db::DbConn;

type Boxed<'a> = cars::BoxedQuery<'a, <DbConn as Connection>::Backend>;

fn filtered(f: &CarFilter) -> Boxed<'_> {
    let mut q = cars::table.filter(cars::deleted_at.is_null()).into_boxed();
    if !f.include_inactive {
        q = q.filter(cars::is_active.eq(true));
    }
    if let Some(city) = &f.city_key {
        q = q.filter(cars::city_key.eq(city));
    }
    if let Some(brand) = &f.brand_key {
        q = q.filter(cars::brand_key.eq(brand));
    }
    if let Some(fuel) = f.fuel_type {
        q = q.filter(cars::fuel_type.eq(fuel));
    }
    if let Some(t) = f.transmission {
        q = q.filter(cars::transmission.eq(t));
    }
    if let Some(seats) = f.min_seats {
        q = q.filter(cars::seats.ge(seats));
    }
    if let Some(price) = f.max_price_minor {
        q = q.filter(cars::price_per_day.le(price));
    }
    q
}

/// One page of matching cars, newest first, and how many match in all.
pub fn list(
    conn: &mut DbConn,
    filter: &CarFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<CarRow>, i64)> {
    let total = filtered(filter).count().get_result(conn)?;
    let rows = filtered(filter)
        .order((cars::created_at.desc(), cars::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(CarRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn insert(conn: &mut DbConn, row: &CarRow) -> QueryResult<()> {
    diesel::insert_into(cars::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// The car, deleted or not.
pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<CarRow>> {
    cars::table
        .find(id)
        .select(CarRow::as_select())
        .first(conn)
        .optional()
}

/// Undeleted car ids after `after`, in id order.
pub fn ids_after(conn: &mut DbConn, after: Option<&str>, limit: i64) -> QueryResult<Vec<String>> {
    let mut q = cars::table
        .filter(cars::deleted_at.is_null())
        .select(cars::id)
        .order(cars::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(cars::id.gt(after));
    }
    q.load(conn)
}

pub fn get_many(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<CarRow>> {
    cars::table
        .filter(cars::id.eq_any(ids))
        .select(CarRow::as_select())
        .load(conn)
}

/// Writes every field of an undeleted car; zero rows when it is gone.
pub fn update(conn: &mut DbConn, row: &CarRow) -> QueryResult<usize> {
    diesel::update(cars::table.find(&row.id).filter(cars::deleted_at.is_null()))
        .set(row)
        .execute(conn)
}

pub fn soft_delete(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(cars::table.find(id).filter(cars::deleted_at.is_null()))
        .set((cars::deleted_at.eq(now), cars::updated_at.eq(now)))
        .execute(conn)
}
