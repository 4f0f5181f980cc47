//! The database engine's query. Search is, by design, SQL over the cars table itself: a
//! bounding box on the indexed latitude/longitude narrows the rows, then the great-circle
//! distance, the filters, the text match and the availability exclusion decide, in the
//! same condition for the count and the page, read in one snapshot so `total` and the pages
//! agree. Text is matched on the `car_words` index: each query word is first turned into
//! the fleet's words it matches.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use chrono::{DateTime, Utc};

use super::cells;
use super::model::{BoundingBox, SearchQuery, SortBy};
use crate::db::functions::{
    geo_cell, geo_distance_km, variants, word_matches, CELL_ROW, WORD_GRID,
};
use crate::db::schema::{car_words, cars, word_variants};
use crate::db::DbConn;
use crate::pricing::{rental_total, Pricing};

type Boxed<'a> = cars::BoxedQuery<'a, <DbConn as Connection>::Backend>;

/// For each word of the query, the words of the fleet it matches (exactly, or with one typo
/// when it has three letters or more); `None` when some word matches nothing.
fn matching_words(conn: &mut DbConn, text: &str) -> QueryResult<Option<Vec<Vec<String>>>> {
    let query: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    let wanted: Vec<String> = query.iter().flat_map(|w| variants(w)).collect();
    let known: Vec<String> = word_variants::table
        .filter(word_variants::variant.eq_any(&wanted))
        .select(word_variants::word)
        .distinct()
        .load(conn)?;
    let matches: Vec<Vec<String>> = query
        .iter()
        .map(|w| {
            known
                .iter()
                .filter(|k| word_matches(w, k))
                .cloned()
                .collect()
        })
        .collect();
    Ok((!matches.iter().any(Vec::is_empty)).then_some(matches))
}

/// [`matching_words`] of the query's text (none without text); `None` when no car can match.
fn query_words(conn: &mut DbConn, q: &SearchQuery) -> QueryResult<Option<Vec<Vec<String>>>> {
    match &q.text {
        None => Ok(Some(Vec::new())),
        Some(text) => matching_words(conn, text),
    }
}

fn filtered<'a>(q: &'a SearchQuery, words: &'a [Vec<String>], busy: &'a [String]) -> Boxed<'a> {
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
    if !words.is_empty() {
        let (first, last, columns) = word_cells(&bbox);
        for matching in words {
            query = query.filter(
                cars::id.eq_any(
                    car_words::table
                        .filter(car_words::word.eq_any(matching))
                        .filter(car_words::geo_cell_1.between(first, last))
                        .filter(sql::<Bool>(&columns))
                        .select(car_words::car_id),
                ),
            );
        }
    }
    if !busy.is_empty() {
        query = query.filter(cars::id.ne_all(busy));
    }
    query
}

/// Where a word's cars near the circle are in the word index: its entries in the box's rows
/// of cells (a range of the indexed cell numbers), and of those the ones in the box's
/// columns, as an SQL condition (the index holds the cell). Without one box (a pole, the
/// antimeridian) every entry of the word.
fn word_cells(bbox: &BoundingBox) -> (i64, i64, String) {
    match bbox.longitudes.as_deref() {
        Some(&[(lo, hi)]) => {
            let first = geo_cell(bbox.min_lat, lo, WORD_GRID);
            let last = geo_cell(bbox.max_lat, hi, WORD_GRID);
            let (left, right) = (first % CELL_ROW, last % CELL_ROW);
            let columns = format!("car_words.geo_cell_1 % {CELL_ROW} BETWEEN {left} AND {right}");
            (first, last, columns)
        }
        _ => (i64::MIN, i64::MAX, "1 = 1".to_owned()),
    }
}

/// One page of `(car id, distance in km)` in the asked order, and the count of all matches,
/// read in one snapshot so that they agree. A search by distance whose matches the kept cell
/// counts know (no text, no filter on the cars) is counted from them, and its page looked
/// for in a smaller circle ([`nearest`]), so that neither costs the matches one by one;
/// other searches find their page and count their matches in one query ([`page_and_count`]).
pub fn search(
    conn: &mut DbConn,
    q: &SearchQuery,
    busy: &[String],
) -> QueryResult<(Vec<(String, f64)>, i64)> {
    conn.read_snapshot(|conn| {
        let Some(words) = query_words(conn, q)? else {
            return Ok((Vec::new(), 0));
        };
        let by_cells = words.is_empty() && !q.filters_cars() && q.sort == SortBy::Distance;
        let cover = by_cells
            .then(|| cells::cover(q.latitude, q.longitude, q.radius_km))
            .flatten();
        match cover {
            Some(cover) => {
                let held: i64 = if busy.is_empty() {
                    0
                } else {
                    filtered(q, &[], &[])
                        .filter(cars::id.eq_any(busy))
                        .count()
                        .get_result(conn)?
                };
                let total = count_in_cells(conn, q, &cover)? - held;
                if total <= q.page.offset() {
                    return Ok((Vec::new(), total));
                }
                Ok((nearest(conn, q, busy, total)?, total))
            }
            None => page_and_count(conn, q, &words, busy),
        }
    })
}

