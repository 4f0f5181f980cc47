//! Booking queries: the `bookings`, `car_holds` and `idempotency_keys` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{BookingFilter, BookingRow, Handed, HoldRow, Status, Transition};
use crate::db::schema::{bookings, car_holds, idempotency_keys};
use crate::db::DbConn;
use crate::ids::{BlockId, BookingId, CarId, HoldId, UserId};
use crate::ports::HoldKind;

pub fn insert(conn: &mut DbConn, row: &BookingRow) -> QueryResult<()> {
    diesel::insert_into(bookings::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn get(conn: &mut DbConn, id: BookingId) -> QueryResult<Option<BookingRow>> {
    bookings::table
        .find(id)
        .select(BookingRow::as_select())
        .get_result(conn)
        .optional()
}

/// Whether a hold of the car (a booking with its buffer, or a block) overlaps the half-open
/// `[from, to)`.
pub fn held(
    conn: &mut DbConn,
    car_id: CarId,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        car_holds::table
            .filter(car_holds::car_id.eq(car_id))
            .filter(car_holds::starts_at.lt(to))
            .filter(car_holds::ends_at.gt(from))
            .filter(in_force()),
    ))
    .get_result(conn)
}

/// Holds that hold now: all but those of unpaid bookings whose hold has run out.
fn in_force() -> diesel::dsl::Or<
    diesel::dsl::IsNull<car_holds::expires_at>,
    diesel::dsl::Gt<car_holds::expires_at, NaiveDateTime>,
> {
    car_holds::expires_at
        .is_null()
        .or(car_holds::expires_at.gt(crate::db::to_db(crate::time::now())))
}

