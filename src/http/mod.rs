//! Shared HTTP plumbing: errors, extractors, pagination, middleware.

pub mod auth;
pub mod client;
pub mod etag;
pub mod middleware;
pub mod oidc;
pub mod rate_limit;
pub mod schema;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, FieldError};

/// The id of the request being served, set by [`middleware::request_id`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn of(req: &HttpRequest) -> String {
        req.extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default()
    }
}

/// Set on a request forwarded here by a trusted process of this deployment (the gateway
/// checked its rate limits and CORS).
#[derive(Debug, Clone, Copy)]
pub struct ForwardedHere;

/// Marks a request whose answer depends on who asks: it is sent with `Cache-Control:
/// private, no-store` (see [`middleware::private_answers`]).
#[derive(Debug, Clone, Copy)]
pub struct PerCaller;

/// The answer to `req` depends on the caller.
pub fn per_caller(req: &HttpRequest) {
    req.extensions_mut().insert(PerCaller);
}

/// A JSON body: `application/json` only (else 415), within the body limit (else 413), and
/// a 400 whose `details` name the JSON path of the field that did not parse or holds a
/// control character.
pub struct Json<T>(pub T);

/// A JSON body as sent, unread: the same 415 and 413, and 400 for malformed JSON only. The
/// rules apply when it is read into a type with [`from_json_value`].
pub struct RawJson(pub serde_json::Value);

/// How request bodies are read: the largest accepted, and how long one may stop arriving
/// before the request ends with a 408.
#[derive(Debug, Clone, Copy)]
pub struct BodyConfig {
    pub limit: usize,
    pub idle_timeout: std::time::Duration,
}

impl Default for BodyConfig {
    fn default() -> Self {
        BodyConfig {
            limit: 64 * 1024,
            idle_timeout: std::time::Duration::from_secs(10),
        }
    }
}

impl BodyConfig {
    pub fn of(req: &HttpRequest) -> BodyConfig {
        req.app_data::<BodyConfig>().copied().unwrap_or_default()
    }
}

/// A body the client broke off (closed the connection, or sent less than it announced).
pub fn body_cut_off() -> ApiError {
    ApiError::field("body", "the request body was cut off")
}

/// The whole body: 413 past the limit, 408 when it stops arriving for the idle timeout, 400
/// when the client breaks it off.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, ApiError>> {
    let config = BodyConfig::of(req);
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut payload = actix_web::dev::Decompress::from_headers(payload.take(), req.headers());
    async move {
        if announced.is_some_and(|n| n > config.limit as u64) {
            return Err(ApiError::PayloadTooLarge);
        }
        let mut body = web::BytesMut::new();
        loop {
            let chunk = tokio::time::timeout(config.idle_timeout, payload.next())
                .await
                .map_err(|_| ApiError::RequestTimeout)?;
            match chunk {
                None => return Ok(body.freeze()),
                Some(Err(actix_web::error::PayloadError::Overflow)) => {
                    return Err(ApiError::PayloadTooLarge)
                }
                Some(Err(_)) => return Err(body_cut_off()),
                Some(Ok(chunk)) if body.len() + chunk.len() > config.limit => {
                    return Err(ApiError::PayloadTooLarge)
                }
                Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            }
        }
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false)
}

fn json_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<serde_json::Value, ApiError>> {
    let is_json = is_json(req);
    let gate = auth::AuthGate::take(req);
    let body = read_body(req, payload);
    async move {
        gate.passed().await?;
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        json_value(&body.await?)
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body(req, payload);
        Box::pin(async move { from_json_value(body.await?).map(Json) })
    }
}

impl FromRequest for RawJson {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body(req, payload);
        Box::pin(async move { body.await.map(RawJson) })
    }
}

/// A JSON body that may be left out: an empty body (whatever its `Content-Type`) or a JSON
/// `null` is `None`; anything else is read as [`Json`] reads it (415, 413, 400 alike).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req);
        let gate = auth::AuthGate::take(req);
        let body = read_body(req, payload);
        Box::pin(async move {
            gate.passed().await?;
            let bytes = body.await?;
            if bytes.is_empty() {
                return Ok(OptionalJson(None));
            }
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            match json_value(&bytes)? {
                serde_json::Value::Null => Ok(OptionalJson(None)),
                value => from_json_value(value).map(|v| OptionalJson(Some(v))),
            }
        })
    }
}

/// One JSON value and nothing after it but whitespace (`{…}xyz` and `{…} {…}` are
/// malformed).
fn json_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = from_json_with(&mut de)?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    let text = e.to_string();
    let message = text.split(" at line ").next().unwrap_or(&text);
    ApiError::field("body", format!("malformed JSON: {message}"))
}

