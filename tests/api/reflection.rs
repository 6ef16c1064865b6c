//! Server reflection serves every file under its canonical path, so a client that resolves
//! imports by path (or already holds `google/rpc/error_details.proto`) gets one consistent set.

use std::collections::{BTreeSet, VecDeque};

use prost::Message;
use prost_types::FileDescriptorProto;
use tonic_reflection::pb::v1::{
    server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse, ServerReflectionRequest,
};

use crate::helpers::spawn_app;

/// One reflection request and its answer, on a stream of its own.
async fn ask(
    client: &mut ServerReflectionClient<tonic::transport::Channel>,
    request: MessageRequest,
) -> MessageResponse {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    answer.message_response.expect("an answer")
}

fn files(answer: MessageResponse) -> Vec<FileDescriptorProto> {
    let MessageResponse::FileDescriptorResponse(files) = answer else {
        panic!("not a file answer: {answer:?}");
    };
    files
        .file_descriptor_proto
        .iter()
        .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).unwrap())
        .collect()
}

#[tokio::test]
async fn every_file_reachable_by_reflection_is_served_under_its_canonical_path() {
    let app = spawn_app().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let MessageResponse::ListServicesResponse(services) =
        ask(&mut client, MessageRequest::ListServices(String::new())).await
    else {
        panic!("no service list");
    };
    // From every service and every error detail, follow every import.
    let mut to_fetch: VecDeque<FileDescriptorProto> = VecDeque::new();
    let symbols = services
        .service
        .into_iter()
        .map(|service| service.name)
        .chain(["google.rpc.BadRequest".into(), "google.rpc.Status".into()]);
    for symbol in symbols {
        to_fetch.extend(files(
            ask(&mut client, MessageRequest::FileContainingSymbol(symbol)).await,
        ));
    }
    let mut seen = BTreeSet::new();
    while let Some(file) = to_fetch.pop_front() {
        if !seen.insert(file.name().to_owned()) {
            continue;
        }
        let directory = file.package().replace('.', "/");
        assert!(
            file.name().starts_with(&format!("{directory}/")),
            "{} (package {}) is not served under {directory}/",
            file.name(),
            file.package()
        );
        for import in &file.dependency {
            let request = MessageRequest::FileByFilename(import.clone());
            to_fetch.extend(files(ask(&mut client, request).await));
        }
    }
    for expected in [
        "google/rpc/error_details.proto",
        "google/rpc/status.proto",
        "grpc/health/v1/health.proto",
        "grpc/reflection/v1/reflection.proto",
        "calls/v1/call_service.proto",
        "google/protobuf/field_mask.proto",
    ] {
        assert!(seen.contains(expected), "{expected} not in {seen:?}");
    }
}
