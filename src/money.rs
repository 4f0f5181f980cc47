//! Money: stored exactly as hundredths of the currency's major unit, answered as a JSON
//! number with at most two decimals.

/// The exact amount of a JSON number such as `120.5`; `None` when it has more than two
/// decimals or is not a finite number. Rust prints an `f64` as the shortest decimal that
/// reads back to it, with no exponent, so the digits checked are the digits the client sent.
pub fn from_major(amount: f64) -> Option<i64> {
    if !amount.is_finite() {
        return None;
    }
    let text = format!("{}", amount.abs());
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.len() > 2 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    let minor = whole.checked_mul(100)?.checked_add(frac)?;
    Some(if amount < 0.0 { -minor } else { minor })
}

pub fn to_major(minor: i64) -> f64 {
    minor as f64 / 100.0
}

/// The largest amount the API holds, in hundredths: below 10^15, so that every amount is an
/// `f64` written as a plain decimal with its exact cents (15 significant digits at most).
pub const MAX_MINOR: i64 = 999_999_999_999_999;

/// `a × b` when the product is an amount the API can hold.
pub fn times(a: i64, b: i64) -> Option<i64> {
    a.checked_mul(b).filter(|m| m.abs() <= MAX_MINOR)
}

/// The sum of `amounts` when it and every partial sum are amounts the API can hold.
pub fn sum(amounts: impl IntoIterator<Item = i64>) -> Option<i64> {
    amounts.into_iter().try_fold(0i64, |total, a| {
        total.checked_add(a).filter(|m| m.abs() <= MAX_MINOR)
    })
}

/// The highest amount a price filter takes, in hundredths.
pub const MAX_FILTER_MINOR: i64 = 100_000_000 * 100;

/// A price filter (`maxPrice`, `minPrice`): 0 to 100,000,000, at most 2 decimals.
pub fn filter_amount(amount: f64) -> Option<i64> {
    from_major(amount).filter(|m| (0..=MAX_FILTER_MINOR).contains(m))
}

/// The document's schema of a price filter.
pub fn filter_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Number)
        .minimum(Some(0.0))
        .maximum(Some((MAX_FILTER_MINOR / 100) as f64))
        .multiple_of(Some(0.01))
        .into()
}

/// Active ISO 4217 currency codes.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB \
EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY \
KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR \
MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF \
SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS \
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// The document's schema of a currency code: one of the ISO 4217 codes, any letter case.
pub fn currency_schema() -> utoipa::openapi::schema::Schema {
    let letter = |c: char| format!("[{}{}]", c, c.to_ascii_lowercase());
    let codes: Vec<String> = ISO_4217
        .split_whitespace()
        .map(|code| code.chars().map(letter).collect())
        .collect();
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!("^(?:{})$", codes.join("|"))))
        .description(Some("an ISO 4217 currency code, any letter case"))
        .into()
}

/// Digits after the decimal point of the currency's minor unit (ISO 4217): 0 for `JPY`,
/// `KRW`, ...; 3 for `BHD`, `KWD`, ...; 2 for the others.
pub fn exponent(currency: &str) -> u32 {
    const NONE: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
        "XAF", "XOF", "XPF",
    ];
    const THREE: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let code = currency.to_ascii_uppercase();
    if NONE.contains(&code.as_str()) {
        0
    } else if THREE.contains(&code.as_str()) {
        3
    } else {
        2
    }
}

/// An amount in hundredths as the currency's minor unit counts it, as payment providers take
/// amounts (× 1 for JPY, × 100 for USD, × 1000 for KWD, of the major unit), integer
/// arithmetic only; a part of a yen is rounded half up.
pub fn to_minor_unit(hundredths: i64, currency: &str) -> i64 {
    match exponent(currency) {
        0 => {
            let rounded = hundredths.abs().saturating_add(50) / 100;
            if hundredths < 0 {
                -rounded
            } else {
                rounded
            }
        }
        3 => hundredths.saturating_mul(10),
        _ => hundredths,
    }
}

/// The inverse of [`to_minor_unit`]: a provider's amount as hundredths.
pub fn from_minor_unit(minor: i64, currency: &str) -> i64 {
    match exponent(currency) {
        0 => minor.saturating_mul(100),
        3 => minor / 10,
        _ => minor,
    }
}

/// The upper-case code when `code` is an ISO 4217 currency, in any letter case.
pub fn currency(code: &str) -> Option<String> {
    let code = code.to_ascii_uppercase();
    (code.len() == 3 && ISO_4217.split_whitespace().any(|c| c == code)).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_amounts() {
        assert_eq!(from_major(120.5), Some(12050));
        assert_eq!(from_major(19.99), Some(1999));
        assert_eq!(from_major(0.01), Some(1));
        assert_eq!(from_major(100000.0), Some(10_000_000));
        assert_eq!(from_major(0.1 + 0.2), None);
        assert_eq!(from_major(1.005), None);
        assert_eq!(from_major(f64::NAN), None);
        assert_eq!(from_major(-2.5), Some(-250));
        assert_eq!(to_major(1999), 19.99);
        assert_eq!(serde_json::json!(to_major(12050)).to_string(), "120.5");
    }

    #[test]
    fn amounts_are_bounded_and_written_plainly() {
        assert_eq!(times(3, 33), Some(99));
        assert_eq!(times(9_223_372_036_854_775_807, 33), None);
        assert_eq!(times(MAX_MINOR, 1), Some(MAX_MINOR));
        assert_eq!(times(MAX_MINOR, 2), None);
        assert_eq!(sum([1, 2, 3]), Some(6));
        assert_eq!(sum([MAX_MINOR, 1]), None);
        assert_eq!(sum([i64::MAX, -1]), None);
        for minor in [
            MAX_MINOR,
            -MAX_MINOR,
            100_000_000_000_001,
            12_345_678_901_234,
        ] {
            let text = serde_json::json!(to_major(minor)).to_string();
            assert!(!text.contains('e'), "{text}");
            let (whole, cents) = text.trim_start_matches('-').split_once('.').unwrap();
            assert!(cents.len() <= 2, "{text}");
            let back: i64 = format!("{whole}{cents:0<2}").parse().unwrap();
            assert_eq!(back, minor.abs(), "{text}");
        }
    }

    #[test]
    fn provider_amounts_follow_the_currency_exponent() {
        assert_eq!(to_minor_unit(12_050, "USD"), 12_050);
        assert_eq!(to_minor_unit(12_000, "JPY"), 120);
        assert_eq!(to_minor_unit(12_050, "jpy"), 121, "half up");
        assert_eq!(to_minor_unit(12_049, "JPY"), 120);
        assert_eq!(to_minor_unit(1_234, "KWD"), 12_340);
        assert_eq!(from_minor_unit(120, "JPY"), 12_000);
        assert_eq!(from_minor_unit(12_340, "KWD"), 1_234);
        assert_eq!(from_minor_unit(999, "EUR"), 999);
        assert_eq!(
            (exponent("JPY"), exponent("KWD"), exponent("EUR")),
            (0, 3, 2)
        );
    }

    #[test]
    fn currencies() {
        assert_eq!(currency("usd").as_deref(), Some("USD"));
        assert_eq!(currency("EUR").as_deref(), Some("EUR"));
        assert_eq!(currency("XYZ"), None);
        assert_eq!(currency("US"), None);
    }
}
