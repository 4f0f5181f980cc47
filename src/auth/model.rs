//! Auth types: input parsed once into values that cannot be invalid, and the answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use crate::ids::{RefreshTokenId, SessionId, UserId};

use crate::db::schema::{refresh_tokens, users};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::error::FieldError;
use crate::http::auth::Role;
use crate::http::schema;

/// Trimmed, lower-cased, and shaped like an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// An address of the shape [`schema::EMAIL`] says, at most 254 characters as sent.
    pub fn parse(raw: &str) -> Result<Email, FieldError> {
        if !schema::is_email(raw) {
            return Err(FieldError::new("email", "must be a valid email address"));
        }
        Ok(Email(Email::normalize(raw)))
    }

    /// An address as accounts are found by: trimmed and lower-cased (whether or not it is
    /// one; a login with anything else finds no account).
    pub fn normalize(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8 to 72 bytes of UTF-8 (bcrypt reads no further), with an uppercase letter A-Z and a
/// digit.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// bcrypt reads no further.
    pub const MAX_BYTES: usize = 72;

    pub fn parse(raw: &str) -> Result<Password, FieldError> {
        let err = |m: &str| Err(FieldError::new("password", m));
        if raw.len() < 8 {
            return err("must be at least 8 characters");
        }
        if raw.len() > Self::MAX_BYTES {
            return err("must be at most 72 bytes");
        }
        if !raw.chars().any(|c| c.is_ascii_uppercase()) {
            return err("must contain an uppercase letter");
        }
        if !raw.chars().any(|c| c.is_ascii_digit()) {
            return err("must contain a digit");
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// 1 to 100 characters, not blank; stored trimmed.
pub fn parse_name(raw: &str) -> Result<String, FieldError> {
    schema::text(raw, 100).map_err(|m| FieldError::new("name", m))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignupRequest {
    /// Trimmed and compared in lower case; a taken one is 409.
    #[schema(schema_with = email_schema, example = "ada@example.com")]
    pub email: String,
    #[schema(schema_with = password_schema, example = "Secret123")]
    pub password: String,
    #[schema(schema_with = schema::nullable_text_schema::<100>, example = "Ada")]
    pub name: Option<String>,
}

fn email_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(254))
        .pattern(Some(schema::EMAIL))
        .into()
}

fn password_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(8))
        .max_length(Some(Password::MAX_BYTES))
        .pattern(Some(
            r"^(?=.*[A-Z])(?=.*[0-9])[^\u0000-\u001F\u007F-\u009F]*$",
        ))
        .description(Some(
            "8 to 72 bytes of UTF-8 (fewer than 72 characters when some take more than one \
             byte), with an uppercase letter A-Z and a digit",
        ))
        .into()
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    /// Trimmed and compared in lower case, as at signup.
    #[schema(schema_with = schema::plain_text_schema)]
    pub email: String,
    #[schema(schema_with = schema::plain_text_schema)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    #[schema(schema_with = schema::plain_text_schema)]
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[schema(value_type = uuid::Uuid)]
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = 900)]
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
    pub role: Role,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

impl UserRow {
    pub fn to_api(&self) -> User {
        User {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            created_at: crate::db::from_db(self.created_at),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub id: RefreshTokenId,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub token_hash: String,
    pub expires_at: chrono::NaiveDateTime,
    pub rotated_at: Option<chrono::NaiveDateTime>,
    pub revoked_at: Option<chrono::NaiveDateTime>,
    pub created_at: chrono::NaiveDateTime,
}

use diesel::prelude::{Insertable, Queryable, Selectable};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_pattern_is_the_rule() {
        assert!(Password::parse("Secret12").is_ok());
        assert!(Password::parse("Éecret12").is_err(), "A-Z only");
        assert!(
            Password::parse(&format!("Secret1{}", "é".repeat(32))).is_ok(),
            "71 bytes"
        );
        assert!(
            Password::parse(&format!("Secret1{}", "é".repeat(33))).is_err(),
            "73 bytes"
        );
    }

    #[test]
    fn emails_are_trimmed_and_folded() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "", "ada", "ada@", "@x.io", "ada@x", "a b@x.io", "a@@x.io", "a@x..io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_rules() {
        assert!(Password::parse("Secret123").is_ok());
        assert!(Password::parse("Sec1").is_err());
        assert!(Password::parse("secret123").is_err());
        assert!(Password::parse("SecretABC").is_err());
        assert!(Password::parse(&format!("S1{}", "a".repeat(70))).is_ok());
        assert!(Password::parse(&format!("S1{}", "a".repeat(71))).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("Secret123").unwrap()),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn name_rules() {
        assert_eq!(parse_name(" Ada ").unwrap(), "Ada");
        assert!(parse_name("  ").is_err());
        assert!(parse_name(&"é".repeat(100)).is_ok());
        assert!(parse_name(&"é".repeat(101)).is_err());
    }
}
