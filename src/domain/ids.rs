//! One id type per kind of thing the service names: tenants, their API keys, calls, watches,
//! the watches' signing keys, and delivery attempts.
//!
//! All of them are UUIDs underneath, and so they were once all `Uuid`: a watch id passed where a
//! call id belonged compiled, and failed only as a "not found" at run time (or worse, found the
//! wrong row). Distinct types make that mix-up a compile error. Each id reads, prints, sorts
//! and serializes exactly as its UUID does, so logs, SQL parameters and sealed tokens are
//! unchanged; converting to or from a bare `Uuid` is explicit (`From`), and belongs at the
//! edges (parsing a request, reading a row written by hand in a test).

use std::{error::Error as StdError, fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use uuid::Uuid;

/// Declares an id type: a UUID that is only ever that kind of id.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id, ordered by creation time (UUIDv7) like the ones the database keeps.
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        // Debug prints the bare UUID, as before, so log lines keep ids a reader can paste.
        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, formatter)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, formatter)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(text: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(text).map(Self)
            }
        }

        impl ToSql for $name {
            fn to_sql(
                &self,
                sql_type: &Type,
                out: &mut bytes::BytesMut,
            ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
                self.0.to_sql(sql_type, out)
            }

            fn accepts(sql_type: &Type) -> bool {
                <Uuid as ToSql>::accepts(sql_type)
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $name {
            fn from_sql(
                sql_type: &Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn StdError + Sync + Send>> {
                Uuid::from_sql(sql_type, raw).map(Self)
            }

            fn accepts(sql_type: &Type) -> bool {
                <Uuid as FromSql>::accepts(sql_type)
            }
        }
    };
}

uuid_id!(
    /// A tenant: the owner of calls, watches and keys, and the binding of every token.
    TenantId
);
uuid_id!(
    /// An API key of a tenant (its id, never its secret).
    ApiKeyId
);
uuid_id!(
    /// A call.
    CallId
);
uuid_id!(
    /// A watch: a webhook subscription of a tenant.
    WatchId
);
uuid_id!(
    /// A key that signs a watch's deliveries.
    CryptoKeyId
);
uuid_id!(
    /// One delivery attempt in a watch's log.
    DeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Sealed tokens carry tenant ids through postcard; tokens issued while they were bare
    /// UUIDs must still open.
    #[test]
    fn an_id_serializes_to_the_same_bytes_as_its_uuid() {
        let uuid = Uuid::now_v7();
        let typed = postcard::to_allocvec(&TenantId::from(uuid)).unwrap();
        assert_eq!(typed, postcard::to_allocvec(&uuid).unwrap());
        assert_eq!(
            postcard::from_bytes::<TenantId>(&typed).unwrap(),
            uuid.into()
        );
    }

    #[test]
    fn an_id_prints_as_its_uuid() {
        let uuid = Uuid::now_v7();
        assert_eq!(CallId::from(uuid).to_string(), uuid.to_string());
        assert_eq!(format!("{:?}", WatchId::from(uuid)), format!("{uuid:?}"));
    }
}
