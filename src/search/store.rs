//! The database engine's query. Search is, by design, SQL over the cars table itself: a
//! bounding box on the indexed latitude/longitude narrows the rows, then the great-circle
//! distance, the filters, the text match and the availability exclusion decide, in the
//! same condition for the count and the page, read in one snapshot so `total` and the pages
//! agree. Text is matched on the fleet's distinct texts (`text_words`): each query word is
//! first turned into the fleet's words it matches, and those into the texts that have them.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use chrono::{DateTime, Utc};

use super::cells::{self, BoxCells};
use super::model::{SearchQuery, SortBy};
use crate::db::functions::{geo_distance_km, variants, word_matches};
use crate::ids::CarId;
use crate::db::schema::{cars, text_words, word_variants};
use crate::db::{Backend, DbConn};
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

fn filtered<'a>(
    backend: Backend,
    q: &'a SearchQuery,
    words: &'a [Vec<String>],
    busy: &'a [CarId],
) -> Boxed<'a> {
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
    // The search's index leads with the car's cell: this is what it looks up.
    let cells = match cells::box_cells(bbox.min_lat, bbox.max_lat, bbox.longitudes.as_deref()) {
        BoxCells::Listed(cells) => {
            let listed: Vec<String> = cells.iter().map(i64::to_string).collect();
            match backend {
                // One array constant plans in three quarters of the time of a list of a
                // thousand (docs/DESIGN.md, "Where a search's time goes").
                Backend::Postgres => {
                    format!("cars.geo_cell_1 = ANY('{{{}}}'::bigint[])", listed.join(","))
                }
                Backend::Sqlite => format!("cars.geo_cell_1 IN ({})", listed.join(",")),
            }
        }
        BoxCells::Rows(first, last) => format!("cars.geo_cell_1 BETWEEN {first} AND {last}"),
    };
    query = query.filter(sql::<Bool>(&cells));
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
    // Compared with `true`, each word's texts stay one set the query computes once
    // (PostgreSQL: a hashed subplan). As a bare `IN`, PostgreSQL joins them to the cars,
    // and where it misjudges a dense cell as holding one car it scans them for every car.
    for matching in words {
        query = query.filter(
            cars::search_text
                .eq_any(
                    text_words::table
                        .filter(text_words::word.eq_any(matching))
                        .select(text_words::text),
                )
                .eq(true),
        );
    }
    if !busy.is_empty() {
        query = query.filter(cars::id.ne_all(busy));
    }
    query
}

/// One page of `(car id, distance in km)` in the asked order, and the count of all matches,
/// read in one snapshot so that they agree. A search by distance whose matches the kept cell
/// counts know (place and text, no other filter on the cars) is counted from them, and its
/// page looked for in a smaller circle ([`nearest`]), so that neither costs the matches one
/// by one; other searches find their page and count their matches in one query
/// ([`page_and_count`]).
pub fn search(
    conn: &mut DbConn,
    q: &SearchQuery,
    busy: &[CarId],
) -> QueryResult<(Vec<(CarId, f64)>, i64)> {
    conn.read_snapshot(|conn| {
        let Some(words) = query_words(conn, q)? else {
            return Ok((Vec::new(), 0));
        };
        let by_cells = !q.filters_cars() && q.sort == SortBy::Distance;
        let cover = by_cells
            .then(|| cells::cover(q.latitude, q.longitude, q.radius_km))
            .flatten();
        let Some(cover) = cover else {
            return page_and_count(conn, q, &words, busy);
        };
        let cover = refined(conn, q, cover)?;
        let held: i64 = if busy.is_empty() {
            0
        } else {
            filtered(conn.backend(), q, &words, &[])
                .filter(cars::id.eq_any(busy))
                .count()
                .get_result(conn)?
        };
        let total = count_in_cells(conn, q, &cover, &words)? - held;
        if total <= q.page.offset() {
            return Ok((Vec::new(), total));
        }
        Ok((nearest(conn, q, &words, busy, total)?, total))
    })
}

/// The page and, from the same rows (`COUNT(*) OVER ()`), the count of all matches; only a
/// page past the end needs a query of its own to count.
fn page_and_count(
    conn: &mut DbConn,
    q: &SearchQuery,
    words: &[Vec<String>],
    busy: &[CarId],
) -> QueryResult<(Vec<(CarId, f64)>, i64)> {
    let distance = geo_distance_km(q.latitude, q.longitude, cars::latitude, cars::longitude);
    let query =
        filtered(conn.backend(), q, words, busy).select((cars::id, distance, sql::<BigInt>("COUNT(*) OVER ()")));
    let query = match q.sort {
        SortBy::Distance => query.order((distance.asc(), cars::id.asc())),
        SortBy::Price => query.order((cars::price_per_day.asc(), cars::id.asc())),
    };
    let rows: Vec<(CarId, f64, i64)> = query
        .offset(q.page.offset())
        .limit(q.page.limit())
        .load(conn)?;
    let total = match rows.first() {
        Some((_, _, total)) => *total,
        None => filtered(conn.backend(), q, words, busy).count().get_result(conn)?,
    };
    Ok((
        rows.into_iter().map(|(id, km, _)| (id, km)).collect(),
        total,
    ))
}

