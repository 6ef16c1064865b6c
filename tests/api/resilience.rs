//! Database outages: clear errors while it is gone, health that says so, streams that lose
//! nothing across a PostgreSQL restart.

use std::time::Duration;

use callsd::{
    auth,
    embedded_postgres::{Durability, EmbeddedPostgres},
    pb::calls::v1 as pb,
};
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::{
    feed::{next_change, watch},
    helpers::{call, reason, spawn_app, spawn_app_on, terminate_sessions, test_settings, TestApp},
};

/// An app on a PostgreSQL cluster of its own, which the test may stop and start.
async fn app_on_own_cluster(dir: &std::path::Path) -> (TestApp, EmbeddedPostgres) {
    let cluster = EmbeddedPostgres::start(dir, Durability::Throwaway)
        .await
        .unwrap();
    let mut app = spawn_app_on(test_settings(), &cluster.connection_config()).await;
    let tenant = app
        .store
        .create_tenant("acme", chrono_tz::Tz::UTC)
        .await
        .unwrap();
    app.key = auth::create_api_key(&app.store, tenant.id)
        .await
        .unwrap()
        .key;
    (app, cluster)
}

pub async fn health(app: &TestApp, service: &str) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let response = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

pub async fn wait_for_health(app: &TestApp, expected: ServingStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while health(app, "").await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never became {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_unavailable_not_serving_and_heals_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (app, cluster) = app_on_own_cluster(dir.path()).await;
    wait_for_health(&app, ServingStatus::Serving).await;

    cluster.stop().await;
    let status = app.list(pb::ListCallsRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "DATABASE_UNAVAILABLE");
    assert!(
        !status.message().contains("SELECT"),
        "no SQL leaks: {}",
        status.message()
    );
    wait_for_health(&app, ServingStatus::NotServing).await;
    assert_eq!(
        health(&app, "liveness").await,
        ServingStatus::Serving,
        "liveness ignores the database"
    );

    let _cluster = EmbeddedPostgres::start(dir.path(), Durability::Throwaway)
        .await
        .unwrap();
    wait_for_health(&app, ServingStatus::Serving).await;
    app.list(pb::ListCallsRequest::default())
        .await
        .expect("requests work again");
}

/// The pool hands out recently used connections without a round trip; one the server closed
/// must still never reach a request.
#[tokio::test(flavor = "multi_thread")]
async fn pooled_connections_the_server_closed_are_replaced_without_failing_a_request() {
    let app = spawn_app().await;
    // Fill the pool with several connections.
    let requests = (0..8).map(|_| app.list(pb::ListCallsRequest::default()));
    for result in futures::future::join_all(requests).await {
        result.expect("list works");
    }

    let (admin, connection) = app.database.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let ended = terminate_sessions(&admin, "callsd").await;
    assert!(ended > 0, "the app has connections to close");

    let requests = (0..8).map(|_| app.list(pb::ListCallsRequest::default()));
    for result in futures::future::join_all(requests).await {
        result.expect("no request gets a closed connection");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_resumed_after_a_postgres_restart_has_every_change_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (app, cluster) = app_on_own_cluster(dir.path()).await;
    let mut made = Vec::new();
    let mut received = Vec::new();

    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;
    for day in 1..=5 {
        made.push(
            app.create(call("1", "2", &format!("2026-11-0{day}T12:00:00"), "UTC"))
                .await
                .id,
        );
    }
    let mut last_token = String::new();
    for _ in 0..3 {
        let event = next_change(&mut events).await;
        received.push(event.call.unwrap().id);
        last_token = event.sync_token;
    }
    // The client goes away with two events unread, and the database restarts.
    drop(events);
    cluster.stop().await;
    let _cluster = EmbeddedPostgres::start(dir.path(), Durability::Throwaway)
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut resumed = loop {
        match app
            .client()
            .await
            .watch_calls(app.authed(pb::WatchCallsRequest {
                sync_token: last_token.clone(),
                ..Default::default()
            }))
            .await
        {
            Ok(stream) => break stream.into_inner(),
            Err(status)
                if status.code() == Code::Unavailable && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("cannot resume: {status:?}"),
        }
    };
    for day in 6..=9 {
        let created = loop {
            let attempt = app
                .client()
                .await
                .create_call(app.authed(pb::CreateCallRequest {
                    call: Some(call("1", "2", &format!("2026-11-0{day}T12:00:00"), "UTC")),
                    request_id: format!("day-{day}"),
                }))
                .await;
            match attempt {
                Ok(response) => break response.into_inner().call.unwrap(),
                Err(status) if status.code() == Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => panic!("create failed: {status:?}"),
            }
        };
        made.push(created.id);
    }
    while received.len() < made.len() {
        received.push(next_change(&mut resumed).await.call.unwrap().id);
    }
    assert_eq!(received, made, "no gaps, no duplicates, same order");
}
