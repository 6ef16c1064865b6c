//! A Connect unary call: the bare request message is framed for gRPC, the gRPC answer read
//! whole, and its message or its error sent back the Connect way.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{header, HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use tonic::{body::Body, Status};
use tower::{Service, ServiceExt};

use super::{errors::unary_error_response, into_grpc_request, remove_grpc_headers};

/// The largest request message read: tonic's own limit for a gRPC message (4 MiB).
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// A gRPC frame's head: the compressed flag and the length.
const FRAME_HEAD_LENGTH: usize = 5;

pub async fn call<S>(service: S, request: Request<Body>) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let (mut head, body) = request.into_parts();
    let message = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let status = Status::resource_exhausted(format!(
                "the request message is unreadable or larger than {MAX_REQUEST_BYTES} bytes"
            ));
            return Ok(unary_error_response(&status));
        }
    };
    into_grpc_request(&mut head);
    let request = Request::from_parts(head, Body::new(Full::new(framed(&message))));

    let response = service.oneshot(request).await?;
    let (mut head, body) = response.into_parts();
    let collected = match body.collect().await {
        Ok(collected) => collected,
        Err(status) => return Ok(unary_error_response(&status)),
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    // A call that fails before its answer has its status in the headers ("trailers-only").
    let status =
        Status::from_header_map(&trailers).or_else(|| Status::from_header_map(&head.headers));
    if let Some(status) = status.filter(|status| status.code() != tonic::Code::Ok) {
        return Ok(unary_error_response(&status));
    }
    let Some(message) = unframed(collected.to_bytes()) else {
        let status = Status::internal("the answer was not one uncompressed message");
        return Ok(unary_error_response(&status));
    };

    remove_grpc_headers(&mut head.headers);
    head.headers.remove(header::CONTENT_LENGTH);
    head.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/proto"),
    );
    // Connect sends a unary call's trailers as headers named `trailer-...`.
    let mut trailers = trailers;
    remove_grpc_headers(&mut trailers);
    for (name, value) in &trailers {
        if let Ok(name) = HeaderName::try_from(format!("trailer-{name}")) {
            head.headers.append(name, value.clone());
        }
    }
    Ok(Response::from_parts(head, Body::new(Full::new(message))))
}

fn framed(message: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(FRAME_HEAD_LENGTH + message.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).expect("at most MAX_REQUEST_BYTES"));
    frame.put_slice(message);
    frame.freeze()
}

/// The one message of a unary gRPC answer, if that is what `body` holds.
fn unframed(mut body: Bytes) -> Option<Bytes> {
    if body.len() < FRAME_HEAD_LENGTH || body[0] != 0 {
        return None;
    }
    body.advance(1);
    let length = usize::try_from(body.get_u32()).ok()?;
    (body.len() == length).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_message_unframes_to_itself() {
        let message = Bytes::from_static(b"\x0a\x02id");
        assert_eq!(unframed(framed(&message)), Some(message));
    }

    #[test]
    fn a_compressed_or_cut_frame_is_not_a_message() {
        let mut compressed = framed(b"abc").to_vec();
        compressed[0] = 1;
        assert_eq!(unframed(Bytes::from(compressed)), None);
        let whole = framed(b"abc");
        assert_eq!(unframed(whole.slice(..whole.len() - 1)), None);
    }
}