/// The page of `q` in distance order, out of `total` matches. Every car outside a circle
/// is farther than every car inside it, so when a smaller circle around the same point
/// holds at least the cars up to the end of the page, its first cars are the search's.
/// That circle is found from the kept counts of the cells around the centre, in a window
/// as wide as a guess that takes the matches for spread evenly (in a city centre they are
/// far denser). A circle that turns out to hold too few (cars held by bookings are only
/// known then, a window or a narrowed circle may hold too few) doubles until it does or
/// reaches the asked radius.
fn nearest(
    conn: &mut DbConn,
    q: &SearchQuery,
    words: &[Vec<String>],
    busy: &[CarId],
    total: i64,
) -> QueryResult<Vec<(CarId, f64)>> {
    let needed = q.page.offset() + q.page.limit();
    let guess_km = q.radius_km * (2.0 * needed as f64 / total as f64).sqrt().min(1.0);
    let (grid, window) = cells::window(q.latitude, q.longitude, guess_km);
    let counts = kept_counts(conn, grid, &window, words)?;
    // A circle known to hold many times the page (a city centre's smallest cell can hold
    // thousands of cars) is narrowed as if they were spread evenly in it.
    let mut radius_km = match cells::radius_holding(q.latitude, q.longitude, grid, &counts, needed)
    {
        Some((km, held)) => km * (2.0 * needed as f64 / held as f64).sqrt().min(1.0),
        None => 2.0 * guess_km,
    }
    .min(q.radius_km);
    loop {
        let within = SearchQuery {
            radius_km,
            ..q.clone()
        };
        let (rows, held) = page_and_count(conn, &within, words, busy)?;
        if held >= needed.min(total) || radius_km >= q.radius_km {
            return Ok(rows);
        }
        radius_km = (radius_km * 2.0).min(q.radius_km);
    }
}

/// `cover` with the dense cells of its edge in the second grid looked at in the finest
/// ([`cells::refine`]), from the kept counts of all cars (what measuring them costs).
fn refined(conn: &mut DbConn, q: &SearchQuery, cover: cells::Cover) -> QueryResult<cells::Cover> {
    let second: Vec<(i64, i64)> = cover
        .edge
        .iter()
        .filter(|(grid, _, _)| *grid == 1)
        .map(|&(_, lo, hi)| (lo, hi))
        .collect();
    if second.is_empty() {
        return Ok(cover);
    }
    let counts = kept_counts(conn, 1, &second, &[])?;
    Ok(cells::refine(
        q.latitude,
        q.longitude,
        q.radius_km,
        cover,
        &counts,
    ))
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// The searchable cars within the circle of `q` whose text matches `words` (each query
/// word's matching words; none without text), by its [`cells::Cover`]: the kept counts of
/// the cells inside, and the cars of the edge cells one by one. One statement, each range
/// answered by an index lookup of its own.
fn count_in_cells(
    conn: &mut DbConn,
    q: &SearchQuery,
    cover: &cells::Cover,
    words: &[Vec<String>],
) -> QueryResult<i64> {
    if cover.inside.is_empty() && cover.edge.is_empty() {
        return Ok(0);
    }
    // Edge ranges are told apart by a negative grid: -1 for the finest, -2 for the next.
    let ranges: Vec<(i64, i64, i64)> = cover
        .inside
        .iter()
        .map(|&(grid, lo, hi)| (grid as i64, lo, hi))
        .chain(
            cover
                .edge
                .iter()
                .map(|&(grid, lo, hi)| (-1 - grid as i64, lo, hi)),
        )
        .collect();
    let measured = |grid: usize| {
        format!(
            "SELECT count(*) FROM cars c WHERE c.geo_cell_{grid} BETWEEN r.lo AND r.hi \
             AND c.is_active AND c.deleted_at IS NULL{of_text} \
             AND geo_distance_km({lat:?}, {lng:?}, c.latitude, c.longitude) <= {radius:?}",
            of_text = if words.is_empty() {
                ""
            } else {
                " AND c.search_text IN (SELECT text FROM t)"
            },
            lat = q.latitude,
            lng = q.longitude,
            radius = q.radius_km,
        )
    };
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN r.grid = -1 THEN ({finest}) \
           WHEN r.grid = -2 THEN ({second}) \
           ELSE (SELECT COALESCE(SUM(k.cars), 0) FROM {kept} \
                 AND k.cell BETWEEN r.lo AND r.hi) END), 0) AS BIGINT) AS total FROM r",
        finest = measured(0),
        second = measured(1),
        kept = kept_in(words),
    );
    Ok(cells_query(conn, &sql, &ranges, words)?
        .get_result::<Total>(conn)?
        .total)
}

