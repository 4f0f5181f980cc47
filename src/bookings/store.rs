//! Booking queries: the `bookings` and `idempotency_keys` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{BookingFilter, BookingRow, Status, Transition};
use crate::db::schema::{bookings, idempotency_keys};
use crate::db::DbConn;
use crate::http::Choice;

pub fn insert(conn: &mut DbConn, row: &BookingRow) -> QueryResult<()> {
    diesel::insert_into(bookings::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<BookingRow>> {
    bookings::table
        .find(id)
        .select(BookingRow::as_select())
        .first(conn)
        .optional()
}

/// Whether a non-cancelled booking of the car overlaps the half-open `[from, to)`.
pub fn overlaps(
    conn: &mut DbConn,
    car_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        bookings::table
            .filter(bookings::car_id.eq(car_id))
            .filter(bookings::status.ne(Status::Cancelled.name()))
            .filter(bookings::pickup_time.lt(to))
            .filter(bookings::dropoff_time.gt(from)),
    ))
    .get_result(conn)
}

type Boxed<'a> = bookings::BoxedQuery<'a, <DbConn as Connection>::Backend>;

fn filtered(f: &BookingFilter) -> Boxed<'_> {
    let mut q = bookings::table.into_boxed();
    if let Some(user) = &f.user_id {
        q = q.filter(bookings::user_id.eq(user));
    }
    if let Some(car) = &f.car_id {
        q = q.filter(bookings::car_id.eq(car));
    }
    if let Some(status) = f.status {
        q = q.filter(bookings::status.eq(status.name()));
    }
    q
}

/// A page of bookings, newest first, and how many match in all.
pub fn list(
    conn: &mut DbConn,
    f: &BookingFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<BookingRow>, i64)> {
    let total = filtered(f).count().get_result(conn)?;
    let rows = filtered(f)
        .order((bookings::created_at.desc(), bookings::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(BookingRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Moves a booking along `t` when it is in the state `t` leaves (and, for a cancellation,
/// its pickup is still after `now`), stamping the time of the state it reaches. Zero rows
/// when its state forbids it.
pub fn transition(
    conn: &mut DbConn,
    id: &str,
    t: Transition,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let row = bookings::table
        .find(id)
        .filter(bookings::status.eq(t.from().name()));
    let change = (
        bookings::status.eq(t.to().name()),
        bookings::updated_at.eq(now),
    );
    match t {
        Transition::Cancel => diesel::update(row.filter(bookings::pickup_time.gt(now)))
            .set((change, bookings::cancelled_at.eq(now)))
            .execute(conn),
        Transition::PickUp => diesel::update(row)
            .set((change, bookings::picked_up_at.eq(now)))
            .execute(conn),
        Transition::Return => diesel::update(row)
            .set((change, bookings::returned_at.eq(now)))
            .execute(conn),
    }
}

/// Hands a confirmed booking's car over at `at`; 0 when the booking is not confirmed.
pub fn pick_up(
    conn: &mut DbConn,
    id: &str,
    at: NaiveDateTime,
    record: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        bookings::table
            .find(id)
            .filter(bookings::status.eq(Transition::PickUp.from().name())),
    )
    .set((
        bookings::status.eq(Transition::PickUp.to().name()),
        bookings::updated_at.eq(now),
        bookings::picked_up_at.eq(at),
        bookings::pickup_record.eq(record),
    ))
    .execute(conn)
}

/// Takes an active booking's car back at `at` with its final lines and total; 0 when the
/// booking is not active.
pub fn hand_back(
    conn: &mut DbConn,
    id: &str,
    at: NaiveDateTime,
    record: &str,
    lines: &str,
    total: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        bookings::table
            .find(id)
            .filter(bookings::status.eq(Transition::Return.from().name())),
    )
    .set((
        bookings::status.eq(Transition::Return.to().name()),
        bookings::updated_at.eq(now),
        bookings::returned_at.eq(at),
        bookings::return_record.eq(record),
        bookings::lines.eq(lines),
        bookings::total_price.eq(total),
    ))
    .execute(conn)
}

pub fn busy_cars(
    conn: &mut DbConn,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    bookings::table
        .filter(bookings::status.ne(Status::Cancelled.name()))
        .filter(bookings::pickup_time.lt(to))
        .filter(bookings::dropoff_time.gt(from))
        .select(bookings::car_id)
        .distinct()
        .load(conn)
}

pub fn busy_intervals(
    conn: &mut DbConn,
    car_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, NaiveDateTime)>> {
    bookings::table
        .filter(bookings::car_id.eq(car_id))
        .filter(bookings::status.ne(Status::Cancelled.name()))
        .filter(bookings::pickup_time.lt(to))
        .filter(bookings::dropoff_time.gt(from))
        .order(bookings::pickup_time.asc())
        .select((bookings::pickup_time, bookings::dropoff_time))
        .load(conn)
}

/// How many confirmed bookings of the user have their pickup after `now`.
pub fn upcoming_of(conn: &mut DbConn, user_id: &str, now: NaiveDateTime) -> QueryResult<i64> {
    bookings::table
        .filter(bookings::user_id.eq(user_id))
        .filter(bookings::status.eq(Status::Confirmed.name()))
        .filter(bookings::pickup_time.gt(now))
        .count()
        .get_result(conn)
}

pub fn has_upcoming(conn: &mut DbConn, car_id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        bookings::table
            .filter(bookings::car_id.eq(car_id))
            .filter(bookings::status.eq_any([Status::Confirmed.name(), Status::Active.name()]))
            .filter(bookings::dropoff_time.gt(now)),
    ))
    .get_result(conn)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct KeyRow {
    pub user_id: String,
    pub key: String,
    pub request_hash: String,
    pub status_code: Option<i32>,
    pub response: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn get_key(conn: &mut DbConn, user_id: &str, key: &str) -> QueryResult<Option<KeyRow>> {
    idempotency_keys::table
        .find((user_id, key))
        .select(KeyRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_key(conn: &mut DbConn, row: &KeyRow) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn complete_key(
    conn: &mut DbConn,
    user_id: &str,
    key: &str,
    status: i32,
    response: &str,
) -> QueryResult<usize> {
    diesel::update(idempotency_keys::table.find((user_id, key)))
        .set((
            idempotency_keys::status_code.eq(status),
            idempotency_keys::response.eq(response),
        ))
        .execute(conn)
}

pub fn delete_key(conn: &mut DbConn, user_id: &str, key: &str) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.find((user_id, key))).execute(conn)
}

/// Forgets the user's keys older than `before` (finished ones, and unfinished ones whose
/// request must have died with its process).
pub fn expire_keys(
    conn: &mut DbConn,
    user_id: &str,
    finished_before: NaiveDateTime,
    unfinished_before: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::user_id.eq(user_id))
            .filter(
                idempotency_keys::created_at
                    .lt(finished_before)
                    .or(idempotency_keys::status_code
                        .is_null()
                        .and(idempotency_keys::created_at.lt(unfinished_before))),
            ),
    )
    .execute(conn)
}
