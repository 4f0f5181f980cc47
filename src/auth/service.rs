//! Auth rules: accounts, passwords, access tokens and rotating refresh tokens.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use async_trait::async_trait;
use diesel::Connection;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::sync::Semaphore;
use crate::ids::{RefreshTokenId, SessionId, UserId};

use super::model::{Email, Password, RefreshRow, TokenPair, User, UserRow};
use super::store;
use crate::config::AuthSettings;
use crate::db::{self, Db, DbConn};
use crate::error::{is_unique_violation, ApiError};
use crate::http::auth::{Accounts, Jwt, Role};
use crate::ports::{Contact, OutgoingMessage, Ports, UserDirectory};
use crate::telemetry::Metrics;
use crate::time;

const WRONG_CREDENTIALS: &str = "Invalid email or password";
const BAD_REFRESH: &str = "Invalid or expired refresh token";

pub struct AuthService {
    db: Db,
    ports: Ports,
    jwt: web::Data<Jwt>,
    metrics: web::Data<Metrics>,
    refresh_key: Vec<u8>,
    refresh_expiry: Duration,
    bcrypt_cost: u32,
    /// Turns at password hashing: it never takes every core, and a request that cannot get
    /// a turn within `bcrypt_wait` is a 503 rather than one more in an endless queue.
    bcrypt_gate: Arc<Semaphore>,
    bcrypt_wait: Duration,
    admin_emails: Vec<String>,
    /// Compared against when the email is unknown, so that costs what a wrong password costs.
    dummy_hash: String,
}

enum Refreshed {
    Rotated(Box<TokenPair>),
    Reused,
}

impl AuthService {
    /// Blocking: hashes the dummy password once.
    pub fn new(
        db: Db,
        ports: Ports,
        jwt: web::Data<Jwt>,
        metrics: web::Data<Metrics>,
        settings: &AuthSettings,
    ) -> Result<Self, ApiError> {
        let dummy_hash = bcrypt::hash("not-a-real-password-0", settings.bcrypt_rounds)
            .map_err(|e| ApiError::internal(format!("bcrypt: {e}")))?;
        Ok(AuthService {
            db,
            ports,
            jwt,
            metrics,
            refresh_key: settings.refresh_secret.as_bytes().to_vec(),
            refresh_expiry: settings.refresh_expiry,
            bcrypt_cost: settings.bcrypt_rounds,
            bcrypt_gate: Arc::new(Semaphore::new(settings.bcrypt_turns())),
            bcrypt_wait: settings.bcrypt_wait,
            admin_emails: settings
                .admin_emails
                .iter()
                .map(|e| Email::normalize(e))
                .collect(),
            dummy_hash,
        })
    }

    pub fn directory(&self) -> Directory {
        Directory::new(self.db.clone())
    }

