//! Values stored as TEXT on both backends through their `Display` and `FromStr`: typed ids
//! and states. A stored value that does not read back is an error (a 500, logged), never
//! silently another value.

/// Stores `$ty` in a TEXT column: written with `Display`, read with `FromStr`.
#[macro_export]
macro_rules! stored_as_text {
    ($ty:ty) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                use std::io::Write;
                out.write_all(self.to_string().as_bytes())?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
            ) -> diesel::serialize::Result {
                out.set_value(self.to_string());
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, $crate::db::MultiBackend> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, $crate::db::MultiBackend>,
            ) -> diesel::serialize::Result {
                out.set_value((diesel::sql_types::Text, self));
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $ty {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(value)?;
                $crate::db::text::read(&text)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $ty {
            fn from_sql(
                value: <diesel::sqlite::Sqlite as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::sqlite::Sqlite,
                >>::from_sql(value)?;
                $crate::db::text::read(&text)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, $crate::db::MultiBackend>
            for $ty
        {
            fn from_sql(
                value: <$crate::db::MultiBackend as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                value.from_sql::<Self, diesel::sql_types::Text>()
            }
        }
    };
}

/// Stores a [`crate::http::Choice`] enum in a TEXT column by its name: `Display` writes
/// the name, `FromStr` reads it (in any letter case).
#[macro_export]
macro_rules! stored_as_name {
    ($ty:ty) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::http::Choice::name(*self))
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(raw: &str) -> Result<Self, String> {
                <$ty as $crate::http::Choice>::parse(raw)
            }
        }

        $crate::stored_as_text!($ty);
    };
}

/// A stored text as `T`, or an error naming the type and the text.
pub fn read<T: std::str::FromStr>(text: &str) -> diesel::deserialize::Result<T> {
    text.parse().map_err(|_| {
        format!(
            "the database holds {text:?}, which is not a {}",
            std::any::type_name::<T>()
        )
        .into()
    })
}
