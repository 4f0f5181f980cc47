//! Time as the API and both databases keep it: UTC, at millisecond precision.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The current time at the precision both backends store, so what a client reads back
/// equals what it was answered.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}
