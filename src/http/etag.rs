//! JSON answers with a strong `ETag`, and `If-None-Match` answered with 304.

use actix_web::http::header::{self, EntityTag, Header};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use crate::error::ApiError;

/// `If-None-Match`, as the document shows it.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IfNoneMatch {
    /// Tags from earlier answers (or `*`): 304 when one is still current.
    #[param(rename = "If-None-Match", required = false)]
    if_none_match: String,
}

/// A JSON body as sent, and the tag of exactly those bytes.
#[derive(Debug)]
pub struct Tagged {
    pub body: Bytes,
    pub etag: EntityTag,
}

impl Tagged {
    pub fn json(value: &impl Serialize) -> Result<Tagged, ApiError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| ApiError::internal(format!("cannot write JSON: {e}")))?;
        let digest = Sha256::digest(&body);
        Ok(Tagged {
            etag: EntityTag::new_strong(hex::encode(&digest[..16])),
            body: Bytes::from(body),
        })
    }

    /// 200 with the body, or 304 when the client already holds this version.
    pub fn reply(&self, req: &HttpRequest) -> HttpResponse {
        let held = match header::IfNoneMatch::parse(req) {
            Ok(header::IfNoneMatch::Any) => true,
            Ok(header::IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&self.etag)),
            Err(_) => false,
        };
        let etag = header::ETag(self.etag.clone());
        if held {
            return HttpResponse::NotModified().insert_header(etag).finish();
        }
        HttpResponse::Ok()
            .insert_header(etag)
            .insert_header(header::ContentType::json())
            .body(self.body.clone())
    }
}
