//! The gRPC surface: one file per concern, converting proto messages to domain types and
//! [`crate::Error`] to `Status` (in `status.rs`, the one mapping). No SQL here.

mod call_page;
mod calls;
pub mod codec;
mod connect;
mod grpc_web;
mod health;
mod observed;
mod reflection;
mod status;
mod watch;
mod watches;

use std::{future::Future, sync::LazyLock, time::Instant};

use tokio::sync::OwnedSemaphorePermit;
use tonic::{Code, Response, Status};
use tracing::Instrument;

pub use call_page::EncodedPage;
pub use calls::CallApi;
pub use grpc_web::{browser_cors, web_layers, BrowserCorsLayer, WebLayers};
pub use health::health_service;
pub use observed::{observed, Observed, HEALTH_METHODS, REFLECTION_METHODS};
pub use reflection::reflection_services;
pub use watches::{WatchApi, WATCH_SERVICE};

/// The gRPC service name, as metrics and health report it.
pub const CALL_SERVICE: &str = "calls.v1.CallService";

use crate::api::check_request;
pub use crate::api::InFlightLimit;

/// A slot for one RPC within the process's in-flight limit (`CALLSD_MAX_IN_FLIGHT`), shared
/// with the REST door; past it, calls are refused at once with RESOURCE_EXHAUSTED instead of
/// queueing for the database pool.
///
/// Checked in the handler, after tonic has read the request, and not by a tower layer in front
/// of it: a layer answers before the request body is read, hyper then resets the stream, and
/// h2 closes a connection that collects too many such resets or unread frames (GOAWAY
/// ENHANCE_YOUR_CALM), failing every call on it instead of the excess alone.
fn enter(in_flight: &InFlightLimit) -> Result<OwnedSemaphorePermit, Status> {
    // Refusals come in floods: each must cost far less than a served call, so the answer
    // (with its encoded details) is built once and cloned.
    static OVERLOADED: LazyLock<Status> = LazyLock::new(|| Status::from(crate::Error::Overloaded));
    in_flight.try_enter().ok_or_else(|| OVERLOADED.clone())
}

/// Runs one unary RPC inside a span with a request id, within the in-flight limit, once its
/// `request` is within the field limits, and records it in the `grpc_server_*` metrics under
/// the names go-grpc-prometheus uses.
///
/// The handler is a closure that makes its future, called where it is awaited, and this is
/// no `async fn`: as a future passed in and awaited by an `async fn` around another async
/// block, the handler's state (2.9 KB for ListCalls) was held three times, and the 8.9 KB
/// future copied into its box on each call (`-Zprint-type-sizes`, BENCHMARKS.md issue 15).
fn observe<'a, T, M, Handler, HandlerFuture>(
    in_flight: &'a InFlightLimit,
    service: &'static str,
    method: &'static str,
    request: &'a M,
    handler: Handler,
) -> impl Future<Output = Result<Response<T>, Status>> + 'a
where
    M: prost::Message + prost::Name,
    Handler: FnOnce() -> HandlerFuture + 'a,
    HandlerFuture: Future<Output = Result<T, crate::Error>> + 'a,
{
    let span = tracing::info_span!("rpc", service, method, request_id = %uuid::Uuid::new_v4());
    async move {
        let started = Instant::now();
        record_started(service, method);
        let result = match enter(in_flight) {
            Ok(_slot) => match check_request(request) {
                Ok(()) => handler().await.map(Response::new).map_err(Status::from),
                Err(error) => Err(Status::from(error)),
            },
            Err(status) => Err(status),
        };
        let code = result.as_ref().err().map_or(Code::Ok, Status::code);
        record_handled(service, method, code, started);
        match &result {
            Ok(_) => {}
            // Counted in grpc_server_handled_total; a line for each would cost more than the
            // refusal itself when thousands a second are shed.
            Err(status) if status.code() == Code::ResourceExhausted => {
                tracing::debug!(message = status.message(), "rpc refused")
            }
            Err(status) => {
                tracing::info!(code = ?status.code(), message = status.message(), "rpc failed")
            }
        }
        result
    }
    .instrument(span)
}

/// The value of the request's `authorization` metadata, which [`crate::auth`] reads the API
/// key from (the same header as over HTTP).
fn authorization(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    metadata.get("authorization")?.to_str().ok()
}

fn record_started(service: &'static str, method: &'static str) {
    record_started_as(service, method, grpc_type(method));
}

/// Records a finished RPC; streams call it when they end.
fn record_handled(service: &'static str, method: &'static str, code: Code, started: Instant) {
    record_handled_as(service, method, grpc_type(method), code, started);
}

/// Records a started RPC of type `kind` (`unary`, `server_stream`, `bidi_stream`...).
fn record_started_as(service: &'static str, method: &'static str, kind: &'static str) {
    metrics::counter!("grpc_server_started_total",
        "grpc_service" => service, "grpc_method" => method, "grpc_type" => kind)
    .increment(1);
}

fn record_handled_as(
    service: &'static str,
    method: &'static str,
    kind: &'static str,
    code: Code,
    started: Instant,
) {
    metrics::counter!("grpc_server_handled_total",
        "grpc_service" => service, "grpc_method" => method,
        "grpc_type" => kind, "grpc_code" => code_name(code))
    .increment(1);
    metrics::histogram!("grpc_server_handling_seconds",
        "grpc_service" => service, "grpc_method" => method, "grpc_type" => kind)
    .record(started.elapsed().as_secs_f64());
}

fn grpc_type(method: &str) -> &'static str {
    if method == "WatchCalls" {
        "server_stream"
    } else {
        "unary"
    }
}

/// The code's name as gRPC's Go implementation spells it, which existing dashboards expect.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}
