//! The `s3` store: any S3-compatible service through SigV4 presigned URLs (`rusty-s3`, see
//! DESIGN.md "Storage: signing S3 requests"). Clients get presigned `PUT`s and `GET`s; what
//! the server itself reads and writes goes through URLs presigned for a minute and sent with
//! the one HTTP client the server already has.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

use super::{Head, Listed, Presigned, Store, StoreError, PRIVATE_TTL, UPLOAD_TTL};
use crate::config::StorageSettings;

/// The life of the URLs the server signs for its own calls.
const OWN_CALL: Duration = Duration::from_secs(60);

pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    public_base: String,
    http: reqwest::Client,
}

impl S3Store {
    pub fn new(settings: &StorageSettings) -> anyhow::Result<Self> {
        let (endpoint, style) = match settings.s3_endpoint.trim_end_matches('/') {
            "" => (
                format!("https://s3.{}.amazonaws.com", settings.s3_region),
                UrlStyle::VirtualHost,
            ),
            url => (url.to_owned(), UrlStyle::Path),
        };
        let style = if settings.s3_force_path_style {
            UrlStyle::Path
        } else {
            style
        };
        let bucket = Bucket::new(
            endpoint.parse()?,
            style,
            settings.s3_bucket.clone(),
            settings.s3_region.clone(),
        )?;
        let public_base = match settings.public_base_url.trim_end_matches('/') {
            "" => bucket.base_url().as_str().trim_end_matches('/').to_owned(),
            url => url.to_owned(),
        };
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(S3Store {
            bucket,
            credentials: Credentials::new(
                settings.s3_access_key_id.clone(),
                settings.s3_secret_access_key.clone(),
            ),
            public_base,
            http,
        })
    }

    async fn send(&self, method: Method, url: url::Url) -> Result<reqwest::Response, StoreError> {
        self.http
            .request(method, url)
            .send()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }
}

fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::zero())
}

/// An answer the store gave that is not what was asked for.
async fn refused(what: &str, res: reqwest::Response) -> StoreError {
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    StoreError(format!(
        "{what}: {status} {}",
        body.chars().take(300).collect::<String>()
    ))
}

#[async_trait]
impl Store for S3Store {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn presign_put(&self, key: &str, content_type: &str, size: u64) -> Presigned {
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        let length = size.to_string();
        // Signed headers: the store refuses a request whose type or length differ.
        action.headers_mut().insert("content-type", content_type);
        action
            .headers_mut()
            .insert("content-length", length.clone());
        let url = action.sign(UPLOAD_TTL);
        Presigned {
            url: url.to_string(),
            headers: [
                ("Content-Type".to_owned(), content_type.to_owned()),
                ("Content-Length".to_owned(), length),
            ]
            .into(),
            expires_at: expiry(UPLOAD_TTL),
        }
    }

    fn presign_get(&self, key: &str) -> Presigned {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(PRIVATE_TTL);
        Presigned {
            url: url.to_string(),
            headers: Default::default(),
            expires_at: expiry(PRIVATE_TTL),
        }
    }

    fn public_url(&self, key: &str) -> String {
        format!("{}/{key}", self.public_base)
    }

    async fn head(&self, key: &str) -> Result<Option<Head>, StoreError> {
        let url = self
            .bucket
            .head_object(Some(&self.credentials), key)
            .sign(OWN_CALL);
        let res = self.send(Method::HEAD, url).await?;
        match res.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let header = |name: &str| {
                    res.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                Ok(Some(Head {
                    size: header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    content_type: header("content-type"),
                }))
            }
            _ => Err(refused("HEAD", res).await),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(OWN_CALL);
        let res = self.send(Method::GET, url).await?;
        match res.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => res
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| StoreError(e.to_string())),
            _ => Err(refused("GET", res).await),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StoreError> {
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        action.headers_mut().insert("content-type", content_type);
        action.headers_mut().insert("cache-control", cache_control);
        let url = action.sign(OWN_CALL);
        let res = self
            .http
            .put(url)
            .header("content-type", content_type)
            .header("cache-control", cache_control)
            .body(body)
            .send()
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(refused("PUT", res).await)
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), key)
            .sign(OWN_CALL);
        let res = self.send(Method::DELETE, url).await?;
        if res.status().is_success() || res.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(refused("DELETE", res).await)
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(prefix.to_owned());
            if let Some(token) = &token {
                action.with_continuation_token(token.clone());
            }
            let res = self.send(Method::GET, action.sign(OWN_CALL)).await?;
            if !res.status().is_success() {
                return Err(refused("LIST", res).await);
            }
            let body = res.bytes().await.map_err(|e| StoreError(e.to_string()))?;
            let page = ListObjectsV2::parse_response(&body)
                .map_err(|e| StoreError(format!("LIST: {e}")))?;
            for object in page.contents {
                let modified = DateTime::parse_from_rfc3339(&object.last_modified)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(|_| Utc::now());
                found.push(Listed {
                    key: object.key,
                    modified,
                });
            }
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => return Ok(found),
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(OWN_CALL);
        let res = self.send(Method::HEAD, url).await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(refused("HEAD bucket", res).await)
        }
    }
}
