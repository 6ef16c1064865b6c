//! ListCalls as the load generator reads it: the calls of a page are counted, not decoded.
//!
//! pgbench receives its rows without building objects from them. Decoding a page into 50
//! `pb::Call`s (a dozen heap strings each) cost this client about as much CPU as the server
//! spends on the page, on the same two cores, so the list figures measured the client as much
//! as the service. The bytes received are the same; the test suite checks what they hold.

use prost::{
    bytes::{Buf, BufMut},
    encoding::{self, DecodeContext, WireType},
    DecodeError,
};
use tonic::{codegen::http::uri::PathAndQuery, transport::Channel, Request, Response, Status};
use tonic_prost::ProstCodec;

use callsd::pb::calls::v1 as pb;

const LIST_CALLS_PATH: &str = "/calls.v1.CallService/ListCalls";

/// `ListCallsResponse` with each call counted and skipped whole, by its length: skipping a
/// call field by field (a message with no fields declared) was a sixth of this client's CPU.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PageSummary {
    pub calls: usize,
    pub next_page_token: String,
}

/// `ListCallsResponse.calls` and `.next_page_token`.
const CALLS_TAG: u32 = 1;
const NEXT_PAGE_TOKEN_TAG: u32 = 2;

impl prost::Message for PageSummary {
    fn encode_raw(&self, _buf: &mut impl BufMut) {
        // Only ever decoded: the load generator never sends a page.
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            CALLS_TAG => {
                self.calls += 1;
                encoding::skip_field(wire_type, tag, buf, ctx)
            }
            NEXT_PAGE_TOKEN_TAG => {
                encoding::string::merge(wire_type, &mut self.next_page_token, buf, ctx)
            }
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {
        *self = PageSummary::default();
    }
}

/// Sends one ListCalls request and reads the answer as a [`PageSummary`].
pub async fn list_page(
    channel: Channel,
    request: Request<pb::ListCallsRequest>,
) -> Result<PageSummary, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(format!("channel not ready: {error}")))?;
    let codec = ProstCodec::<pb::ListCallsRequest, PageSummary>::default();
    grpc.unary(request, PathAndQuery::from_static(LIST_CALLS_PATH), codec)
        .await
        .map(Response::into_inner)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn a_summary_counts_the_calls_and_keeps_the_token() {
        let call = pb::Call {
            id: "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000".to_owned(),
            caller_number: "+33 6 12 34 56 78".to_owned(),
            create_time: Some(prost_types::Timestamp {
                seconds: 1_774_765_900,
                nanos: 1_000,
            }),
            ..pb::Call::default()
        };
        let page = pb::ListCallsResponse {
            calls: vec![call.clone(), pb::Call::default(), call],
            next_page_token: "next".to_owned(),
            next_sync_token: "sync".to_owned(),
        };
        let summary = PageSummary::decode(page.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(
            summary,
            PageSummary {
                calls: 3,
                next_page_token: "next".to_owned()
            }
        );
    }
}
