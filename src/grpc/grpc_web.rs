//! gRPC-Web and Connect on the gRPC port, for browsers and `buf curl`: tonic-web's translation
//! and ours ([`super::connect`]), behind a CORS policy that lets only the configured origins'
//! pages call them.
//!
//! Requests pass, outermost first: CORS (answers preflights, marks allowed answers), Connect to
//! gRPC, tonic-web (gRPC-Web to gRPC), the services. gRPC goes through all three untouched.
//!
//! No origin is allowed by default: an API key held by a page is readable by anyone who can load
//! it, so exposing the API to browsers is the operator's decision, origin by origin. Keys travel
//! in the `authorization` header, never in cookies, so an allowed origin gains nothing it could
//! not already do with a key.

use std::time::Duration;

use http::{HeaderName, Method};
use tonic_web::GrpcWebLayer;
use tower::layer::util::Stack;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::connect::ConnectLayer;
use crate::config::AllowedOrigins;

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Request headers a gRPC-Web client sends besides the body: its framing, deadline, the API key.
/// The `connect-` ones are a Connect client's.
const ALLOWED_HEADERS: [&str; 8] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-accept-encoding",
    "authorization",
    "connect-protocol-version",
    "connect-timeout-ms",
];

/// Response headers a page may read: a failed call's status comes in headers, not trailers.
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// The layers in front of every service; see the module header for their order.
pub type WebLayers = Stack<GrpcWebLayer, Stack<ConnectLayer, CorsLayer>>;

/// The layers in front of every service, with `origins` allowed by CORS.
pub fn web_layers(origins: &AllowedOrigins) -> WebLayers {
    // `Stack::new(inner, outer)`: the outer layer sees a request first.
    Stack::new(
        GrpcWebLayer::new(),
        Stack::new(ConnectLayer, cors_layer(origins)),
    )
}

fn cors_layer(origins: &AllowedOrigins) -> CorsLayer {
    let allow_origin = match origins {
        AllowedOrigins::Listed(origins) => AllowOrigin::list(origins.iter().cloned()),
        AllowedOrigins::Any => AllowOrigin::any(),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(PREFLIGHT_MAX_AGE)
}
