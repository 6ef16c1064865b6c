//! The one error type of the service, with a transport-free [`ErrorKind`].
//!
//! Each front door maps an [`Error`] to its answer in one place (gRPC: `grpc/status.rs`, REST:
//! `rest/status.rs`) from what this module exposes: the kind, a stable reason clients can
//! switch on, the bad fields cut to size, and when to retry. Internal causes are logged
//! ([`Error::log_cause`]), never sent.

use std::time::Duration;

/// The `ErrorInfo` domain of every error this service returns.
pub const ERROR_DOMAIN: &str = "callsd";
/// Violations an answer reports; the rest are counted in a last one. With the caps below the
/// whole gRPC error (message and details, as trailers) stays under 8 KiB, whatever the input.
pub const MAX_REPORTED_VIOLATIONS: usize = 12;
/// Violations the message repeats; the details carry the rest.
const MAX_VIOLATIONS_IN_MESSAGE: usize = 3;
const MAX_FIELD_CHARS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 200;
/// Characters of a client's value an error may quote.
const MAX_QUOTED_CHARS: usize = 64;

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `call.start.date_time`.
    pub field: String,
    /// What is wrong with it, for a person to read.
    pub description: String,
}

/// Which of a tenant's fair shares a request would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantLimit {
    /// Requests a second (`CALLSD_TENANT_RATE`, `CALLSD_TENANT_BURST`).
    Rate,
    /// Requests in flight (`CALLSD_TENANT_MAX_IN_FLIGHT`).
    InFlight,
    /// Open WatchCalls streams (`CALLSD_TENANT_MAX_STREAMS`).
    Streams,
    /// Watches (`CALLSD_TENANT_MAX_WATCHES`).
    Watches,
}

impl TenantLimit {
    fn reason(self) -> &'static str {
        match self {
            TenantLimit::Rate => "TENANT_RATE_LIMITED",
            TenantLimit::InFlight => "TENANT_IN_FLIGHT_LIMITED",
            TenantLimit::Streams => "TENANT_STREAM_LIMIT",
            TenantLimit::Watches => "TENANT_WATCH_LIMIT",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            TenantLimit::Rate => "this tenant sends more requests a second than its share",
            TenantLimit::InFlight => "this tenant has too many requests in flight",
            TenantLimit::Streams => "this tenant has too many WatchCalls streams open",
            TenantLimit::Watches => "this tenant has as many watches as it may; delete one first",
        }
    }
}

