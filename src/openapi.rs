//! The OpenAPI document: generated from the route annotations of the compiled modules, then
//! completed with what every operation shares (the error answers each can give, the headers
//! every answer carries) and with the links a client (or a stateful fuzzer) follows from a
//! created resource to the routes behind its id.

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail, FieldError};
use crate::ops::ApiDocument;

/// The whole API's document, as a build with every module writes it (`carrental openapi
/// > docs/openapi.json`). A binary built with fewer modules serves this copy, so that
/// `/openapi.json` documents the whole API whichever process answers.
const WHOLE_API: &str = include_str!("../docs/openapi.json");

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from signup, login or refresh. Logout revokes the \
                         refresh token; an access token stays valid until its `exp`.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Car rental API",
        description = "Auth, cars, search, bookings and notifications. Every error answer has \
                       the `ErrorBody` shape; `details[].field` names the JSON path of each \
                       offending input (dotted, `[i]` for array items) or the query parameter."
    ),
    paths(crate::ops::health, crate::ops::ready),
    components(schemas(ErrorBody, ErrorDetail, FieldError, crate::ops::Health, crate::ops::Readiness)),
    modifiers(&BearerAuth),
    tags((name = "operations", description = "Health and readiness"))
)]
struct BaseApi;

/// The document of the routes this binary was built with.
pub fn document() -> Document {
    let mut doc = BaseApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for build in crate::MODULES.iter().filter_map(|m| m.build) {
        doc.merge((build.api)());
    }
    doc
}

/// The whole document of this binary's routes, completed, as JSON.
pub fn document_json() -> String {
    let mut doc = serde_json::to_value(document()).unwrap_or(Value::Null);
    complete(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The internal routes this binary serves (`/internal/openapi.json`, behind the internal
/// token; the public document leaves them out).
pub fn internal_document() -> Document {
    #[derive(OpenApi)]
    #[openapi(
        info(
            title = "Car rental internal API",
            description = "The routes the modules of a split deployment call on one another. \
                           Every call needs `Authorization: Bearer <INTERNAL_TOKEN>`; \
                           \"no such thing\" is answered as `null`, never as 404."
        ),
        modifiers(&BearerAuth)
    )]
    struct InternalBase;
    let mut doc = InternalBase::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for build in crate::MODULES.iter().filter_map(|m| m.build) {
        doc.merge((build.internal_api)());
    }
    doc
}

/// The whole API's document as JSON, with today's bounds (the latest model year).
pub fn whole_api_json() -> String {
    let json = if crate::MODULES.iter().all(|m| m.build.is_some()) {
        document_json()
    } else {
        WHOLE_API.to_owned()
    };
    let Ok(mut doc) = serde_json::from_str::<Value>(&json) else {
        return json;
    };
    date_bounds(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or(json)
}

/// What `/openapi.json`, `/docs` and `/internal/openapi.json` serve.
pub fn published() -> ApiDocument {
    let internal_json = internal_document()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned());
    ApiDocument {
        json: whole_api_json(),
        internal_json,
    }
}

/// A car's year goes up to next year: set when the document is served, so the committed
/// copy does not go stale on the first of January.
fn date_bounds(doc: &mut Value) {
    let next_year = chrono::Datelike::year(&chrono::Utc::now()) + 1;
    for schema in ["CarChanges", "NewCar"] {
        if let Some(year) = doc
            .pointer_mut(&format!("/components/schemas/{schema}/properties/year"))
            .and_then(Value::as_object_mut)
        {
            year.insert("maximum".into(), json!(next_year));
        }
    }
}

/// The links from a created resource to the operations behind its id.
const LINKS: &[(&str, &str, &[&str])] = &[
    (
        "/cars",
        "post",
        &[
            "getCar",
            "replaceCar",
            "updateCar",
            "deleteCar",
            "getCarAvailability",
            "quoteCar",
            "listCarBlocks",
            "createCarBlock",
            "addCarPhoto",
        ],
    ),
    (
        "/bookings",
        "post",
        &[
            "getBooking",
            "cancelBooking",
            "pickUpBooking",
            "returnBooking",
            "listBookingPayments",
            "setBookingPaymentMethod",
            "refundBooking",
        ],
    ),
    ("/notifications/subscribe", "post", &["unsubscribe"]),
];

/// Adds to every operation the answers it shares with the others, the headers every answer
/// carries, and the links of [`LINKS`].
fn complete(doc: &mut Value) {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    };
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let operations_route = path.starts_with("/health");
            let has_body = op.contains_key("requestBody");
            let json_body = op
                .get("requestBody")
                .is_some_and(|b| b["content"].get("application/json").is_some());
            describe_parameters(op);
            let params = op
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let takes_input = params
                .iter()
                .any(|p| p["in"] == "query" || p["in"] == "header");
            let has_id = params.iter().any(|p| p["in"] == "path");
            let secured = op.contains_key("security");
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description));
            };
            if has_body || takes_input {
                add(
                    "400",
                    "Invalid input: malformed JSON, a missing or invalid field or parameter \
                     (`details` names each)",
                );
            } else if has_id {
                add("400", "The path holds dot-segments or backslashes");
            }
            if secured {
                add("401", "No access token, or a bad, expired or revoked one");
            }
            if has_id {
                add("404", "No such resource, or one the caller may not see");
            }
            if has_body {
                add(
                    "408",
                    "The body stopped arriving for the body timeout (10 s by default)",
                );
                add("413", "The body is over the limit (64 KiB by default)");
            }
            if json_body {
                add("415", "The body is not `application/json`");
            }
            if !operations_route {
                add(
                    "429",
                    "Over a rate limit; `Retry-After` says when to come back",
                );
                add(
                    "503",
                    "A service this request needs is down: the database, in a split \
                     deployment the module that serves it, or the payment provider where the \
                     operation calls it (`PAYMENT_UNAVAILABLE`: nothing was made)",
                );
                add(
                    "504",
                    "In a split deployment, the module that serves it did not answer in time",
                );
            }
            for (status, response) in responses.iter_mut() {
                headers(status, secured, response);
            }
            if let Some((_, _, targets)) = LINKS.iter().find(|(p, m, _)| p == path && m == method) {
                for status in ["200", "201"] {
                    if let Some(response) = responses.get_mut(status) {
                        response["links"] = links(targets);
                    }
                }
            }
        }
    }
}

