//! Notification queries: the `messages` and `push_subscriptions` tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{MessageRow, SubscriptionRow};
use crate::db::schema::{messages, push_subscriptions};
use crate::db::DbConn;
use crate::ids::{MessageId, SubscriptionId, UserId};
use crate::ports::{MessageStatus, SECURITY_MESSAGES};

/// The messages of `ids` that still exist.
pub fn messages(conn: &mut DbConn, ids: &[MessageId]) -> QueryResult<Vec<MessageRow>> {
    messages::table
        .filter(messages::id.eq_any(ids))
        .select(MessageRow::as_select())
        .load(conn)
}

/// Records one delivery attempt of `message`: `sent`, or still `pending` (or `failed` when
/// it was the last) with the error. A security message's body goes once it is settled.
pub fn record_attempt(
    conn: &mut DbConn,
    message: &MessageRow,
    status: MessageStatus,
    attempts: i32,
    error: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let sent_at = (status == MessageStatus::Sent).then_some(now);
    let attempt = (
        messages::status.eq(status),
        messages::attempts.eq(attempts),
        messages::last_error.eq(error),
        messages::updated_at.eq(now),
        messages::sent_at.eq(sent_at),
    );
    let row = messages::table.find(message.id);
    if status != MessageStatus::Pending && SECURITY_MESSAGES.contains(&message.kind.as_str()) {
        let forget = (messages::text_body.eq(""), messages::html_body.eq(""));
        diesel::update(row).set((attempt, forget)).execute(conn)
    } else {
        diesel::update(row).set(attempt).execute(conn)
    }
}

pub fn list_for(
    conn: &mut DbConn,
    user_id: UserId,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<MessageRow>, i64)> {
    let total = messages::table
        .filter(messages::user_id.eq(user_id))
        .count()
        .get_result(conn)?;
    let rows = messages::table
        .filter(messages::user_id.eq(user_id))
        .order((messages::created_at.desc(), messages::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(MessageRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

pub fn subscription_by_token(
    conn: &mut DbConn,
    user_id: UserId,
    token: &str,
) -> QueryResult<Option<SubscriptionRow>> {
    push_subscriptions::table
        .filter(push_subscriptions::user_id.eq(user_id))
        .filter(push_subscriptions::token.eq(token))
        .select(SubscriptionRow::as_select())
        .get_result(conn)
        .optional()
}

/// The user's browsers (`web` subscriptions).
pub fn web_subscriptions(conn: &mut DbConn, user_id: UserId) -> QueryResult<Vec<SubscriptionRow>> {
    push_subscriptions::table
        .filter(push_subscriptions::user_id.eq(user_id))
        .filter(push_subscriptions::platform.eq("web"))
        .filter(push_subscriptions::p256dh.is_not_null())
        .order(push_subscriptions::created_at.asc())
        .select(SubscriptionRow::as_select())
        .load(conn)
}

/// A browser's keys changed (it subscribed again at the same endpoint).
pub fn update_keys(conn: &mut DbConn, id: SubscriptionId, p256dh: &str, auth: &str) -> QueryResult<()> {
    diesel::update(push_subscriptions::table.find(id))
        .set((push_subscriptions::p256dh.eq(p256dh), push_subscriptions::auth.eq(auth)))
        .execute(conn)
        .map(drop)
}

pub fn delete_subscription_by_id(conn: &mut DbConn, id: SubscriptionId) -> QueryResult<usize> {
    diesel::delete(push_subscriptions::table.find(id)).execute(conn)
}

pub fn insert_subscription(conn: &mut DbConn, row: &SubscriptionRow) -> QueryResult<()> {
    diesel::insert_into(push_subscriptions::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn delete_subscription(
    conn: &mut DbConn,
    id: SubscriptionId,
    user_id: UserId,
) -> QueryResult<usize> {
    diesel::delete(
        push_subscriptions::table
            .filter(push_subscriptions::id.eq(id))
            .filter(push_subscriptions::user_id.eq(user_id)),
    )
    .execute(conn)
}
