//! Running the real `callsd` binary: Prometheus metrics and the graceful-shutdown drain.

use std::time::{Duration, Instant};

use callsd::pb::calls::v1 as pb;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{
    binary::{scrape, Server},
    helpers::{call, with_key},
};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_expose_rpcs_pool_streams_and_build_info_and_a_left_stream_is_freed() {
    let server = Server::start("0s").await;
    let mut client = server.client().await;
    let created = client
        .create_call(with_key(
            &server.key,
            pb::CreateCallRequest {
                call: Some(call("1", "2", "2026-11-01T12:00:00", "UTC")),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .call
        .unwrap();
    client
        .get_call(with_key(&server.key, pb::GetCallRequest { id: created.id }))
        .await
        .unwrap();
    let missing = client
        .get_call(with_key(
            &server.key,
            pb::GetCallRequest {
                id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let stream = client
        .watch_calls(with_key(&server.key, pb::WatchCallsRequest::default()))
        .await
        .unwrap();

    let expected = [
        "grpc_server_started_total{",
        "grpc_server_handled_total{",
        "grpc_server_handling_seconds_bucket{",
        "grpc_method=\"CreateCall\"",
        "grpc_code=\"OK\"",
        "grpc_code=\"NotFound\"",
        "grpc_service=\"calls.v1.CallService\"",
        "grpc_type=\"server_stream\"",
        "callsd_watch_streams 1",
        "callsd_db_pool_connections",
        "callsd_db_pool_wait_seconds",
        "callsd_build_info{version=",
    ];
    // Gauges are refreshed on their own schedule (health checks, stream tasks): a loaded
    // machine can take a while, so wait for all of them before asserting.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let body = scrape(&server.metrics).await;
        if expected.iter().all(|series| body.contains(series)) || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for series in expected {
        assert!(body.contains(series), "/metrics lacks {series}:\n{body}");
    }

    // A client that goes away frees its stream on the server.
    drop(stream);
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !scrape(&server.metrics)
        .await
        .contains("callsd_watch_streams 0")
    {
        assert!(Instant::now() < deadline, "the stream outlived its client");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_finishes_in_flight_rpcs_ends_streams_with_unavailable_and_exits() {
    let mut server = Server::start("1s").await;
    let mut client = server.client().await;
    let created = client
        .create_call(with_key(
            &server.key,
            pb::CreateCallRequest {
                call: Some(call("1", "2", "2026-11-01T12:00:00", "UTC")),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .call
        .unwrap();
    let mut stream = client
        .watch_calls(with_key(&server.key, pb::WatchCallsRequest::default()))
        .await
        .unwrap()
        .into_inner();

    // Hold the call's row lock so an UpdateCall is still in flight when SIGTERM arrives.
    let (mut blocker, connection) = server
        .database
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let lock = blocker.transaction().await.unwrap();
    let id = uuid::Uuid::parse_str(&created.id).unwrap();
    lock.execute("SELECT 1 FROM calls WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .unwrap();
    let in_flight = {
        let mut client = server.client().await;
        let request = with_key(
            &server.key,
            pb::UpdateCallRequest {
                call: Some(pb::Call {
                    id: created.id.clone(),
                    external_id: "in flight".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        );
        tokio::spawn(async move { client.update_call(request).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.terminate();
    let terminated = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.health("").await,
        Some(ServingStatus::NotServing),
        "draining reports NOT_SERVING"
    );
    assert_eq!(
        server.health("liveness").await,
        Some(ServingStatus::Serving),
        "but stays alive"
    );
    client
        .get_call(with_key(
            &server.key,
            pb::GetCallRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .expect("requests are still served during the drain");

    // Let the in-flight update finish only after the drain has ended.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    lock.commit().await.unwrap();
    let updated = in_flight
        .await
        .unwrap()
        .expect("the in-flight RPC completes");
    assert_eq!(updated.into_inner().call.unwrap().external_id, "in flight");

    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the stream ends")
        {
            Ok(Some(_event)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");

    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            terminated.elapsed() < Duration::from_secs(10),
            "callsd did not exit in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "callsd exits cleanly: {status:?}");
    assert!(
        terminated.elapsed() >= Duration::from_secs(1),
        "the drain period was honoured"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_one_process_reaches_a_stream_on_another_process() {
    // Replica one: the real binary. Replica two: this test process, on the same database.
    let binary = Server::start("0s").await;
    let in_process =
        crate::helpers::spawn_app_on(crate::helpers::test_settings(), &binary.database).await;
    let mut stream = binary
        .client()
        .await
        .watch_calls(with_key(&binary.key, pb::WatchCallsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut made = Vec::new();
    let mut writer = in_process.client().await;
    for minute in 0..20 {
        let created = writer
            .create_call(with_key(
                &binary.key,
                pb::CreateCallRequest {
                    call: Some(call(
                        "1",
                        "2",
                        &format!("2026-11-01T12:{minute:02}:00"),
                        "UTC",
                    )),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
        made.push(created.into_inner().call.unwrap().id);
    }
    let received = tokio::time::timeout(Duration::from_secs(20), async {
        let mut received = Vec::new();
        while received.len() < made.len() {
            let event = stream.message().await.unwrap().unwrap().event.unwrap();
            if let Some(call) = event.call {
                received.push(call.id);
            }
        }
        received
    })
    .await
    .expect("every change reaches the other process");
    assert_eq!(received, made, "in commit order, each once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_during_the_drain_skips_it_and_exits_at_once() {
    let mut server = Server::start_with("60s", &[("RUST_LOG", "info")]).await;
    let mut client = server.client().await;
    let _stream = client
        .watch_calls(with_key(&server.key, pb::WatchCallsRequest::default()))
        .await
        .unwrap();

    server.interrupt();
    server
        .wait_for_log("reporting NOT_SERVING", Duration::from_secs(10))
        .await;
    assert_eq!(
        server.wait_exit(Duration::from_secs(1)).await,
        None,
        "the first Ctrl-C drains"
    );
    server.interrupt();
    let interrupted = Instant::now();
    let status = server.wait_exit(Duration::from_secs(5)).await;
    assert!(
        status.is_some(),
        "callsd still runs 5 s after a second Ctrl-C:\n{}",
        server.stderr()
    );
    assert!(interrupted.elapsed() < Duration::from_secs(5));
    let stderr = server.stderr();
    assert!(
        stderr.contains("received a second Ctrl-C: skipping the drain and stopping now"),
        "{stderr}"
    );
}
