//! The OpenAPI document, generated from the route annotations of the compiled modules, and
//! the `/docs` page rendered from it on the server (no scripts, nothing fetched).

use std::fmt::Write;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

use crate::http::{ErrorBody, ErrorDetail, FieldError};
use crate::ops::ApiDocument;
use crate::Module;

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
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Car rental API", description = "Auth, cars, search, bookings and notifications."),
    paths(crate::ops::health, crate::ops::ready),
    components(schemas(ErrorBody, ErrorDetail, FieldError, crate::ops::Health, crate::ops::Readiness)),
    modifiers(&BearerAuth),
    tags((name = "operations", description = "Health and readiness"))
)]
struct BaseApi;

/// The document of the routes this binary was built with.
pub fn document() -> Document {
    #[allow(unused_mut)]
    let mut doc = BaseApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    #[cfg(feature = "auth")]
    doc.merge(crate::auth::AuthApi::openapi());
    #[cfg(feature = "cars")]
    doc.merge(crate::cars::CarsApi::openapi());
    #[cfg(feature = "bookings")]
    doc.merge(crate::bookings::BookingsApi::openapi());
    #[cfg(feature = "search")]
    doc.merge(crate::search::SearchApi::openapi());
    #[cfg(feature = "notifications")]
    doc.merge(crate::notifications::NotificationsApi::openapi());
    doc
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
    #[allow(unused_mut)]
    let mut doc = InternalBase::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    #[cfg(feature = "auth")]
    doc.merge(crate::auth::InternalApi::openapi());
    #[cfg(feature = "cars")]
    doc.merge(crate::cars::InternalApi::openapi());
    #[cfg(feature = "bookings")]
    doc.merge(crate::bookings::InternalApi::openapi());
    doc
}

/// The whole API's document as JSON.
pub fn whole_api_json() -> String {
    if Module::ALL.iter().all(|m| m.compiled()) {
        document()
            .to_pretty_json()
            .unwrap_or_else(|_| WHOLE_API.to_owned())
    } else {
        WHOLE_API.to_owned()
    }
}

/// What `/openapi.json` and `/docs` serve.
pub fn published() -> ApiDocument {
    let json = whole_api_json();
    let html = serde_json::from_str::<Document>(&json)
        .map(|doc| render_docs(&doc))
        .unwrap_or_default();
    let internal_json = internal_document()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned());
    ApiDocument {
        json,
        html,
        internal_json,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ref_name<T>(r: &RefOr<T>) -> Option<String> {
    match r {
        RefOr::Ref(r) => r.ref_location.rsplit('/').next().map(str::to_owned),
        RefOr::T(_) => None,
    }
}

/// A readable page of the document: every operation with its parameters and answers.
pub fn render_docs(doc: &Document) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}\
         .op{{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:1em 0}}\
         .m{{font-weight:bold;text-transform:uppercase;display:inline-block;width:4.5em}}\
         code{{background:#f4f4f4;padding:0 .2em}}td{{padding:0 1em 0 0;vertical-align:top}}</style>\
         </head><body><h1>{title} <small>{version}</small></h1><p>{desc}</p>\
         <p>The machine-readable document is at <a href=\"/openapi.json\">/openapi.json</a>.</p>",
        title = escape(&doc.info.title),
        version = escape(&doc.info.version),
        desc = escape(doc.info.description.as_deref().unwrap_or("")),
    );
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("patch", &item.patch),
            ("delete", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let _ = write!(
                html,
                "<div class=\"op\"><p><span class=\"m\">{method}</span><code>{}</code> {}</p>",
                escape(path),
                escape(op.summary.as_deref().unwrap_or(""))
            );
            if op.security.is_some() {
                html.push_str(
                    "<p>Needs <code>Authorization: Bearer &lt;access token&gt;</code>.</p>",
                );
            }
            if let Some(params) = op.parameters.as_ref().filter(|p| !p.is_empty()) {
                html.push_str("<p>Parameters:</p><table>");
                for p in params {
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        escape(&p.name),
                        serde_json::to_value(&p.parameter_in)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        escape(p.description.as_deref().unwrap_or(""))
                    );
                }
                html.push_str("</table>");
            }
            if let Some(body) = &op.request_body {
                let schema = body
                    .content
                    .values()
                    .find_map(|c| c.schema.as_ref().and_then(ref_name))
                    .unwrap_or_else(|| "JSON".into());
                let _ = write!(html, "<p>Body: <code>{}</code></p>", escape(&schema));
            }
            html.push_str("<p>Answers:</p><table>");
            for (status, response) in &op.responses.responses {
                let (desc, schema) = match response {
                    RefOr::T(r) => (
                        r.description.clone(),
                        r.content
                            .values()
                            .find_map(|c| c.schema.as_ref().and_then(ref_name)),
                    ),
                    RefOr::Ref(r) => (r.ref_location.clone(), None),
                };
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(status),
                    escape(&desc),
                    schema
                        .map(|s| format!("<code>{}</code>", escape(&s)))
                        .unwrap_or_default()
                );
            }
            html.push_str("</table></div>");
        }
    }
    if let Some(components) = &doc.components {
        html.push_str("<h2>Schemas</h2>");
        for (name, schema) in &components.schemas {
            let json = serde_json::to_string_pretty(schema).unwrap_or_default();
            let _ = write!(
                html,
                "<h3 id=\"{n}\">{n}</h3><pre>{}</pre>",
                escape(&json),
                n = escape(name)
            );
        }
    }
    html.push_str("</body></html>");
    html
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
        let generated = super::document().to_pretty_json().unwrap();
        assert!(
            generated.trim() == super::WHOLE_API.trim(),
            "docs/openapi.json is out of date: run `cargo run --quiet -- openapi > docs/openapi.json`"
        );
    }
}
