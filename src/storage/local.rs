//! The `local` store: files under `MEDIA_DIR`, written and read by this server. Links to it
//! are signed like S3's presigned URLs (HMAC-SHA256 over the method, the key, the content
//! type and size for uploads, and the expiry), so no bearer is needed and none can be forged.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{is_key, Head, Listed, Presigned, Store, StoreError, PRIVATE_TTL, UPLOAD_TTL};
use crate::config::StorageSettings;

pub struct LocalStore {
    root: PathBuf,
    public_url: String,
    key: Vec<u8>,
}

/// Where a link points on this server: an upload's bytes are sent to
/// `/uploads/{id}/content` (API.md); every object is read under `/media/`.
fn path_of(method: &str, key: &str) -> String {
    match key.strip_prefix("uploads/") {
        Some(id) if method == "PUT" => format!("/uploads/{id}/content"),
        _ => format!("/media/{key}"),
    }
}

impl LocalStore {
    pub fn new(settings: &StorageSettings, secret: &str, port: u16) -> anyhow::Result<Self> {
        let root = PathBuf::from(&settings.media_dir);
        std::fs::create_dir_all(&root)
            .map_err(|e| anyhow::anyhow!("MEDIA_DIR {}: {e}", root.display()))?;
        let public_url = match settings.public_url.trim_end_matches('/') {
            "" => format!("http://localhost:{port}"),
            url => url.to_owned(),
        };
        // A key of its own, so that a media link is never also a valid token signature.
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|e| anyhow::anyhow!("media signing key: {e}"))?;
        mac.update(b"carrental media links");
        Ok(LocalStore {
            root,
            public_url,
            key: mac.finalize().into_bytes().to_vec(),
        })
    }

    fn file(&self, key: &str) -> Result<PathBuf, StoreError> {
        if !is_key(key) {
            return Err(StoreError(format!("not a storage key: {key:?}")));
        }
        Ok(self.root.join(key))
    }

    fn mac(
        &self,
        method: &str,
        key: &str,
        content_type: &str,
        size: u64,
        expires: i64,
    ) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{method}\n{key}\n{content_type}\n{size}\n{expires}").as_bytes());
        mac
    }

    fn sign(
        &self,
        method: &str,
        key: &str,
        content_type: &str,
        size: u64,
        ttl: std::time::Duration,
    ) -> Presigned {
        let expires_at = Utc::now() + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::zero());
        let expires = expires_at.timestamp();
        let signature = hex::encode(
            self.mac(method, key, content_type, size, expires)
                .finalize()
                .into_bytes(),
        );
        let mut headers = std::collections::BTreeMap::new();
        if method == "PUT" {
            headers.insert("Content-Type".to_owned(), content_type.to_owned());
        }
        Presigned {
            url: format!(
                "{}{}?expires={expires}&signature={signature}",
                self.public_url,
                path_of(method, key)
            ),
            headers,
            expires_at,
        }
    }

    /// Whether a signed link's query is good for this request now: the same method, key,
    /// type and size as signed, before its expiry. Compared in constant time.
    pub fn verify(
        &self,
        method: &str,
        key: &str,
        content_type: &str,
        size: u64,
        expires: i64,
        signature: &str,
    ) -> bool {
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        expires >= Utc::now().timestamp()
            && self
                .mac(method, key, content_type, size, expires)
                .verify_slice(&signature)
                .is_ok()
    }
}

/// Writes through a temporary file and a rename, so a reader never sees half an object.
async fn write_atomic(path: &Path, body: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let temporary = path.with_extension(format!("part-{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&temporary, body).await?;
    tokio::fs::rename(&temporary, path).await
}

fn io(e: std::io::Error) -> StoreError {
    StoreError(e.to_string())
}

#[async_trait]
impl Store for LocalStore {
    fn name(&self) -> &'static str {
        "local"
    }

    fn presign_put(&self, key: &str, content_type: &str, size: u64) -> Presigned {
        self.sign("PUT", key, content_type, size, UPLOAD_TTL)
    }

    fn presign_get(&self, key: &str) -> Presigned {
        self.sign("GET", key, "", 0, PRIVATE_TTL)
    }

    fn public_url(&self, key: &str) -> String {
        format!("{}{}", self.public_url, path_of("GET", key))
    }

    async fn head(&self, key: &str) -> Result<Option<Head>, StoreError> {
        match tokio::fs::metadata(self.file(key)?).await {
            Ok(meta) => Ok(Some(Head {
                size: meta.len(),
                content_type: None,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match tokio::fs::read(self.file(key)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, _: &str, _: &str) -> Result<(), StoreError> {
        write_atomic(&self.file(key)?, &body).await.map_err(io)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.file(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut dirs = vec![root.clone()];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(&dir).map_err(io)? {
                    let entry = entry.map_err(io)?;
                    let meta = entry.metadata().map_err(io)?;
                    if meta.is_dir() {
                        dirs.push(entry.path());
                        continue;
                    }
                    let Ok(relative) = entry.path().strip_prefix(&root).map(Path::to_path_buf)
                    else {
                        continue;
                    };
                    let key = relative.to_string_lossy().replace('\\', "/");
                    if is_key(&key) && key.starts_with(&prefix) {
                        let modified = meta.modified().map_err(io)?;
                        found.push(Listed {
                            key,
                            modified: modified.into(),
                        });
                    }
                }
            }
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
        .map_err(|e| StoreError(e.to_string()))?
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let meta = tokio::fs::metadata(&self.root).await.map_err(io)?;
        if meta.is_dir() && !meta.permissions().readonly() {
            Ok(())
        } else {
            Err(StoreError(format!(
                "{} is not a writable directory",
                self.root.display()
            )))
        }
    }
}
