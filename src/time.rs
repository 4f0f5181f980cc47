//! Time as the API and both databases keep it: UTC, at millisecond precision.

use chrono::{DateTime, Utc};

/// The current time at the precision both backends store, so what a client reads back
/// equals what it was answered.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// `t` at millisecond precision. A leap second (`23:59:60.250`) becomes the instant it is
/// on every clock that has none, the next minute's (`00:00:00.250`): PostgreSQL would echo it
/// and SQLite store it as written, and neither could compare it with other times.
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn times_keep_milliseconds_and_leap_seconds_move_to_the_next_minute() {
        assert_eq!(
            truncate(at("2026-12-01T10:00:00.123456Z")),
            at("2026-12-01T10:00:00.123Z")
        );
        assert_eq!(
            truncate(at("2026-12-31T23:59:60Z")),
            at("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            truncate(at("2026-06-30T23:59:60.250+00:00")),
            at("2026-07-01T00:00:00.250Z")
        );
        assert_eq!(
            truncate(at("2026-12-31T23:59:60.999999Z")).to_rfc3339(),
            "2027-01-01T00:00:00.999+00:00"
        );
    }
}