/// A typed body from JSON bytes, with the errors of [`from_json_value`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    from_json_value(json_value(bytes)?)
}

/// Reads a typed body out of a parsed JSON value. Any text the type reads that holds a
/// control character is a 400 naming its field (see [`control_characters`]); fields the
/// type does not know are ignored, whatever they hold.
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    // Every body is an object (serde would also read a struct from an array of its fields).
    if !value.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let suspects = control_characters(&value);
    let mut ignored: Vec<JsonPath> = Vec::new();
    let typed = from_json_with(serde_ignored::Deserializer::new(value, &mut |path| {
        ignored.push(JsonPath::of(&path))
    }));
    let read = |path: &JsonPath| !ignored.iter().any(|i| path.0.starts_with(&i.0));
    check(
        suspects
            .into_iter()
            .filter(|(path, _)| read(path))
            .map(|(path, error)| FieldError::new(path.to_string(), error))
            .collect(),
    )?;
    typed
}

/// Where a value stands in a body.
#[derive(Debug, Clone, Default, PartialEq)]
struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    fn of(path: &serde_ignored::Path<'_>) -> JsonPath {
        use serde_ignored::Path;
        match path {
            Path::Root => JsonPath::default(),
            Path::Seq { parent, index } => JsonPath::of(parent).then(Step::Index(*index)),
            Path::Map { parent, key } => JsonPath::of(parent).then(Step::Key(key.clone())),
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => JsonPath::of(parent),
        }
    }

    fn then(&self, step: Step) -> JsonPath {
        let mut steps = self.0.clone();
        steps.push(step);
        JsonPath(steps)
    }

    /// The last key on the way (an array's items share their array's key).
    fn key(&self) -> &str {
        self.0
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Key(k) => Some(k.as_str()),
                Step::Index(_) => None,
            })
            .unwrap_or("")
    }
}

/// As the error details write it: `location.city`, `extras[0].code`; `body` for the root.
impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("body");
        }
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => write!(f, "{k}")?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Fields whose text may hold tabs and newlines (notes, descriptions). Every other text, and
/// these too for any other control character, must have none.
const FREE_TEXT_FIELDS: [&str; 2] = ["notes", "description"];

const CONTROL_CHARACTER: &str = "must not contain control characters";

/// The one rule for control characters in request bodies: NUL and every other control
/// character is a 400 naming the field by its JSON path (`location.city`,
/// `damages[0].description`), whatever the backend; tab and newline pass in free-text fields.
/// Answers where it is broken.
fn control_characters(body: &serde_json::Value) -> Vec<(JsonPath, &'static str)> {
    fn walk(value: &serde_json::Value, path: JsonPath, errors: &mut Vec<(JsonPath, &'static str)>) {
        match value {
            serde_json::Value::String(text) => {
                let free = FREE_TEXT_FIELDS.contains(&path.key());
                if text
                    .chars()
                    .any(|c| c.is_control() && !(free && (c == '\t' || c == '\n')))
                {
                    errors.push((path, CONTROL_CHARACTER));
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, path.then(Step::Index(i)), errors);
                }
            }
            serde_json::Value::Object(fields) => {
                for (name, item) in fields {
                    walk(item, path.then(Step::Key(name.clone())), errors);
                }
            }
            _ => {}
        }
    }
    let mut errors = Vec::new();
    walk(body, JsonPath::default(), &mut errors);
    errors
}

fn from_json_with<'de, T, D>(de: D) -> Result<T, ApiError>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de, Error = serde_json::Error>,
{
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        let message = text.split(" at line ").next().unwrap_or(&text).to_owned();
        if inner.is_syntax() || inner.is_eof() {
            return malformed(&inner);
        }
        let prefix = if path == "." {
            String::new()
        } else {
            format!("{path}.")
        };
        let field = match message.strip_prefix("missing field `") {
            Some(rest) => format!("{prefix}{}", rest.trim_end_matches('`')),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        let message = if message.starts_with("missing field") {
            "is required".to_owned()
        } else {
            message
        };
        ApiError::field(field, message)
    })
}

/// Query parameters, parsed one by one so every error names its parameter.
#[derive(Debug)]
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The first of `names` that is present, with the name it was given under.
    pub fn get_any<'a>(&self, names: &[&'a str]) -> Option<(&'a str, &str)> {
        names.iter().find_map(|n| self.get(n).map(|v| (*n, v)))
    }

    /// Parses a parameter when present; a bad value is recorded in `errors`.
    pub fn parse<T: FromStr>(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<T> {
        let raw = self.get(name)?;
        match raw.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                errors.push(FieldError::new(name, format!("invalid value {raw:?}")));
                None
            }
        }
    }
}

