//! Auth rules: accounts, passwords, access tokens and rotating refresh tokens.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use async_trait::async_trait;
use chrono::Timelike;
use diesel::Connection;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::sync::Semaphore;
use crate::ids::{AccountTokenId, PhoneCodeId, RefreshTokenId, SessionId, UserId};
use subtle::ConstantTimeEq;

use super::model::{
    AccountTokenRow, Email, MeChanges, Origin, Password, PhoneCodeRow, RefreshRow, Session,
    SessionRow, TokenKind, TokenPair, User, UserRow,
};
use super::store;
use crate::config::AuthSettings;
use crate::db::{self, Db, DbConn};
use crate::error::{is_unique_violation, ApiError};
use crate::http::auth::{Accounts, AuthUser, Jwt, Role};
use crate::http::oidc::Identity;
use crate::ports::{Contact, Locale, OutgoingMessage, Ports, UserDirectory};
use crate::telemetry::Metrics;
use crate::time;

const WRONG_CREDENTIALS: &str = "Invalid email or password";
const BAD_REFRESH: &str = "Invalid or expired refresh token";
const GONE: &str = "Account no longer exists";

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
    /// Where links in emails point.
    link_base: String,
    /// This server's own accounts are on (`AUTH_PROVIDER` has `local`).
    local: bool,
    verify_ttl: Duration,
    reset_ttl: Duration,
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
        link_base: String,
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
            link_base,
            local: settings.local(),
            verify_ttl: settings.verify_email_ttl,
            reset_ttl: settings.reset_password_ttl,
        })
    }

    /// The routes of this server's own accounts are not there without them (404).
    pub fn local_accounts(&self) -> Result<(), ApiError> {
        if self.local {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }

    pub fn directory(&self) -> Directory {
        Directory::new(self.db.clone())
    }

    /// Creates a customer account with its address still to verify. `ADMIN_EMAILS` grants
    /// nothing here: whoever signs up first with an admin's address is not its owner.
    pub async fn signup(
        &self,
        email: Email,
        password: Password,
        name: Option<String>,
        locale: Locale,
        origin: Origin,
    ) -> Result<TokenPair, ApiError> {
        let hash = self.hash_password(password).await?;
        let row = UserRow {
            locale,
            ..UserRow::local(&email, name, hash, Role::Customer)
        };
        let tokens = self.new_session_tokens(origin);
        let verify = self.emailed_token(TokenKind::VerifyEmail);
        let notifier = self.ports.notifier.clone();
        let pair = self
            .db
            .write(move |conn| {
                store::insert_user(conn, &row).map_err(|e| {
                    if is_unique_violation(&e) {
                        ApiError::conflict("An account with this email already exists")
                    } else {
                        e.into()
                    }
                })?;
                notifier.queue(conn, welcome(&row, email.as_str()))?;
                let message = verify(conn, &row, email.as_str())?;
                notifier.queue(conn, message)?;
                tokens(conn, &row)
            })
            .await?;
        self.metrics.signups.inc();
        Ok(pair)
    }

    pub async fn login(
        &self,
        email: &str,
        password: String,
        origin: Origin,
    ) -> Result<TokenPair, ApiError> {
        let email = Email::normalize(email);
        let user = self
            .db
            .run(move |conn| Ok(store::user_by_email(conn, &email)?))
            .await?;
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self.password_matches(password, hash).await?;
        let user = match user {
            Some(user) if matches && user.password_hash.is_some() => user,
            _ => {
                self.metrics.logins.with_label_values(&["failure"]).inc();
                return Err(ApiError::Auth(WRONG_CREDENTIALS));
            }
        };
        let tokens = self.new_session_tokens(origin);
        let pair = self.db.write(move |conn| tokens(conn, &user)).await?;
        self.metrics.logins.with_label_values(&["success"]).inc();
        Ok(pair)
    }

    /// Rotates a refresh token. A token presented after it was rotated is taken as stolen:
    /// its whole login session is revoked.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, ApiError> {
        let hash = self.keyed_hash(token);
        let fresh = self.random_token();
        let fresh_hash = self.keyed_hash(&fresh);
        let expiry = self.refresh_expiry;
        let jwt = self.jwt.clone();
        let outcome = self
            .db
            .write(move |conn| {
                let row =
                    store::refresh_by_hash(conn, &hash)?.ok_or(ApiError::Auth(BAD_REFRESH))?;
                let now = time::now();
                if row.rotated_at.is_some() {
                    store::end_session(conn, row.session_id, db::to_db(now))?;
                    return Ok(Refreshed::Reused);
                }
                if row.revoked_at.is_some() || db::from_db(row.expires_at) <= now {
                    return Err(ApiError::Auth(BAD_REFRESH));
                }
                // The session's row first, then its tokens', as every path that ends a
                // session takes them: two refreshes of one token never wait on each other
                // in opposite orders.
                store::touch_session(conn, row.session_id, db::to_db(now))?;
                if store::mark_rotated(conn, row.id, db::to_db(now))? == 0 {
                    store::end_session(conn, row.session_id, db::to_db(now))?;
                    return Ok(Refreshed::Reused);
                }
                let user =
                    store::user_by_id(conn, row.user_id)?.ok_or(ApiError::Auth(BAD_REFRESH))?;
                store::insert_refresh(
                    conn,
                    &refresh_row(user.id, row.session_id, fresh_hash, expiry),
                )?;
                Ok(Refreshed::Rotated(Box::new(TokenPair {
                    access_token: jwt.issue(user.id, user.role, row.session_id)?,
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

    /// Ends the login session of the refresh token (its access tokens stop too).
    pub async fn logout(&self, token: &str) -> Result<(), ApiError> {
        let hash = self.keyed_hash(token);
        self.db
            .write(move |conn| {
                if let Some(row) = store::refresh_by_hash(conn, &hash)? {
                    store::end_session(conn, row.session_id, db::to_db(time::now()))?;
                }
                Ok(())
            })
            .await
    }

    pub async fn me(&self, id: UserId) -> Result<User, ApiError> {
        Ok(self.user(id).await?.to_api())
    }

    /// Changes the caller's language or phone number. A new number is stored unverified and
    /// gets a code by SMS (at most [`PHONE_CODES_PER_HOUR`]; the next is a 429 and changes
    /// nothing); the same number again, still unverified, gets a new code.
    pub async fn update_me(&self, id: UserId, changes: MeChanges) -> Result<User, ApiError> {
        let key = self.refresh_key.clone();
        let notifier = self.ports.notifier.clone();
        self.db
            .write(move |conn| {
                let now = time::now();
                let user = store::user_by_id(conn, id)?.ok_or(ApiError::NotFound)?;
                if let Some(locale) = changes.locale {
                    store::set_locale(conn, id, locale, db::to_db(now))?;
                }
                match changes.phone {
                    None => {}
                    Some(None) => store::set_phone(conn, id, None, false, db::to_db(now))?,
                    Some(Some(phone)) if user.phone.as_deref() == Some(&phone) && user.phone_verified => {}
                    Some(Some(phone)) => {
                        let hour = chrono::Duration::hours(1);
                        let sent = store::phone_codes_since(conn, id, db::to_db(now - hour))?;
                        if sent.len() >= PHONE_CODES_PER_HOUR {
                            let free_at = db::from_db(sent[sent.len() - PHONE_CODES_PER_HOUR]) + hour;
                            return Err(ApiError::retry_after((free_at - now).num_seconds().max(1)));
                        }
                        store::set_phone(conn, id, Some(&phone), false, db::to_db(now))?;
                        let code = format!("{:06}", rand::random_range(0..1_000_000u32));
                        let code_id = PhoneCodeId::random();
                        let row = PhoneCodeRow {
                            id: code_id,
                            user_id: id,
                            phone: phone.clone(),
                            code_hash: phone_code_hash(&key, code_id, &code),
                            tries: 0,
                            expires_at: db::to_db(now + PHONE_CODE_TTL),
                            used_at: None,
                            created_at: db::to_db(now),
                        };
                        store::insert_phone_code(conn, &row)?;
                        let mut to = contact(&user, user.email.as_deref().unwrap_or(""));
                        to.phone = Some(phone);
                        if let Some(locale) = changes.locale {
                            to.locale = locale;
                        }
                        notifier.queue(conn, OutgoingMessage::new(id, "phone_code", &to).with("code", code))?;
                    }
                }
                let user = store::user_by_id(conn, id)?.ok_or(ApiError::NotFound)?;
                Ok(user.to_api())
            })
            .await
    }

    /// Checks the code sent to the caller's number. A wrong one is a 400 naming `code`;
    /// after the fifth the code is dead, right digits or not.
    pub async fn verify_phone(&self, id: UserId, code: String) -> Result<User, ApiError> {
        let key = self.refresh_key.clone();
        let verified = self
            .db
            .write(move |conn| {
                let now = db::to_db(time::now());
                let user = store::user_by_id(conn, id)?.ok_or(ApiError::NotFound)?;
                let phone = user.phone.clone().ok_or(ApiError::InvalidToken)?;
                let sent = store::latest_phone_code(conn, id, &phone)?.ok_or(ApiError::InvalidToken)?;
                if !store::spend_phone_try(conn, sent.id, PHONE_CODE_TRIES, now)? {
                    return Err(ApiError::InvalidToken);
                }
                let given = phone_code_hash(&key, sent.id, &code);
                if !bool::from(given.as_bytes().ct_eq(sent.code_hash.as_bytes())) {
                    // The try is spent: this transaction commits.
                    return Ok(None);
                }
                store::use_phone_code(conn, sent.id, now)?;
                store::set_phone(conn, id, Some(&phone), true, now)?;
                let user = store::user_by_id(conn, id)?.ok_or(ApiError::NotFound)?;
                Ok(Some(user.to_api()))
            })
            .await?;
        verified.ok_or_else(|| ApiError::field("code", "is not the code sent by SMS"))
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
                // Whoever runs this command holds the database: the address counts as theirs.
                if let Some(user) = store::user_by_email(conn, email.as_str())? {
                    // Tokens count from the whole second (their `iat`): a login right after
                    // this command, in the same second, must work.
                    let valid_after = whole_second(time::now());
                    store::set_password(conn, user.id, &hash, valid_after, now)?;
                    store::set_role(conn, user.id, Role::Admin, now)?;
                    store::set_email_verified(conn, user.id, now)?;
                    store::revoke_sessions(conn, user.id, None, now)?;
                    let user = store::user_by_id(conn, user.id)?.ok_or(ApiError::NotFound)?;
                    return Ok((user.to_api(), false));
                }
                let mut row = UserRow::local(&email, name, hash, Role::Admin);
                row.email_verified = true;
                store::insert_user(conn, &row)?;
                Ok((row.to_api(), true))
            })
            .await
    }

    /// Marks the address the token was sent to as verified.
    pub async fn verify_email(&self, token: &str) -> Result<User, ApiError> {
        let hash = self.keyed_hash(token);
        self.db
            .write(move |conn| {
                let now = db::to_db(time::now());
                let used = store::use_token(conn, TokenKind::VerifyEmail, &hash, now)?
                    .ok_or(ApiError::InvalidToken)?;
                let user = store::user_by_id(conn, used.user_id)?.ok_or(ApiError::InvalidToken)?;
                // A link sent to an address the account no longer has proves nothing.
                if user.email.as_deref() != Some(used.email.as_str()) {
                    return Err(ApiError::InvalidToken);
                }
                store::set_email_verified(conn, user.id, now)?;
                let user = store::user_by_id(conn, user.id)?.ok_or(ApiError::InvalidToken)?;
                Ok(user.to_api())
            })
            .await
    }

    /// Sends a new verification link (the earlier one dies); nothing when the address is
    /// verified already or the account has none.
    pub async fn resend_verification(&self, user: UserId) -> Result<(), ApiError> {
        let verify = self.emailed_token(TokenKind::VerifyEmail);
        let notifier = self.ports.notifier.clone();
        self.db
            .write(move |conn| {
                let user = store::user_by_id(conn, user)?.ok_or(ApiError::NotFound)?;
                match user.email.clone() {
                    Some(email) if !user.email_verified => {
                        let message = verify(conn, &user, &email)?;
                        notifier.queue(conn, message)
                    }
                    _ => Ok(()),
                }
            })
            .await
    }

    /// Sends a reset link when the address has a local account. The caller answers the
    /// same at once either way: this runs after the answer, so neither the body nor the time
    /// tells whether the account exists.
    pub async fn forgot_password(&self, email: String) -> Result<(), ApiError> {
        let reset = self.emailed_token(TokenKind::PasswordReset);
        let notifier = self.ports.notifier.clone();
        self.db
            .write(move |conn| {
                let Some(user) = store::user_by_email(conn, &email)? else {
                    return Ok(());
                };
                if user.oidc_issuer.is_some() && user.password_hash.is_none() {
                    return Ok(());
                }
                let message = reset(conn, &user, &email)?;
                notifier.queue(conn, message)
            })
            .await
    }

    /// Sets a new password from a reset link: the mailbox's owner is now proven, so the
    /// address counts as verified and, when `ADMIN_EMAILS` lists it, the account becomes an
    /// admin; every earlier session and access token stops working. Answers a new session.
    pub async fn reset_password(
        &self,
        token: &str,
        password: Password,
        origin: Origin,
    ) -> Result<TokenPair, ApiError> {
        let hash = self.keyed_hash(token);
        let password_hash = self.hash_password(password).await?;
        let tokens = self.new_session_tokens(origin);
        let admins = self.admin_emails.clone();
        let notifier = self.ports.notifier.clone();
        self.db
            .write(move |conn| {
                let now = time::now();
                let at = db::to_db(now);
                let used = store::use_token(conn, TokenKind::PasswordReset, &hash, at)?
                    .ok_or(ApiError::InvalidToken)?;
                let user = store::user_by_id(conn, used.user_id)?.ok_or(ApiError::InvalidToken)?;
                if user.email.as_deref() != Some(used.email.as_str()) {
                    return Err(ApiError::InvalidToken);
                }
                store::set_password(conn, user.id, &password_hash, whole_second(now), at)?;
                store::set_email_verified(conn, user.id, at)?;
                if admins.contains(&used.email) {
                    store::set_role(conn, user.id, Role::Admin, at)?;
                }
                store::revoke_sessions(conn, user.id, None, at)?;
                notifier.queue(conn, password_changed(&user, &used.email))?;
                let user = store::user_by_id(conn, user.id)?.ok_or(ApiError::InvalidToken)?;
                tokens(conn, &user)
            })
            .await
    }

    /// Changes the caller's password. Every session and every access token issued before
    /// stops working; the caller goes on in a new session, whose pair is the answer.
    pub async fn change_password(
        &self,
        caller: AuthUser,
        current: String,
        new: Password,
        origin: Origin,
    ) -> Result<TokenPair, ApiError> {
        let user = self.user(caller.id).await?;
        let Some(stored) = user.password_hash.clone() else {
            return Err(ApiError::conflict(
                "This account signs in through its identity provider and has no password here",
            ));
        };
        if !self.password_matches(current, stored).await? {
            return Err(ApiError::field("currentPassword", "is not the account's password"));
        }
        let password_hash = self.hash_password(new).await?;
        let tokens = self.new_session_tokens(origin);
        let notifier = self.ports.notifier.clone();
        let mut pair = self
            .db
            .write(move |conn| {
                let now = time::now();
                let at = db::to_db(now);
                let user = store::user_by_id(conn, caller.id)?.ok_or(ApiError::Auth(GONE))?;
                store::set_password(conn, user.id, &password_hash, whole_second(now), at)?;
                store::revoke_sessions(conn, user.id, None, at)?;
                if let Some(email) = &user.email {
                    notifier.queue(conn, password_changed(&user, email))?;
                }
                tokens(conn, &user)
            })
            .await?;
        pair.user = None;
        Ok(pair)
    }

    /// The caller's live sessions, newest first.
    pub async fn sessions(&self, caller: AuthUser) -> Result<Vec<Session>, ApiError> {
        let since = time::now()
            - chrono::Duration::from_std(self.refresh_expiry).unwrap_or(chrono::Duration::days(7));
        let rows = self
            .db
            .run(move |conn| Ok(store::sessions_of(conn, caller.id, db::to_db(since))?))
            .await?;
        Ok(rows.iter().map(|r| r.to_api(caller.session)).collect())
    }

    /// Revokes one of the caller's sessions; another user's is not found.
    pub async fn revoke_session(&self, caller: UserId, session: SessionId) -> Result<(), ApiError> {
        let theirs = self
            .db
            .write(move |conn| {
                Ok(store::revoke_session(conn, caller, session, db::to_db(time::now()))?)
            })
            .await?;
        if theirs {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// Revokes every session of the caller, the current one included.
    pub async fn logout_all(&self, caller: UserId) -> Result<(), ApiError> {
        self.db
            .write(move |conn| {
                Ok(store::revoke_sessions(conn, caller, None, db::to_db(time::now()))?)
            })
            .await
            .map(drop)
    }

    /// Closes the caller's account: refused while bookings says something is outstanding;
    /// the licence goes (with its documents), then the account is anonymised, its sessions
    /// revoked and its push subscriptions deleted in one transaction. Bookings and payment
    /// records stay, under the anonymous id.
    pub async fn leave(&self, caller: UserId, password: Option<String>) -> Result<(), ApiError> {
        let user = self.user(caller).await?;
        if let Some(stored) = user.password_hash.clone() {
            let Some(given) = password else {
                return Err(ApiError::field("password", "is required to close the account"));
            };
            if !self.password_matches(given, stored).await? {
                return Err(ApiError::field("password", "is not the account's password"));
            }
        }
        if let Some(why) = self.ports.availability.outstanding(caller).await? {
            return Err(ApiError::conflict(format!(
                "The account cannot be closed while it has {why}"
            )));
        }
        self.ports.catalog.forget_licence(caller).await?;
        let notifier = self.ports.notifier.clone();
        self.db
            .write(move |conn| {
                store::anonymise(conn, caller, db::to_db(time::now()))?;
                notifier.forget(conn, caller)
            })
            .await?;
        self.metrics.accounts_closed.inc();
        Ok(())
    }

    /// Everything stored about the caller, as one JSON document.
    pub async fn export(&self, caller: UserId) -> Result<serde_json::Value, ApiError> {
        let booked = self.ports.availability.personal_data(caller).await?;
        let notifier = self.ports.notifier.clone();
        let (user, sessions, sent) = self
            .db
            .run(move |conn| {
                let user = store::user_by_id(conn, caller)?.ok_or(ApiError::Auth(GONE))?;
                let sessions = store::all_sessions_of(conn, caller)?;
                let sent = notifier.personal_data(conn, caller)?;
                Ok((user, sessions, sent))
            })
            .await?;
        let sessions: Vec<serde_json::Value> = sessions
            .iter()
            .map(|s| {
                let mut one = serde_json::json!(s.to_api(None));
                if let Some(object) = one.as_object_mut() {
                    object.remove("current");
                    object.insert(
                        "revokedAt".into(),
                        serde_json::json!(s.revoked_at.map(db::from_db)),
                    );
                }
                one
            })
            .collect();
        Ok(serde_json::json!({
            "exportedAt": time::now(),
            "profile": user.to_api(),
            "sessions": sessions,
            "bookings": booked["bookings"],
            "payments": booked["payments"],
            "messages": sent["messages"],
            "subscriptions": sent["subscriptions"],
        }))
    }

    async fn user(&self, id: UserId) -> Result<UserRow, ApiError> {
        self.db
            .run(move |conn| Ok(store::user_by_id(conn, id)?))
            .await?
            .ok_or(ApiError::Auth(GONE))
    }

    /// Whether `given` is the password of `hash`. Past 72 bytes bcrypt would compare only
    /// the first 72: such a password (which no rule accepts) never matches.
    async fn password_matches(&self, given: String, hash: String) -> Result<bool, ApiError> {
        if given.len() > Password::MAX_BYTES {
            return Ok(false);
        }
        self.with_bcrypt(move || bcrypt::verify(given, &hash).unwrap_or(false))
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
        origin: Origin,
    ) -> impl FnOnce(&mut DbConn, &UserRow) -> Result<TokenPair, ApiError> + Send + 'static {
        let refresh = self.random_token();
        let hash = self.keyed_hash(&refresh);
        let expiry = self.refresh_expiry;
        let jwt = self.jwt.clone();
        move |conn, user| {
            let now = db::to_db(time::now());
            let session = SessionRow {
                id: SessionId::random(),
                user_id: user.id,
                created_at: now,
                last_used_at: now,
                user_agent: origin.user_agent,
                ip: origin.ip,
                revoked_at: None,
            };
            store::insert_session(conn, &session)?;
            store::insert_refresh(conn, &refresh_row(user.id, session.id, hash, expiry))?;
            Ok(TokenPair {
                access_token: jwt.issue(user.id, user.role, session.id)?,
                refresh_token: refresh,
                token_type: "Bearer",
                expires_in: jwt.expires_in_secs(),
                user: Some(user.to_api()),
            })
        }
    }

    /// A single-use token of `kind` for the user's address and the message carrying its
    /// link, ready to run inside the caller's transaction.
    fn emailed_token(
        &self,
        kind: TokenKind,
    ) -> impl FnOnce(&mut DbConn, &UserRow, &str) -> Result<OutgoingMessage, ApiError> + Send + 'static
    {
        let token = self.random_token();
        let hash = self.keyed_hash(&token);
        type Compose = fn(&UserRow, &str, &str, Duration) -> OutgoingMessage;
        let (ttl, path, compose): (Duration, &str, Compose) = match kind {
            TokenKind::VerifyEmail => (self.verify_ttl, "verify-email", verify_message),
            TokenKind::PasswordReset => (self.reset_ttl, "reset-password", reset_message),
        };
        let link = format!("{}/{path}?token={token}", self.link_base);
        move |conn, user, email| {
            let now = time::now();
            let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
            store::issue_token(
                conn,
                &AccountTokenRow {
                    id: AccountTokenId::random(),
                    user_id: user.id,
                    kind: kind.name().to_owned(),
                    email: email.to_owned(),
                    token_hash: hash,
                    expires_at: db::to_db(expires),
                    used_at: None,
                    created_at: db::to_db(now),
                },
            )?;
            Ok(compose(user, email, &link, ttl))
        }
    }

    /// 256 random bits, hex encoded.
    fn random_token(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// Refresh tokens and emailed tokens are stored only as a keyed hash.
    fn keyed_hash(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.refresh_key)
            .expect("HMAC accepts keys of any length");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Codes a number may be sent in an hour.
pub const PHONE_CODES_PER_HOUR: usize = 3;
/// Tries of one code.
pub const PHONE_CODE_TRIES: i32 = 5;
const PHONE_CODE_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// Codes are stored as a keyed hash bound to their row: six digits alone would be easy to
/// try against a leaked table.
fn phone_code_hash(key: &[u8], id: PhoneCodeId, code: &str) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(format!("phone:{id}:{code}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// How to reach the user at `email` (their address, or the one a message is about).
fn contact(user: &UserRow, email: &str) -> Contact {
    Contact {
        email: email.to_owned(),
        name: user.name.clone(),
        email_verified: user.email_verified,
        phone: user.phone.clone().filter(|_| user.phone_verified),
        locale: user.locale,
    }
}

fn welcome(user: &UserRow, email: &str) -> OutgoingMessage {
    OutgoingMessage::new(user.id, "welcome", &contact(user, email)).with("email", email)
}

fn verify_message(user: &UserRow, email: &str, link: &str, ttl: Duration) -> OutgoingMessage {
    OutgoingMessage::new(user.id, "verify_email", &contact(user, email))
        .with("link", link)
        .with("url", link)
        .with("ttl", ttl.as_secs())
}

fn reset_message(user: &UserRow, email: &str, link: &str, ttl: Duration) -> OutgoingMessage {
    OutgoingMessage::new(user.id, "password_reset", &contact(user, email))
        .with("link", link)
        .with("url", link)
        .with("ttl", ttl.as_secs())
}

fn password_changed(user: &UserRow, email: &str) -> OutgoingMessage {
    OutgoingMessage::new(user.id, "password_changed", &contact(user, email))
}

/// Access tokens carry whole seconds: the instant from which they count, rounded down, so
/// that a token issued in the same second as a reset still counts.
fn whole_second(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    db::to_db(t).with_nanosecond(0).unwrap_or(db::to_db(t))
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
    async fn oidc_user(&self, identity: &Identity, admin: bool) -> Result<Option<UserId>, ApiError> {
        let role = if admin { Role::Admin } else { Role::Customer };
        let (issuer, subject) = (identity.issuer.clone(), identity.subject.clone());
        let found = self
            .db
            .run(move |conn| Ok(store::user_by_subject(conn, &issuer, &subject)?))
            .await?;
        match found {
            Some(user) if user.deleted_at.is_some() => return Ok(None),
            Some(user) if user.role == role => return Ok(Some(user.id)),
            _ => {}
        }
        let identity = identity.clone();
        self.db
            .write(move |conn| {
                let now = db::to_db(time::now());
                if let Some(user) = store::user_by_subject(conn, &identity.issuer, &identity.subject)? {
                    if user.deleted_at.is_some() {
                        return Ok(None);
                    }
                    store::set_role(conn, user.id, role, now)?;
                    return Ok(Some(user.id));
                }
                // An address another account uses is not copied: accounts are found by
                // (iss, sub), never by email.
                let email = match identity.email {
                    Some(email) if store::user_by_email(conn, &email)?.is_none() => Some(email),
                    _ => None,
                };
                let row = UserRow {
                    id: UserId::random(),
                    email_verified: email.is_some(),
                    email,
                    name: identity.name.clone(),
                    password_hash: None,
                    role,
                    created_at: now,
                    updated_at: now,
                    tokens_valid_after: None,
                    deleted_at: None,
                    oidc_issuer: Some(identity.issuer.clone()),
                    oidc_subject: Some(identity.subject.clone()),
                    phone: None,
                    phone_verified: false,
                    locale: Locale::default(),
                };
                // Inside a savepoint: another process may make the same account meanwhile.
                match conn.transaction(|conn| store::insert_user(conn, &row)) {
                    Ok(()) => Ok(Some(row.id)),
                    Err(e) if is_unique_violation(&e) => {
                        Ok(store::user_by_subject(conn, &identity.issuer, &identity.subject)?
                            .filter(|u| u.deleted_at.is_none())
                            .map(|u| u.id))
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await
    }

    async fn accepts(&self, token: &AuthUser) -> Result<bool, ApiError> {
        let (user, session) = (token.id, token.session);
        let issued = chrono::DateTime::from_timestamp(token.issued_at, 0)
            .map(db::to_db)
            .ok_or(ApiError::Auth("Invalid or expired token"))?;
        self.db
            .run(move |conn| Ok(store::accepts(conn, user, session, issued)?))
            .await
    }
}

fn contact_of(user: UserRow) -> Option<Contact> {
    let email = user.email.clone()?;
    Some(contact(&user, &email))
}

#[async_trait]
impl UserDirectory for Directory {
    async fn contact(&self, user_id: UserId) -> Result<Option<Contact>, ApiError> {
        self.db
            .run(move |conn| Ok(store::user_by_id(conn, user_id)?.and_then(contact_of)))
            .await
    }

    async fn phone_unreachable(&self, user: UserId, phone: &str) -> Result<bool, ApiError> {
        let phone = phone.to_owned();
        self.db
            .writing(move |conn| {
                let now = db::to_db(time::now());
                Ok(store::unverify_phone(conn, user, &phone, now)? > 0)
            })
            .await
    }

    async fn admins(&self) -> Result<Vec<(UserId, Contact)>, ApiError> {
        self.db
            .run(move |conn| {
                Ok(store::admins(conn)?
                    .into_iter()
                    .filter_map(|u| Some((u.id, contact_of(u)?)))
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
