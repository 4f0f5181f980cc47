//! Payment queries: the `payments`, `payment_setups`, `payment_customers` and
//! `payment_events` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{PaymentKind, PaymentRow, PaymentStatus, SetupRow};
use crate::bookings::model::BookingRow;
use crate::db::schema::{bookings, payment_customers, payment_events, payment_setups, payments};
use crate::db::{self, DbConn};
use crate::ids::{BookingId, PaymentId, SetupId, UserId};

/// Takes the lock on a booking's payments until the transaction ends: whatever reads its
/// records to change them (a refund's limit, a state that only moves forward) does it alone.
pub fn lock(conn: &mut DbConn, booking: BookingId) -> QueryResult<()> {
    db::lock(conn, format!("payments:{booking}"))
}

pub fn insert(conn: &mut DbConn, row: &PaymentRow) -> QueryResult<()> {
    diesel::insert_into(payments::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn get(conn: &mut DbConn, id: PaymentId) -> QueryResult<Option<PaymentRow>> {
    payments::table
        .find(id)
        .select(PaymentRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn by_ref(conn: &mut DbConn, provider: &str, reference: &str) -> QueryResult<Option<PaymentRow>> {
    payments::table
        .filter(payments::provider.eq(provider))
        .filter(payments::provider_ref.eq(reference))
        .select(PaymentRow::as_select())
        .get_result(conn)
        .optional()
}

/// A record with its booking, in one query.
pub fn with_booking(conn: &mut DbConn, id: PaymentId) -> QueryResult<Option<(PaymentRow, BookingRow)>> {
    with_bookings()
        .filter(payments::id.eq(id))
        .select((PaymentRow::as_select(), BookingRow::as_select()))
        .get_result(conn)
        .optional()
}

/// Each record beside its booking.
#[diesel::dsl::auto_type]
fn with_bookings() -> _ {
    payments::table.inner_join(bookings::table.on(bookings::id.eq(payments::booking_id)))
}

/// The record of an intent at the provider with its booking, in one query.
pub fn by_ref_with_booking(
    conn: &mut DbConn,
    provider: &str,
    reference: &str,
) -> QueryResult<Option<(PaymentRow, BookingRow)>> {
    with_bookings()
        .filter(payments::provider.eq(provider))
        .filter(payments::provider_ref.eq(reference))
        .select((PaymentRow::as_select(), BookingRow::as_select()))
        .get_result(conn)
        .optional()
}

/// A booking's records, oldest first.
pub fn of_booking(conn: &mut DbConn, booking: BookingId) -> QueryResult<Vec<PaymentRow>> {
    payments::table
        .filter(payments::booking_id.eq(booking))
        .order((payments::created_at.asc(), payments::id.asc()))
        .select(PaymentRow::as_select())
        .load(conn)
}

/// The latest rental record of each of `bookings`.
pub fn rentals_of(conn: &mut DbConn, bookings: &[BookingId]) -> QueryResult<Vec<PaymentRow>> {
    let mut rows: Vec<PaymentRow> = payments::table
        .filter(payments::booking_id.eq_any(bookings))
        .filter(payments::kind.eq(PaymentKind::Rental))
        .order((payments::created_at.desc(), payments::id.desc()))
        .select(PaymentRow::as_select())
        .load(conn)?;
    let mut seen = std::collections::HashSet::new();
    rows.retain(|r| seen.insert(r.booking_id));
    Ok(rows)
}

/// Writes what the provider said of a record: its state, amounts and reference.
pub fn update(conn: &mut DbConn, row: &PaymentRow) -> QueryResult<usize> {
    diesel::update(payments::table.find(row.id))
        .set((
            payments::status.eq(row.status),
            payments::captured_amount.eq(row.captured_amount),
            payments::refunded_amount.eq(row.refunded_amount),
            payments::provider_ref.eq(&row.provider_ref),
            payments::client_secret.eq(&row.client_secret),
            payments::failure_message.eq(&row.failure_message),
            payments::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
}

/// Forgets a record whose attempt never reached the provider.
pub fn delete(conn: &mut DbConn, id: PaymentId) -> QueryResult<usize> {
    diesel::delete(payments::table.find(id)).execute(conn)
}

/// The records the filters let through, newest first, and how many there are.
pub fn list(
    conn: &mut DbConn,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<PaymentRow>, i64)> {
    let filtered = || {
        let mut q = payments::table.into_boxed();
        if let Some(status) = filter.status {
            q = q.filter(payments::status.eq(status));
        }
        if let Some(kind) = filter.kind {
            q = q.filter(payments::kind.eq(kind));
        }
        if let Some(booking) = filter.booking {
            q = q.filter(payments::booking_id.eq(booking));
        }
        if let Some(from) = filter.from {
            q = q.filter(payments::created_at.ge(from));
        }
        if let Some(to) = filter.to {
            q = q.filter(payments::created_at.lt(to));
        }
        q
    };
    let total = filtered().count().get_result(conn)?;
    let rows = filtered()
        .order((payments::created_at.desc(), payments::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(PaymentRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// What the admin list filters on.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<PaymentStatus>,
    pub kind: Option<PaymentKind>,
    pub booking: Option<BookingId>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

/// Records created in `[from, to)`.
pub fn created_between(
    conn: &mut DbConn,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<PaymentRow>> {
    payments::table
        .filter(payments::created_at.ge(from))
        .filter(payments::created_at.lt(to))
        .select(PaymentRow::as_select())
        .load(conn)
}

/// Deposits authorised before `before` whose booking may still be out and that no hold
/// has replaced yet (to re-authorise).
pub fn deposits_authorized_before(
    conn: &mut DbConn,
    before: NaiveDateTime,
) -> QueryResult<Vec<PaymentRow>> {
    let mut old: Vec<PaymentRow> = payments::table
        .filter(payments::kind.eq(PaymentKind::Deposit))
        .filter(payments::status.eq(PaymentStatus::Authorized))
        .filter(payments::created_at.lt(before))
        .select(PaymentRow::as_select())
        .load(conn)?;
    let ids: Vec<PaymentId> = old.iter().map(|d| d.id).collect();
    let replaced: Vec<Option<PaymentId>> = payments::table
        .filter(payments::kind.eq(PaymentKind::Deposit))
        .filter(payments::parent_id.eq_any(&ids))
        .filter(payments::status.ne(PaymentStatus::Failed))
        .select(payments::parent_id)
        .load(conn)?;
    old.retain(|d| !replaced.contains(&Some(d.id)));
    Ok(old)
}

/// Whether the user has a deposit held on their card.
pub fn holds_deposit_of(conn: &mut DbConn, user: UserId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        payments::table
            .filter(payments::user_id.eq(user))
            .filter(payments::kind.eq(PaymentKind::Deposit))
            .filter(payments::status.eq(PaymentStatus::Authorized)),
    ))
    .get_result(conn)
}

/// Every payment record of the user, oldest first.
pub fn all_of(conn: &mut DbConn, user: UserId) -> QueryResult<Vec<PaymentRow>> {
    payments::table
        .filter(payments::user_id.eq(user))
        .order((payments::created_at.asc(), payments::id.asc()))
        .select(PaymentRow::as_select())
        .load(conn)
}

/// Records still waiting at the provider, made before `before` (the reconciliation poll).
pub fn open_before(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<Vec<PaymentRow>> {
    payments::table
        .filter(payments::status.eq(PaymentStatus::Pending))
        .filter(payments::provider_ref.is_not_null())
        .filter(payments::kind.ne(PaymentKind::Refund))
        .filter(payments::created_at.lt(before))
        .select(PaymentRow::as_select())
        .load(conn)
}

pub fn customer(conn: &mut DbConn, user: UserId, provider: &str) -> QueryResult<Option<String>> {
    payment_customers::table
        .find((user, provider))
        .select(payment_customers::customer_ref)
        .get_result(conn)
        .optional()
}

/// Keeps the user's customer at the provider; the first one kept wins.
pub fn keep_customer(
    conn: &mut DbConn,
    user: UserId,
    provider: &str,
    reference: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let row = (
        payment_customers::user_id.eq(user),
        payment_customers::provider.eq(provider),
        payment_customers::customer_ref.eq(reference),
        payment_customers::created_at.eq(now),
    );
    match conn {
        DbConn::Pg(c) => diesel::insert_into(payment_customers::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c),
        DbConn::Sqlite(c) => diesel::insert_or_ignore_into(payment_customers::table)
            .values(row)
            .execute(c),
    }
    .map(drop)
}

pub fn insert_setup(conn: &mut DbConn, row: &SetupRow) -> QueryResult<()> {
    diesel::insert_into(payment_setups::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn setup(conn: &mut DbConn, id: SetupId) -> QueryResult<Option<SetupRow>> {
    payment_setups::table
        .find(id)
        .select(SetupRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn setup_by_ref(
    conn: &mut DbConn,
    provider: &str,
    reference: &str,
) -> QueryResult<Option<SetupRow>> {
    payment_setups::table
        .filter(payment_setups::provider.eq(provider))
        .filter(payment_setups::provider_ref.eq(reference))
        .select(SetupRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn update_setup(conn: &mut DbConn, row: &SetupRow) -> QueryResult<usize> {
    diesel::update(payment_setups::table.find(row.id))
        .set((
            payment_setups::status.eq(row.status),
            payment_setups::provider_ref.eq(&row.provider_ref),
            payment_setups::client_secret.eq(&row.client_secret),
            payment_setups::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
}

/// The refunds of a payment, oldest first.
pub fn refunds_of(conn: &mut DbConn, payment: PaymentId) -> QueryResult<Vec<PaymentRow>> {
    payments::table
        .filter(payments::parent_id.eq(payment))
        .filter(payments::kind.eq(PaymentKind::Refund))
        .order((payments::created_at.asc(), payments::id.asc()))
        .select(PaymentRow::as_select())
        .load(conn)
}

/// Card setups still waiting at the provider, made before `before`.
pub fn setups_open_before(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<Vec<SetupRow>> {
    payment_setups::table
        .filter(payment_setups::status.eq(PaymentStatus::Pending))
        .filter(payment_setups::provider_ref.is_not_null())
        .filter(payment_setups::created_at.lt(before))
        .select(SetupRow::as_select())
        .load(conn)
}

/// Whether a webhook event was already applied.
pub fn event_seen(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(payment_events::table.find(id))).get_result(conn)
}

/// Records a webhook event as applied (a second record of it is a no-op).
pub fn keep_event(conn: &mut DbConn, id: &str, kind: &str, now: NaiveDateTime) -> QueryResult<()> {
    let row = (
        payment_events::id.eq(id),
        payment_events::kind.eq(kind),
        payment_events::received_at.eq(now),
    );
    match conn {
        DbConn::Pg(c) => diesel::insert_into(payment_events::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c),
        DbConn::Sqlite(c) => diesel::insert_or_ignore_into(payment_events::table)
            .values(row)
            .execute(c),
    }
    .map(drop)
}

/// Forgets the events received before `before` (the provider stops retrying long before).
pub fn forget_events(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(payment_events::table.filter(payment_events::received_at.lt(before)))
        .execute(conn)
}
