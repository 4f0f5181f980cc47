//! Auth types: input parsed once into values that cannot be invalid, and the answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use crate::ids::{AccountTokenId, PhoneCodeId, RefreshTokenId, SessionId, UserId};

use crate::db::schema::{account_tokens, phone_codes, refresh_tokens, sessions, users};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::error::FieldError;
use crate::http::auth::Role;
use crate::ports::Locale;
use crate::http::schema;
use crate::http::schema::Patch;
use crate::http::Choice;

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
    #[schema(schema_with = signup_request_email_schema)]
    pub email: String,
    #[schema(schema_with = signup_request_password_schema)]
    pub password: String,
    #[schema(schema_with = signup_request_name_schema)]
    pub name: Option<String>,
}

schema::field_schema!(
    signup_request_email_schema,
    email_schema(),
    Some("Trimmed and compared in lower case; a taken one is 409."),
    "ada@example.com"
);
schema::field_schema!(signup_request_password_schema, password_schema(), None, "Secret123");
schema::field_schema!(
    signup_request_name_schema,
    schema::nullable_text_schema::<100>(),
    None,
    "Ada"
);

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
    #[schema(schema_with = login_request_email_schema)]
    pub email: String,
    #[schema(schema_with = schema::plain_text_schema)]
    pub password: String,
}

schema::field_schema!(
    login_request_email_schema,
    schema::plain_text_schema(),
    Some("Trimmed and compared in lower case, as at signup.")
);

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
    /// `null` for an identity-provider user whose provider vouched for no address.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub role: Role,
    /// E.164, `null` until one is given.
    #[schema(example = "+33612345678")]
    pub phone: Option<String>,
    /// Whether the code sent to `phone` was typed back; SMS go only to verified numbers.
    pub phone_verified: bool,
    pub locale: Locale,
    pub created_at: DateTime<Utc>,
}

/// `PATCH /auth/me`: only the fields sent change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateMe {
    /// E.164: `+` and 8 to 15 digits; `null` removes it. A new number is stored unverified
    /// and a 6-digit code is sent to it by SMS (valid 10 minutes; at most 3 codes an hour).
    #[schema(value_type = Option<String>, nullable, pattern = r"^\+[0-9]{8,15}$", example = "+33612345678")]
    #[serde(default)]
    pub phone: Patch<serde_json::Value>,
    /// The language of the messages the account receives.
    #[schema(value_type = Option<Locale>)]
    #[serde(default)]
    pub locale: Option<serde_json::Value>,
}

/// What `PATCH /auth/me` changes, checked.
#[derive(Debug, Default, PartialEq)]
pub struct MeChanges {
    /// `Some(None)` removes the number.
    pub phone: Option<Option<String>>,
    pub locale: Option<Locale>,
}

impl UpdateMe {
    pub fn validate(self) -> Result<MeChanges, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut changes = MeChanges::default();
        match self.phone {
            Patch::Absent => {}
            Patch::Null => changes.phone = Some(None),
            Patch::Value(v) => match v.as_str().map(str::trim) {
                Some(p) if is_e164(p) => changes.phone = Some(Some(p.to_owned())),
                _ => errors.push(FieldError::new(
                    "phone",
                    "must be an E.164 number: + and 8 to 15 digits",
                )),
            },
        }
        if let Some(v) = self.locale {
            match v.as_str().map(Locale::parse) {
                Some(Ok(l)) => changes.locale = Some(l),
                _ => errors.push(FieldError::new("locale", "must be one of: en, fr")),
            }
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }
}