/// The page and, from the same rows (`COUNT(*) OVER ()`), the count of all matches; only a
/// page past the end needs a query of its own to count.
fn page_and_count(
    conn: &mut DbConn,
    q: &SearchQuery,
    words: &[Vec<String>],
    busy: &[String],
) -> QueryResult<(Vec<(String, f64)>, i64)> {
    let distance = geo_distance_km(q.latitude, q.longitude, cars::latitude, cars::longitude);
    let query =
        filtered(q, words, busy).select((cars::id, distance, sql::<BigInt>("COUNT(*) OVER ()")));
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
        None => filtered(q, words, busy).count().get_result(conn)?,
    };
    Ok((
        rows.into_iter().map(|(id, km, _)| (id, km)).collect(),
        total,
    ))
}

/// The page of `q` in distance order, out of `total` matches. Every car outside a circle
/// is farther than every car inside it, so when a smaller circle around the same point
/// holds at least the cars up to the end of the page, its first cars are the search's.
/// The first radius guesses from `total` as if the matches were spread evenly, with room
/// to spare; a guess that holds too few doubles until it does or reaches the asked radius.
fn nearest(
    conn: &mut DbConn,
    q: &SearchQuery,
    busy: &[String],
    total: i64,
) -> QueryResult<Vec<(String, f64)>> {
    let needed = q.page.offset() + q.page.limit();
    let mut radius_km = q.radius_km * (2.0 * needed as f64 / total as f64).sqrt().min(1.0);
    loop {
        let within = SearchQuery {
            radius_km,
            ..q.clone()
        };
        let (rows, held) = page_and_count(conn, &within, &[], busy)?;
        if held >= needed.min(total) || radius_km >= q.radius_km {
            return Ok(rows);
        }
        radius_km = (radius_km * 2.0).min(q.radius_km);
    }
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// The searchable cars within the circle of `q`, by its [`cells::Cover`]: the kept counts
/// of the cells inside, and the cars of the edge cells one by one. One statement, each
/// range answered by an index lookup of its own (the ranges are numbers this code made).
fn count_in_cells(conn: &mut DbConn, q: &SearchQuery, cover: &cells::Cover) -> QueryResult<i64> {
    if cover.inside.is_empty() && cover.edge.is_empty() {
        return Ok(0);
    }
    let sql = cells_sql(q.latitude, q.longitude, q.radius_km, cover);
    Ok(diesel::sql_query(sql).get_result::<Total>(conn)?.total)
}

fn cells_sql(lat: f64, lng: f64, radius_km: f64, cover: &cells::Cover) -> String {
    let ranges: Vec<String> = cover
        .inside
        .iter()
        .map(|(grid, lo, hi)| format!("({grid},{lo},{hi})"))
        .chain(cover.edge.iter().map(|(lo, hi)| format!("(-1,{lo},{hi})")))
        .collect();
    format!(
        "WITH r(grid, lo, hi) AS (VALUES {ranges}) \
         SELECT CAST(COALESCE(SUM(CASE WHEN r.grid < 0 THEN \
             (SELECT count(*) FROM cars c WHERE c.geo_cell_{edge} BETWEEN r.lo AND r.hi \
              AND c.is_active AND c.deleted_at IS NULL \
              AND geo_distance_km({lat:?}, {lng:?}, c.latitude, c.longitude) <= {radius_km:?}) \
           ELSE (SELECT COALESCE(SUM(k.cars), 0) FROM car_cells k \
                 WHERE k.grid = r.grid AND k.cell BETWEEN r.lo AND r.hi) END), 0) AS BIGINT) \
         AS total FROM r",
        ranges = ranges.join(","),
        edge = cover.edge_grid,
    )
}

/// [`search`] with `sort=price` and a window: the cars ordered by what renting each for the
/// window costs under its pricing rules (then by id). Those rules are not SQL, so the
/// matches are priced here, after the query: it still finds and counts them in one go, so
/// `total` is exact, but the cost grows with the number of matches.
pub fn search_by_quote(
    conn: &mut DbConn,
    q: &SearchQuery,
    busy: &[String],
    (pickup, dropoff): (DateTime<Utc>, DateTime<Utc>),
) -> QueryResult<(Vec<(String, f64)>, i64)> {
    let Some(words) = query_words(conn, q)? else {
        return Ok((Vec::new(), 0));
    };
    let distance = geo_distance_km(q.latitude, q.longitude, cars::latitude, cars::longitude);
    let rows: Vec<(String, f64, i64, Option<String>)> = filtered(q, &words, busy)
        .select((cars::id, distance, cars::price_per_day, cars::pricing))
        .load(conn)?;
    let mut priced: Vec<(i64, String, f64)> = rows
        .into_iter()
        .map(|(id, km, price, pricing)| {
            let pricing: Option<Pricing> = pricing.and_then(|p| serde_json::from_str(&p).ok());
            let (_, total) = rental_total(price, pricing.as_ref(), pickup, dropoff);
            (total, id, km)
        })
        .collect();
    priced.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let total = priced.len() as i64;
    let page = priced
        .into_iter()
        .skip(usize::try_from(q.page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(q.page.limit()).unwrap_or(0))
        .map(|(_, id, km)| (id, km))
        .collect();
    Ok((page, total))
}

/// Cars a full index holds: every car not deleted, active or not.
pub fn count_cars(conn: &mut DbConn) -> QueryResult<i64> {
    crate::db::undeleted_cars(conn, true)
}
