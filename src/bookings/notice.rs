//! What the renter is told about their booking, written to the outbox with the change.

use chrono::NaiveDateTime;

use super::model::BookingRow;
use crate::ports::{CarSummary, Contact, OutgoingMessage};

#[derive(Debug, Clone, Copy)]
pub(super) enum Notice {
    Confirmed,
    Cancelled,
    Completed,
    HoldExpired,
}

/// What the renter is told: the booking id, the car, the times in UTC and the price.
pub(super) fn message(
    row: &BookingRow,
    car: &CarSummary,
    to: &Contact,
    notice: Notice,
) -> OutgoingMessage {
    let (kind, subject, headline) = match notice {
        Notice::Confirmed => (
            "booking_confirmed",
            "Booking confirmed",
            "Your booking is confirmed.",
        ),
        Notice::Cancelled => (
            "booking_cancelled",
            "Booking cancelled",
            "Your booking has been cancelled.",
        ),
        Notice::Completed => (
            "booking_completed",
            "Booking completed",
            "Your rental is complete. Thank you!",
        ),
        Notice::HoldExpired => (
            "hold_expired",
            "Booking expired",
            "Your booking was not paid in time: the car is free again.",
        ),
    };
    let money = |minor: i64| format!("{:.2} {}", crate::money::to_major(minor), row.currency);
    let time = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M UTC").to_string();
    OutgoingMessage::new(
        row.user_id,
        kind,
        &to.email,
        format!("{subject}: {}", car.name),
        &[
            format!("Hello {},", to.name.as_deref().unwrap_or(&to.email)),
            headline.to_owned(),
            format!("Booking: {}", row.id),
            format!("Car: {}", car.name),
            format!("Pickup: {}", time(row.pickup_time)),
            format!("Dropoff: {}", time(row.dropoff_time)),
            format!("Days: {}", row.days),
        ]
        .into_iter()
        .chain(row.lines().iter().map(|l| {
            let quantity = l.quantity.map(|q| format!(" × {q}")).unwrap_or_default();
            format!("  {}{quantity}: {}", l.description, money(l.amount_minor))
        }))
        .chain([format!("Total: {}", money(row.total_price))])
        .collect::<Vec<_>>(),
    )
}

