//! A gRPC status as a Connect error: its code's name and HTTP status, its message, and each
//! `google.rpc` detail as the protocol's `{type, value, debug}`, where `debug` is the detail in
//! JSON, so `buf curl` shows a BadRequest's field violations rather than base64 alone.

use std::sync::LazyLock;

use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine};
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::{body::Body, Code, Status};

use super::super::reflection::renamed_descriptor_set;

/// The error-detail types a `debug` rendering can name: the `google.rpc` files we serve.
static DETAIL_TYPES: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::from_file_descriptor_set(renamed_descriptor_set())
        .expect("the error-detail descriptors form a pool")
});

/// A unary call's error: the code's HTTP status and the error as JSON.
pub fn unary_error_response(status: &Status) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(Bytes::from(
        error_json(status).to_string(),
    ))));
    *response.status_mut() = http_status(status.code());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The error object of the protocol: `{"code": ..., "message": ..., "details": [...]}`.
pub fn error_json(status: &Status) -> serde_json::Value {
    let mut error = serde_json::json!({ "code": code_name(status.code()) });
    if !status.message().is_empty() {
        error["message"] = status.message().into();
    }
    let details = details_json(status.details());
    if !details.is_empty() {
        error["details"] = details.into();
    }
    error
}

fn details_json(encoded_status: &[u8]) -> Vec<serde_json::Value> {
    if encoded_status.is_empty() {
        return Vec::new();
    }
    let Ok(status) = tonic_types::pb::Status::decode(encoded_status) else {
        return Vec::new();
    };
    status
        .details
        .into_iter()
        .map(|detail| {
            let type_name = detail.type_url.rsplit('/').next().unwrap_or_default();
            let mut json = serde_json::json!({
                "type": type_name,
                "value": STANDARD_NO_PAD.encode(&detail.value),
            });
            if let Some(debug) = debug_json(type_name, &detail.value) {
                json["debug"] = debug;
            }
            json
        })
        .collect()
}

/// The detail in JSON, if its type is one we know (clients may ignore `debug`).
fn debug_json(type_name: &str, value: &[u8]) -> Option<serde_json::Value> {
    let descriptor = DETAIL_TYPES.get_message_by_name(type_name)?;
    let message = DynamicMessage::decode(descriptor, value).ok()?;
    serde_json::to_value(&message).ok()
}

/// The protocol's name for a code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status the protocol gives a unary error of this code.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a status code"),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;

    #[test]
    fn details_carry_their_json_beside_the_base64() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid argument: id: is not a call id",
            ErrorDetails::with_bad_request_violation("id", "is not a call id"),
        );
        let error = error_json(&status);
        assert_eq!(error["code"], "invalid_argument");
        let detail = &error["details"][0];
        assert_eq!(detail["type"], "google.rpc.BadRequest");
        assert_eq!(detail["debug"]["fieldViolations"][0]["field"], "id");
        assert!(!detail["value"].as_str().unwrap().ends_with('='));
    }

    #[test]
    fn a_status_without_details_has_none() {
        let error = error_json(&Status::not_found("no such call"));
        assert_eq!(
            error,
            serde_json::json!({"code": "not_found", "message": "no such call"})
        );
    }
}
