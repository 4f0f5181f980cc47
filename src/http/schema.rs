//! The rules of text input, written once for the server's checks and for the OpenAPI
//! document: each rule is a regular expression both use (the dialect shared by JSON Schema,
//! Python and Rust), so what the document allows is exactly what the server accepts.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};

use super::Choice;

/// No control character (C0, DEL, C1). Every text input must match it.
pub const NO_CONTROL: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
/// No control character but tab and newline: free-text fields (notes, descriptions).
pub const FREE_TEXT: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$";
/// No control character, and something besides white space (the text is stored trimmed).
pub const NOT_BLANK: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$";
/// A UUID written the usual way: 8-4-4-4-12 hexadecimal digits.
pub const UUID: &str =
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";
/// An email address as accounts take it (spaces around it are trimmed; compared in lower
/// case): a local part of the usual characters, `@`, and a domain of two labels or more.
pub const EMAIL: &str = r"^ *[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+ *$";
/// An http(s) URL: scheme, host name and port, then anything visible.
pub const HTTP_URL: &str =
    r"^https?://[A-Za-z0-9._~%!$&'()*+,;=-]+(?::[0-9]{1,5})?(?:[/?#][\x21-\x7E]*)?$";

fn compiled(pattern: &'static str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("the pattern {pattern} does not compile: {e}"))
}

static NOT_BLANK_RE: LazyLock<Regex> = LazyLock::new(|| compiled(NOT_BLANK));
static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| compiled(EMAIL));
static HTTP_URL_RE: LazyLock<Regex> = LazyLock::new(|| compiled(HTTP_URL));

/// Text of 1 to `max` characters as sent, not blank; answered trimmed.
pub fn text(raw: &str, max: usize) -> Result<String, String> {
    if raw.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if !NOT_BLANK_RE.is_match(raw) {
        return Err("must not be blank".into());
    }
    Ok(raw.trim().to_owned())
}

pub fn is_email(raw: &str) -> bool {
    raw.chars().count() <= 254 && EMAIL_RE.is_match(raw)
}

pub fn is_http_url(raw: &str) -> bool {
    raw.len() <= 2048 && HTTP_URL_RE.is_match(raw)
}

/// The case-insensitive pattern of a choice's names (`^(?:[Pp][Ee][Tt]...|...)$`): enum
/// input is accepted in any letter case.
pub fn choice_pattern<T: Choice>() -> String {
    let names: Vec<&str> = T::ALL.iter().map(|(name, _)| *name).collect();
    names_pattern(&names)
}

/// The pattern of `names` in any letter case.
pub fn names_pattern(names: &[&str]) -> String {
    let names: Vec<String> = names
        .iter()
        .map(|name| {
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c)
                    } else {
                        regex::escape(&c.to_string())
                    }
                })
                .collect()
        })
        .collect();
    format!("^(?:{})$", names.join("|"))
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
}

/// Input text of 1 to `MAX` characters, not blank.
pub fn text_schema<const MAX: usize>() -> Schema {
    string()
        .min_length(Some(1))
        .max_length(Some(MAX))
        .pattern(Some(NOT_BLANK))
        .into()
}

/// Like [`text_schema`], or `null` (which clears the field).
pub fn nullable_text_schema<const MAX: usize>() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .min_length(Some(1))
        .max_length(Some(MAX))
        .pattern(Some(NOT_BLANK))
        .into()
}

/// Any text without control characters.
pub fn plain_text_schema() -> Schema {
    string().pattern(Some(NO_CONTROL)).into()
}

/// One of a choice's names, in any letter case.
pub fn choice_schema<T: Choice>() -> Schema {
    let names: Vec<&str> = T::ALL.iter().map(|(n, _)| *n).collect();
    names_schema(&names)
}

/// One of `names`, in any letter case.
pub fn names_schema(names: &[&str]) -> Schema {
    string()
        .pattern(Some(names_pattern(names)))
        .description(Some(format!(
            "one of {}, in any letter case",
            names.join(", ")
        )))
        .into()
}

/// Exactly one of `values`, as written (the first is the example), described: see
/// [`field_schema!`].
pub fn exact_schema(values: &[&str], description: &str) -> Schema {
    string()
        .enum_values(Some(values.iter().copied()))
        .examples(values.first().map(|v| serde_json::json!(v)))
        .description(Some(description))
        .into()
}

/// `schema` with a field's own description (after the schema's, if it has one) and example.
pub fn described(
    schema: Schema,
    description: Option<&str>,
    example: Option<serde_json::Value>,
) -> Schema {
    let Schema::Object(mut object) = schema else {
        return schema;
    };
    if let Some(field) = description {
        object.description = Some(match object.description.take() {
            Some(general) => format!("{general}. {field}"),
            None => field.to_owned(),
        });
    }
    if let Some(example) = example {
        object.examples = vec![example];
    }
    Schema::Object(object)
}

/// `fn $name() -> Schema`: `$base` with the field's description and example. utoipa keeps
/// neither the doc comment nor the `example` of a field whose schema a function makes
/// (`schema_with`), so such a field's function says them:
/// `field_schema!(signup_email, email_schema(), Some("Trimmed…"), "ada@example.com");`
macro_rules! field_schema {
    ($name:ident, $base:expr, $description:expr) => {
        fn $name() -> utoipa::openapi::schema::Schema {
            $crate::http::schema::described($base, $description, None)
        }
    };
    ($name:ident, $base:expr, $description:expr, $example:expr) => {
        fn $name() -> utoipa::openapi::schema::Schema {
            let example = serde_json::json!($example);
            $crate::http::schema::described($base, $description, Some(example))
        }
    };
}
pub(crate) use field_schema;