impl QueryParams {
    /// The parameters of a query string. A value holding a control character (none of them
    /// is free text), or a parameter given twice, is a 400 naming the parameter.
    pub fn from_query_string(query: &str) -> Result<Self, ApiError> {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .map_err(|_| ApiError::field("query", "malformed query string"))?;
        let printable = |k: &str| k.chars().filter(|c| !c.is_control()).collect::<String>();
        let mut errors: Vec<FieldError> = pairs
            .iter()
            .filter(|(_, v)| v.chars().any(char::is_control))
            .map(|(k, _)| FieldError::new(printable(k), CONTROL_CHARACTER))
            .collect();
        let mut params = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            let field = printable(&k);
            match params.entry(k) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(v);
                }
                std::collections::hash_map::Entry::Occupied(_) => {
                    if !errors.iter().any(|e| e.field == field) {
                        errors.push(FieldError::new(field, "must be given once"));
                    }
                }
            }
        }
        check(errors)?;
        Ok(QueryParams(params))
    }
}

impl FromRequest for QueryParams {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::from_query_string(req.query_string()))
    }
}

/// `page` and `limit` of a list request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
}

impl PageRequest {
    pub const MAX_LIMIT: u32 = 100;

    pub fn parse(query: &QueryParams, errors: &mut Vec<FieldError>) -> Self {
        let page = query.parse::<i64>("page", errors).unwrap_or(1);
        let limit = query.parse::<i64>("limit", errors).unwrap_or(20);
        if page < 1 || page > i64::from(u32::MAX) {
            errors.push(FieldError::new("page", "must be 1 or more"));
        }
        if !(1..=i64::from(Self::MAX_LIMIT)).contains(&limit) {
            errors.push(FieldError::new("limit", "must be between 1 and 100"));
        }
        PageRequest {
            page: u32::try_from(page).unwrap_or(1).max(1),
            limit: u32::try_from(limit).unwrap_or(20).clamp(1, Self::MAX_LIMIT),
        }
    }

    pub fn offset(&self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.limit)
    }

    pub fn limit(&self) -> i64 {
        i64::from(self.limit)
    }

    pub fn wrap<T>(self, data: Vec<T>, total: i64) -> Paginated<T> {
        let total = total.max(0);
        Paginated {
            data,
            page: self.page,
            limit: self.limit,
            total,
            total_pages: (total + i64::from(self.limit) - 1) / i64::from(self.limit),
        }
    }
}

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paginated<T> {
    pub data: Vec<T>,
    #[schema(minimum = 1)]
    pub page: u32,
    #[schema(minimum = 1, maximum = 100)]
    pub limit: u32,
    /// Every item that matches the filters, not just this page.
    #[schema(minimum = 0)]
    pub total: i64,
    /// 0 when `total` is 0.
    #[schema(minimum = 0)]
    pub total_pages: i64,
}

/// `page` and `limit`, as the document shows them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// From 1; a page past the end is empty.
    #[param(required = false, minimum = 1, maximum = 4294967295_i64, default = 1)]
    page: i64,
    /// Items a page, 1 to 100.
    #[param(required = false, minimum = 1, maximum = 100, default = 20)]
    limit: i64,
}

/// Turns collected field errors into a 400, or nothing when there are none.
pub fn check(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Enum input is accepted in any letter case and stored in lower case.
pub trait Choice: Sized + Copy + PartialEq + 'static {
    const ALL: &'static [(&'static str, Self)];

    fn parse(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("must be one of {}", names.join(", "))
            })
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

/// An RFC 3339 time in any offset, as UTC at the millisecond precision stored. A `+` that
/// arrived unencoded in a query string reads as a space, so a space is taken for `+`.
pub fn parse_time(field: &str, raw: &str) -> Result<chrono::DateTime<chrono::Utc>, FieldError> {
    chrono::DateTime::parse_from_rfc3339(&raw.trim().replace(' ', "+"))
        .map(|t| crate::time::truncate(t.with_timezone(&chrono::Utc)))
        .map_err(|_| {
            FieldError::new(
                field,
                "must be an RFC 3339 time, such as 2026-02-10T10:00:00Z",
            )
        })
}

/// A required RFC 3339 time: `None`, with the error added, when it is missing or malformed.
pub fn required_time(
    field: &str,
    raw: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    match raw {
        None => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(raw) => parse_time(field, raw).map_err(|e| errors.push(e)).ok(),
    }
}

/// An id field of a body: `None`, with the error added, when it is malformed or, if
/// `required`, missing.
pub fn body_id<T: FromStr>(
    field: &str,
    raw: Option<&str>,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match raw {
        None if required => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        None => None,
        Some(raw) => raw
            .parse()
            .map_err(|_| errors.push(FieldError::new(field, "must be a UUID")))
            .ok(),
    }
}