pub fn insert_hold(conn: &mut DbConn, row: &HoldRow) -> QueryResult<()> {
    diesel::insert_into(car_holds::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Frees what a booking held (it was cancelled).
pub fn release(conn: &mut DbConn, booking_id: BookingId) -> QueryResult<usize> {
    diesel::delete(
        car_holds::table
            .find(HoldId::from(booking_id))
            .filter(car_holds::kind.eq(HoldKind::Booking)),
    )
    .execute(conn)
}

/// A page of the car's blocks in `from` order (those ending after `after` when given), and
/// how many there are in all.
pub fn blocks(
    conn: &mut DbConn,
    car_id: CarId,
    after: Option<NaiveDateTime>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<HoldRow>, i64)> {
    let filtered = || {
        let mut q = car_holds::table
            .filter(car_holds::car_id.eq(car_id))
            .filter(car_holds::kind.eq(HoldKind::Block))
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(car_holds::ends_at.gt(after));
        }
        q
    };
    let total = filtered().count().get_result(conn)?;
    let rows = filtered()
        .order((car_holds::starts_at.asc(), car_holds::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(HoldRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn delete_block(conn: &mut DbConn, car_id: CarId, id: BlockId) -> QueryResult<usize> {
    diesel::delete(
        car_holds::table
            .find(HoldId::from(id))
            .filter(car_holds::car_id.eq(car_id))
            .filter(car_holds::kind.eq(HoldKind::Block)),
    )
    .execute(conn)
}

type Boxed<'a> = bookings::BoxedQuery<'a, <DbConn as Connection>::Backend>;

fn filtered(f: &BookingFilter) -> Boxed<'_> {
    let mut q = bookings::table.into_boxed();
    if let Some(user) = f.user_id {
        q = q.filter(bookings::user_id.eq(user));
    }
    if let Some(car) = f.car_id {
        q = q.filter(bookings::car_id.eq(car));
    }
    if let Some(status) = f.status {
        q = q.filter(bookings::status.eq(status));
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
/// its pickup is still after `now`), stamping the time of the state it reaches and, for a
/// handover, writing its record (and a return's final lines and total). Zero rows when its
/// state forbids it.
pub fn transition(
    conn: &mut DbConn,
    id: BookingId,
    t: Transition,
    now: NaiveDateTime,
    handover: Option<&Handed>,
) -> QueryResult<usize> {
    let row = bookings::table
        .find(id)
        .filter(bookings::status.eq_any(t.from().to_vec()));
    let change = (bookings::status.eq(t.to()), bookings::updated_at.eq(now));
    match (t, handover) {
        (Transition::Cancel, _) => diesel::update(row.filter(bookings::pickup_time.gt(now)))
            .set((change, bookings::cancelled_at.eq(now)))
            .execute(conn),
        (Transition::PickUp, Some(h)) => diesel::update(row)
            .set((
                change,
                bookings::picked_up_at.eq(h.at),
                bookings::pickup_record.eq(&h.record),
            ))
            .execute(conn),
        (Transition::Return, Some(h)) => diesel::update(row)
            .set((
                change,
                bookings::returned_at.eq(h.at),
                bookings::return_record.eq(&h.record),
                bookings::lines.eq(&h.lines),
                bookings::total_price.eq(h.total),
            ))
            .execute(conn),
        (Transition::PickUp | Transition::Return, None) => Err(diesel::result::Error::QueryBuilderError(
            "a handover needs its record".into(),
        )),
    }
}

/// Cars with a hold overlapping `[from, to)`, each with the start of its first such hold.
pub fn busy_cars(
    conn: &mut DbConn,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(CarId, NaiveDateTime)>> {
    car_holds::table
        .filter(car_holds::starts_at.lt(to))
        .filter(car_holds::ends_at.gt(from))
        .filter(in_force())
        .group_by(car_holds::car_id)
        .select((car_holds::car_id, diesel::dsl::min(car_holds::starts_at)))
        .load::<(CarId, Option<NaiveDateTime>)>(conn)
        .map(|rows| {
            rows.into_iter()
                .filter_map(|(car, start)| Some((car, start?)))
                .collect()
        })
}

/// The car's holds overlapping `[from, to)`, in start order.
pub fn busy_intervals(
    conn: &mut DbConn,
    car_id: CarId,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<HoldRow>> {
    car_holds::table
        .filter(car_holds::car_id.eq(car_id))
        .filter(car_holds::starts_at.lt(to))
        .filter(car_holds::ends_at.gt(from))
        .filter(in_force())
        .order((car_holds::starts_at.asc(), car_holds::id.asc()))
        .select(HoldRow::as_select())
        .load(conn)
}

/// How many confirmed bookings of the user (and unpaid ones still held) have their pickup
/// after `now`.
pub fn upcoming_of(conn: &mut DbConn, user_id: UserId, now: NaiveDateTime) -> QueryResult<i64> {
    bookings::table
        .filter(bookings::user_id.eq(user_id))
        .filter(
            bookings::status.eq(Status::Confirmed).or(bookings::status
                .eq(Status::PendingPayment)
                .and(bookings::hold_expires_at.gt(now))),
        )
        .filter(bookings::pickup_time.gt(now))
        .count()
        .get_result(conn)
}

/// Whether the user has a booking that holds a car: one still held for its payment, one out,
/// or a confirmed one whose dropoff is ahead.
pub fn holds_a_car(conn: &mut DbConn, user_id: UserId, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        bookings::table.filter(bookings::user_id.eq(user_id)).filter(
            bookings::status
                .eq(Status::Active)
                .or(bookings::status
                    .eq(Status::PendingPayment)
                    .and(bookings::hold_expires_at.gt(now)))
                .or(bookings::status
                    .eq(Status::Confirmed)
                    .and(bookings::dropoff_time.gt(now))),
        ),
    ))
    .get_result(conn)
}

/// Whether a booking of the user still has a balance due.
pub fn owes(conn: &mut DbConn, user_id: UserId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        bookings::table
            .filter(bookings::user_id.eq(user_id))
            .filter(bookings::balance_due.gt(0)),
    ))
    .get_result(conn)
}

/// Every booking of the user, oldest first.
pub fn all_of(conn: &mut DbConn, user_id: UserId) -> QueryResult<Vec<BookingRow>> {
    bookings::table
        .filter(bookings::user_id.eq(user_id))
        .order((bookings::created_at.asc(), bookings::id.asc()))
        .select(BookingRow::as_select())
        .load(conn)
}

/// Whether a booking of the car other than `except` is out (picked up, not returned).
pub fn has_active(conn: &mut DbConn, car_id: CarId, except: BookingId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        bookings::table
            .filter(bookings::car_id.eq(car_id))
            .filter(bookings::status.eq(Status::Active))
            .filter(bookings::id.ne(except)),
    ))
    .get_result(conn)
}

pub fn has_upcoming(conn: &mut DbConn, car_id: CarId, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        bookings::table
            .filter(bookings::car_id.eq(car_id))
            .filter(bookings::status.eq_any([Status::Confirmed, Status::Active]))
            .filter(bookings::dropoff_time.gt(now)),
    ))
    .get_result(conn)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct KeyRow {
    pub user_id: UserId,
    pub key: String,
    pub request_hash: String,
    pub status_code: Option<i32>,
    pub response: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn get_key(conn: &mut DbConn, user_id: UserId, key: &str) -> QueryResult<Option<KeyRow>> {
    idempotency_keys::table
        .find((user_id, key))
        .select(KeyRow::as_select())
        .get_result(conn)
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
    user_id: UserId,
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

pub fn delete_key(conn: &mut DbConn, user_id: UserId, key: &str) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.find((user_id, key))).execute(conn)
}

/// Forgets the user's keys older than `before` (finished ones, and unfinished ones whose
/// request must have died with its process).
pub fn expire_keys(
    conn: &mut DbConn,
    user_id: UserId,
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

/// A held booking whose payment could not be opened: it was never made.
pub fn discard(conn: &mut DbConn, id: BookingId) -> QueryResult<()> {
    diesel::delete(car_holds::table.find(HoldId::from(id))).execute(conn)?;
    diesel::delete(bookings::table.find(id)).execute(conn)?;
    Ok(())
}

/// Frees the car's slots held by unpaid bookings whose hold ran out by `now` (a constraint
/// cannot read the clock: the insert that needs the slot frees it first). The bookings are
/// marked expired by the expiry job, which also tells their renters.
pub fn free_expired_holds(conn: &mut DbConn, car_id: CarId, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        car_holds::table
            .filter(car_holds::car_id.eq(car_id))
            .filter(car_holds::expires_at.le(now)),
    )
    .execute(conn)
}

/// Unpaid bookings whose hold ran out by `now`, oldest first.
pub fn holds_due(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<BookingRow>> {
    bookings::table
        .filter(bookings::status.eq(Status::PendingPayment))
        .filter(bookings::hold_expires_at.le(now))
        .order(bookings::hold_expires_at.asc())
        .limit(limit)
        .select(BookingRow::as_select())
        .load(conn)
}

/// Expires an unpaid booking whose hold ran out; 0 when it was paid or changed meanwhile.
pub fn expire(conn: &mut DbConn, id: BookingId, now: NaiveDateTime) -> QueryResult<usize> {
    let changed = diesel::update(
        bookings::table
            .find(id)
            .filter(bookings::status.eq(Status::PendingPayment))
            .filter(bookings::hold_expires_at.le(now)),
    )
    .set((bookings::status.eq(Status::Expired), bookings::updated_at.eq(now)))
    .execute(conn)?;
    if changed > 0 {
        release(conn, id)?;
    }
    Ok(changed)
}

/// Confirms an unpaid booking on its payment: its hold no longer expires, and the card it
/// was paid with is kept for its later charges. 0 when it no longer waits for payment.
pub fn confirm_paid(
    conn: &mut DbConn,
    id: BookingId,
    card: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let changed = diesel::update(
        bookings::table
            .find(id)
            .filter(bookings::status.eq(Status::PendingPayment)),
    )
    .set((
        bookings::status.eq(Status::Confirmed),
        bookings::hold_expires_at.eq(None::<NaiveDateTime>),
        bookings::payment_method.eq(card),
        bookings::updated_at.eq(now),
    ))
    .execute(conn)?;
    if changed > 0 {
        diesel::update(car_holds::table.find(HoldId::from(id)))
            .set(car_holds::expires_at.eq(None::<NaiveDateTime>))
            .execute(conn)?;
    }
    Ok(changed)
}

pub fn set_payment_method(conn: &mut DbConn, id: BookingId, card: &str) -> QueryResult<usize> {
    diesel::update(bookings::table.find(id))
        .set(bookings::payment_method.eq(card))
        .execute(conn)
}

/// Adds `amount` (negative: takes it away) to what the booking still owes, never below 0.
/// Marks the booking's payment disputed; 0 when it already was.
pub fn set_disputed(conn: &mut DbConn, id: BookingId) -> QueryResult<usize> {
    diesel::update(bookings::table.find(id).filter(bookings::disputed.eq(false)))
        .set(bookings::disputed.eq(true))
        .execute(conn)
}

pub fn add_balance_due(conn: &mut DbConn, id: BookingId, amount: i64) -> QueryResult<usize> {
    let Some(current) = get(conn, id)? else {
        return Ok(0);
    };
    diesel::update(bookings::table.find(id))
        .set(bookings::balance_due.eq((current.balance_due + amount).max(0)))
        .execute(conn)
}

/// Sets a booking's lines and total (a cancellation's refund lines).
pub fn set_lines(conn: &mut DbConn, id: BookingId, lines: &str, total: i64) -> QueryResult<usize> {
    diesel::update(bookings::table.find(id))
        .set((bookings::lines.eq(lines), bookings::total_price.eq(total)))
        .execute(conn)
}
