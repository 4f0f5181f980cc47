//! Car queries: the `cars` table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{CarRecord, CarRow};
use crate::db::functions::variants;
use crate::db::schema::{car_zones, cars, text_words, word_variants};
use crate::db::DbConn;
use crate::ids::CarId;

/// Inserts a car with its zone.
pub fn insert(conn: &mut DbConn, car: &CarRecord) -> QueryResult<()> {
    insert_many(conn, std::slice::from_ref(&car.row))?;
    set_zone(conn, car)
}

/// Inserts cars with their zones: one statement per zone among them (a fleet has few).
pub fn insert_records(conn: &mut DbConn, cars: &[CarRecord]) -> QueryResult<()> {
    let rows: Vec<CarRow> = cars.iter().map(|car| car.row.clone()).collect();
    insert_many(conn, &rows)?;
    let mut by_zone: std::collections::BTreeMap<&Option<String>, Vec<&CarId>> =
        std::collections::BTreeMap::new();
    for car in cars {
        by_zone.entry(&car.time_zone).or_default().push(&car.row.id);
    }
    for (zone, ids) in by_zone {
        diesel::update(car_zones::table.filter(car_zones::id.eq_any(ids)))
            .set(car_zones::time_zone.eq(zone))
            .execute(conn)?;
    }
    Ok(())
}

fn set_zone(conn: &mut DbConn, car: &CarRecord) -> QueryResult<()> {
    diesel::update(car_zones::table.find(&car.id))
        .set(car_zones::time_zone.eq(&car.time_zone))
        .execute(conn)
        .map(drop)
}

/// Inserts cars and their words, many rows to a statement; their zones are their
/// coordinates' (derived when read).
pub fn insert_many(conn: &mut DbConn, rows: &[CarRow]) -> QueryResult<()> {
    // 26 columns a row: 500 rows stay under both backends' limits on bound values.
    for chunk in rows.chunks(500) {
        let insert = diesel::insert_into(cars::table).values(chunk);
        match conn {
            DbConn::Pg(c) => insert.execute(c)?,
            DbConn::Sqlite(c) => insert.execute(c)?,
        };
    }
    add_words(conn, rows)
}

/// Inserts the rows in chunks, leaving those already there as they are.
macro_rules! insert_new {
    ($conn:expr, $table:path, $rows:expr) => {
        for chunk in $rows.chunks(10_000) {
            match $conn {
                DbConn::Pg(c) => diesel::insert_into($table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?,
                DbConn::Sqlite(c) => diesel::insert_or_ignore_into($table)
                    .values(chunk)
                    .execute(c)?,
            };
        }
    };
}

#[derive(Insertable)]
#[diesel(table_name = text_words)]
struct TextWord<'a> {
    word: &'a str,
    text: &'a str,
}

#[derive(Insertable)]
#[diesel(table_name = word_variants)]
struct WordVariant<'a> {
    variant: String,
    word: &'a str,
}

/// Files the cars' texts under their words for text search, with the words' variants (see
/// the `car_words` and `text_cells` migrations). Texts and words already known stay as they
/// are; several writers may add the same ones at once.
fn add_words(conn: &mut DbConn, rows: &[CarRow]) -> QueryResult<()> {
    let mut texts: Vec<&str> = rows.iter().map(|row| row.search_text.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    let mut words: Vec<TextWord> = texts
        .iter()
        .flat_map(|&text| {
            text.split(' ')
                .filter(|w| !w.is_empty())
                .map(move |word| TextWord { word, text })
        })
        .collect();
    let mut distinct: Vec<&str> = words.iter().map(|w| w.word).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut variants: Vec<WordVariant> = distinct
        .iter()
        .flat_map(|&word| {
            variants(word)
                .into_iter()
                .map(move |variant| WordVariant { variant, word })
        })
        .collect();
    // In key order, so that writers adding the same words never wait on each other in turn.
    words.sort_unstable_by(|a, b| (a.word, a.text).cmp(&(b.word, b.text)));
    variants.sort_unstable_by(|a, b| (&a.variant, a.word).cmp(&(&b.variant, b.word)));
    insert_new!(conn, text_words::table, words);
    insert_new!(conn, word_variants::table, variants);
    Ok(())
}

/// The car, deleted or not.
pub fn get(conn: &mut DbConn, id: CarId) -> QueryResult<Option<CarRecord>> {
    cars::table
        .find(id)
        .select(CarRecord::as_select())
        .get_result(conn)
        .optional()
}

/// Undeleted car ids after `after`, in id order.
pub fn ids_after(
    conn: &mut DbConn,
    after: Option<CarId>,
    limit: i64,
) -> QueryResult<Vec<CarId>> {
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

pub fn get_many(conn: &mut DbConn, ids: &[CarId]) -> QueryResult<Vec<CarRecord>> {
    cars::table
        .filter(cars::id.eq_any(ids))
        .select(CarRecord::as_select())
        .load(conn)
}

/// Writes every field of an undeleted car; zero rows when it is gone.
pub fn update(conn: &mut DbConn, car: &CarRecord) -> QueryResult<usize> {
    let row = &car.row;
    let changed = diesel::update(cars::table.find(&row.id).filter(cars::deleted_at.is_null()))
        .set(row)
        .execute(conn)?;
    if changed > 0 {
        add_words(conn, std::slice::from_ref(row))?;
        set_zone(conn, car)?;
    }
    Ok(changed)
}

/// Whether the car exists and is not deleted.
pub fn is_live(conn: &mut DbConn, id: CarId) -> QueryResult<bool> {
    Ok(get(conn, id)?.is_some_and(|c| c.deleted_at.is_none()))
}

pub fn soft_delete(conn: &mut DbConn, id: CarId, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(cars::table.find(id).filter(cars::deleted_at.is_null()))
        .set((cars::deleted_at.eq(now), cars::updated_at.eq(now)))
        .execute(conn)
}