/// What kind of failure an [`Error`] is: all a front door needs to pick its status code
/// (gRPC code, HTTP status) without knowing each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong; the same request will fail again.
    InvalidArgument,
    NotFound,
    /// The resource changed since the client read it (its etag no longer matches).
    Conflict,
    Unauthenticated,
    /// The request cannot run in the current state (a sync token past the retained log).
    FailedPrecondition,
    /// The service cannot answer now; a retry later may succeed.
    Unavailable,
    /// The caller (or everyone) is past a limit; retry with backoff.
    ResourceExhausted,
    /// Stored data cannot be read back: retrying will not help.
    DataLoss,
    Internal,
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
    #[error("{}", .limit.describe())]
    TenantLimited {
        limit: TenantLimit,
        /// When a retry may succeed; none when only the tenant's own action helps.
        retry_after: Option<std::time::Duration>,
    },
    #[error(
        "a change to one of your calls cannot be read; the stream ended after the last change \
         it could send (ErrorInfo metadata sync_token resumes there)"
    )]
    ChangeUnreadable {
        /// Resumes right after the last change sent.
        sync_token: String,
    },
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
            Error::TenantLimited { limit, .. } => limit.reason(),
            Error::ChangeUnreadable { .. } => "CHANGE_UNREADABLE",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The kind of failure, for a front door's status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::EtagMismatch { .. } => ErrorKind::Conflict,
            Error::Unauthenticated => ErrorKind::Unauthenticated,
            Error::SyncTokenExpired => ErrorKind::FailedPrecondition,
            Error::DatabaseUnavailable(_) | Error::ShuttingDown => ErrorKind::Unavailable,
            Error::Overloaded | Error::TenantLimited { .. } => ErrorKind::ResourceExhausted,
            Error::ChangeUnreadable { .. } => ErrorKind::DataLoss,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The bad fields an answer reports, each cut to size, and a last `request` entry when
    /// there were more than [`MAX_REPORTED_VIOLATIONS`]: one bounded list for every transport.
    /// Empty unless the error is `InvalidArgument`.
    pub fn reported_violations(&self) -> Vec<(&str, &str)> {
        let Error::InvalidArgument(violations) = self else {
            return Vec::new();
        };
        let mut reported: Vec<(&str, &str)> = violations
            .iter()
            .take(MAX_REPORTED_VIOLATIONS)
            .map(|violation| {
                (
                    cut(&violation.field, MAX_FIELD_CHARS),
                    cut(&violation.description, MAX_DESCRIPTION_CHARS),
                )
            })
            .collect();
        if violations.len() > MAX_REPORTED_VIOLATIONS {
            reported.push(("request", "other fields are invalid too"));
        }
        reported
    }

    /// When a retry may succeed, if the error knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::TenantLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The sync token a client resumes from after this error, if it has one.
    pub fn resume_sync_token(&self) -> Option<&str> {
        match self {
            Error::ChangeUnreadable { sync_token } => Some(sync_token),
            _ => None,
        }
    }

    /// Logs the cause of a server-side failure: front doors call this once as they answer,
    /// since the answer itself never carries the cause.
    pub fn log_cause(&self) {
        match self {
            Error::DatabaseUnavailable(cause) => {
                tracing::warn!(error = %format!("{cause:#}"), "database unavailable")
            }
            Error::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error")
            }
            _ => {}
        }
    }
}

/// `value` quoted for an error message: at most 64 characters of it, so an error never
/// echoes a hostile input back whole.
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}…", &value[..end]),
    }
}

/// Like [`quote`], without the quotes: for inputs an error shows in a syntax of their own
/// (a template's `${...}`).
pub fn excerpt(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}…", &value[..end]),
    }
}

/// Collects field violations so that a request reports every bad field at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        // Memory stays bounded however many fields are bad; the Status reports only a few.
        if self.0.len() <= MAX_REPORTED_VIOLATIONS {
            self.0.push(FieldViolation {
                field: field.into(),
                description: description.into(),
            });
        }
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

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records the violations `other` collected, after this one's.
    pub fn extend(&mut self, other: Violations) {
        for violation in other.0 {
            self.add(violation.field, violation.description);
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
    let mut text = violations
        .iter()
        .take(MAX_VIOLATIONS_IN_MESSAGE)
        .map(|violation| {
            format!(
                "{}: {}",
                cut(&violation.field, MAX_FIELD_CHARS),
                cut(&violation.description, MAX_DESCRIPTION_CHARS)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if violations.len() > MAX_VIOLATIONS_IN_MESSAGE {
        text.push_str("; and other fields (see the BadRequest details)");
    }
    text
}

/// The first `max_chars` characters of `text`.
fn cut(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        None => text,
        Some((end, _)) => &text[..end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_keeps_at_most_64_characters_of_a_value() {
        assert_eq!(quote("Europe/Paris"), "\"Europe/Paris\"");
        let quoted = quote(&"é".repeat(100_000));
        assert_eq!(quoted, format!("{:?}…", "é".repeat(64)));
    }

    #[test]
    fn reported_violations_stop_at_the_cap_and_say_there_were_more() {
        let mut violations = Violations::default();
        for index in 0..100 {
            violations.add(format!("field_{index}"), "is wrong");
        }
        let error = violations.finish(|| ()).unwrap_err();
        let reported = error.reported_violations();
        assert_eq!(reported.len(), MAX_REPORTED_VIOLATIONS + 1);
        assert_eq!(reported[0], ("field_0", "is wrong"));
        assert_eq!(
            reported.last(),
            Some(&("request", "other fields are invalid too"))
        );
        assert!(Error::NotFound { resource: "call" }
            .reported_violations()
            .is_empty());
    }
}
