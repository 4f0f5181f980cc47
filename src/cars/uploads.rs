//! Uploads and car photos (API.md, Photos and documents): an upload is offered with a
//! presigned URL, sent straight to the store, then completed here — its bytes read back,
//! checked and turned into derivatives — before a car can show it. Objects are deleted
//! through the outbox, so a store that is down delays a deletion and never loses it.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use super::model::StoredPhoto;
use crate::db::schema::uploads;
use crate::db::{self, Db, DbConn};
use crate::error::{ApiError, FieldError};
use crate::http::auth::AuthUser;
use crate::http::{body_id, check};
use crate::ids::{CarId, UploadId};
use crate::ops::{CheckFuture, ReadinessCheck};
use crate::outbox::{self, Job, Outcome, Policy, Stop};
use crate::storage::images::{self, Processed};
use crate::storage::local::LocalStore;
use crate::storage::{Listed, Store, IMMUTABLE};
use crate::time;

/// The outbox topic of object deletions.
const DELETE_TOPIC: &str = "media.delete";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = uploads)]
pub struct UploadRow {
    pub id: UploadId,
    pub user_id: crate::ids::UserId,
    pub purpose: String,
    pub content_type: String,
    pub size: i64,
    pub car_id: Option<CarId>,
    pub booking_id: Option<crate::ids::BookingId>,
    pub status: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub sha256: Option<String>,
    /// [`Variant`]s as JSON.
    pub derivatives: Option<String>,
    pub created_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
}

/// A WebP version of a completed image upload, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variant {
    pub variant: String,
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
}

impl UploadRow {
    /// Where the uploaded bytes themselves are kept: a random id, never a client's name.
    pub fn key(&self) -> String {
        format!("uploads/{}", self.id)
    }

    /// The key of one of its WebP versions, once completed.
    pub fn variant_key(&self, name: &str) -> Option<String> {
        self.variants().into_iter().find(|v| v.variant == name).map(|v| v.key)
    }

    pub fn variants(&self) -> Vec<Variant> {
        self.derivatives
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    }

    /// Every object it may have in the store.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = vec![self.key()];
        keys.extend(self.variants().into_iter().map(|v| v.key));
        keys
    }

    fn to_api(&self) -> Upload {
        Upload {
            id: self.id,
            purpose: self.purpose.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            width: self.width,
            height: self.height,
            status: self.status.clone(),
        }
    }
}

/// `POST /uploads`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewUpload {
    #[schema(required = true, schema_with = purpose_schema)]
    pub purpose: Option<String>,
    #[schema(required = true, schema_with = content_type_schema)]
    pub content_type: Option<String>,
    /// In bytes: 1 to `MEDIA_MAX_BYTES`.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub size: Option<serde_json::Value>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub car_id: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub booking_id: Option<String>,
}

/// Where and how to send an upload's bytes.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadTicket {
    #[schema(value_type = uuid::Uuid)]
    pub id: UploadId,
    #[schema(example = "PUT")]
    pub method: &'static str,
    pub url: String,
    /// Headers to send exactly as given (they are part of the signature).
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub max_size: u64,
}

/// An upload once completed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    #[schema(value_type = uuid::Uuid)]
    pub id: UploadId,
    pub purpose: String,
    pub content_type: String,
    pub size: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    #[schema(example = "ready")]
    pub status: String,
}

const PURPOSES: [&str; 3] = ["car_photo", "damage_photo", "licence"];

fn purpose_schema() -> utoipa::openapi::schema::Schema {
    crate::http::schema::exact_schema(
        &PURPOSES,
        "`car_photo` (admin, with `carId`), `damage_photo` (admin, with `bookingId`) or \
         `licence` (the caller's own).",
    )
}

fn content_type_schema() -> utoipa::openapi::schema::Schema {
    crate::http::schema::exact_schema(
        images::TYPES,
        "The file's type, without parameters: `application/pdf` for a licence only.",
    )
}

/// The store and what uploads need besides the database.
pub struct Media {
    db: Db,
    pub store: Arc<dyn Store>,
    /// The same store when it is `local`: this server takes its uploads and serves it.
    local: Option<Arc<LocalStore>>,
    max_bytes: u64,
    /// Images decoded at once: each holds a core and up to hundreds of megabytes.
    decoding: Arc<Semaphore>,
    abandon_after: Duration,
    /// Bookings' answers: which bookings damage photos may be taken for.
    availability: Arc<dyn crate::ports::Availability>,
}

