//! ListCalls as the load generator reads it: the calls of a page are counted, not decoded.
//!
//! pgbench receives its rows without building objects from them. Decoding a page into 50
//! `pb::Call`s (a dozen heap strings each) cost this client about as much CPU as the server
//! spends on the page, on the same two cores, so the list figures measured the client as much
//! as the service. The bytes received are the same; the test suite checks what they hold.

use tonic::{codegen::http::uri::PathAndQuery, transport::Channel, Request, Response, Status};
use tonic_prost::ProstCodec;

use callsd::pb::calls::v1 as pb;

const LIST_CALLS_PATH: &str = "/calls.v1.CallService/ListCalls";

/// `ListCallsResponse` with each call skipped over instead of decoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PageSummary {
    #[prost(message, repeated, tag = "1")]
    pub calls: Vec<SkippedCall>,
    #[prost(string, tag = "2")]
    pub next_page_token: String,
}

/// A call whose fields are all skipped: no field is declared, so none is kept.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct SkippedCall {}

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
