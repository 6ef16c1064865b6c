//! The one mapping from [`Error`] to an HTTP answer: the status of AIP-193 from the error's
//! kind, and Google's REST error shape, `{"error": {"code", "status", "message", "details"}}`,
//! whose details are the gRPC door's (`ErrorInfo` always, `BadRequest` naming each bad field,
//! `RetryInfo` when a retry may succeed) in their JSON form with `@type` URLs.
//!
//! The HTTP layer's own refusals (no such route, a method the path does not take, a body of
//! another type or too large) answer in the same shape, through [`Refusal`].

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Map, Value};
use tonic::body::Body;

use crate::{
    error::{ErrorKind, ERROR_DOMAIN},
    Error,
};

/// A failure of the REST door: the service's [`Error`], or a refusal of the HTTP layer.
#[derive(Debug)]
pub enum Refusal {
    Service(Error),
    /// No route has this path.
    NoRoute,
    /// The path exists with these methods only.
    WrongMethod(Vec<Method>),
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body is larger than this many bytes.
    TooLarge(usize),
    /// The body did not arrive in time.
    BodyTimeout,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal::Service(error)
    }
}

/// The HTTP status and canonical status name of each kind of failure (AIP-193).
fn status_of(kind: ErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ErrorKind::InvalidArgument => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        // A stale etag: HTTP's own answer to a failed condition on the version.
        ErrorKind::Conflict => (StatusCode::PRECONDITION_FAILED, "ABORTED"),
        ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        ErrorKind::FailedPrecondition => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        ErrorKind::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        ErrorKind::DataLoss => (StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
        ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
    }
}

impl Refusal {
    /// The answer's HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Service(error) => status_of(error.kind()).0,
            Refusal::NoRoute => StatusCode::NOT_FOUND,
            Refusal::WrongMethod(_) => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The error as Google's REST JSON.
    pub fn body(&self) -> Value {
        let (status, message, reason, details) = match self {
            Refusal::Service(error) => {
                let (_, status) = status_of(error.kind());
                let mut details = Vec::new();
                let mut metadata = Map::new();
                if let Some(sync_token) = error.resume_sync_token() {
                    metadata.insert("sync_token".into(), sync_token.into());
                }
                details.push(json!({
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": error.reason(),
                    "domain": ERROR_DOMAIN,
                    "metadata": metadata,
                }));
                let violations = error.reported_violations();
                if !violations.is_empty() {
                    let violations: Vec<Value> = violations
                        .into_iter()
                        .map(|(field, description)| {
                            json!({"field": field, "description": description})
                        })
                        .collect();
                    details.push(json!({
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": violations,
                    }));
                }
                if let Some(delay) = error.retry_after() {
                    details.push(json!({
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": duration_json(delay),
                    }));
                }
                return json!({"error": {
                    "code": self.status().as_u16(),
                    "status": status,
                    "message": error.to_string(),
                    "details": details,
                }});
            }
            Refusal::NoRoute => (
                "NOT_FOUND",
                "no such resource: see /openapi.json for the routes".to_owned(),
                "ROUTE_NOT_FOUND",
                Vec::new(),
            ),
            Refusal::WrongMethod(allowed) => (
                "UNIMPLEMENTED",
                format!("this path takes {}", method_list(allowed)),
                "METHOD_NOT_ALLOWED",
                Vec::new(),
            ),
            Refusal::UnsupportedMediaType => (
                "INVALID_ARGUMENT",
                "the request body must be application/json".to_owned(),
                "UNSUPPORTED_MEDIA_TYPE",
                Vec::new(),
            ),
            Refusal::TooLarge(limit) => (
                "INVALID_ARGUMENT",
                format!("the request body is larger than {limit} bytes"),
                "BODY_TOO_LARGE",
                Vec::new(),
            ),
            Refusal::BodyTimeout => (
                "DEADLINE_EXCEEDED",
                "the request body did not arrive in time".to_owned(),
                "BODY_TIMEOUT",
                Vec::new(),
            ),
        };
        let mut details = details;
        details.push(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": ERROR_DOMAIN,
            "metadata": {},
        }));
        json!({"error": {
            "code": self.status().as_u16(),
            "status": status,
            "message": message,
            "details": details,
        }})
    }

    /// The whole HTTP answer; logs an internal cause once.
    pub fn response(&self) -> Response<Body> {
        if let Refusal::Service(error) = self {
            error.log_cause();
        }
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = json_response(self.status(), Bytes::from(body));
        let headers = response.headers_mut();
        match self {
            Refusal::Service(error) => {
                if error.kind() == ErrorKind::Unauthenticated {
                    headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                if let Some(delay) = error.retry_after() {
                    let seconds = delay.as_secs_f64().ceil().max(1.0) as u64;
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
            }
            Refusal::WrongMethod(allowed) => {
                if let Ok(value) = HeaderValue::from_str(&method_list(allowed)) {
                    headers.insert(header::ALLOW, value);
                }
            }
            _ => {}
        }
        response
    }
}

fn method_list(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `google.protobuf.Duration` in JSON: seconds with up to nine decimals and an `s`.
fn duration_json(delay: Duration) -> String {
    let nanos = delay.subsec_nanos();
    if nanos == 0 {
        format!("{}s", delay.as_secs())
    } else {
        let fraction = format!("{nanos:09}");
        format!("{}.{}s", delay.as_secs(), fraction.trim_end_matches('0'))
    }
}

/// An answer with a JSON body.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::new(http_body_util::Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_argument_is_a_400_naming_each_field() {
        let refusal = Refusal::Service(Error::invalid("call.caller_number", "is required"));
        assert_eq!(refusal.status(), StatusCode::BAD_REQUEST);
        let body = refusal.body();
        assert_eq!(body["error"]["code"], 400);
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(
            body["error"]["details"][1]["fieldViolations"][0]["field"],
            "call.caller_number"
        );
        assert_eq!(body["error"]["details"][0]["reason"], "INVALID_ARGUMENT");
    }

    #[test]
    fn a_stale_etag_is_a_412_and_a_missing_key_a_401() {
        let stale = Refusal::Service(Error::EtagMismatch { resource: "call" });
        assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
        let unauthenticated = Refusal::Service(Error::Unauthenticated).response();
        assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            unauthenticated.headers()[header::WWW_AUTHENTICATE],
            "Bearer"
        );
    }

    #[test]
    fn a_retry_delay_is_written_as_a_json_duration() {
        assert_eq!(duration_json(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration_json(Duration::from_secs(2)), "2s");
    }
}
