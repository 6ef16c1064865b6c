//! Running the real `callsd` binary: Prometheus metrics and the graceful-shutdown drain.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use callsd::{auth, pb::calls::v1 as pb};
use nix::{sys::signal::Signal, unistd::Pid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::helpers::{call, connection_string, fresh_database, store_for, with_key};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `callsd serve` on its own database, ready to answer, with a tenant and its key.
struct Server {
    child: Child,
    database: tokio_postgres::Config,
    grpc: String,
    metrics: String,
    key: String,
}

impl Server {
    async fn start(drain: &str) -> Server {
        let database = fresh_database().await;
        let grpc = format!("127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_callsd"))
            .arg("serve")
            .env("DATABASE_URL", connection_string(&database))
            .env("CALLSD_LISTEN", &grpc)
            .env("CALLSD_METRICS_LISTEN", &metrics)
            .env("CALLSD_SHUTDOWN_DRAIN", drain)
            .env("CALLSD_HEALTH_CHECK_INTERVAL", "100ms")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("callsd starts");
        let mut server = Server {
            child,
            database: database.clone(),
            grpc,
            metrics,
            key: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.health("").await != Some(ServingStatus::Serving) {
            assert!(Instant::now() < deadline, "callsd did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let store = store_for(&database);
        let tenant = store
            .create_tenant("acme", chrono_tz::Tz::UTC)
            .await
            .unwrap();
        server.key = auth::create_api_key(&store, tenant.id).await.unwrap().key;
        server
    }

    async fn client(
        &self,
    ) -> pb::call_service_client::CallServiceClient<tonic::transport::Channel> {
        pb::call_service_client::CallServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
    }

    async fn health(&self, service: &str) -> Option<ServingStatus> {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .ok()?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .ok()?;
        ServingStatus::try_from(response.into_inner().status).ok()
    }

    fn terminate(&self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn scrape(address: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

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
