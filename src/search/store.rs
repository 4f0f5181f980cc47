//! The database engine's query. Search is, by design, SQL over the cars table itself: a
//! bounding box on the indexed latitude/longitude narrows the rows, then the great-circle
//! distance, the filters, the text match and the availability exclusion decide, all in the
//! one query that also counts, so `total` and the pages agree.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::model::{SearchQuery, SortBy};
use crate::db::functions::{geo_distance_km, text_match};
use crate::db::schema::cars;
use crate::db::DbConn;

type Boxed<'a> = cars::BoxedQuery<'a, <DbConn as Connection>::Backend>;

fn filtered<'a>(q: &'a SearchQuery, busy: &'a [String]) -> Boxed<'a> {
    let bbox = q.bounding_box();
    let mut query = cars::table
        .filter(cars::deleted_at.is_null())
        .filter(cars::is_active.eq(true))
        .filter(cars::latitude.between(bbox.min_lat, bbox.max_lat))
        .into_boxed();
    match bbox.longitudes.as_deref() {
        Some([(lo, hi)]) => query = query.filter(cars::longitude.between(*lo, *hi)),
        Some([(lo1, hi1), (lo2, hi2)]) => {
            query = query.filter(
                cars::longitude
                    .between(*lo1, *hi1)
                    .or(cars::longitude.between(*lo2, *hi2)),
            )
        }
        _ => {}
    }
    query = query.filter(
        geo_distance_km(q.latitude, q.longitude, cars::latitude, cars::longitude).le(q.radius_km),
    );
    if let Some(fuel) = q.fuel_type {
        query = query.filter(cars::fuel_type.eq(fuel));
    }
    if let Some(t) = q.transmission {
        query = query.filter(cars::transmission.eq(t));
    }
    if let Some(seats) = q.min_seats {
        query = query.filter(cars::seats.ge(seats));
    }
    if let Some(lo) = q.min_price_minor {
        query = query.filter(cars::price_per_day.ge(lo));
    }
    if let Some(hi) = q.max_price_minor {
        query = query.filter(cars::price_per_day.le(hi));
    }
    if let Some(text) = &q.text {
        query = query.filter(text_match(cars::search_text, text));
    }
    if !busy.is_empty() {
        query = query.filter(cars::id.ne_all(busy));
    }
    query
}

/// One page of `(car id, distance in km)` in the asked order, and the count of all matches.
/// The count comes with the page (`COUNT(*) OVER ()`), so the matching cars are found
/// once; only a page past the end needs a query of its own to count.
pub fn search(
    conn: &mut DbConn,
    q: &SearchQuery,
    busy: &[String],
) -> QueryResult<(Vec<(String, f64)>, i64)> {
    let distance = geo_distance_km(q.latitude, q.longitude, cars::latitude, cars::longitude);
    let query = filtered(q, busy).select((cars::id, distance, sql::<BigInt>("COUNT(*) OVER ()")));
    let query = match q.sort {
        SortBy::Distance => query.order((distance.asc(), cars::id.asc())),
        SortBy::Price => query.order((cars::price_per_day.asc(), cars::id.asc())),
    };
    let rows: Vec<(String, f64, i64)> = query
        .offset(q.page.offset())
        .limit(q.page.limit())
        .load(conn)?;
    let total = match rows.first() {
        Some((_, _, total)) => *total,
        None => filtered(q, busy).count().get_result(conn)?,
    };
    Ok((
        rows.into_iter().map(|(id, km, _)| (id, km)).collect(),
        total,
    ))
}