/// A body's one required id field, or the 400 that names it.
pub fn required_id<T: FromStr>(field: &str, raw: Option<&str>) -> Result<T, ApiError> {
    let mut errors = Vec::new();
    match body_id(field, raw, true, &mut errors) {
        Some(id) => Ok(id),
        None => Err(ApiError::Validation(errors)),
    }
}

/// A path id: anything that is not a UUID names no resource, so it is a 404.
pub fn parse_id<T: FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        latitude: f64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        location: Inner,
    }

    fn field_of(body: &str) -> String {
        match parse_json::<Outer>(body.as_bytes()) {
            Err(ApiError::Validation(d)) => d[0].field.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_path() {
        assert_eq!(field_of(r#"{"location": {"latitude": 1}}"#), "name");
        assert_eq!(
            field_of(r#"{"name": "x", "location": {}}"#),
            "location.latitude"
        );
        assert_eq!(
            field_of(r#"{"name": "x", "location": {"latitude": "north"}}"#),
            "location.latitude"
        );
        assert_eq!(field_of(r#"{"name": "#), "body");
        assert_eq!(field_of("[]"), "body");
        assert_eq!(
            field_of(r#"["x", {"latitude": 1}]"#),
            "body",
            "an array is not a body"
        );
    }

    #[test]
    fn control_characters_are_refused_by_path() {
        let fields = |body: serde_json::Value| {
            control_characters(&body)
                .into_iter()
                .map(|(path, _)| path.to_string())
                .collect::<Vec<_>>()
        };
        assert!(fields(serde_json::json!({"name": "Ada", "n": 1, "ok": null})).is_empty());
        assert_eq!(fields(serde_json::json!({"name": "A\u{0}da"})), ["name"]);
        assert_eq!(
            fields(serde_json::json!({"location": {"city": "Pa\nris"}})),
            ["location.city"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"damages": [{"description": "ok\tfine\nstill"}, {"description": "bad\u{7}"}]})
            ),
            ["damages[1].description"]
        );
        assert!(fields(serde_json::json!({"notes": "line 1\nline 2\tend"})).is_empty());
        assert_eq!(fields(serde_json::json!({"notes": "nul \u{0}"})), ["notes"]);
        assert_eq!(
            fields(serde_json::json!({"features": ["a", "b\u{9f}"]})),
            ["features[1]"]
        );
        assert_eq!(
            fields(serde_json::json!("\u{0}")),
            ["body"],
            "the body itself"
        );
        assert_eq!(
            fields(serde_json::json!({"": {"if": "\u{7}"}})),
            [".if"],
            "an empty key is a key"
        );
    }

    #[test]
    fn only_the_fields_a_type_reads_are_held_to_the_rule() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            name: String,
            location: Option<Inner>,
        }
        let body = serde_json::json!({"name": "ok", "extra": "\u{0}", "": {"if": "\u{7}"},
                                      "location": {"latitude": 1.0, "x\u{7}": "\u{7}"}});
        assert!(
            from_json_value::<Body>(body).is_ok(),
            "unknown fields are ignored"
        );
        let body = serde_json::json!({"name": "n\u{0}", "location": {"latitude": 1.0}});
        match from_json_value::<Body>(body) {
            Err(ApiError::Validation(d)) => assert_eq!(d[0].field, "name"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn control_characters_in_queries_name_the_parameter() {
        let err = QueryParams::from_query_string("city=%00&brand=ok&query=a%0Ab")
            .err()
            .unwrap();
        match err {
            ApiError::Validation(d) => {
                let mut f: Vec<_> = d.into_iter().map(|e| e.field).collect();
                f.sort();
                assert_eq!(f, ["city", "query"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(QueryParams::from_query_string("city=Paris%20Nord").is_ok());
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        match QueryParams::from_query_string("extras=a:1&page=2&extras=b:1&extras=c:1") {
            Err(ApiError::Validation(d)) => {
                assert_eq!(d, [FieldError::new("extras", "must be given once")]);
            }
            other => panic!("{other:?}"),
        }
        assert!(QueryParams::from_query_string("a=1&b=1").is_ok());
    }

    #[test]
    fn page_math() {
        let p = PageRequest { page: 3, limit: 20 };
        assert_eq!(p.offset(), 40);
        let page = p.wrap(Vec::<u8>::new(), 57);
        assert_eq!(page.total_pages, 3);
        assert_eq!(p.wrap(Vec::<u8>::new(), 0).total_pages, 0);
        assert_eq!(p.wrap(Vec::<u8>::new(), 40).total_pages, 2);
    }
}
