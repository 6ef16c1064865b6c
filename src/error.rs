//! The one error type of the service, and the only place that turns it into a `tonic::Status`.
//!
//! Clients get a stable `ErrorInfo` reason to switch on and, for bad input, a `BadRequest`
//! naming each bad field. Internal causes are logged here and never sent.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo` domain of every error this service returns.
pub const ERROR_DOMAIN: &str = "callsd";

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `call.start.date_time`.
    pub field: String,
    /// What is wrong with it, for a person to read.
    pub description: String,
}

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{resource} not found")]
    NotFound { resource: &'static str },
    #[error("the etag does not match the current version of the {resource}")]
    EtagMismatch { resource: &'static str },
    #[error("missing or invalid API key")]
    Unauthenticated,
    #[error("the sync token is older than the retained change log; list again without it")]
    SyncTokenExpired,
    #[error("the database is unavailable")]
    DatabaseUnavailable(#[source] anyhow::Error),
    #[error("the server is shutting down; reconnect with your last sync token")]
    ShuttingDown,
    #[error("too many requests in flight; retry with backoff")]
    Overloaded,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// An `InvalidArgument` error for a single field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// The stable reason clients can switch on.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::EtagMismatch { .. } => "ETAG_MISMATCH",
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::SyncTokenExpired => "SYNC_TOKEN_EXPIRED",
            Error::DatabaseUnavailable(_) => "DATABASE_UNAVAILABLE",
            Error::ShuttingDown => "SHUTTING_DOWN",
            Error::Overloaded => "OVERLOADED",
            Error::Internal(_) => "INTERNAL",
        }
    }

    fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound { .. } => Code::NotFound,
            Error::EtagMismatch { .. } => Code::Aborted,
            Error::Unauthenticated => Code::Unauthenticated,
            Error::SyncTokenExpired => Code::FailedPrecondition,
            Error::DatabaseUnavailable(_) | Error::ShuttingDown => Code::Unavailable,
            Error::Overloaded => Code::ResourceExhausted,
            Error::Internal(_) => Code::Internal,
        }
    }
}

/// Collects field violations so that a request reports every bad field at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Keeps the value of `result`, or records its violations and returns `None`.
    pub fn check<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Error::InvalidArgument(violations)) => {
                self.0.extend(violations);
                None
            }
            Err(other) => {
                // Validation only produces InvalidArgument; anything else is a bug worth seeing.
                self.add("request", other.to_string());
                None
            }
        }
    }

    /// `Ok(value)` when nothing was recorded, else the collected violations.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Error> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|violation| format!("{}: {}", violation.field, violation.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match &error {
            Error::DatabaseUnavailable(cause) => {
                tracing::warn!(error = %format!("{cause:#}"), "database unavailable")
            }
            Error::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error")
            }
            _ => {}
        }
        let mut details = ErrorDetails::new();
        if let Error::InvalidArgument(violations) = &error {
            for violation in violations {
                details.add_bad_request_violation(&violation.field, &violation.description);
            }
        }
        details.set_error_info(
            error.reason(),
            ERROR_DOMAIN,
            std::collections::HashMap::new(),
        );
        Status::with_error_details(error.code(), error.to_string(), details)
    }
}
