//! `Idempotency-Key` on `POST /bookings`: the first answer to (user, key) is kept and
//! replayed byte for byte; the same key with another body is 422; 5xx answers are not kept.

use std::future::Future;
use std::time::Duration;

use chrono::TimeDelta;
use sha2::{Digest, Sha256};
use actix_web::HttpRequest;

use crate::ids::UserId;

use super::store::{self, KeyRow};
use diesel::Connection;

use crate::db::{self, Db};
use crate::error::{is_unique_violation, ApiError};
use crate::time;

const MAX_KEY_LEN: usize = 255;
/// How long a finished answer is kept.
const KEEP: TimeDelta = TimeDelta::hours(24);
/// An unfinished claim older than this belonged to a request whose process died.
const ABANDONED: TimeDelta = TimeDelta::seconds(60);
/// How long a request waits for a simultaneous one with the same key to finish.
const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(25);

/// The request's `Idempotency-Key`, if it sent one: 1 to 255 visible ASCII characters,
/// spaces only inside (else a 400 naming the header).
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.as_bytes();
    let visible = |b: &u8| (0x21..=0x7E).contains(b);
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.first().is_some_and(visible)
        && key.last().is_some_and(visible)
        && key.iter().all(|b| visible(b) || *b == b' ');
    match (ok, value.to_str()) {
        (true, Ok(k)) => Ok(Some(k.to_owned())),
        _ => Err(ApiError::field(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters (spaces only inside)",
        )),
    }
}

/// An answer as sent: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

enum Claim {
    Ours,
    Done(Answer),
    Mismatch,
    InProgress,
}

/// The hash of a JSON body, the same for the same document however it is spaced.
pub fn body_hash(body: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

/// Runs `work` once per (user, key) and answers every request with that key alike.
pub async fn once<F>(
    db: &Db,
    user: UserId,
    key: &str,
    hash: String,
    work: F,
) -> Result<Answer, ApiError>
where
    F: Future<Output = Answer>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match claim(db, user, key, &hash).await? {
            Claim::Ours => break,
            Claim::Done(answer) => return Ok(answer),
            Claim::Mismatch => return Err(ApiError::IdempotencyMismatch),
            Claim::InProgress if tokio::time::Instant::now() >= deadline => {
                return Err(ApiError::conflict(
                    "A request with this Idempotency-Key is still in progress",
                ))
            }
            Claim::InProgress => tokio::time::sleep(POLL).await,
        }
    }
    let answer = work.await;
    let (key, kept) = (key.to_owned(), answer.clone());
    db.writing(move |conn| {
        if kept.status >= 500 {
            store::delete_key(conn, user, &key)?;
        } else {
            store::complete_key(conn, user, &key, i32::from(kept.status), &kept.body)?;
        }
        Ok(())
    })
    .await?;
    Ok(answer)
}

async fn claim(db: &Db, user: UserId, key: &str, hash: &str) -> Result<Claim, ApiError> {
    let (key, hash) = (key.to_owned(), hash.to_owned());
    db.write(move |conn| {
        let now = time::now();
        store::expire_keys(
            conn,
            user,
            db::to_db(now - KEEP),
            db::to_db(now - ABANDONED),
        )?;
        if let Some(row) = store::get_key(conn, user, &key)? {
            return Ok(
                match (row.request_hash == hash, row.status_code, row.response) {
                    (false, _, _) => Claim::Mismatch,
                    (true, Some(status), Some(body)) => Claim::Done(Answer {
                        status: u16::try_from(status).unwrap_or(500),
                        body,
                    }),
                    _ => Claim::InProgress,
                },
            );
        }
        let row = KeyRow {
            user_id: user,
            key: key.clone(),
            request_hash: hash.clone(),
            status_code: None,
            response: None,
            created_at: db::to_db(now),
        };
        // In a savepoint, so that losing the race leaves the transaction usable.
        match conn.transaction(|conn| store::insert_key(conn, &row)) {
            Ok(()) => Ok(Claim::Ours),
            // Someone claimed it between our read and our insert (PostgreSQL).
            Err(e) if is_unique_violation(&e) => Ok(Claim::InProgress),
            Err(e) => Err(e.into()),
        }
    })
    .await
}