#[derive(QueryableByName)]
struct Kept {
    #[diesel(sql_type = BigInt)]
    cell: i64,
    #[diesel(sql_type = BigInt)]
    cars: i64,
}

/// The kept counts of searchable cars whose text matches `words`, per cell of `grid` in the
/// ranges of cells given.
fn kept_counts(
    conn: &mut DbConn,
    grid: usize,
    ranges: &[(i64, i64)],
    words: &[Vec<String>],
) -> QueryResult<Vec<(i64, i64)>> {
    let ranges: Vec<(i64, i64, i64)> = ranges
        .iter()
        .map(|&(lo, hi)| (grid as i64, lo, hi))
        .collect();
    let kept = format!("{} AND k.cell BETWEEN r.lo AND r.hi", kept_in(words));
    // Range by range, on the index: PostgreSQL would rather hash the whole table, unless
    // `OFFSET 0` keeps it from merging the lateral subquery into a plain join.
    let from = match conn.backend() {
        Backend::Postgres => {
            format!("r CROSS JOIN LATERAL (SELECT k.cell, k.cars FROM {kept} OFFSET 0) AS k")
        }
        Backend::Sqlite => format!("r, {kept}"),
    };
    let sql = format!(
        "SELECT k.cell AS cell, CAST(SUM(k.cars) AS BIGINT) AS cars FROM {from} GROUP BY k.cell"
    );
    let kept: Vec<Kept> = cells_query(conn, &sql, &ranges, words)?.load(conn)?;
    Ok(kept.into_iter().map(|k| (k.cell, k.cars)).collect())
}

/// The kept counts `k` of range `r`'s grid, as a table and a condition: of all cars
/// (`car_cells`), or of the cars whose text is one of `t` (`car_text_cells`).
fn kept_in(words: &[Vec<String>]) -> &'static str {
    if words.is_empty() {
        "car_cells k WHERE k.grid = r.grid"
    } else {
        "car_text_cells k WHERE k.grid = r.grid AND k.text IN (SELECT text FROM t)"
    }
}

type CellsQuery = diesel::query_builder::BoxedSqlQuery<
    'static,
    <DbConn as Connection>::Backend,
    diesel::query_builder::SqlQuery,
>;

/// `select` over the ranges of cells `r(grid, lo, hi)` and, with text, the texts `t` that
/// match every query word. The ranges are bound as one JSON array rather than written out
/// (PostgreSQL planned a statement of 500 literal rows for longer than it ran), the words
/// one by one.
fn cells_query(
    conn: &DbConn,
    select: &str,
    ranges: &[(i64, i64, i64)],
    words: &[Vec<String>],
) -> QueryResult<CellsQuery> {
    let rows = match conn.backend() {
        Backend::Postgres => {
            "SELECT (e->>0)::int, (e->>1)::bigint, (e->>2)::bigint \
             FROM json_array_elements(CAST($1 AS json)) AS e"
        }
        Backend::Sqlite => "SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1)",
    };
    let mut n = 1;
    let per_word: Vec<String> = words
        .iter()
        .map(|matching| {
            let binds: Vec<String> = matching
                .iter()
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            format!(
                "SELECT text FROM text_words WHERE word IN ({})",
                binds.join(",")
            )
        })
        .collect();
    // SQLite numbers `$n` parameters in the order they first appear: `$1` comes first.
    let texts = if per_word.is_empty() {
        String::new()
    } else {
        format!(", t(text) AS ({})", per_word.join(" INTERSECT "))
    };
    let ranges = serde_json::to_string(ranges)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let mut query = diesel::sql_query(format!("WITH r(grid, lo, hi) AS ({rows}){texts} {select}"))
        .into_boxed::<<DbConn as Connection>::Backend>()
        .bind::<Text, _>(ranges);
    for word in words.iter().flatten() {
        query = query.bind::<Text, _>(word.clone());
    }
    Ok(query)
}

/// [`search`] with `sort=price` and a window: the cars ordered by what renting each for the
/// window costs under its pricing rules (then by id). Those rules are not SQL, so the
/// matches are priced here, after the query: it still finds and counts them in one go, so
/// `total` is exact, but the cost grows with the number of matches.
pub fn search_by_quote(
    conn: &mut DbConn,
    q: &SearchQuery,
    busy: &[CarId],
    (pickup, dropoff): (DateTime<Utc>, DateTime<Utc>),
) -> QueryResult<(Vec<(CarId, f64)>, i64)> {
    let Some(words) = query_words(conn, q)? else {
        return Ok((Vec::new(), 0));
    };
    let distance = geo_distance_km(q.latitude, q.longitude, cars::latitude, cars::longitude);
    let rows: Vec<(CarId, f64, i64, Option<String>)> = filtered(conn.backend(), q, &words, busy)
        .select((cars::id, distance, cars::price_per_day, cars::pricing))
        .load(conn)?;
    let mut priced: Vec<(i64, CarId, f64)> = rows
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
