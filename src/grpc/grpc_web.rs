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

use std::{
    task::{Context, Poll},
    time::Duration,
};

use futures::future::Either;
use http::{header, HeaderName, Method, Request};
use tonic_web::GrpcWebLayer;
use tower::{layer::util::Stack, Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use super::connect::ConnectLayer;
use crate::config::AllowedOrigins;

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Request headers a gRPC-Web client sends besides the body: its framing, deadline, the API key.
/// The `connect-` ones are a Connect client's; `last-event-id` and `if-match` a REST client's.
const ALLOWED_HEADERS: [&str; 10] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-accept-encoding",
    "authorization",
    "connect-protocol-version",
    "connect-timeout-ms",
    "last-event-id",
    "if-match",
];

/// Response headers a page may read: a failed call's status comes in headers, not trailers;
/// a REST answer's `etag` and `retry-after`.
const EXPOSED_HEADERS: [&str; 5] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "etag",
    "retry-after",
];

/// The protocol layers in front of the gRPC services: Connect, then gRPC-Web.
pub type WebLayers = Stack<GrpcWebLayer, ConnectLayer>;

/// The protocol layers in front of the gRPC services (inside [`browser_cors`]).
pub fn web_layers() -> WebLayers {
    // `Stack::new(inner, outer)`: the outer layer sees a request first.
    Stack::new(GrpcWebLayer::new(), ConnectLayer)
}

/// The CORS policy in front of everything the port serves (gRPC-Web, Connect and the REST
/// door alike), with `origins` allowed.
pub fn browser_cors(origins: &AllowedOrigins) -> BrowserCorsLayer {
    BrowserCorsLayer(cors_layer(origins))
}

/// CORS for the requests a browser sends, which always carry `Origin` (every cross-origin
/// request, preflights included, and every POST). Other clients' requests (gRPC from servers,
/// grpcurl, buf curl) go past it: tower-http's CORS cloned its settings and wrote a `Vary`
/// header into every answer, 1.6% of the server's instructions on a ListCalls page
/// (callgrind, BENCHMARKS.md issue 15). `Vary` only matters to caches, which keep no POST.
#[derive(Debug, Clone)]
pub struct BrowserCorsLayer(CorsLayer);

impl<S> Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCors {
            inner,
            cors: self.0.clone(),
        }
    }
}

/// See [`BrowserCorsLayer`].
#[derive(Debug, Clone)]
pub struct BrowserCors<S> {
    inner: S,
    cors: CorsLayer,
}

impl<S, B> Service<Request<B>> for BrowserCors<S>
where
    S: Service<Request<B>> + Clone,
    Cors<S>: Service<Request<B>, Response = S::Response, Error = S::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, <Cors<S> as Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !request.headers().contains_key(header::ORIGIN) {
            return Either::Left(self.inner.call(request));
        }
        // The ready service goes with the request; a clone takes its place (tower's rule).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(self.cors.layer(inner).call(request))
    }
}

fn cors_layer(origins: &AllowedOrigins) -> CorsLayer {
    let allow_origin = match origins {
        AllowedOrigins::Listed(origins) => AllowOrigin::list(origins.iter().cloned()),
        AllowedOrigins::Any => AllowOrigin::any(),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        // POST for the RPCs; the rest for the REST door.
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(PREFLIGHT_MAX_AGE)
}