pub fn uuid_schema() -> Schema {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(UUID))
        .into()
}

pub fn date_time_schema() -> Schema {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("RFC 3339, any offset; answered in UTC"))
        .into()
}

/// Money: greater than 0, at most `max`, at most 2 decimals.
pub fn money_schema(max: f64) -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Number))
        .exclusive_minimum(Some(0.0))
        .maximum(Some(max))
        .multiple_of(Some(0.01))
        .into()
}

/// An array of `items`, `min` to `max` of them.
pub fn array_schema(items: Schema, min: usize, max: usize) -> Schema {
    ArrayBuilder::new()
        .items(utoipa::openapi::schema::ArrayItems::RefOrSchema(Box::new(
            items.into(),
        )))
        .min_items(Some(min))
        .max_items(Some(max))
        .into()
}

/// `schema` (an object) with `fields` required and `replaced` properties swapped in: the
/// schema of a create, made from the one of its partial update.
pub fn requiring(
    schema: RefOr<Schema>,
    fields: &[&str],
    replaced: &[(&str, RefOr<Schema>)],
) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = schema else {
        return schema;
    };
    object.required = fields.iter().map(|f| (*f).to_owned()).collect();
    for (name, property) in replaced {
        object
            .properties
            .insert((*name).to_owned(), property.clone());
    }
    RefOr::T(Schema::Object(object))
}

/// A JSON integer, also when written `2023.0` (JSON Schema counts it as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Integer(pub i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Integer;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Integer, E> {
                Ok(Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Integer, E> {
                i64::try_from(v)
                    .map(Integer)
                    .map_err(|_| E::custom("the integer is too large"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Integer, E> {
                // Exact for every integer an f64 holds below 2^63.
                if v.fract() == 0.0 && v.abs() < 9.2e18 {
                    Ok(Integer(v as i64))
                } else {
                    Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Integer {
    /// The value when it is within `lo..=hi`.
    pub fn within(self, lo: i64, hi: i64) -> Result<i64, String> {
        if (lo..=hi).contains(&self.0) {
            Ok(self.0)
        } else {
            Err(format!("must be between {lo} and {hi}"))
        }
    }
}

/// A field of a partial update: absent (unchanged), `null`, or a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(|v| v.map_or(Patch::Null, Patch::Value))
    }
}

/// For `deserialize_with`: an integer, also when written with a zero fraction (`2.0`), as
/// JSON Schema's `integer` allows.
pub fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Integer::deserialize(d).map(|i| i.0)
}

/// A struct read from a JSON object only: serde's derive also reads a struct from an array
/// of its fields in order, which a client never means. Paths of errors inside are kept.
#[derive(Debug, Clone, Default)]
pub struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData))
    }
}

impl<T> Patch<T> {
    /// The value; `null` is refused (the field cannot be cleared).
    pub fn required(self) -> Result<Option<T>, String> {
        match self {
            Patch::Absent => Ok(None),
            Patch::Null => Err("must not be null".into()),
            Patch::Value(v) => Ok(Some(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_not_blank_and_bounded_as_sent() {
        assert_eq!(text(" Tesla ", 10), Ok("Tesla".into()));
        assert!(text("   ", 10).is_err());
        assert!(text("\u{3000}\u{a0}", 10).is_err());
        assert!(text("", 10).is_err());
        assert!(text("abcdefghijk", 10).is_err());
        assert!(text("a\u{0}", 10).is_err());
        assert_eq!(text("é", 1), Ok("é".into()));
    }

    #[test]
    fn every_pattern_compiles_and_means_what_it_says() {
        for p in [NO_CONTROL, FREE_TEXT, NOT_BLANK, UUID, EMAIL, HTTP_URL] {
            compiled(p);
        }
        assert!(is_email(" Ada+1@Example.co.uk "));
        for bad in [
            "ada",
            "ada@x",
            "a b@x.io",
            "ada@-x.io",
            "ada@x..io",
            "a@b@c.io",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_http_url("https://img.example.com/a.jpg?x=1"));
        assert!(is_http_url("http://localhost:8080/"));
        for bad in [
            "ftp://x/y",
            "https://",
            "https://x y",
            "//x.io/a",
            "HTTPS://x.io",
            "http://[::1]/",
            "http://a@b",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
        // The document's pattern says what the ids accept.
        let uuid = compiled(UUID);
        for id in [
            "67E55044-10b1-426f-9247-bb680e5fe0c8",
            "67e5504410b1426f9247bb680e5fe0c8",
            "67e55044-10b1-426f-9247-bb680e5fe0cg",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
        ] {
            assert_eq!(uuid.is_match(id), crate::ids::is_uuid(id), "{id}");
        }
    }

    #[test]
    fn choices_match_in_any_case_and_nothing_else() {
        #[derive(Clone, Copy, PartialEq, Debug)]
        enum Fuel {
            Petrol,
            LateFee,
        }
        impl Choice for Fuel {
            const ALL: &'static [(&'static str, Self)] =
                &[("petrol", Self::Petrol), ("late_fee", Self::LateFee)];
        }
        let re = Regex::new(&choice_pattern::<Fuel>()).unwrap();
        for ok in ["petrol", "PETROL", "PeTrOl", "late_fee", "LATE_FEE"] {
            assert!(re.is_match(ok), "{ok}");
            assert!(Fuel::parse(ok).is_ok(), "{ok}");
        }
        for bad in [" petrol", "petrol ", "petro", "latefee", ""] {
            assert!(!re.is_match(bad), "{bad}");
            assert!(Fuel::parse(bad).is_err(), "{bad}");
        }
    }
}