impl Media {
    pub fn new(
        db: Db,
        settings: &crate::config::Settings,
        availability: Arc<dyn crate::ports::Availability>,
    ) -> anyhow::Result<Self> {
        let storage = &settings.storage;
        let (store, local) = crate::storage::open(settings)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Media {
            db,
            store,
            local,
            max_bytes: storage.max_bytes,
            decoding: Arc::new(Semaphore::new(cores)),
            abandon_after: storage.abandon_after,
            availability,
        })
    }

    /// `POST /uploads`: checks what is offered and who offers it, records it, signs the URL.
    pub async fn offer(
        &self,
        user: AuthUser,
        input: NewUpload,
    ) -> Result<UploadTicket, ApiError> {
        let mut errors = Vec::new();
        let purpose = match input.purpose.as_deref() {
            Some(p) if PURPOSES.contains(&p) => Some(p),
            Some(_) => {
                errors.push(FieldError::new("purpose", format!("must be one of {}", PURPOSES.join(", "))));
                None
            }
            None => {
                errors.push(FieldError::new("purpose", "is required"));
                None
            }
        };
        let allowed: &[&str] = match purpose {
            Some("licence") => images::TYPES,
            _ => &images::TYPES[..3],
        };
        match input.content_type.as_deref() {
            Some(t) if allowed.contains(&t) => {}
            Some(_) => errors.push(FieldError::new(
                "contentType",
                format!("must be one of {}", allowed.join(", ")),
            )),
            None => errors.push(FieldError::new("contentType", "is required")),
        }
        let size = match &input.size {
            Some(v) => match v.as_u64() {
                Some(n) if (1..=self.max_bytes).contains(&n) => Some(n),
                _ => {
                    errors.push(FieldError::new(
                        "size",
                        format!("must be a whole number of bytes from 1 to {}", self.max_bytes),
                    ));
                    None
                }
            },
            None => {
                errors.push(FieldError::new("size", "is required"));
                None
            }
        };
        // An id is checked whenever given, and kept only where the purpose uses it.
        let car_id: Option<CarId> = body_id(
            "carId",
            input.car_id.as_deref(),
            purpose == Some("car_photo"),
            &mut errors,
        )
        .filter(|_| purpose == Some("car_photo"));
        let booking_id: Option<crate::ids::BookingId> = body_id(
            "bookingId",
            input.booking_id.as_deref(),
            purpose == Some("damage_photo"),
            &mut errors,
        )
        .filter(|_| purpose == Some("damage_photo"));
        check(errors)?;
        let purpose = purpose.unwrap_or_default();
        if purpose != "licence" && !user.is_admin() {
            return Err(ApiError::Forbidden);
        }
        if let Some(car) = car_id {
            let exists = self
                .db
                .run(move |conn| Ok(super::store::is_live(conn, car)?))
                .await?;
            if !exists {
                return Err(ApiError::field("carId", "is not a car"));
            }
        }
        if let Some(booking) = booking_id {
            if !self.availability.was_picked_up(booking).await? {
                return Err(ApiError::field(
                    "bookingId",
                    "is not a booking whose car was picked up (active or completed)",
                ));
            }
        }
        let row = UploadRow {
            id: UploadId::random(),
            user_id: user.id,
            purpose: purpose.to_owned(),
            content_type: input.content_type.unwrap_or_default(),
            size: i64::try_from(size.unwrap_or(0)).unwrap_or(i64::MAX),
            car_id,
            booking_id,
            status: "pending".into(),
            width: None,
            height: None,
            sha256: None,
            derivatives: None,
            created_at: db::to_db(time::now()),
            completed_at: None,
        };
        // The store answers before anything is promised: down, this is a 503.
        self.store.ping().await?;
        let signed = self
            .store
            .presign_put(&row.key(), &row.content_type, size.unwrap_or(0));
        let ticket = UploadTicket {
            id: row.id,
            method: "PUT",
            url: signed.url,
            headers: signed.headers,
            expires_at: signed.expires_at,
            max_size: self.max_bytes,
        };
        self.db
            .write(move |conn| {
                diesel::insert_into(uploads::table)
                    .values(&row)
                    .execute(conn)?;
                Ok(())
            })
            .await?;
        Ok(ticket)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The caller's upload; someone else's is not found.
    async fn own(&self, user: AuthUser, id: UploadId) -> Result<UploadRow, ApiError> {
        self.get(id)
            .await?
            .filter(|u| u.user_id == user.id)
            .ok_or(ApiError::NotFound)
    }

    pub async fn get(&self, id: UploadId) -> Result<Option<UploadRow>, ApiError> {
        self.db.run(move |conn| Ok(get(conn, id)?)).await
    }

    /// `POST /uploads/{id}/complete`.
    pub async fn complete(&self, user: AuthUser, id: UploadId) -> Result<Upload, ApiError> {
        let mut row = self.own(user, id).await?;
        if row.status != "pending" {
            return Err(ApiError::conflict("The upload is already complete"));
        }
        let key = row.key();
        let head = self.store.head(&key).await?;
        let Some(head) = head else {
            return Err(ApiError::field("upload", "no file was uploaded"));
        };
        let declared = u64::try_from(row.size).unwrap_or(0);
        if head.size != declared {
            return Err(ApiError::field(
                "size",
                format!("the file has {} bytes, not the {declared} declared", head.size),
            ));
        }
        if head
            .content_type
            .as_deref()
            .is_some_and(|t| t != row.content_type)
        {
            return Err(ApiError::field("contentType", "the file was stored with another type"));
        }
        let bytes = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| ApiError::field("upload", "no file was uploaded"))?;
        if bytes.len() as u64 != declared {
            return Err(ApiError::field("size", "the file is not the size declared"));
        }
        if !images::magic_matches(&row.content_type, &bytes) {
            return Err(ApiError::field(
                "contentType",
                format!("the file is not {}", row.content_type),
            ));
        }
        if row.content_type.starts_with("image/") {
            let processed = self.process(&row.content_type, bytes).await?;
            let (place, cache) = match row.car_id {
                Some(car) if row.purpose == "car_photo" => {
                    (format!("cars/{car}/{}", processed.sha256), IMMUTABLE)
                }
                _ => (format!("private/{}/{}", row.purpose, row.id), "private, no-store"),
            };
            let mut variants = Vec::new();
            for d in processed.derivatives {
                let variant = Variant {
                    variant: d.variant.to_owned(),
                    key: format!("{place}-{}.webp", d.variant),
                    width: d.width,
                    height: d.height,
                    size: d.bytes.len() as u64,
                };
                self.store
                    .put(&variant.key, d.bytes, "image/webp", cache)
                    .await?;
                variants.push(variant);
            }
            row.width = i32::try_from(processed.width).ok();
            row.height = i32::try_from(processed.height).ok();
            row.sha256 = Some(processed.sha256);
            row.derivatives = serde_json::to_string(&variants).ok();
            // The original keeps the metadata the derivatives shed: it goes.
            self.store.delete(&key).await?;
        } else {
            row.sha256 = Some(images::sha256_hex(&bytes));
        }
        row.status = "ready".into();
        row.completed_at = Some(db::to_db(time::now()));
        let done = row.clone();
        let changed = self
            .db
            .write(move |conn| {
                Ok(diesel::update(
                    uploads::table
                        .find(done.id)
                        .filter(uploads::status.eq("pending")),
                )
                .set((
                    uploads::status.eq(&done.status),
                    uploads::width.eq(done.width),
                    uploads::height.eq(done.height),
                    uploads::sha256.eq(&done.sha256),
                    uploads::derivatives.eq(&done.derivatives),
                    uploads::completed_at.eq(done.completed_at),
                ))
                .execute(conn)?)
            })
            .await?;
        if changed == 0 {
            return Err(ApiError::conflict("The upload is already complete"));
        }
        Ok(row.to_api())
    }

    /// Decodes and re-encodes off the async workers, a core at a time.
    async fn process(&self, content_type: &str, bytes: Vec<u8>) -> Result<Processed, ApiError> {
        let _turn = self
            .decoding
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Unavailable)?;
        let content_type = content_type.to_owned();
        tokio::task::spawn_blocking(move || images::process(&content_type, &bytes))
            .await
            .map_err(|e| ApiError::internal(format!("image worker: {e}")))?
            .map_err(|e| ApiError::field("upload", format!("the file {e}")))
    }

    /// The photo a completed upload makes for `car`.
    pub async fn photo_of(&self, upload: UploadId, car: CarId) -> Result<StoredPhoto, ApiError> {
        let row = self
            .get(upload)
            .await?
            .filter(|u| u.purpose == "car_photo")
            .ok_or_else(|| ApiError::field("uploadId", "is not a car photo upload"))?;
        if row.car_id != Some(car) {
            return Err(ApiError::field("uploadId", "was uploaded for another car"));
        }
        let Some(sha) = row.sha256.clone().filter(|_| row.status == "ready") else {
            return Err(ApiError::field("uploadId", "is not complete yet"));
        };
        let variants = row.variants();
        let of = |name: &str| variants.iter().find(|v| v.variant == name);
        let (Some(thumb), Some(large)) = (of("thumb"), of("large")) else {
            return Err(ApiError::internal(format!("upload {upload} has no derivatives")));
        };
        Ok(StoredPhoto {
            id: upload,
            url: self.store.public_url(&large.key),
            thumb_url: self.store.public_url(&thumb.key),
            sha256: sha,
            keys: variants.iter().map(|v| v.key.clone()).collect(),
            width: large.width,
            height: large.height,
            size: large.size,
        })
    }

    /// `PUT /uploads/{id}/content` (local store): the bytes of an upload, on a signed link.
    pub async fn receive(
        &self,
        req: &HttpRequest,
        id: UploadId,
        mut body: web::Payload,
    ) -> Result<(), ApiError> {
        let local = self.local.as_ref().ok_or(ApiError::NotFound)?;
        let row = self.get(id).await?.ok_or(ApiError::NotFound)?;
        let size = u64::try_from(row.size).unwrap_or(0);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let (expires, signature) = signed_query(req);
        if row.status != "pending"
            || !local.verify("PUT", &row.key(), content_type, size, expires, &signature)
            || content_type != row.content_type
        {
            return Err(ApiError::Forbidden);
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| ApiError::field("body", "the upload broke off"))?;
            if (bytes.len() + chunk.len()) as u64 > size {
                return Err(ApiError::PayloadTooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != size {
            return Err(ApiError::field("body", format!("must be exactly {size} bytes")));
        }
        local.put(&row.key(), bytes, &row.content_type, "").await?;
        Ok(())
    }

    /// `GET /media/{key}` (local store): public objects to anyone, private ones on a signed
    /// link.
    pub async fn serve(&self, req: &HttpRequest, key: &str) -> Result<HttpResponse, ApiError> {
        let local = self.local.as_ref().ok_or(ApiError::NotFound)?;
        if !crate::storage::is_key(key) {
            return Err(ApiError::NotFound);
        }
        let public = key.starts_with("cars/");
        if !public {
            let (expires, signature) = signed_query(req);
            if !local.verify("GET", key, "", 0, expires, &signature) {
                return Err(ApiError::NotFound);
            }
        }
        let bytes = local.get(key).await?.ok_or(ApiError::NotFound)?;
        let content_type = ["image/webp", "image/jpeg", "image/png", "application/pdf"]
            .into_iter()
            .find(|t| images::magic_matches(t, &bytes))
            .unwrap_or("application/octet-stream");
        let cache = if public { IMMUTABLE } else { "private, no-store" };
        Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, content_type))
            .insert_header((header::CACHE_CONTROL, cache))
            .body(bytes))
    }

    /// Objects in the store that no row needs and that are older than `older_than` (so an
    /// upload being completed right now is never taken): what `carrental media gc` lists.
    pub async fn garbage(&self, older_than: Duration) -> Result<Vec<Listed>, ApiError> {
        let before = time::now() - chrono::TimeDelta::from_std(older_than).unwrap_or_default();
        let listed = self.store.list("").await?;
        let needed = self.db.run(|conn| Ok(referenced(conn)?)).await?;
        Ok(listed
            .into_iter()
            .filter(|o| o.modified < before && !needed.contains(&o.key))
            .collect())
    }

    /// Deletes uploads never completed, with their objects.
    pub async fn forget_abandoned(&self) -> Result<usize, ApiError> {
        let before = db::to_db(
            time::now() - chrono::TimeDelta::from_std(self.abandon_after).unwrap_or_default(),
        );
        let stale: Vec<UploadRow> = self
            .db
            .run(move |conn| {
                Ok(uploads::table
                    .filter(uploads::status.eq("pending"))
                    .filter(uploads::created_at.lt(before))
                    .select(UploadRow::as_select())
                    .limit(500)
                    .load(conn)?)
            })
            .await?;
        for row in &stale {
            self.store.delete(&row.key()).await?;
            let id = row.id;
            self.db
                .write(move |conn| {
                    diesel::delete(uploads::table.find(id)).execute(conn)?;
                    Ok(())
                })
                .await?;
        }
        Ok(stale.len())
    }
}

