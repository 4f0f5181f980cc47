//! Auth queries: the `users`, `sessions`, `refresh_tokens` and `account_tokens` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{AccountTokenRow, PhoneCodeRow, RefreshRow, SessionRow, TokenKind, UserRow};
use crate::db::schema::{account_tokens, phone_codes, refresh_tokens, sessions, users};
use crate::db::DbConn;
use crate::http::auth::Role;
use crate::ids::{PhoneCodeId, RefreshTokenId, SessionId, UserId};
use crate::ports::Locale;

pub fn insert_user(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn user_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

/// The account, unless it left.
pub fn user_by_id(conn: &mut DbConn, id: UserId) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

/// The account of an identity provider's user, closed or not.
pub fn user_by_subject(
    conn: &mut DbConn,
    issuer: &str,
    subject: &str,
) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::oidc_issuer.eq(issuer))
        .filter(users::oidc_subject.eq(subject))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn admins(conn: &mut DbConn) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::role.eq(Role::Admin))
        .filter(users::deleted_at.is_null())
        .order(users::created_at.asc())
        .select(UserRow::as_select())
        .load(conn)
}

/// Whether a token of `user` issued at `issued_at` (seconds) for `session` still stands:
/// one query, asked on every authenticated request.
pub fn accepts(
    conn: &mut DbConn,
    user: UserId,
    session: Option<SessionId>,
    issued_at: NaiveDateTime,
) -> QueryResult<bool> {
    let live_session = diesel::dsl::exists(
        sessions::table
            // A token from before sessions names none: the nil id matches no row, unasked.
            .filter(sessions::id.eq(session.unwrap_or_else(|| SessionId::from(uuid::Uuid::nil()))))
            .filter(sessions::user_id.eq(user))
            .filter(sessions::revoked_at.is_null()),
    );
    let found: Option<(Option<NaiveDateTime>, bool)> = users::table
        .find(user)
        .filter(users::deleted_at.is_null())
        .select((users::tokens_valid_after, live_session))
        .get_result(conn)
        .optional()?;
    Ok(found.is_some_and(|(valid_after, live)| {
        valid_after.is_none_or(|after| issued_at >= after) && (session.is_none() || live)
    }))
}

/// Sets the password; access tokens issued before `valid_after` stop working.
pub fn set_password(
    conn: &mut DbConn,
    id: UserId,
    password_hash: &str,
    valid_after: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::tokens_valid_after.eq(valid_after),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

pub fn set_role(conn: &mut DbConn, id: UserId, role: Role, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::role.eq(role), users::updated_at.eq(now)))
        .execute(conn)
        .map(drop)
}

pub fn set_email_verified(conn: &mut DbConn, id: UserId, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::email_verified.eq(true), users::updated_at.eq(now)))
        .execute(conn)
        .map(drop)
}

pub fn set_locale(conn: &mut DbConn, id: UserId, locale: Locale, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::locale.eq(locale), users::updated_at.eq(now)))
        .execute(conn)
        .map(drop)
}

pub fn set_phone(
    conn: &mut DbConn,
    id: UserId,
    phone: Option<&str>,
    verified: bool,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::phone.eq(phone),
            users::phone_verified.eq(verified),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

/// The number stops counting as verified, if it is still the user's (an SMS provider said
/// it cannot take messages).
pub fn unverify_phone(conn: &mut DbConn, id: UserId, phone: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id).filter(users::phone.eq(phone)))
        .set((users::phone_verified.eq(false), users::updated_at.eq(now)))
        .execute(conn)
}

