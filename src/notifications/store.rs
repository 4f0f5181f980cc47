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

/// One delivery attempt of a message: `sent`, or still `pending` (or `failed` when it was
/// the last) with the error.
pub struct Attempt {
    pub message: MessageRow,
    pub status: MessageStatus,
    pub attempts: i32,
    pub error: Option<String>,
}

/// Records a batch's attempts, those that came out alike (sent at the first try, the usual
/// case) in one statement. A security message's body goes once it is settled.
pub fn record_attempts(conn: &mut DbConn, attempts: &[Attempt], now: NaiveDateTime) -> QueryResult<()> {
    type Outcome<'a> = (MessageStatus, i32, Option<&'a str>, bool);
    let mut alike: Vec<(Outcome, Vec<MessageId>)> = Vec::new();
    for a in attempts {
        let forget = a.status != MessageStatus::Pending
            && SECURITY_MESSAGES.contains(&a.message.kind.as_str());
        let outcome = (a.status, a.attempts, a.error.as_deref(), forget);
        match alike.iter_mut().find(|(o, _)| *o == outcome) {
            Some((_, ids)) => ids.push(a.message.id),
            None => alike.push((outcome, vec![a.message.id])),
        }
    }
    for ((status, attempts, error, forget), ids) in alike {
        let sent_at = (status == MessageStatus::Sent).then_some(now);
        let attempt = (
            messages::status.eq(status),
            messages::attempts.eq(attempts),
            messages::last_error.eq(error),
            messages::updated_at.eq(now),
            messages::sent_at.eq(sent_at),
        );
        let rows = messages::table.filter(messages::id.eq_any(ids));
        if forget {
            let bodies = (messages::text_body.eq(""), messages::html_body.eq(""));
            diesel::update(rows).set((attempt, bodies)).execute(conn)?;
        } else {
            diesel::update(rows).set(attempt).execute(conn)?;
        }
    }
    Ok(())
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
