//! The Connect protocol (connectrpc.com/docs/protocol) on the gRPC port, binary codec only: the
//! protocol `buf curl` speaks unless told otherwise, and connect-go's and connect-es's (with
//! `useBinaryFormat`).
//!
//! Why serve it rather than refuse it: `buf curl` with its default flags asks reflection over
//! Connect first, and whatever the answer, reports `failed to find service named ... in
//! schema` (its resolver chain ends with one that only knows the well-known types, whose "not
//! found" masks every earlier error), so no refusal message could reach its users. Only over
//! Connect does `buf curl` show error details decoded: it prints the `debug` JSON a Connect
//! error carries (see `errors`), and has no other way to decode a `google.rpc` detail.
//!
//! With the binary codec, Connect and gRPC differ only in framing, so each request is rewritten
//! into gRPC for the same services and the answer rewritten back; no message is decoded here:
//! - unary (`application/proto`): the body is one bare message; it is framed, and the answer
//!   unframed, its status becoming an HTTP status with a JSON error (`unary`);
//! - streaming (`application/connect+proto`): envelopes are gRPC's frames byte for byte; the
//!   trailers become the final end-of-stream envelope (`streaming`).
//!
//! The JSON codec (it would mean transcoding every message), GET requests and compressed
//! requests are answered with an `unimplemented` error that says what to use instead.

mod errors;
mod streaming;
mod unary;

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::Either;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, Version};
use tonic::{body::Body, Status};
use tower::{Layer, Service};

/// What a Connect client sending JSON is told.
pub const JSON_REFUSAL: &str = "callsd serves the Connect protocol with the binary codec only \
     (application/proto, which buf curl sends); with connect-es set useBinaryFormat: true, or \
     use gRPC-Web";
const GET_REFUSAL: &str = "callsd serves Connect unary calls with POST only";
const COMPRESSION_REFUSAL: &str = "callsd accepts Connect requests uncompressed only";

/// The protocol's flag for the envelope that ends a stream (its payload is JSON).
const END_STREAM_FLAG: u8 = 0b10;

/// Puts [`ConnectService`] in front of a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectLayer;

impl<S> Layer<S> for ConnectLayer {
    type Service = ConnectService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectService { inner }
    }
}

/// Serves Connect requests through `inner` (gRPC); passes gRPC and gRPC-Web on untouched.
#[derive(Debug, Clone)]
pub struct ConnectService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for ConnectService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(handling) = Handling::of(&request) else {
            return Either::Left(self.inner.call(request));
        };
        // The ready service goes with the request; a clone takes its place (tower's rule).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(match handling {
            Handling::Serve(Shape::Unary) => Box::pin(unary::call(inner, request)),
            Handling::Serve(Shape::Streaming(content_type)) => {
                Box::pin(streaming::call(inner, request, content_type))
            }
            Handling::Refuse(shape, reason) => {
                tracing::debug!(
                    path = request.uri().path(),
                    reason,
                    "refusing a Connect request"
                );
                let answer = shape.error_response(&Status::unimplemented(reason));
                Box::pin(futures::future::ready(Ok(answer)))
            }
        })
    }
}

/// How a Connect call is carried, which decides how an error is.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    Unary,
    /// `application/connect+proto` or `+json`: the answer keeps the request's content type.
    Streaming(HeaderValue),
}

