//! Auth queries: the `users` and `refresh_tokens` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{RefreshRow, UserRow};
use crate::db::schema::{refresh_tokens, users};
use crate::db::DbConn;
use crate::http::auth::Role;
use crate::ids::{RefreshTokenId, SessionId, UserId};

pub fn insert_user(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn user_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn user_by_id(conn: &mut DbConn, id: UserId) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn admins(conn: &mut DbConn) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::role.eq(Role::Admin))
        .order(users::created_at.asc())
        .select(UserRow::as_select())
        .load(conn)
}

pub fn user_exists(conn: &mut DbConn, id: UserId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.find(id))).get_result(conn)
}

pub fn set_password_and_role(
    conn: &mut DbConn,
    id: UserId,
    password_hash: &str,
    role: Role,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::role.eq(role),
            users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
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

pub fn revoke_session(
    conn: &mut DbConn,
    session_id: SessionId,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(session_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

pub fn revoke_token(conn: &mut DbConn, hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(hash))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}
