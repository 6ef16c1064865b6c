//! The one mapping from [`Error`] to `tonic::Status`: the code from the error's kind, an
//! `ErrorInfo` reason on every error, a `BadRequest` naming each bad field, `RetryInfo` when a
//! retry may succeed. Everything else in the service answers with an [`Error`].

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    error::{ErrorKind, ERROR_DOMAIN},
    Error,
};

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        error.log_cause();
        let mut details = ErrorDetails::new();
        for (field, description) in error.reported_violations() {
            details.add_bad_request_violation(field, description);
        }
        if let Some(delay) = error.retry_after() {
            details.set_retry_info(Some(delay));
        }
        let mut metadata = std::collections::HashMap::new();
        if let Some(sync_token) = error.resume_sync_token() {
            metadata.insert("sync_token".to_owned(), sync_token.to_owned());
        }
        details.set_error_info(error.reason(), ERROR_DOMAIN, metadata);
        Status::with_error_details(code(error.kind()), error.to_string(), details)
    }
}

/// The gRPC code of each kind of failure.
fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        // A stale etag: the client reads the resource again, then retries.
        ErrorKind::Conflict => Code::Aborted,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::DataLoss => Code::DataLoss,
        ErrorKind::Internal => Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Violations, MAX_REPORTED_VIOLATIONS};

    #[test]
    fn an_error_about_many_huge_fields_stays_under_8_kib() {
        let mut violations = Violations::default();
        for index in 0..100_000 {
            violations.add(
                format!("field_{index}_{}", "f".repeat(1000)),
                "d".repeat(10_000),
            );
        }
        let status = Status::from(violations.finish(|| ()).unwrap_err());
        // Details travel base64-encoded in the trailers.
        let size = status.message().len() + status.details().len().div_ceil(3) * 4;
        assert!(size < 8 * 1024, "the error takes {size} bytes");
        let bad_request = status.get_details_bad_request().expect("a BadRequest");
        assert_eq!(
            bad_request.field_violations.len(),
            MAX_REPORTED_VIOLATIONS + 1
        );
    }
}