/// `expires` and `signature` of a signed link's query.
fn signed_query(req: &HttpRequest) -> (i64, String) {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    // A parameter given twice is no signature at all.
    let find = |name: &str| {
        let mut values = query.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(v), None) => v.clone(),
            _ => String::new(),
        }
    };
    (find("expires").parse().unwrap_or(0), find("signature"))
}

pub fn get(conn: &mut DbConn, id: UploadId) -> QueryResult<Option<UploadRow>> {
    uploads::table
        .find(id)
        .select(UploadRow::as_select())
        .get_result(conn)
        .optional()
}

/// Every key a row still needs: uploads waiting for their bytes, damage photos (kept with
/// their bookings), licences, and the photos of cars not deleted.
fn referenced(conn: &mut DbConn) -> QueryResult<std::collections::HashSet<String>> {
    use crate::db::schema::{cars, licences};
    let mut keys = std::collections::HashSet::new();
    let kept: Vec<UploadRow> = uploads::table
        .filter(uploads::status.eq("pending").or(uploads::purpose.eq("damage_photo")))
        .select(UploadRow::as_select())
        .load(conn)?;
    keys.extend(kept.iter().flat_map(UploadRow::keys));
    keys.extend(licences::table.select(licences::object_key).load::<String>(conn)?);
    let photos: Vec<String> = cars::table
        .filter(cars::deleted_at.is_null())
        .filter(cars::photos.ne("[]"))
        .select(cars::photos)
        .load(conn)?;
    for list in photos {
        let list: Vec<StoredPhoto> = serde_json::from_str(&list).unwrap_or_default();
        keys.extend(list.into_iter().flat_map(|p| p.keys));
    }
    Ok(keys)
}

