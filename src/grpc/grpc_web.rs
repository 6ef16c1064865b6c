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
use http::{header, HeaderName, HeaderValue, Method, Request};
use tonic_web::GrpcWebLayer;
use tower::{layer::util::Stack, Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use super::connect::ConnectLayer;

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

/// The browser origins allowed to call the API (`CALLSD_CORS_ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Exactly these origins, as a browser sends them (`https://app.example.com`); none if empty.
    Listed(Vec<HeaderValue>),
    /// Any origin (`*`).
    Any,
}

/// The layers in front of every service; see the module header for their order.
pub type WebLayers = Stack<GrpcWebLayer, Stack<ConnectLayer, BrowserCorsLayer>>;

/// The layers in front of every service, with `origins` allowed by CORS.
pub fn web_layers(origins: &AllowedOrigins) -> WebLayers {
    // `Stack::new(inner, outer)`: the outer layer sees a request first.
    Stack::new(
        GrpcWebLayer::new(),
        Stack::new(ConnectLayer, BrowserCorsLayer(cors_layer(origins))),
    )
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
        .allow_methods([Method::POST])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(PREFLIGHT_MAX_AGE)
}

/// Parses a comma-separated list of origins (`scheme://host[:port]`), or `*`; empty is none.
pub fn parse_allowed_origins(text: &str) -> Result<AllowedOrigins, String> {
    let items: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items == ["*"] {
        return Ok(AllowedOrigins::Any);
    }
    items
        .into_iter()
        .map(parse_origin)
        .collect::<Result<_, _>>()
        .map(AllowedOrigins::Listed)
}

fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let explain = |problem: &str| {
        format!("{text:?} is not an origin like https://app.example.com or http://localhost:5173: {problem}")
    };
    if text == "*" {
        return Err(explain("\"*\" allows any origin and must stand alone"));
    }
    let url = url::Url::parse(text).map_err(|error| explain(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(explain("the scheme must be http or https"));
    }
    // A browser's Origin header has no path, not even "/": one written here would never match.
    if text.ends_with('/') || url.path() != "/" || url.query().is_some() || url.fragment().is_some()
    {
        return Err(explain("write it without a path or a trailing slash"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(explain("an origin has no user name or password"));
    }
    HeaderValue::from_str(&url.origin().ascii_serialization())
        .map_err(|error| explain(&error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origin_is_allowed_by_default() {
        assert_eq!(
            parse_allowed_origins(""),
            Ok(AllowedOrigins::Listed(vec![]))
        );
    }

    #[test]
    fn origins_are_read_as_browsers_send_them() {
        assert_eq!(
            parse_allowed_origins(" https://App.Example.com , http://localhost:5173"),
            Ok(AllowedOrigins::Listed(vec![
                HeaderValue::from_static("https://app.example.com"),
                HeaderValue::from_static("http://localhost:5173"),
            ]))
        );
        assert_eq!(parse_allowed_origins("*"), Ok(AllowedOrigins::Any));
    }

    #[test]
    fn an_origin_with_a_path_or_another_scheme_is_refused_with_the_reason() {
        let error = parse_allowed_origins("https://app.example.com/").unwrap_err();
        assert!(error.contains("trailing slash"), "{error}");
        assert!(parse_allowed_origins("https://app.example.com/ui").is_err());
        assert!(parse_allowed_origins("ftp://app.example.com").is_err());
        assert!(parse_allowed_origins("app.example.com").is_err());
        assert!(parse_allowed_origins("*,https://app.example.com").is_err());
    }
}
