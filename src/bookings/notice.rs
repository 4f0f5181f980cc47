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

/// What the renter is told: the booking, the car, the times in the car's zone and the price.
pub(super) fn message(
    row: &BookingRow,
    car: &CarSummary,
    to: &Contact,
    notice: Notice,
) -> OutgoingMessage {
    let kind = match notice {
        Notice::Confirmed => "booking_confirmed",
        Notice::Cancelled => "booking_cancelled",
        Notice::Completed => "booking_completed",
        Notice::HoldExpired => "hold_expired",
    };
    let lines: Vec<serde_json::Value> = row
        .lines()
        .iter()
        .map(|l| {
            serde_json::json!({
                "description": l.description, "quantity": l.quantity, "amount": l.amount_minor,
            })
        })
        .collect();
    about(row, car, kind, to)
        .with("days", row.days)
        .with("lines", lines)
        .with("total", row.total_price)
        .with("currency", row.currency.clone())
}

/// A message about the booking: its id, car and times, with the link a push opens.
pub(super) fn about(
    row: &BookingRow,
    car: &CarSummary,
    kind: &'static str,
    to: &Contact,
) -> OutgoingMessage {
    let instant = |t: NaiveDateTime| crate::db::from_db(t).to_rfc3339();
    OutgoingMessage::new(row.user_id, kind, to)
        .with("bookingId", row.id.to_string())
        .with("url", format!("/bookings/{}", row.id))
        .with("car", car.name.clone())
        .with("tz", car.time_zone.clone())
        .with("pickup", instant(row.pickup_time))
        .with("dropoff", instant(row.dropoff_time))
}