pub fn insert_phone_code(conn: &mut DbConn, row: &PhoneCodeRow) -> QueryResult<()> {
    diesel::insert_into(phone_codes::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// The creation times of the user's codes since `since`, oldest first.
pub fn phone_codes_since(conn: &mut DbConn, user: UserId, since: NaiveDateTime) -> QueryResult<Vec<NaiveDateTime>> {
    phone_codes::table
        .filter(phone_codes::user_id.eq(user))
        .filter(phone_codes::created_at.gt(since))
        .order(phone_codes::created_at.asc())
        .select(phone_codes::created_at)
        .load(conn)
}

/// The latest code sent to `phone` for the user (an earlier one died with it).
pub fn latest_phone_code(conn: &mut DbConn, user: UserId, phone: &str) -> QueryResult<Option<PhoneCodeRow>> {
    phone_codes::table
        .filter(phone_codes::user_id.eq(user))
        .order((phone_codes::created_at.desc(), phone_codes::id.desc()))
        .select(PhoneCodeRow::as_select())
        .get_result(conn)
        .optional()
        .map(|c| c.filter(|c| c.phone == phone))
}

/// Spends one try of a live code: false when it has none left, is used or has expired.
pub fn spend_phone_try(conn: &mut DbConn, id: PhoneCodeId, max: i32, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        phone_codes::table
            .find(id)
            .filter(phone_codes::tries.lt(max))
            .filter(phone_codes::used_at.is_null())
            .filter(phone_codes::expires_at.gt(now)),
    )
    .set(phone_codes::tries.eq(phone_codes::tries + 1))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn use_phone_code(conn: &mut DbConn, id: PhoneCodeId, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(phone_codes::table.find(id))
        .set(phone_codes::used_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// What stays of an account that left: its id (bookings refer to it) and its dates.
pub fn anonymise(conn: &mut DbConn, id: UserId, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::email.eq(None::<String>),
            users::name.eq(None::<String>),
            users::password_hash.eq(None::<String>),
            users::phone.eq(None::<String>),
            users::phone_verified.eq(false),
            users::role.eq(Role::Customer),
            users::deleted_at.eq(now),
            users::tokens_valid_after.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::delete(account_tokens::table.filter(account_tokens::user_id.eq(id)))
        .execute(conn)?;
    diesel::delete(phone_codes::table.filter(phone_codes::user_id.eq(id))).execute(conn)?;
    revoke_sessions(conn, id, None, now).map(drop)
}

/// Every session of the user, revoked ones too, oldest first (their data export).
pub fn all_sessions_of(conn: &mut DbConn, user: UserId) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user))
        .order((sessions::created_at.asc(), sessions::id.asc()))
        .select(SessionRow::as_select())
        .load(conn)
}

pub fn insert_session(conn: &mut DbConn, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn touch_session(conn: &mut DbConn, id: SessionId, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_used_at.eq(now))
        .execute(conn)
        .map(drop)
}

/// The user's live sessions (not revoked, used since `since`), newest first.
pub fn sessions_of(
    conn: &mut DbConn,
    user: UserId,
    since: NaiveDateTime,
) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::last_used_at.gt(since))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .select(SessionRow::as_select())
        .load(conn)
}

/// Revokes one session of `user` and its refresh tokens; `false` when it is not theirs.
pub fn revoke_session(
    conn: &mut DbConn,
    user: UserId,
    session: SessionId,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let theirs: bool = diesel::select(diesel::dsl::exists(
        sessions::table
            .find(session)
            .filter(sessions::user_id.eq(user)),
    ))
    .get_result(conn)?;
    if theirs {
        end_session(conn, session, now)?;
    }
    Ok(theirs)
}

/// Revokes every session of `user` but `except`, with their refresh tokens.
pub fn revoke_sessions(
    conn: &mut DbConn,
    user: UserId,
    except: Option<SessionId>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let live: Vec<SessionId> = sessions::table
        .filter(sessions::user_id.eq(user))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::id)
        .load(conn)?;
    let gone: Vec<SessionId> = live.into_iter().filter(|s| Some(*s) != except).collect();
    diesel::update(sessions::table.filter(sessions::id.eq_any(&gone)))
        .set(sessions::revoked_at.eq(now))
        .execute(conn)?;
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(refresh_tokens::session_id.ne_all(except.into_iter().collect::<Vec<_>>())),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(gone.len())
}

pub fn insert_refresh(conn: &mut DbConn, row: &RefreshRow) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn refresh_by_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<RefreshRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(RefreshRow::as_select())
        .get_result(conn)
        .optional()
}

/// Marks a live token rotated. Zero rows means someone else rotated or revoked it first.
pub fn mark_rotated(
    conn: &mut DbConn,
    id: RefreshTokenId,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::rotated_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::rotated_at.eq(now))
    .execute(conn)
}

/// Ends a login session: the session and every refresh token of it.
pub fn end_session(conn: &mut DbConn, session: SessionId, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(sessions::table.find(session).filter(sessions::revoked_at.is_null()))
        .set(sessions::revoked_at.eq(now))
        .execute(conn)?;
    revoke_refresh_of(conn, session, now).map(drop)
}

fn revoke_refresh_of(conn: &mut DbConn, session: SessionId, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(session))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

/// Stores a new single-use token; the user's earlier unused ones of its kind die.
pub fn issue_token(conn: &mut DbConn, row: &AccountTokenRow) -> QueryResult<()> {
    diesel::update(
        account_tokens::table
            .filter(account_tokens::user_id.eq(row.user_id))
            .filter(account_tokens::kind.eq(&row.kind))
            .filter(account_tokens::used_at.is_null()),
    )
    .set(account_tokens::used_at.eq(row.created_at))
    .execute(conn)?;
    diesel::insert_into(account_tokens::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Uses a live token of `kind` once: its row, or `None` when it is unknown, used or
/// expired (a token used by another request at the same moment counts as used).
pub fn use_token(
    conn: &mut DbConn,
    kind: TokenKind,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<AccountTokenRow>> {
    let Some(row) = account_tokens::table
        .filter(account_tokens::token_hash.eq(hash))
        .filter(account_tokens::kind.eq(kind.name()))
        .select(AccountTokenRow::as_select())
        .get_result(conn)
        .optional()?
    else {
        return Ok(None);
    };
    if row.used_at.is_some() || row.expires_at <= now {
        return Ok(None);
    }
    let used = diesel::update(
        account_tokens::table
            .find(row.id)
            .filter(account_tokens::used_at.is_null()),
    )
    .set(account_tokens::used_at.eq(now))
    .execute(conn)?;
    Ok((used == 1).then_some(row))
}