fn is_e164(p: &str) -> bool {
    let digits = p.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `POST /auth/me/phone/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyPhone {
    /// The 6 digits sent by SMS.
    #[schema(value_type = String, pattern = "^[0-9]{6}$", example = "123456")]
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

impl VerifyPhone {
    pub fn validate(self) -> Result<String, Vec<FieldError>> {
        match self.code.as_ref().and_then(|c| c.as_str()).map(str::trim) {
            Some(c) if c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()) => Ok(c.to_owned()),
            _ => Err(vec![FieldError::new("code", "must be the 6 digits sent by SMS")]),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = phone_codes)]
pub struct PhoneCodeRow {
    pub id: PhoneCodeId,
    pub user_id: UserId,
    pub phone: String,
    pub code_hash: String,
    pub tries: i32,
    pub expires_at: chrono::NaiveDateTime,
    pub used_at: Option<chrono::NaiveDateTime>,
    pub created_at: chrono::NaiveDateTime,
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
    pub email: Option<String>,
    pub name: Option<String>,
    /// `None` for a user who signs in only through the identity provider.
    pub password_hash: Option<String>,
    pub role: Role,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
    pub email_verified: bool,
    /// Access tokens issued before this instant are refused (a password reset or change).
    pub tokens_valid_after: Option<chrono::NaiveDateTime>,
    pub deleted_at: Option<chrono::NaiveDateTime>,
    pub oidc_issuer: Option<String>,
    pub oidc_subject: Option<String>,
    /// E.164; SMS go to it once `phone_verified`.
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub locale: Locale,
}

impl UserRow {
    /// A new local account.
    pub fn local(email: &Email, name: Option<String>, hash: String, role: Role) -> UserRow {
        let now = crate::db::to_db(crate::time::now());
        UserRow {
            id: UserId::random(),
            email: Some(email.as_str().to_owned()),
            name,
            password_hash: Some(hash),
            role,
            created_at: now,
            updated_at: now,
            email_verified: false,
            tokens_valid_after: None,
            deleted_at: None,
            oidc_issuer: None,
            oidc_subject: None,
            phone: None,
            phone_verified: false,
            locale: Locale::En,
        }
    }

    pub fn to_api(&self) -> User {
        User {
            id: self.id,
            email: self.email.clone(),
            email_verified: self.email_verified,
            name: self.name.clone(),
            role: self.role,
            phone: self.phone.clone(),
            phone_verified: self.phone_verified,
            locale: self.locale,
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

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: chrono::NaiveDateTime,
    pub last_used_at: chrono::NaiveDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub revoked_at: Option<chrono::NaiveDateTime>,
}

impl SessionRow {
    pub fn to_api(&self, current: Option<SessionId>) -> Session {
        Session {
            id: self.id,
            created_at: crate::db::from_db(self.created_at),
            last_used_at: crate::db::from_db(self.last_used_at),
            user_agent: self.user_agent.clone(),
            ip: self.ip.clone(),
            current: current == Some(self.id),
        }
    }
}

/// One login and the refresh tokens rotated from it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[schema(value_type = uuid::Uuid)]
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    /// When it last signed in or refreshed.
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Whether the access token of this request belongs to it.
    pub current: bool,
}

/// Where a login came from, kept with its session.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// What a single-use emailed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    VerifyEmail,
    PasswordReset,
}

impl TokenKind {
    pub fn name(self) -> &'static str {
        match self {
            TokenKind::VerifyEmail => "verify_email",
            TokenKind::PasswordReset => "password_reset",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = account_tokens)]
pub struct AccountTokenRow {
    pub id: AccountTokenId,
    pub user_id: UserId,
    pub kind: String,
    /// The address it was sent to: it proves that address only.
    pub email: String,
    pub token_hash: String,
    pub expires_at: chrono::NaiveDateTime,
    pub used_at: Option<chrono::NaiveDateTime>,
    pub created_at: chrono::NaiveDateTime,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    #[schema(schema_with = token_request_token_schema)]
    pub token: String,
}

schema::field_schema!(
    token_request_token_schema,
    schema::plain_text_schema(),
    Some("The token of the link in the email.")
);

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForgotRequest {
    #[schema(schema_with = forgot_request_email_schema)]
    pub email: String,
}

schema::field_schema!(forgot_request_email_schema, email_schema(), None, "ada@example.com");

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetRequest {
    #[schema(schema_with = reset_request_token_schema)]
    pub token: String,
    #[schema(schema_with = reset_request_password_schema)]
    pub password: String,
}

schema::field_schema!(
    reset_request_token_schema,
    schema::plain_text_schema(),
    Some("The token of the link in the email.")
);
schema::field_schema!(reset_request_password_schema, password_schema(), None, "Secret123");

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRequest {
    #[schema(schema_with = schema::plain_text_schema)]
    pub current_password: String,
    #[schema(schema_with = change_request_new_password_schema)]
    pub new_password: String,
}

schema::field_schema!(change_request_new_password_schema, password_schema(), None, "Secret456");

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaveRequest {
    #[schema(schema_with = leave_request_password_schema)]
    pub password: Option<String>,
}

schema::field_schema!(
    leave_request_password_schema,
    schema::plain_text_schema(),
    Some("The account's password (accounts of the identity provider send none).")
);

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
