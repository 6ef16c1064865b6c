//! Connections no client can hoard: silent ones are closed after the handshake timeout, the
//! number open is capped, dead peers are dropped by keepalive pings, and no stream (health
//! Watch included) holds shutdown past the drain.

use std::time::Duration;

use callsd::{config::ServeSettings, pb::calls::v1 as pb};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::{transport::Channel, Code};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

use crate::helpers::{reason, spawn_app_with, test_settings, TestApp};

/// What an HTTP/2 client sends first: the 24-byte preface, then a SETTINGS frame (empty).
const CLIENT_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS_FRAME: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Longest the tests wait for the server to do what it should; far above every setting used.
const BOUND: Duration = Duration::from_secs(20);

async fn app_with(settings: ServeSettings) -> TestApp {
    spawn_app_with(settings, chrono_tz::Tz::UTC).await
}

/// Reads (and discards what the server sends) until the server closes the connection; fails
/// if it is still open after `BOUND`.
async fn assert_closed_by_server(stream: &mut TcpStream, what: &str) {
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what} is still open after {BOUND:?}");
}

/// A channel with its connection open (and its HTTP/2 handshake done).
async fn open_channel(app: &TestApp) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{}", app.address))
        .unwrap()
        .connect()
        .await
}

async fn list_on(app: &TestApp, channel: Channel) -> Result<pb::ListCallsResponse, tonic::Status> {
    pb::call_service_client::CallServiceClient::new(channel)
        .list_calls(app.authed(pb::ListCallsRequest::default()))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_that_do_not_finish_the_http2_handshake_are_closed_after_the_timeout() {
    let app = app_with(ServeSettings {
        handshake_timeout: Duration::from_millis(500),
        ..test_settings()
    })
    .await;
    let mut silent = TcpStream::connect(app.address).await.unwrap();
    let mut half_preface = TcpStream::connect(app.address).await.unwrap();
    half_preface
        .write_all(&CLIENT_PREFACE[..CLIENT_PREFACE.len() / 2])
        .await
        .unwrap();
    // A real client, connected now and used after the timeout has passed.
    let channel = open_channel(&app).await.unwrap();

    assert_closed_by_server(&mut silent, "a connection that sent nothing").await;
    assert_closed_by_server(&mut half_preface, "a connection that sent half the preface").await;
    list_on(&app, channel)
        .await
        .expect("a client that finished the handshake keeps its connection");
    app.list(pb::ListCallsRequest::default())
        .await
        .expect("new clients are served");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_closed_until_one_closes() {
    let app = app_with(ServeSettings {
        max_connections: 2,
        ..test_settings()
    })
    .await;
    let first = open_channel(&app).await.unwrap();
    let second = open_channel(&app).await.unwrap();
    list_on(&app, first.clone()).await.expect("first is served");
    list_on(&app, second.clone())
        .await
        .expect("second is served");

    let mut third = TcpStream::connect(app.address).await.unwrap();
    third.write_all(CLIENT_PREFACE).await.unwrap();
    assert_closed_by_server(&mut third, "a connection past the cap").await;
    list_on(&app, first.clone())
        .await
        .expect("connections within the cap are untouched");

    drop(first);
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let attempt = match open_channel(&app).await {
            Ok(channel) => list_on(&app, channel).await.map(|_| ()),
            Err(error) => Err(tonic::Status::unavailable(error.to_string())),
        };
        match attempt {
            Ok(()) => break,
            Err(status) => assert!(
                tokio::time::Instant::now() < deadline,
                "the slot of a closed connection was never released: {status:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_stops_answering_keepalive_pings_is_dropped() {
    let app = app_with(ServeSettings {
        // Only the keepalive can close this connection: its handshake is complete.
        handshake_timeout: Duration::from_secs(3600),
        http2_keepalive_interval: Duration::from_millis(200),
        http2_keepalive_timeout: Duration::from_millis(200),
        ..test_settings()
    })
    .await;
    let mut peer = TcpStream::connect(app.address).await.unwrap();
    peer.write_all(CLIENT_PREFACE).await.unwrap();
    peer.write_all(&EMPTY_SETTINGS_FRAME).await.unwrap();
    // The peer then never answers (no SETTINGS ack, no PING ack), like a host that vanished.
    assert_closed_by_server(&mut peer, "a connection whose peer never acks pings").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_an_open_health_watch_after_the_drain() {
    let app = app_with(ServeSettings {
        shutdown_drain: Duration::from_millis(300),
        // Far above BOUND: a stream holding shutdown would hold it this long.
        shutdown_timeout: Duration::from_secs(120),
        ..test_settings()
    })
    .await;
    let mut health = HealthClient::new(open_channel(&app).await.unwrap());
    let mut updates = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    updates.message().await.unwrap().expect("a first status");

    tokio::time::timeout(BOUND, app.stop())
        .await
        .expect("shutdown is not held by the health watch");

    let ended = tokio::time::timeout(BOUND, async {
        loop {
            match updates.message().await {
                Ok(Some(_update)) => {}
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the health watch ends");
    let status = ended.expect("the health watch ends with a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "SHUTTING_DOWN");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_connections_still_in_their_handshake() {
    let app = app_with(ServeSettings {
        // Only shutdown can close the silent connection within BOUND.
        handshake_timeout: Duration::from_secs(3600),
        shutdown_timeout: Duration::from_secs(120),
        ..test_settings()
    })
    .await;
    let mut silent = TcpStream::connect(app.address).await.unwrap();
    // Served once, so the silent connection has surely been accepted.
    app.list(pb::ListCallsRequest::default()).await.unwrap();

    tokio::time::timeout(BOUND, app.stop())
        .await
        .expect("shutdown is not held by a connection that never sent its preface");
    assert_closed_by_server(&mut silent, "a silent connection after shutdown").await;
}
