//! The one place that decides what a PostgreSQL failure means for a client.

use tokio_postgres::error::SqlState;

use crate::Error;

/// Maps a driver error: connection trouble and shutdowns are `DatabaseUnavailable` (clients may
/// retry), everything else is `Internal` (logged, never shown).
pub fn database_error(error: tokio_postgres::Error) -> Error {
    let Some(code) = error.code() else {
        // No SQLSTATE: either the connection failed (retry), or the driver refused our types
        // (a bug, not an outage).
        let connection_failed = error.is_closed()
            || std::error::Error::source(&error)
                .is_some_and(|source| source.is::<std::io::Error>())
            || error.to_string().starts_with("timeout");
        return if connection_failed {
            Error::DatabaseUnavailable(error.into())
        } else {
            Error::Internal(error.into())
        };
    };
    let unavailable = code.code().starts_with("08") // connection exception
        || code.code().starts_with("53") // insufficient resources
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::QUERY_CANCELED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]
        .contains(code);
    if unavailable {
        Error::DatabaseUnavailable(error.into())
    } else {
        Error::Internal(error.into())
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Self {
        database_error(error)
    }
}
