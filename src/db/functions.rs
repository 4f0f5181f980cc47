//! SQL functions both backends provide under the same names, so one query serves both:
//! PostgreSQL gets them from a migration (`migrations/postgres/*_search`), SQLite gets these
//! Rust implementations registered on every connection.

use diesel::sql_types::Double;

/// Mean Earth radius (IUGG), in km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

diesel::define_sql_function! {
    /// Great-circle distance in km between two points given in degrees.
    fn geo_distance_km(lat1: Double, lng1: Double, lat2: Double, lng2: Double) -> Double;
}

/// A coordinate as stored and searched: to 9 decimals of a degree (0.1 mm). Beyond that a
/// float only carries noise, and values near zero would underflow PostgreSQL's arithmetic.
pub fn degrees(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

/// Haversine distance.
pub fn haversine_km(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// Lower-cased words (letters and digits), each once, joined by single spaces.
pub fn normalize(text: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
    {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words.join(" ")
}

/// At most one edit apart: an insertion, a deletion, a substitution, or two neighbouring
/// letters swapped.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let i = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Equal => {
            a[i + 1..] == b[i + 1..]
                || (i + 1 < a.len()
                    && a[i] == b[i + 1]
                    && a[i + 1] == b[i]
                    && a[i + 2..] == b[i + 2..])
        }
        std::cmp::Ordering::Greater => a[i + 1..] == b[i..],
        std::cmp::Ordering::Less => a[i..] == b[i + 1..],
    }
}

/// A query word matches a word of the text exactly, or within one edit when it has at
/// least three letters.
pub fn word_matches(word: &str, token: &str) -> bool {
    word == token || (word.chars().count() >= 3 && within_one_edit(word, token))
}

/// The word itself and the word with each one of its letters taken out. Two words are at
/// most one edit apart (see [`within_one_edit`]) only if their variants meet.
pub fn variants(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = vec![word.to_owned()];
    for i in 0..chars.len() {
        let variant: String = chars[..i].iter().chain(&chars[i + 1..]).collect();
        if !out.contains(&variant) {
            out.push(variant);
        }
    }
    out
}

/// Whether every word of `query` matches a word of `haystack` (both as [`normalize`] makes
/// them): the rule the indexed search implements, stated plainly.
pub fn text_matches(haystack: &str, query: &str) -> bool {
    query
        .split(' ')
        .filter(|w| !w.is_empty())
        .all(|w| haystack.split(' ').any(|t| word_matches(w, t)))
}

/// Registers the functions on a SQLite connection.
pub fn register_sqlite(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<()> {
    geo_distance_km_utils::register_impl(conn, haversine_km)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert!(haversine_km(1.0, 2.0, 1.0, 2.0).abs() < 1e-9);
        // Paris to London, about 343.5 km.
        let d = haversine_km(48.8566, 2.3522, 51.5074, -0.1278);
        assert!((d - 343.5).abs() < 1.0, "{d}");
        // Across the antimeridian.
        let d = haversine_km(0.0, 179.9, 0.0, -179.9);
        assert!((d - 22.24).abs() < 0.01, "{d}");
    }

    #[test]
    fn coordinates_keep_nine_decimals() {
        assert_eq!(degrees(37.7749), 37.7749);
        assert_eq!(degrees(-122.419_412_345_678), -122.419_412_346);
        assert_eq!(degrees(1e-300), 0.0);
        assert_eq!(degrees(90.0), 90.0);
    }

    #[test]
    fn one_edit() {
        for (a, b) in [
            ("tesla", "tesla"),
            ("tesla", "tesl"),
            ("tesla", "teslas"),
            ("tesla", "tezla"),
            ("tesla", "etsla"),
            ("tesla", "telsa"),
            ("tesla", "tesal"),
            ("bmw", "bmv"),
        ] {
            assert!(within_one_edit(a, b), "{a} {b}");
            assert!(within_one_edit(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("tesla", "tes"),
            ("tesla", "atsel"),
            ("tesla", "model"),
            ("ab", "ba c"),
        ] {
            assert!(!within_one_edit(a, b), "{a} {b}");
        }
    }

    #[test]
    fn variants_meet_exactly_when_words_may_be_one_edit_apart() {
        let words = [
            "tesla", "telsa", "tesl", "teslas", "tezla", "etsla", "model", "modle", "bmw", "bm",
            "b", "x5", "abc", "bca", "zoé", "zoe", "",
        ];
        for a in words {
            for b in words {
                let meet = variants(a).iter().any(|v| variants(b).contains(v));
                if within_one_edit(a, b) {
                    assert!(meet, "{a} {b}");
                }
            }
        }
        assert_eq!(variants("bmw"), ["bmw", "mw", "bw", "bm"]);
        assert_eq!(variants("aab"), ["aab", "ab", "aa"]);
    }

    #[test]
    fn words_and_queries() {
        let text = normalize("Tesla Model 3 — Autopilot, Heated-Seats TESLA");
        assert_eq!(text, "tesla model 3 autopilot heated seats");
        assert!(text_matches(&text, "telsa"));
        assert!(text_matches(&text, "model 3"));
        assert!(text_matches(&text, "autopilto heated"));
        assert!(
            !text_matches(&text, "model 5"),
            "short words must match exactly"
        );
        assert!(!text_matches(&text, "tesla manual"));
        assert!(text_matches(&text, ""));
    }
}
