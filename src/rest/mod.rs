//! The REST/JSON front door, on the gRPC port: the seed's API as the proto's `google.api.http`
//! annotations map it (read at start-up into [`routes::RouteTable`], never written twice).
//! Like the gRPC door it only authenticates (`Authorization: Bearer <key>`), converts (proto3
//! JSON through prost-reflect, `json.rs`) and maps errors (Google's REST shape, `status.rs`);
//! each RPC runs the same function in [`crate::api`] as over gRPC, within the same in-flight
//! limit and tenant shares. `GET /v1/calls:watch` streams Server-Sent Events (`sse.rs`).
//! `GET /openapi.json` (no key) is the OpenAPI document generated from the same annotations
//! ([`openapi`]).
//!
//! Which requests are REST: [`RestLayer`] sits between CORS and the gRPC protocols and takes
//! every request that is not an RPC, that is neither of a gRPC or Connect content type nor
//! addressed to `/<package>.<Service>/<Method>`.

mod export;
mod handlers;
mod json;
pub mod openapi;
pub mod routes;
mod sse;
mod status;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::future::Either;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::{
    api::{self, InFlightLimit},
    auth::Authenticator,
    service::{calls::Calls, watches::Watches},
    Error,
};
/// The seed's spellings the door accepts beside the proto's, for documents that list them
/// (the OpenAPI document): field aliases by message, query parameter aliases by request.
pub use json::{FIELD_ALIASES, QUERY_ALIASES};
use routes::{Lookup, Route, RouteTable};
use status::Refusal;

/// The largest request body read: far above any request within the field limits (a watch's
/// 64 KiB schema is the largest field), far below what could tie up memory.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a request body may take to arrive once its headers have.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the REST door needs; cheap to clone.
#[derive(Clone)]
pub struct Rest {
    calls: Calls,
    watches: Watches,
    authenticator: Authenticator,
    in_flight: InFlightLimit,
    routes: Arc<RouteTable>,
}

impl Rest {
    /// The door, with its routes read from the proto's annotations.
    pub fn new(
        calls: Calls,
        watches: Watches,
        authenticator: Authenticator,
        in_flight: InFlightLimit,
    ) -> anyhow::Result<Self> {
        let pool = api::descriptors()?;
        let routes = RouteTable::from_descriptors(pool)
            .map_err(|error| anyhow::anyhow!("reading the google.api.http routes: {error}"))?;
        openapi::document_json()
            .map_err(|error| anyhow::anyhow!("generating the OpenAPI document: {error}"))?;
        Ok(Rest {
            calls,
            watches,
            authenticator,
            in_flight,
            routes: Arc::new(routes),
        })
    }

    /// The routes served, as the proto declares them.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Answers one REST request; never fails (every failure is an answer in the error shape).
    pub async fn serve(&self, request: Request<Body>) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        if method == Method::GET && path == openapi::PATH {
            record("", StatusCode::OK, started);
            return openapi::response(); // the API's description needs no key
        }
        let (route, path_values) = match self.routes.lookup(&method, &path) {
            Lookup::Found(route, values) => (route, values),
            Lookup::WrongMethod(allowed) => {
                record("", StatusCode::METHOD_NOT_ALLOWED, started);
                return Refusal::WrongMethod(allowed).response();
            }
            Lookup::NotFound => {
                record("", StatusCode::NOT_FOUND, started);
                return Refusal::NoRoute.response();
            }
        };
        let rpc = route.rpc.name().to_owned();
        let span = tracing::info_span!("rest", rpc = %rpc, http_method = %method,
            request_id = %uuid::Uuid::new_v4());
        async move {
            let answer = self.answer(route, path_values, request).await;
            let response = answer.unwrap_or_else(|refusal| {
                match refusal.status() {
                    StatusCode::TOO_MANY_REQUESTS => tracing::debug!(?refusal, "request refused"),
                    status => tracing::info!(%status, ?refusal, "request failed"),
                }
                refusal.response()
            });
            record(&rpc, response.status(), started);
            response
        }
        .instrument(span)
        .await
    }

    async fn answer(
        &self,
        route: &Route,
        mut path_values: routes::PathValues,
        request: Request<Body>,
    ) -> Result<Response<Body>, Refusal> {
        let (parts, body) = request.into_parts();
        let body = read_body(&parts.headers, body).await?;
        if let Some(etag) = if_match(&parts.headers)? {
            // HTTP's own precondition, as the request's etag field: a stale one answers 412.
            let field = json::etag_field(route)
                .ok_or_else(|| Error::invalid("If-Match", "this method takes no etag"))?;
            path_values.push((field, etag));
        }
        // A slot while the request runs (a stream holds it only while it opens).
        let _slot = self.in_flight.try_enter().ok_or(Error::Overloaded)?;
        let tenant = self
            .authenticator
            .admit(authorization(&parts.headers))
            .await?;
        let message = json::request_message(route, path_values, parts.uri.query(), &body)?;
        if route.rpc.is_server_streaming() {
            return match route.rpc.name() {
                "ExportCalls" => {
                    export::open(&self.calls, &tenant, route, message, &parts.headers).await
                }
                _ => sse::open(&self.calls, &tenant, route, message, &parts.headers).await,
            };
        }
        let answer = handlers::dispatch(self, route, message, &tenant).await?;
        let mut response = if route.method == Method::DELETE {
            // The seed's delete answers an empty body.
            Response::new(Body::empty())
        } else {
            status::json_response(StatusCode::OK, Bytes::from(answer.body))
        };
        if let Some(etag) = answer.etag {
            if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
                response.headers_mut().insert(header::ETAG, value);
            }
        }
        Ok(response)
    }
}

