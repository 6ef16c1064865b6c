//! `/metrics` as Prometheus and its users expect it: every family described, the standard
//! `process_*` metrics, gauges present before their first change, health and reflection RPCs
//! counted, REST requests counted, and `promtool check metrics` silent.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use callsd::pb::calls::v1 as pb;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
use tonic_reflection::pb::v1::{
    server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
    ServerReflectionRequest,
};

use crate::{
    binary::{scrape, Server},
    helpers::{call, with_key},
    tools,
};

/// The metrics body of an HTTP response.
fn body_of(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map_or(response, |(_, body)| body)
}

async fn health_and_reflection_rpcs(server: &Server) {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health answers");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    answers
        .message()
        .await
        .unwrap()
        .expect("the services are listed");
    while answers.message().await.unwrap().is_some() {}
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_described_include_process_metrics_count_health_and_reflection_and_pass_promtool(
) {
    let server = Server::start("0s").await;
    let first = body_of(&scrape(&server.metrics).await).to_owned();
    assert!(
        first.contains("\ncallsd_watch_streams 0\n"),
        "the stream gauge is there before any stream:\n{first}"
    );

    let mut client = server.client().await;
    client
        .create_call(with_key(
            &server.key,
            pb::CreateCallRequest {
                call: Some(call("1", "2", "2026-11-01T12:00:00", "UTC")),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    health_and_reflection_rpcs(&server).await;
    let rest = reqwest::Client::new()
        .get(format!("http://{}/v1/calls/nope", server.grpc))
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), reqwest::StatusCode::BAD_REQUEST);

    let expected = [
        "# HELP callsd_webhook_attempts_total ",
        "# HELP callsd_webhook_attempt_seconds ",
        "# HELP callsd_build_info ",
        "# HELP callsd_watch_streams ",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
        "grpc_server_handled_total{grpc_service=\"grpc.health.v1.Health\",grpc_method=\"Check\",grpc_type=\"unary\",grpc_code=\"OK\"} ",
        "grpc_server_started_total{grpc_service=\"grpc.reflection.v1.ServerReflection\",grpc_method=\"ServerReflectionInfo\",grpc_type=\"bidi_stream\"} 1",
        "grpc_server_handled_total{grpc_service=\"grpc.reflection.v1.ServerReflection\",grpc_method=\"ServerReflectionInfo\",grpc_type=\"bidi_stream\",grpc_code=\"OK\"} 1",
        "grpc_server_handling_seconds_count{grpc_service=\"grpc.health.v1.Health\",grpc_method=\"Check\",grpc_type=\"unary\"}",
        "http_server_requests_total{rpc=\"GetCall\",status=\"400\"} 1",
        "http_server_request_duration_seconds_count{rpc=\"GetCall\"} 1",
    ];
    // Bodies are recorded when hyper drops them, just after the client has its answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = body_of(&scrape(&server.metrics).await).to_owned();
        if expected.iter().all(|line| body.contains(line)) || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for line in expected {
        assert!(body.contains(line), "/metrics lacks {line:?}:\n{body}");
    }

    let mut promtool = Command::new(tools::promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool check metrics ({}):\n{said}\non:\n{body}",
        checked.status
    );
}