    pub async fn signup(
        &self,
        email: Email,
        password: Password,
        name: Option<String>,
    ) -> Result<TokenPair, ApiError> {
        let hash = self.hash_password(password).await?;
        let role = if self.admin_emails.iter().any(|a| a == email.as_str()) {
            Role::Admin
        } else {
            Role::Customer
        };
        let now = db::to_db(time::now());
        let row = UserRow {
            id: UserId::random(),
            email: email.as_str().to_owned(),
            name,
            password_hash: hash,
            role,
            created_at: now,
            updated_at: now,
        };
        let tokens = self.new_session_tokens();
        let notifier = self.ports.notifier.clone();
        let pair = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    store::insert_user(conn, &row).map_err(|e| {
                        if is_unique_violation(&e) {
                            ApiError::conflict("An account with this email already exists")
                        } else {
                            e.into()
                        }
                    })?;
                    notifier.queue(conn, welcome(&row))?;
                    tokens(conn, &row)
                })
            })
            .await?;
        self.metrics.signups.inc();
        Ok(pair)
    }

    pub async fn login(&self, email: &str, password: String) -> Result<TokenPair, ApiError> {
        let email = Email::normalize(email);
        let user = self
            .db
            .run(move |conn| Ok(store::user_by_email(conn, &email)?))
            .await?;
        let hash = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        // Past 72 bytes bcrypt would compare only the first 72: such a password (which no
        // signup accepts) never matches.
        let matches = password.len() <= Password::MAX_BYTES
            && self
                .with_bcrypt(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await?;
        let user = match user {
            Some(user) if matches => user,
            _ => {
                self.metrics.logins.with_label_values(&["failure"]).inc();
                return Err(ApiError::Auth(WRONG_CREDENTIALS));
            }
        };
        let tokens = self.new_session_tokens();
        let pair = self.db.run(move |conn| tokens(conn, &user)).await?;
        self.metrics.logins.with_label_values(&["success"]).inc();
        Ok(pair)
    }

    /// Rotates a refresh token. A token presented after it was rotated is taken as stolen:
    /// its whole login session is revoked.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, ApiError> {
        let hash = self.hash_refresh(token);
        let fresh = self.random_token();
        let fresh_hash = self.hash_refresh(&fresh);
        let expiry = self.refresh_expiry;
        let jwt = self.jwt.clone();
        let outcome = self
            .db
            .write(move |conn| {
                let row =
                    store::refresh_by_hash(conn, &hash)?.ok_or(ApiError::Auth(BAD_REFRESH))?;
                let now = time::now();
                if row.rotated_at.is_some() {
                    store::revoke_session(conn, row.session_id, db::to_db(now))?;
                    return Ok(Refreshed::Reused);
                }
                if row.revoked_at.is_some() || db::from_db(row.expires_at) <= now {
                    return Err(ApiError::Auth(BAD_REFRESH));
                }
                if store::mark_rotated(conn, row.id, db::to_db(now))? == 0 {
                    store::revoke_session(conn, row.session_id, db::to_db(now))?;
                    return Ok(Refreshed::Reused);
                }
                let user =
                    store::user_by_id(conn, row.user_id)?.ok_or(ApiError::Auth(BAD_REFRESH))?;
                store::insert_refresh(
                    conn,
                    &refresh_row(user.id, row.session_id, fresh_hash, expiry),
                )?;
                Ok(Refreshed::Rotated(Box::new(TokenPair {
                    access_token: jwt.issue(user.id, user.role)?,
                    refresh_token: fresh,
                    token_type: "Bearer",
                    expires_in: jwt.expires_in_secs(),
                    user: None,
                })))
            })
            .await?;
        match outcome {
            Refreshed::Rotated(pair) => Ok(*pair),
            Refreshed::Reused => {
                tracing::warn!("refresh token reused; its session was revoked");
                Err(ApiError::Auth(BAD_REFRESH))
            }
        }
    }

    pub async fn logout(&self, token: &str) -> Result<(), ApiError> {
        let hash = self.hash_refresh(token);
        self.db
            .run(move |conn| Ok(store::revoke_token(conn, &hash, db::to_db(time::now()))?))
            .await
            .map(drop)
    }

    pub async fn me(&self, id: UserId) -> Result<User, ApiError> {
        self.db
            .run(move |conn| store::user_by_id(conn, id).map_err(ApiError::from))
            .await?
            .map(|u| u.to_api())
            .ok_or(ApiError::Auth("Account no longer exists"))
    }

    /// Creates an admin, or promotes an existing account and sets its password.
    /// Returns the user and whether it was created.
    pub async fn create_admin(
        &self,
        email: Email,
        password: Password,
        name: Option<String>,
    ) -> Result<(User, bool), ApiError> {
        let hash = self.hash_password(password).await?;
        self.db
            .write(move |conn| {
                let now = db::to_db(time::now());
                if let Some(user) = store::user_by_email(conn, email.as_str())? {
                    store::set_password_and_role(conn, user.id, &hash, Role::Admin, now)?;
                    let user = store::user_by_id(conn, user.id)?.ok_or(ApiError::NotFound)?;
                    return Ok((user.to_api(), false));
                }
                let row = UserRow {
                    id: UserId::random(),
                    email: email.as_str().to_owned(),
                    name,
                    password_hash: hash,
                    role: Role::Admin,
                    created_at: now,
                    updated_at: now,
                };
                store::insert_user(conn, &row)?;
                Ok((row.to_api(), true))
            })
            .await
    }

    async fn hash_password(&self, password: Password) -> Result<String, ApiError> {
        let cost = self.bcrypt_cost;
        self.with_bcrypt(move || bcrypt::hash(password.expose(), cost))
            .await?
            .map_err(|e| ApiError::internal(format!("bcrypt: {e}")))
    }

    /// Runs password hashing off the async workers, when it gets a turn.
    async fn with_bcrypt<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let turn = tokio::time::timeout(self.bcrypt_wait, self.bcrypt_gate.clone().acquire_owned())
            .await
            .map_err(|_| {
                self.metrics.bcrypt_busy.inc();
                ApiError::Overloaded
            })?
            .map_err(|e| ApiError::internal(format!("bcrypt gate: {e}")))?;
        tokio::task::spawn_blocking(move || {
            // The turn is given back when the work is done, even if the request went away.
            let _turn = turn;
            work()
        })
        .await
        .map_err(|e| ApiError::internal(format!("bcrypt task: {e}")))
    }

    /// What a new login session needs, ready to run inside the caller's transaction.
    fn new_session_tokens(
        &self,
    ) -> impl FnOnce(&mut DbConn, &UserRow) -> Result<TokenPair, ApiError> + Send + 'static {
        let refresh = self.random_token();
        let hash = self.hash_refresh(&refresh);
        let expiry = self.refresh_expiry;
        let jwt = self.jwt.clone();
        move |conn, user| {
            let session = SessionId::random();
            store::insert_refresh(conn, &refresh_row(user.id, session, hash, expiry))?;
            Ok(TokenPair {
                access_token: jwt.issue(user.id, user.role)?,
                refresh_token: refresh,
                token_type: "Bearer",
                expires_in: jwt.expires_in_secs(),
                user: Some(user.to_api()),
            })
        }
    }

    /// 256 random bits, hex encoded.
    fn random_token(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// Refresh tokens are stored only as a keyed hash.
    fn hash_refresh(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.refresh_key)
            .expect("HMAC accepts keys of any length");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn welcome(user: &UserRow) -> OutgoingMessage {
    let greeting = user.name.as_deref().unwrap_or(&user.email);
    OutgoingMessage::new(
        user.id,
        "welcome",
        &user.email,
        "Welcome to Car Rental".into(),
        &[
            format!("Hello {greeting},"),
            format!("your Car Rental account {} is ready.", user.email),
            "You can now find a car near you and book it.".into(),
        ],
    )
}

/// The in-process `UserDirectory`.
pub struct Directory {
    db: Db,
}

impl Directory {
    pub fn new(db: Db) -> Self {
        Directory { db }
    }
}

#[async_trait]
impl Accounts for Directory {
    async fn exists(&self, user_id: UserId) -> Result<bool, ApiError> {
        self.db
            .run(move |conn| Ok(store::user_exists(conn, user_id)?))
            .await
    }
}

#[async_trait]
impl UserDirectory for Directory {
    async fn contact(&self, user_id: UserId) -> Result<Option<Contact>, ApiError> {
        self.db
            .run(move |conn| {
                Ok(
                    store::user_by_id(conn, user_id)?.map(|u| Contact {
                        email: u.email,
                        name: u.name,
                    }),
                )
            })
            .await
    }

    async fn admins(&self) -> Result<Vec<(UserId, Contact)>, ApiError> {
        self.db
            .run(move |conn| {
                Ok(store::admins(conn)?
                    .into_iter()
                    .map(|u| {
                        (
                            u.id,
                            Contact {
                                email: u.email,
                                name: u.name,
                            },
                        )
                    })
                    .collect())
            })
            .await
    }
}

fn refresh_row(
    user_id: UserId,
    session_id: SessionId,
    token_hash: String,
    expiry: Duration,
) -> RefreshRow {
    let now = time::now();
    let expires = now + chrono::Duration::from_std(expiry).unwrap_or(chrono::Duration::days(7));
    RefreshRow {
        id: RefreshTokenId::random(),
        user_id,
        session_id,
        token_hash,
        expires_at: db::to_db(expires),
        rotated_at: None,
        revoked_at: None,
        created_at: db::to_db(now),
    }
}