/// The etag an `If-Match` header asks for (`"3"` or `W/"3"`; `*` asks for none).
fn if_match(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::invalid("If-Match", "must be an etag"))?
        .trim();
    if value == "*" {
        return Ok(None);
    }
    let unquoted = value
        .trim_start_matches("W/")
        .strip_prefix('"')
        .and_then(|value| value.strip_suffix('"'))
        .ok_or_else(|| Error::invalid("If-Match", "must be one quoted etag, e.g. \"3\""))?;
    Ok(Some(unquoted.to_owned()))
}

/// The `Authorization` header's value, which [`crate::auth`] reads the API key from.
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()
}

/// The request body, at most [`MAX_BODY_BYTES`], in JSON when there is one.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(Refusal::TooLarge(MAX_BODY_BYTES));
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    let body = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => return Err(Refusal::BodyTimeout),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(Refusal::TooLarge(MAX_BODY_BYTES))
        }
        Ok(Err(error)) => {
            return Err(Error::invalid("body", format!("could not be read: {error}")).into())
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    if !body.is_empty() && !is_json(headers) {
        return Err(Refusal::UnsupportedMediaType);
    }
    Ok(body)
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Counts a finished request in `http_server_requests_total` and its duration in
/// `http_server_request_duration_seconds`, by RPC (empty when no route matched) and status.
fn record(rpc: &str, status: StatusCode, started: Instant) {
    let rpc = rpc.to_owned();
    metrics::counter!("http_server_requests_total",
        "rpc" => rpc.clone(), "status" => status.as_u16().to_string())
    .increment(1);
    metrics::histogram!("http_server_request_duration_seconds", "rpc" => rpc)
        .record(started.elapsed().as_secs_f64());
}

/// Whether a request is for the REST door rather than an RPC (gRPC, gRPC-Web, Connect).
fn is_rest<B>(request: &Request<B>) -> bool {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/grpc")
        || content_type.starts_with("application/connect")
    {
        return false;
    }
    // RPCs are addressed to /<package>.<Service>/<Method>.
    let first = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    !first.contains('.') || first == "openapi.json"
}

/// Puts the REST door in front of the RPC services.
/// Shared, not copied: tower clones the service for every request.
#[derive(Clone)]
pub struct RestLayer(Arc<Rest>);

impl RestLayer {
    pub fn new(rest: Rest) -> Self {
        RestLayer(Arc::new(rest))
    }
}

impl<S> Layer<S> for RestLayer {
    type Service = RestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RestService {
            inner,
            rest: self.0.clone(),
        }
    }
}

/// See [`RestLayer`].
#[derive(Clone)]
pub struct RestService<S> {
    inner: S,
    rest: Arc<Rest>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for RestService<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !is_rest(&request) {
            return Either::Left(self.inner.call(request));
        }
        let rest = self.rest.clone();
        Either::Right(Box::pin(async move { Ok(rest.serve(request).await) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, content_type: Option<&str>) -> Request<()> {
        let mut request = Request::builder().uri(path);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request.body(()).unwrap()
    }

    #[test]
    fn rpcs_of_every_protocol_pass_by_and_the_rest_is_rest() {
        for (path, content_type) in [
            ("/calls.v1.CallService/GetCall", Some("application/grpc")),
            (
                "/calls.v1.CallService/GetCall",
                Some("application/grpc-web+proto"),
            ),
            ("/calls.v1.CallService/GetCall", Some("application/proto")),
            ("/calls.v1.CallService/GetCall", Some("application/json")),
            (
                "/calls.v1.CallService/WatchCalls",
                Some("application/connect+proto"),
            ),
            ("/grpc.health.v1.Health/Check", None),
        ] {
            assert!(
                !is_rest(&request(path, content_type)),
                "{path} {content_type:?}"
            );
        }
        for (path, content_type) in [
            ("/v1/calls", Some("application/json")),
            ("/v1/calls:watch", None),
            ("/openapi.json", None),
            ("/", None),
            ("/anything/else", Some("text/plain")),
        ] {
            assert!(
                is_rest(&request(path, content_type)),
                "{path} {content_type:?}"
            );
        }
    }
}