/// The completed damage photos of `booking` among `ids`.
pub fn damage_photos_of(
    conn: &mut DbConn,
    booking: crate::ids::BookingId,
    ids: &[UploadId],
) -> QueryResult<Vec<UploadRow>> {
    uploads::table
        .filter(uploads::id.eq_any(ids))
        .filter(uploads::purpose.eq("damage_photo"))
        .filter(uploads::status.eq("ready"))
        .filter(uploads::booking_id.eq(booking))
        .select(UploadRow::as_select())
        .load(conn)
}

/// Queues the deletion of objects, in the caller's transaction.
pub fn delete_later(conn: &mut DbConn, keys: &[String]) -> Result<(), ApiError> {
    for key in keys {
        outbox::enqueue(conn, DELETE_TOPIC, key)?;
    }
    Ok(())
}

/// Deletes the objects queued for deletion, retrying while the store is down.
pub fn spawn_deleter(db: Db, media: Arc<Media>, stop: Stop) -> tokio::task::JoinHandle<()> {
    let policy = Policy {
        max_attempts: 200,
        backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(600),
        lease: Duration::from_secs(120),
        poll: Duration::from_millis(500),
        batch: 20,
        keep_done: false,
    };
    tokio::spawn(outbox::run_worker(
        db,
        DELETE_TOPIC,
        policy,
        stop,
        move |jobs: Vec<Job>| {
            let media = media.clone();
            async move {
                let mut outcomes: Vec<Outcome> = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    outcomes.push(
                        media
                            .store
                            .delete(&job.payload)
                            .await
                            .map_err(|e| e.to_string().into()),
                    );
                }
                outcomes
            }
        },
        |_| {},
    ))
}

/// Every ten minutes (or `abandon_after`, when shorter): uploads left incomplete past
/// `abandon_after` go, with their objects.
pub fn spawn_sweeper(media: Arc<Media>, mut stop: Stop) -> tokio::task::JoinHandle<()> {
    let every = media.abandon_after.min(Duration::from_secs(600));
    tokio::spawn(async move {
        while !stop.requested() {
            if let Err(e) = media.forget_abandoned().await {
                tracing::warn!(error = %e, "cannot delete abandoned uploads");
            }
            stop.sleep(every).await;
        }
    })
}

/// `/health/ready`'s `storage`.
pub struct Readiness(pub Arc<Media>);

impl ReadinessCheck for Readiness {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let store = &self.0.store;
            crate::ops::provider_check(store.name(), store.ping()).await
        })
    }
}
