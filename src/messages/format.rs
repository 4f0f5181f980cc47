//! Money, dates and time zones as people read them.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

use super::recipient::Locale;

/// `€1,234.50` in English, `1 234,50 €` in French; the currency's own number of decimals
/// (none for yen); its ISO code where it has no common symbol.
pub fn money(hundredths: i64, currency: &str, locale: Locale) -> String {
    let code = currency.to_ascii_uppercase();
    let decimals = crate::money::exponent(&code).min(2);
    let sign = if hundredths < 0 { "-" } else { "" };
    let abs = hundredths.unsigned_abs();
    let (whole, cents) = (abs / 100, abs % 100);
    let (group, point) = match locale {
        Locale::En => (',', '.'),
        Locale::Fr => (' ', ','),
    };
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(group);
        }
        grouped.push(d);
    }
    let number = match decimals {
        0 => grouped,
        1 => format!("{grouped}{point}{}", cents / 10),
        _ => format!("{grouped}{point}{cents:02}"),
    };
    let symbol = match code.as_str() {
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        _ => None,
    };
    match (locale, symbol) {
        (Locale::En, Some(s)) => format!("{sign}{s}{number}"),
        (Locale::En, None) => format!("{sign}{code} {number}"),
        (Locale::Fr, s) => format!("{sign}{number} {}", s.unwrap_or(&code)),
    }
}

/// `48 hours`, `30 minutes`, `1 heure`: a whole number of the largest unit that divides it.
pub fn span(seconds: u64, locale: Locale) -> String {
    let (n, unit) = match seconds {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, ["hour", "heure"]),
        s if s >= 60 && s % 60 == 0 => (s / 60, ["minute", "minute"]),
        s => (s, ["second", "seconde"]),
    };
    let word = match locale {
        Locale::En => unit[0],
        Locale::Fr => unit[1],
    };
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const MONTHS_FR: [&str; 12] = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
    "déc.",
];

/// `1 Jul 2026, 10:00 CEST` / `1 juil. 2026 à 10:00 CEST`: the instant in `zone` (an IANA
/// name; UTC when it is not one), with the zone's abbreviation.
pub fn when(at: DateTime<Utc>, zone: &str, locale: Locale) -> String {
    let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
    let local = at.with_timezone(&tz);
    let month = local.month0() as usize;
    let clock = local.format("%H:%M %Z");
    match locale {
        Locale::En => format!(
            "{} {} {}, {clock}",
            local.day(),
            MONTHS_EN[month],
            local.year()
        ),
        Locale::Fr => format!(
            "{} {} {} à {clock}",
            local.day(),
            MONTHS_FR[month],
            local.year()
        ),
    }
}

static FINDER: LazyLock<tzf_rs::DefaultFinder> = LazyLock::new(tzf_rs::DefaultFinder::new);

/// The IANA zone of a place (the one its country uses at sea near a coast, `Etc/GMT±n` far
/// out at sea).
pub fn time_zone_at(latitude: f64, longitude: f64) -> String {
    let name = FINDER.get_tz_name(longitude, latitude);
    if name.is_empty() {
        "UTC".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_each_language() {
        assert_eq!(money(123450, "EUR", Locale::En), "€1,234.50");
        assert_eq!(money(123450, "EUR", Locale::Fr), "1 234,50 €");
        assert_eq!(money(12345600, "JPY", Locale::En), "¥123,456");
        assert_eq!(money(5, "CHF", Locale::En), "CHF 0.05");
        assert_eq!(money(-100000000, "USD", Locale::Fr), "-1 000 000,00 $");
        assert_eq!(money(99, "GBP", Locale::En), "£0.99");
    }

    #[test]
    fn spans() {
        assert_eq!(span(172_800, Locale::En), "48 hours");
        assert_eq!(span(3600, Locale::Fr), "1 heure");
        assert_eq!(span(1800, Locale::Fr), "30 minutes");
        assert_eq!(span(1, Locale::En), "1 second");
    }

    #[test]
    fn zones_from_coordinates() {
        assert_eq!(time_zone_at(48.8566, 2.3522), "Europe/Paris");
        assert_eq!(time_zone_at(40.7128, -74.0060), "America/New_York");
        assert_eq!(time_zone_at(35.6762, 139.6503), "Asia/Tokyo");
    }

    #[test]
    fn dates_with_the_zones_abbreviation() {
        let at = DateTime::parse_from_rfc3339("2026-01-15T09:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            when(at, "Europe/Paris", Locale::En),
            "15 Jan 2026, 10:30 CET"
        );
        assert_eq!(
            when(at, "Europe/Paris", Locale::Fr),
            "15 janv. 2026 à 10:30 CET"
        );
        assert_eq!(when(at, "not/a-zone", Locale::En), "15 Jan 2026, 09:30 UTC");
    }
}