/// A parameter whose schema a function makes has its description on the schema (utoipa
/// drops the parameter's doc comment there): it is moved to the parameter, where readers of
/// the document look for it.
fn describe_parameters(op: &mut Map<String, Value>) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for param in params.iter_mut().filter_map(Value::as_object_mut) {
        if param.contains_key("description") {
            continue;
        }
        let moved = param
            .get_mut("schema")
            .and_then(Value::as_object_mut)
            .and_then(|schema| schema.remove("description"));
        if let Some(description) = moved {
            param.insert("description".into(), description);
        }
    }
}

/// The headers of an answer: `X-Request-ID` on every one, `Retry-After` on 429 and 503,
/// `Cache-Control` on the answers to a caller.
fn headers(status: &str, secured: bool, response: &mut Value) {
    let mut headers = Map::new();
    headers.insert(
        "X-Request-ID".into(),
        json!({
            "description": "The client's own id when it sent one (at most 128 visible ASCII \
                            characters), a new one otherwise",
            "required": true,
            "schema": {"type": "string"}
        }),
    );
    if secured {
        headers.insert(
            "Cache-Control".into(),
            json!({"description": "`private, no-store`: the answer is the caller's own",
                   "schema": {"type": "string"}}),
        );
    }
    if status == "429" || status == "503" {
        headers.insert(
            "Retry-After".into(),
            json!({"description": "Seconds to wait", "required": true,
                   "schema": {"type": "integer", "minimum": 0}}),
        );
    }
    if status == "429" {
        for (name, description) in [
            ("RateLimit-Policy", "The policies that apply (IETF draft)"),
            (
                "RateLimit",
                "The tightest policy's remaining quota and reset (IETF draft)",
            ),
        ] {
            headers.insert(
                name.into(),
                json!({"description": description, "schema": {"type": "string"}}),
            );
        }
    }
    response["headers"] = Value::Object(headers);
}

fn links(targets: &[&str]) -> Value {
    targets
        .iter()
        .map(|op| {
            let mut name: Vec<char> = op.chars().collect();
            if let Some(first) = name.first_mut() {
                *first = first.to_ascii_uppercase();
            }
            (
                name.into_iter().collect::<String>(),
                json!({"operationId": op, "parameters": {"id": "$response.body#/id"}}),
            )
        })
        .collect::<Map<String, Value>>()
        .into()
}

#[cfg(test)]
mod tests {
    #[cfg(all(
        feature = "auth",
        feature = "cars",
        feature = "search",
        feature = "bookings",
        feature = "notifications"
    ))]
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = super::document_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
            std::fs::write(path, format!("{generated}\n")).expect("write docs/openapi.json");
            return;
        }
        assert!(
            generated.trim() == super::WHOLE_API.trim(),
            "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test --lib openapi`"
        );
    }
}
