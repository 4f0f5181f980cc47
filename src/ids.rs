//! Typed ids: a user's id and a car's are different types, so one cannot be passed where
//! the other is expected. Each is a UUID, written the usual way (8-4-4-4-12 hex digits, any
//! letter case, answered in lower case), stored as that text on both databases, read from
//! JSON and written to it as the bare string.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Whether `raw` is a UUID written the usual way: 8-4-4-4-12 hexadecimal digits.
pub fn is_uuid(raw: &str) -> bool {
    raw.len() == 36
        && raw.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Not a UUID written the usual way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a UUID")]
pub struct NotAnId;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[serde(try_from = "String", into = "String")]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, random id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = NotAnId;

            fn from_str(raw: &str) -> Result<Self, NotAnId> {
                if !is_uuid(raw) {
                    return Err(NotAnId);
                }
                Uuid::parse_str(raw).map(Self).map_err(|_| NotAnId)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NotAnId;

            fn try_from(raw: String) -> Result<Self, NotAnId> {
                raw.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }

        /// A UUID string in the document (fields name it with `value_type = uuid::Uuid`, so
        /// that it is written in place, as before).
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into()
            }
        }

        $crate::stored_as_text!($name);
    )*};
}

ids! {
    /// A user (an account).
    UserId;
    /// A login session: the refresh tokens rotated from one login.
    SessionId;
    /// One refresh token of a session.
    RefreshTokenId;
    /// A single-use token sent by email (verification, password reset).
    AccountTokenId;
    /// A code sent by SMS to verify a phone number.
    PhoneCodeId;
    /// A car.
    CarId;
    /// A booking.
    BookingId;
    /// A maintenance block of a car.
    BlockId;
    /// What holds a car for a while: a booking's id, or a block's.
    HoldId;
    /// A message to a user.
    MessageId;
    /// A push subscription.
    SubscriptionId;
    /// A job of the outbox.
    JobId;
    /// A movement of money at the payment provider.
    PaymentId;
    /// A card being saved at the payment provider for a booking.
    SetupId;
    /// A file offered for upload, then a car photo, a damage photo or a licence.
    UploadId;
}

impl From<BookingId> for HoldId {
    fn from(id: BookingId) -> Self {
        Self(id.uuid())
    }
}

impl From<BlockId> for HoldId {
    fn from(id: BlockId) -> Self {
        Self(id.uuid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_written_the_usual_way() {
        let id: CarId = "67E55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        for bad in [
            "67e5504410b1426f9247bb680e5fe0c8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "67e55044-10b1-426f-9247-bb680e5fe0cg",
            "",
            "not-an-id",
        ] {
            assert_eq!(bad.parse::<CarId>(), Err(NotAnId), "{bad}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"67e55044-10b1-426f-9247-bb680e5fe0c8\"");
        assert_eq!(serde_json::from_str::<CarId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<CarId>("\"x\"").is_err());
    }
}