impl Shape {
    fn error_response(self, status: &Status) -> Response<Body> {
        match self {
            Shape::Unary => errors::unary_error_response(status),
            Shape::Streaming(content_type) => {
                let mut response = Response::new(Body::new(http_body_util::Full::new(
                    end_stream_envelope(Some(status)),
                )));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
                response
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Handling {
    Serve(Shape),
    Refuse(Shape, &'static str),
}

impl Handling {
    /// `None` for anything that is not Connect: gRPC, gRPC-Web, stray HTTP requests.
    fn of(request: &Request<Body>) -> Option<Handling> {
        let headers = request.headers();
        // Every gRPC call passes here: recognise it before anything allocates.
        let raw_content_type = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
        if raw_content_type.is_some_and(|value| value.starts_with(b"application/grpc")) {
            return None;
        }
        let content_type = media_type(headers);
        if content_type.starts_with("application/grpc") {
            return None;
        }
        if let Some(codec) = content_type.strip_prefix("application/connect+") {
            let shape = Shape::Streaming(HeaderValue::from_str(&content_type).ok()?);
            let compressed = headers
                .get("connect-content-encoding")
                .is_some_and(|encoding| encoding != "identity");
            return Some(match codec {
                "proto" if compressed => Handling::Refuse(shape, COMPRESSION_REFUSAL),
                "proto" => Handling::Serve(shape),
                _ => Handling::Refuse(shape, JSON_REFUSAL),
            });
        }
        let is_connect = headers.contains_key("connect-protocol-version")
            || matches!(
                content_type.as_str(),
                "application/proto" | "application/json"
            )
            || request
                .uri()
                .query()
                .is_some_and(|query| query.split('&').any(|pair| pair == "connect=v1"));
        if !is_connect {
            return None;
        }
        let compressed = headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|encoding| encoding != "identity");
        Some(match content_type.as_str() {
            _ if request.method() != Method::POST => Handling::Refuse(Shape::Unary, GET_REFUSAL),
            "application/proto" if compressed => {
                Handling::Refuse(Shape::Unary, COMPRESSION_REFUSAL)
            }
            "application/proto" => Handling::Serve(Shape::Unary),
            _ => Handling::Refuse(Shape::Unary, JSON_REFUSAL),
        })
    }
}

/// The content type without parameters, in lower case.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Turns a Connect request's head into a gRPC request's, for the services behind.
fn into_grpc_request(head: &mut http::request::Parts) {
    // tonic-web refuses anything but gRPC-Web over HTTP/1.1; this request is gRPC now.
    head.version = Version::HTTP_2;
    let headers = &mut head.headers;
    let timeout = headers
        .get("connect-timeout-ms")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    for name in [
        "connect-protocol-version",
        "connect-timeout-ms",
        "connect-accept-encoding",
        "connect-content-encoding",
    ] {
        headers.remove(name);
    }
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::CONTENT_ENCODING);
    headers.remove(header::ACCEPT_ENCODING);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc+proto"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Some(milliseconds) = timeout {
        // gRPC allows at most 8 digits; 99,999,999 ms is over a day.
        let value = format!("{}m", milliseconds.min(99_999_999));
        headers.insert(
            "grpc-timeout",
            HeaderValue::from_str(&value).expect("digits and a unit"),
        );
    }
}

/// Headers of a gRPC answer that mean nothing to a Connect client.
fn remove_grpc_headers(headers: &mut HeaderMap) {
    for name in [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "grpc-encoding",
        "grpc-accept-encoding",
    ] {
        headers.remove(name);
    }
}

/// The envelope that ends a stream: the error, if the call failed.
fn end_stream_envelope(status: Option<&Status>) -> Bytes {
    let end = match status {
        Some(status) if status.code() != tonic::Code::Ok => {
            serde_json::json!({ "error": errors::error_json(status) })
        }
        _ => serde_json::json!({}),
    }
    .to_string();
    let mut envelope = BytesMut::with_capacity(5 + end.len());
    envelope.put_u8(END_STREAM_FLAG);
    envelope.put_u32(u32::try_from(end.len()).unwrap_or(u32::MAX));
    envelope.put_slice(end.as_bytes());
    envelope.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, content_type: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::empty())
            .unwrap()
    }

    fn post(content_type: &str) -> Request<Body> {
        request(Method::POST, "/calls.v1.CallService/GetCall", content_type)
    }

    #[test]
    fn grpc_and_grpc_web_requests_pass_untouched() {
        for content_type in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc-web+proto",
            "application/grpc-web-text",
        ] {
            assert_eq!(Handling::of(&post(content_type)), None);
        }
        assert_eq!(Handling::of(&request(Method::GET, "/", "")), None);
    }

    #[test]
    fn connect_calls_with_the_binary_codec_are_served() {
        assert_eq!(
            Handling::of(&post("application/proto")),
            Some(Handling::Serve(Shape::Unary))
        );
        assert_eq!(
            Handling::of(&post("application/connect+proto")),
            Some(Handling::Serve(Shape::Streaming(HeaderValue::from_static(
                "application/connect+proto"
            ))))
        );
    }

    #[test]
    fn json_and_get_calls_are_refused_in_the_shape_the_client_reads() {
        assert_eq!(
            Handling::of(&post("application/json; charset=utf-8")),
            Some(Handling::Refuse(Shape::Unary, JSON_REFUSAL))
        );
        assert!(matches!(
            Handling::of(&post("application/connect+json")),
            Some(Handling::Refuse(Shape::Streaming(_), JSON_REFUSAL))
        ));
        let get = request(
            Method::GET,
            "/calls.v1.CallService/GetCall?connect=v1&encoding=proto",
            "",
        );
        assert_eq!(
            Handling::of(&get),
            Some(Handling::Refuse(Shape::Unary, GET_REFUSAL))
        );
    }

    #[test]
    fn a_connect_head_becomes_a_grpc_head() {
        let (mut head, _) = post("application/proto").into_parts();
        head.headers
            .insert("connect-timeout-ms", HeaderValue::from_static("2500"));
        into_grpc_request(&mut head);
        assert_eq!(head.headers["content-type"], "application/grpc+proto");
        assert_eq!(head.headers["te"], "trailers");
        assert_eq!(head.headers["grpc-timeout"], "2500m");
        assert_eq!(head.version, Version::HTTP_2);
    }
}
