//! Reminders nobody has to trigger: `pickup_reminder` before a confirmed booking's pickup,
//! `return_reminder` before an active one's dropoff, `overdue_return` after a dropoff not
//! returned. Nothing is scheduled ahead: each pass reads which bookings are due now, and
//! each reminder is claimed by a conditional update of its `*_reminded_at` column that
//! re-checks the booking's state, in the same transaction as the message. Any number of
//! replicas may run this; one claim wins, and a booking that moved on is not claimed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::model::{BookingRow, Status};
use super::notice::about;
use crate::config::BookingSettings;
use crate::db::schema::bookings;
use crate::db::{self, Db, DbConn};
use crate::error::ApiError;
use crate::ids::BookingId;
use crate::outbox::Stop;
use crate::ports::{Notifier, Ports};
use crate::time;

/// How often due reminders are looked for: well within the minute they are due in.
const EVERY: Duration = Duration::from_secs(5);
/// Reminders claimed per kind and pass.
const BATCH: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminder {
    Pickup,
    Return,
    Overdue,
}

impl Reminder {
    const ALL: [Reminder; 3] = [Reminder::Pickup, Reminder::Return, Reminder::Overdue];

    fn kind(self) -> &'static str {
        match self {
            Reminder::Pickup => "pickup_reminder",
            Reminder::Return => "return_reminder",
            Reminder::Overdue => "overdue_return",
        }
    }
}

/// The lead times, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Leads {
    pub before_pickup: TimeDelta,
    pub before_return: TimeDelta,
    pub overdue_after: TimeDelta,
}

impl Leads {
    pub fn from_settings(s: &BookingSettings) -> Leads {
        let delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        Leads {
            before_pickup: delta(s.reminder_before_pickup),
            before_return: delta(s.reminder_before_return),
            overdue_after: delta(s.overdue_after),
        }
    }
}

/// The booking's state a reminder is for, the column that records it, and the instant it
/// is about (a pickup reminder only while the pickup is ahead, and so on).
macro_rules! with_reminder {
    ($reminder:expr, |$status:ident, $column:ident, $time:ident| $body:expr) => {
        match $reminder {
            Reminder::Pickup => {
                let ($status, $column, $time) =
                    (Status::Confirmed, bookings::pickup_reminded_at, bookings::pickup_time);
                $body
            }
            Reminder::Return => {
                let ($status, $column, $time) =
                    (Status::Active, bookings::return_reminded_at, bookings::dropoff_time);
                $body
            }
            Reminder::Overdue => {
                let ($status, $column, $time) =
                    (Status::Active, bookings::overdue_reminded_at, bookings::dropoff_time);
                $body
            }
        }
    };
}

impl Reminder {
    /// The window its instant must be in now: a reminder `lead` before it (while it is
    /// ahead), or an overdue notice `lead` after it.
    fn window(self, leads: Leads, now: DateTime<Utc>) -> (NaiveDateTime, NaiveDateTime) {
        let (after, until) = match self {
            Reminder::Pickup => (now, now + leads.before_pickup),
            Reminder::Return => (now, now + leads.before_return),
            Reminder::Overdue => (DateTime::UNIX_EPOCH, now - leads.overdue_after),
        };
        (db::to_db(after), db::to_db(until))
    }
}

/// The bookings whose `reminder` is due now and not claimed yet.
fn due(conn: &mut DbConn, reminder: Reminder, leads: Leads, now: DateTime<Utc>) -> QueryResult<Vec<BookingRow>> {
    let (after, until) = reminder.window(leads, now);
    with_reminder!(reminder, |status, column, time| bookings::table
        .filter(bookings::status.eq(status))
        .filter(column.is_null())
        .filter(time.gt(after).and(time.le(until)))
        .order(time.asc())
        .limit(BATCH)
        .select(BookingRow::as_select())
        .load(conn))
}

/// `UPDATE bookings SET {column} = now WHERE id = ? AND {still at that stage}`: true when
/// this call claimed the reminder, false when another did or the booking moved on.
fn claim(conn: &mut DbConn, reminder: Reminder, id: BookingId, leads: Leads, now: DateTime<Utc>) -> QueryResult<bool> {
    let (after, _) = reminder.window(leads, now);
    with_reminder!(reminder, |status, column, time| diesel::update(bookings::table)
        .filter(bookings::id.eq(id))
        .filter(bookings::status.eq(status))
        .filter(column.is_null())
        .filter(time.gt(after))
        .set(column.eq(db::to_db(now)))
        .execute(conn)
        .map(|n| n == 1))
}

/// Queues every reminder due now; how many were queued.
pub async fn send_due(db: &Db, ports: &Ports, leads: Leads) -> Result<usize, ApiError> {
    let mut queued = 0;
    for reminder in Reminder::ALL {
        let now = time::now();
        let due = db
            .run(move |conn| Ok(due(conn, reminder, leads, now)?))
            .await?;
        for booking in due {
            // A booking made within the lead time of its pickup gets no pickup reminder: its
            // confirmation said it all. Claimed all the same, so that it is not looked at again.
            let late = reminder == Reminder::Pickup
                && db::from_db(booking.created_at) + leads.before_pickup > db::from_db(booking.pickup_time);
            let contact = ports.users.contact(booking.user_id).await?;
            let car = ports.catalog.car(booking.car_id).await?;
            let notifier: Arc<dyn Notifier> = ports.notifier.clone();
            let sent = db
                .write(move |conn| {
                    if !claim(conn, reminder, booking.id, leads, time::now())? {
                        return Ok(false);
                    }
                    match (&contact, &car) {
                        (Some(contact), Some(car)) if !late => {
                            notifier.queue(conn, about(&booking, car, reminder.kind(), contact))?;
                            Ok(true)
                        }
                        _ => Ok(false),
                    }
                })
                .await?;
            queued += usize::from(sent);
        }
    }
    Ok(queued)
}

/// Looks for due reminders every few seconds until stopped.
pub fn spawn(db: Db, ports: Ports, leads: Leads, mut stop: Stop) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.requested() {
            match send_due(&db, &ports, leads).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reminders = n, "reminders queued"),
                Err(e) => tracing::warn!(error = %e, "reminders: cannot queue"),
            }
            stop.sleep(EVERY).await;
        }
    })
}
