//! Who a message is for: how to reach them, and in which language.

use diesel::deserialize::FromSqlRow;
use diesel::expression::AsExpression;
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::Choice;

/// How to reach a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub email: String,
    pub name: Option<String>,
    /// Whether the owner proved the address is theirs. An auth process from before
    /// verification sends none: its users count as verified, as the migration counts them.
    #[serde(default = "verified_before_verification")]
    pub email_verified: bool,
    /// The phone number SMS may go to: only a verified one.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub locale: Locale,
}

/// The languages messages are written in.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    AsExpression,
    FromSqlRow,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = Text)]
pub enum Locale {
    #[default]
    En,
    Fr,
}

impl Choice for Locale {
    const ALL: &'static [(&'static str, Self)] = &[("en", Self::En), ("fr", Self::Fr)];
}

crate::stored_as_name!(Locale);

impl Locale {
    /// The supported language an `Accept-Language` header prefers most, if it names one
    /// (`fr-CA;q=0.8, en;q=0.5` → French).
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut ranked: Vec<(f32, Locale)> = header
            .split(',')
            .filter_map(|part| {
                let mut fields = part.split(';');
                let tag = fields.next()?.trim();
                let primary = tag.split('-').next()?.to_ascii_lowercase();
                let q = fields
                    .find_map(|f| f.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                let locale = Locale::parse(&primary).ok()?;
                (q > 0.0).then_some((q, locale))
            })
            .collect();
        // Stable: among equal weights the one named first wins.
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.first().map(|(_, l)| *l)
    }
}

fn verified_before_verification() -> bool {
    true
}
