//! Which channels a user wants each kind of message on. Only the choices that differ from
//! the defaults are stored (`notification_preferences`), so a kind added later starts at its
//! default for everyone.

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::KINDS;
use crate::db::schema::notification_preferences as prefs;
use crate::db::DbConn;
use crate::http::Choice;
use crate::ids::UserId;

/// Where a message goes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

impl Choice for Channel {
    const ALL: &'static [(&'static str, Self)] = &[
        ("email", Self::Email),
        ("sms", Self::Sms),
        ("push", Self::Push),
    ];
}

/// Messages that keep an account safe: they ignore preferences and go by email (the phone
/// code by SMS) only.
pub const SECURITY_KINDS: &[&str] = &[
    "verify_email",
    "password_reset",
    "password_changed",
    "phone_code",
];

/// The kinds a user may turn on or off.
pub fn preference_kinds() -> impl Iterator<Item = &'static str> {
    KINDS
        .iter()
        .copied()
        .filter(|k| !SECURITY_KINDS.contains(k))
}

/// Every kind on by email and push; by SMS only what cannot wait.
pub fn default_for(channel: Channel, kind: &str) -> bool {
    match channel {
        Channel::Email | Channel::Push => true,
        Channel::Sms => matches!(kind, "pickup_reminder" | "booking_cancelled"),
    }
}

/// `{"email": {kind: on}, "sms": {...}, "push": {...}}`.
pub type Preferences = BTreeMap<Channel, BTreeMap<&'static str, bool>>;

/// The user's whole map: their choices over the defaults.
pub fn load(conn: &mut DbConn, user: UserId) -> QueryResult<Preferences> {
    let stored: Vec<(String, String, bool)> = prefs::table
        .filter(prefs::user_id.eq(user))
        .select((prefs::channel, prefs::kind, prefs::enabled))
        .load(conn)?;
    Ok(Channel::ALL
        .iter()
        .map(|&(_, channel)| {
            let kinds = preference_kinds()
                .map(|kind| {
                    let chosen = stored
                        .iter()
                        .find(|(c, k, _)| c == channel.name() && k == kind)
                        .map(|(_, _, on)| *on);
                    (kind, chosen.unwrap_or_else(|| default_for(channel, kind)))
                })
                .collect();
            (channel, kinds)
        })
        .collect())
}

/// Stores the given choices (each replaces the one before).
pub fn save(conn: &mut DbConn, user: UserId, choices: &[(Channel, &str, bool)]) -> QueryResult<()> {
    for &(channel, kind, enabled) in choices {
        diesel::delete(
            prefs::table
                .filter(prefs::user_id.eq(user))
                .filter(prefs::channel.eq(channel.name()))
                .filter(prefs::kind.eq(kind)),
        )
        .execute(conn)?;
        diesel::insert_into(prefs::table)
            .values((
                prefs::user_id.eq(user),
                prefs::channel.eq(channel.name()),
                prefs::kind.eq(kind),
                prefs::enabled.eq(enabled),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The channels the user wants each of `kinds` on (security messages aside), read in one
/// query.
pub fn wanted(
    conn: &mut DbConn,
    user: UserId,
    kinds: &[&'static str],
) -> QueryResult<HashMap<&'static str, Vec<Channel>>> {
    let chosen: Vec<(String, String, bool)> = prefs::table
        .filter(prefs::user_id.eq(user))
        .filter(prefs::kind.eq_any(kinds))
        .select((prefs::kind, prefs::channel, prefs::enabled))
        .load(conn)?;
    Ok(kinds
        .iter()
        .map(|&kind| {
            let channels = Channel::ALL
                .iter()
                .map(|&(_, channel)| channel)
                .filter(|&channel| {
                    chosen
                        .iter()
                        .find(|(k, c, _)| k == kind && c == channel.name())
                        .map_or_else(|| default_for(channel, kind), |(_, _, on)| *on)
                })
                .collect();
            (kind, channels)
        })
        .collect())
}
