//! The REST workloads' client: GetCall and ListCalls as `GET /v1/calls/{id}` and `GET
//! /v1/calls?pageSize=50` with JSON answers, over HTTP/1.1 keep-alive connections (what `curl`,
//! browsers and most HTTP libraries speak to a plain-HTTP server). HTTP/1.1 carries one request
//! at a time per connection, so the client holds as many connections as requests in flight.
//!
//! Errors come back as the gRPC `Status` the driver counts: the code from the body's Google
//! error `status`, the `ErrorInfo` reason from its details, so the REST rows of a report read
//! like the gRPC ones.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Every request gives up after this long, so no loop waits forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A keep-alive HTTP/1.1 client of one server, with the tenant's key.
pub struct RestClient {
    http: reqwest::Client,
    base: String,
    authorization: HeaderValue,
}

/// `ListCallsResponse` as the load generator reads it: the calls counted, not built, as the gRPC
/// list workload's page reader does.
#[derive(Deserialize)]
struct PageSummary {
    #[serde(default)]
    calls: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

impl RestClient {
    /// `address`: `http://127.0.0.1:PORT` (loopback only). Keeps up to `connections` idle
    /// connections, so a closed loop of that many workers reuses its connections.
    pub fn new(address: &str, key: &str, connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(connections)
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {key}"))?;
        authorization.set_sensitive(true);
        Ok(RestClient {
            http,
            base: address.trim_end_matches('/').to_owned(),
            authorization,
        })
    }

    /// `GET /v1/calls/{id}`; the answer is parsed whole, as the gRPC get decodes its call.
    pub async fn get_call(&self, id: &str) -> Result<(), Status> {
        let body = self.get(&format!("{}/v1/calls/{id}", self.base)).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|error| Status::internal(format!("the answer is not JSON: {error}")))?;
        if answer.get("call").is_none() {
            return Err(Status::internal("the answer holds no call"));
        }
        Ok(())
    }

    /// `GET /v1/calls?pageSize=N`: how many calls the first page holds.
    pub async fn list_calls(&self, page_size: i32) -> Result<usize, Status> {
        let body = self
            .get(&format!("{}/v1/calls?pageSize={page_size}", self.base))
            .await?;
        let page: PageSummary = serde_json::from_slice(&body)
            .map_err(|error| Status::internal(format!("the page is not JSON: {error}")))?;
        Ok(page.calls.len())
    }

    async fn get(&self, url: &str) -> Result<bytes::Bytes, Status> {
        let response = self
            .http
            .get(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .send()
            .await
            .map_err(transport_status)?;
        let success = response.status().is_success();
        let http_status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_status)?;
        if success {
            Ok(body)
        } else {
            Err(error_status(http_status, &body))
        }
    }
}

fn transport_status(error: reqwest::Error) -> Status {
    let code = if error.is_timeout() {
        Code::DeadlineExceeded
    } else {
        Code::Unavailable
    };
    Status::new(code, error.to_string())
}

/// The Google error body as a `Status`: its code by name, its `ErrorInfo` reason kept.
fn error_status(http_status: u16, body: &[u8]) -> Status {
    let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) else {
        return Status::unknown(format!("HTTP {http_status} without a Google error body"));
    };
    let code = code_named(&error.status);
    let reason = error.details.iter().find_map(|detail| {
        let is_info = detail["@type"]
            .as_str()
            .is_some_and(|kind| kind.ends_with("google.rpc.ErrorInfo"));
        is_info.then(|| detail["reason"].as_str().unwrap_or_default().to_owned())
    });
    match reason {
        Some(reason) => Status::with_error_details(
            code,
            error.message,
            ErrorDetails::with_error_info(reason, "", std::collections::HashMap::new()),
        ),
        None => Status::new(code, error.message),
    }
}

/// The gRPC code a Google error's `status` names (`NOT_FOUND`, ...).
fn code_named(name: &str) -> Code {
    match name {
        "OK" => Code::Ok,
        "CANCELLED" => Code::Cancelled,
        "INVALID_ARGUMENT" => Code::InvalidArgument,
        "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
        "NOT_FOUND" => Code::NotFound,
        "ALREADY_EXISTS" => Code::AlreadyExists,
        "PERMISSION_DENIED" => Code::PermissionDenied,
        "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
        "FAILED_PRECONDITION" => Code::FailedPrecondition,
        "ABORTED" => Code::Aborted,
        "OUT_OF_RANGE" => Code::OutOfRange,
        "UNIMPLEMENTED" => Code::Unimplemented,
        "INTERNAL" => Code::Internal,
        "UNAVAILABLE" => Code::Unavailable,
        "DATA_LOSS" => Code::DataLoss,
        "UNAUTHENTICATED" => Code::Unauthenticated,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_google_error_body_becomes_its_status_with_its_reason() {
        let body = br#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "slow down", "details": [{"@type":
            "type.googleapis.com/google.rpc.ErrorInfo", "reason": "TENANT_RATE_LIMITED"}]}}"#;
        let status = error_status(429, body);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "slow down");
        assert_eq!(
            status.get_details_error_info().map(|info| info.reason),
            Some("TENANT_RATE_LIMITED".to_owned())
        );
        assert_eq!(error_status(502, b"<html>").code(), Code::Unknown);
    }
}
