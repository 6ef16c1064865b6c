//! A Connect streaming call (server reflection, WatchCalls): envelopes pass both ways as they
//! are, since Connect's are gRPC's frames byte for byte; the gRPC trailers, which a Connect
//! client never reads, become the end-of-stream envelope that carries the status.

use std::{
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use tonic::{body::Body, Status};
use tower::{Service, ServiceExt};

use super::{end_stream_envelope, into_grpc_request, remove_grpc_headers};

pub async fn call<S>(
    service: S,
    request: Request<Body>,
    content_type: HeaderValue,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let (mut head, body) = request.into_parts();
    into_grpc_request(&mut head);
    let response = service.oneshot(Request::from_parts(head, body)).await?;
    let (mut head, body) = response.into_parts();
    // A call that fails before its first message has its status in the headers.
    let status_in_headers = Status::from_header_map(&head.headers);
    remove_grpc_headers(&mut head.headers);
    head.status = StatusCode::OK;
    head.headers.insert(header::CONTENT_TYPE, content_type);
    let body = EndStreamBody {
        inner: body,
        status_in_headers,
        ended: false,
    };
    Ok(Response::from_parts(head, Body::new(body)))
}

/// The gRPC answer's frames, then the end-of-stream envelope in place of its trailers.
struct EndStreamBody {
    inner: Body,
    status_in_headers: Option<Status>,
    ended: bool,
}

impl http_body::Body for EndStreamBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let status = match ready!(Pin::new(&mut self.inner).poll_frame(context)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => Status::from_header_map(&trailers),
                    Err(_) => return Poll::Ready(Some(Ok(Frame::data(Bytes::new())))),
                },
            },
            // The stream broke off (a service error mid-stream): say so in the envelope.
            Some(Err(status)) => Some(status),
            None => self.status_in_headers.take(),
        };
        self.ended = true;
        Poll::Ready(Some(Ok(Frame::data(end_stream_envelope(status.as_ref())))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn the_trailers_become_the_last_envelope() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("5"));
        trailers.insert("grpc-message", HeaderValue::from_static("gone"));
        let frames = futures::stream::iter([
            Ok::<_, Status>(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
            Ok(Frame::trailers(trailers)),
        ]);
        let body = EndStreamBody {
            inner: Body::new(http_body_util::StreamBody::new(frames)),
            status_in_headers: None,
            ended: false,
        };
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..5], b"\0\0\0\0\0");
        assert_eq!(bytes[5], 0b10);
        let end: serde_json::Value = serde_json::from_slice(&bytes[10..]).unwrap();
        assert_eq!(end["error"]["code"], "not_found");
        assert_eq!(end["error"]["message"], "gone");
    }
}
