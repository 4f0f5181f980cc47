//! Driving licences (API.md, "Where it lands"): a customer's completed `licence` upload,
//! private, shown on presigned links that last 5 minutes to its owner and to admins, and
//! verified or rejected by the desk. `REQUIRE_VERIFIED_LICENCE` makes bookings ask
//! [`is_verified`] (through the catalogue port) before a pickup.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::uploads::{delete_later, get as uploads_get, Media, UploadRow};
use crate::db::schema::{licences, uploads};
use crate::db::{self, DbConn};
use crate::error::ApiError;
use crate::http::required_id;
use crate::ids::{UploadId, UserId};
use crate::time;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = licences)]
struct LicenceRow {
    user_id: UserId,
    upload_id: UploadId,
    /// What the links open: the PDF as sent, or an image's `large` WebP version.
    object_key: String,
    status: String,
    note: Option<String>,
    updated_at: NaiveDateTime,
}

/// A licence as its owner and admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Licence {
    #[schema(example = "pending")]
    pub status: String,
    /// A presigned link to the document, valid until `expiresAt` (5 minutes).
    pub url: String,
    pub expires_at: DateTime<Utc>,
    /// Why it was rejected, or what the desk noted.
    pub note: Option<String>,
}

/// `PUT /me/licence`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetLicence {
    /// A completed `licence` upload of the caller's.
    #[schema(required = true, value_type = uuid::Uuid)]
    pub upload_id: Option<String>,
}

/// `POST /admin/users/{id}/licence`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ReviewLicence {
    /// `verified` or `rejected`.
    #[schema(required = true, value_type = String, example = "verified")]
    pub status: Option<String>,
    /// Up to 500 characters.
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

fn get(conn: &mut DbConn, user: UserId) -> QueryResult<Option<LicenceRow>> {
    licences::table
        .find(user)
        .select(LicenceRow::as_select())
        .get_result(conn)
        .optional()
}

impl Media {
    fn licence_view(&self, row: LicenceRow) -> Licence {
        let link = self.store.presign_get(&row.object_key);
        Licence {
            status: row.status,
            url: link.url,
            expires_at: link.expires_at,
            note: row.note,
        }
    }

    /// Sets the caller's licence to one of their completed `licence` uploads, replacing any
    /// earlier one (whose objects go) and waiting for the desk again.
    pub async fn set_licence(&self, user: UserId, input: SetLicence) -> Result<Licence, ApiError> {
        let not_usable = || ApiError::field("uploadId", "must be a completed licence upload of yours");
        let upload: UploadId = required_id("uploadId", input.upload_id.as_deref())?;
        let row = self
            .get(upload)
            .await?
            .filter(|u| u.user_id == user && u.purpose == "licence" && u.status == "ready")
            .ok_or_else(not_usable)?;
        let object_key = row
            .variant_key("large")
            .unwrap_or_else(|| row.key());
        let licence = LicenceRow {
            user_id: user,
            upload_id: upload,
            object_key,
            status: "pending".into(),
            note: None,
            updated_at: db::to_db(time::now()),
        };
        let written = licence.clone();
        self.db()
            .write(move |conn| {
                // The licence it replaces goes, objects and all.
                if let Some(earlier) = get(conn, written.user_id)?
                    .filter(|e| e.upload_id != written.upload_id)
                {
                    if let Some(old) = uploads_get(conn, earlier.upload_id)? {
                        delete_later(conn, &old.keys())?;
                    }
                }
                diesel::delete(licences::table.find(written.user_id)).execute(conn)?;
                diesel::insert_into(licences::table)
                    .values(&written)
                    .execute(conn)?;
                Ok(())
            })
            .await?;
        Ok(self.licence_view(licence))
    }

    /// The user's licence with a fresh link; 404 when they have none.
    pub async fn licence(&self, user: UserId) -> Result<Licence, ApiError> {
        let row = self
            .db()
            .run(move |conn| Ok(get(conn, user)?))
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(self.licence_view(row))
    }

    /// The desk's verdict on a user's licence.
    pub async fn review_licence(&self, user: UserId, input: ReviewLicence) -> Result<Licence, ApiError> {
        let mut errors = Vec::new();
        let status = match input.status.as_deref() {
            Some(s @ ("verified" | "rejected")) => Some(s.to_owned()),
            Some(_) => {
                errors.push(crate::error::FieldError::new("status", "must be verified or rejected"));
                None
            }
            None => {
                errors.push(crate::error::FieldError::new("status", "is required"));
                None
            }
        };
        let note = match input.note.as_deref().map(|n| crate::http::schema::text(n, 500)) {
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                errors.push(crate::error::FieldError::new("note", e));
                None
            }
            None => None,
        };
        crate::http::check(errors)?;
        let status = status.unwrap_or_default();
        let row = self
            .db()
            .write(move |conn| {
                let mut row = get(conn, user)?.ok_or(ApiError::NotFound)?;
                row.status = status;
                row.note = note;
                row.updated_at = db::to_db(time::now());
                diesel::update(licences::table.find(user))
                    .set((
                        licences::status.eq(&row.status),
                        licences::note.eq(&row.note),
                        licences::updated_at.eq(row.updated_at),
                    ))
                    .execute(conn)?;
                Ok(row)
            })
            .await?;
        Ok(self.licence_view(row))
    }
}

/// Removes the user's licence and every licence document they uploaded, queueing their
/// objects' deletion, in one transaction (the account is leaving).
pub fn forget(conn: &mut DbConn, user: UserId) -> Result<(), ApiError> {
    let documents: Vec<UploadRow> = uploads::table
        .filter(uploads::user_id.eq(user))
        .filter(uploads::purpose.eq("licence"))
        .select(UploadRow::as_select())
        .load(conn)?;
    for document in &documents {
        delete_later(conn, &document.keys())?;
    }
    diesel::delete(licences::table.find(user)).execute(conn)?;
    let ids: Vec<UploadId> = documents.iter().map(|d| d.id).collect();
    diesel::delete(uploads::table.filter(uploads::id.eq_any(&ids))).execute(conn)?;
    Ok(())
}

/// Whether the user has a licence the desk verified.
pub fn is_verified(conn: &mut DbConn, user: UserId) -> QueryResult<bool> {
    Ok(get(conn, user)?.is_some_and(|l| l.status == "verified"))
}
