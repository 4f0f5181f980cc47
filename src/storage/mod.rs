//! The storage port: where photos and documents are kept, whichever store it is (API.md,
//! Photos and documents). `local` keeps files under `MEDIA_DIR` and serves them from this
//! server through signed links; `s3` talks SigV4 to any S3-compatible store. Keys are always
//! made by the server ([`is_key`]): nothing a client sends chooses where an object lands.

#[cfg(feature = "cars")]
pub mod images;
pub mod local;
pub mod s3;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// How long a client has to send an upload.
pub const UPLOAD_TTL: Duration = Duration::from_secs(900);
/// How long a link to a private object works.
pub const PRIVATE_TTL: Duration = Duration::from_secs(300);
/// What public, content-addressed objects are served with.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The store did not answer, or answered with an error.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "storage call failed");
        ApiError::Unavailable
    }
}

/// A request a client may make without credentials of its own until `expires_at`: the URL
/// and the headers it must send as they are.
#[derive(Debug, Clone)]
pub struct Presigned {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// What the store says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub content_type: Option<String>,
}

/// An object as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub modified: DateTime<Utc>,
}

#[async_trait]
pub trait Store: Send + Sync {
    fn name(&self) -> &'static str;
    /// A `PUT` of exactly `size` bytes of `content_type` to `key`, within [`UPLOAD_TTL`].
    fn presign_put(&self, key: &str, content_type: &str, size: u64) -> Presigned;
    /// A `GET` of a private object, within [`PRIVATE_TTL`].
    fn presign_get(&self, key: &str) -> Presigned;
    /// Where anyone reads a public object.
    fn public_url(&self, key: &str) -> String;
    async fn head(&self, key: &str) -> Result<Option<Head>, StoreError>;
    /// The object's bytes; `None` when it is not there.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StoreError>;
    /// Deleting what is not there succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every object whose key starts with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError>;
    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A store as the port, and the `local` one also as itself, for the routes that take its
/// uploads and serve its files.
pub type Opened = (Arc<dyn Store>, Option<Arc<local::LocalStore>>);

/// The store `STORAGE_PROVIDER` names.
pub fn open(settings: &crate::config::Settings) -> anyhow::Result<Opened> {
    let storage = &settings.storage;
    if storage.provider == "s3" {
        return Ok((Arc::new(s3::S3Store::new(storage)?), None));
    }
    let local = Arc::new(local::LocalStore::new(
        storage,
        &settings.auth.jwt_secret,
        settings.server.port,
    )?);
    Ok((local.clone(), Some(local)))
}

/// Whether `key` is one the server could have made: lower-case letters, digits, `-`, `_`
/// and `.` in `/`-separated segments, none empty or made of dots.
pub fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.chars().all(|c| c == '.')
                && segment.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_the_server_makes_are_keys() {
        for good in ["uploads/0b8f", "cars/ab-12/3f_x-thumb.webp"] {
            assert!(is_key(good), "{good}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "a/../b",
            "/abs",
            "a//b",
            "A/b",
            "a/b/",
            "a\\b",
            "a/./b",
            "a/%2e%2e/b",
            "a b",
        ] {
            assert!(!is_key(bad), "{bad}");
        }
    }
}
