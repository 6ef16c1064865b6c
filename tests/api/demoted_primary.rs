//! A primary that stays up but refuses writes (a failover elsewhere, a partition, a manual
//! `pg_promote` of a standby): requests fail with UNAVAILABLE, never INTERNAL, health says
//! NOT_SERVING, connections to it are dropped rather than reused, the LISTEN connection moves,
//! and everything heals once a writable server answers. The read-only server here is the test
//! database with `default_transaction_read_only` (what a standby answers writes with too:
//! SQLSTATE 25006); the real failovers are in `scripts/failover-test.sh`.

use std::time::Duration;

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{
    helpers::{
        call, reason, spawn_app, spawn_app_with, terminate_sessions, test_settings, TestApp,
    },
    resilience::{health, wait_for_health},
};
use callsd::{pb::calls::v1 as pb, store::LISTENER_APPLICATION_NAME};

/// A connection to the app's database as an operator, outside the app's pool.
async fn admin(app: &TestApp) -> tokio_postgres::Client {
    let (client, connection) = app.database.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// New sessions of the app's database refuse writes (25006); `terminate` ends the app's
/// sessions of that application name so its next ones are read-only.
async fn make_read_only(admin: &tokio_postgres::Client, terminate: &str) {
    let database: String = admin
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {database} SET default_transaction_read_only = on"
        ))
        .await
        .unwrap();
    terminate_sessions(admin, terminate).await;
}

async fn make_writable(admin: &tokio_postgres::Client) {
    let database: String = admin
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {database} RESET default_transaction_read_only"
        ))
        .await
        .unwrap();
}

async fn listener_pid(admin: &tokio_postgres::Client) -> Option<i32> {
    admin
        .query_opt(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1",
            &[&LISTENER_APPLICATION_NAME],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

async fn create(app: &TestApp, caller: &str) -> Result<pb::Call, tonic::Status> {
    app.client()
        .await
        .create_call(app.authed(pb::CreateCallRequest {
            call: Some(call(caller, "+33 1 23 45 67 89", "2026-11-27T09:30:00", "")),
            request_id: String::new(),
        }))
        .await
        .map(|response| response.into_inner().call.unwrap())
}

fn assert_unavailable(status: &tonic::Status) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(status), "DATABASE_UNAVAILABLE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_database_is_unavailable_and_not_serving_until_writable_again() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    wait_for_health(&app, ServingStatus::Serving).await;
    create(&app, "+33 6 00 00 00 01").await.expect("writable");

    make_read_only(&admin, "callsd").await;
    for attempt in 0..5 {
        let status = create(&app, "+33 6 00 00 00 02")
            .await
            .expect_err("a read-only database takes no write");
        assert_unavailable(&status);
        assert!(
            !status.message().contains("read-only") && !status.message().contains("INSERT"),
            "attempt {attempt}: no server text leaks: {}",
            status.message()
        );
    }
    wait_for_health(&app, ServingStatus::NotServing).await;
    assert_eq!(
        health(&app, "calls.v1.CallService").await,
        ServingStatus::NotServing
    );
    assert_eq!(health(&app, "liveness").await, ServingStatus::Serving);

    make_writable(&admin).await;
    wait_for_health(&app, ServingStatus::Serving).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let created = loop {
        match create(&app, "+33 6 00 00 00 03").await {
            Ok(created) => break created,
            Err(status) => assert_unavailable(&status),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let count: i64 = admin
        .query_one(
            "SELECT count(*) FROM calls WHERE id = $1::text::uuid",
            &[&created.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

/// The connection that saw 25006 stays open on a server that answers, and the pool would hand
/// it out again: here the server becomes writable for *new* sessions only, so a reused
/// connection would fail the next write, and only a re-opened one succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_refused_as_read_only_moves_the_pool_and_the_listener_to_new_connections() {
    let settings = callsd::config::ServeSettings {
        // The health check would find the read-only server too; this test shows the errors do.
        health_check_interval: Duration::from_secs(3600),
        ..test_settings()
    };
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let admin = admin(&app).await;
    create(&app, "+33 6 00 00 00 01").await.expect("writable");
    let listener_before = wait_for_listener(&admin, None).await;

    // Only the pool's sessions end: the listener stays connected to a server that is now
    // read-only, as it would on a demoted primary.
    make_read_only(&admin, "callsd").await;
    assert_unavailable(
        &create(&app, "+33 6 00 00 00 02")
            .await
            .expect_err("read-only"),
    );
    let listener_after = wait_for_listener(&admin, Some(listener_before)).await;
    assert_ne!(listener_before, listener_after, "the listener moved");

    make_writable(&admin).await;
    // Background work (the feed, webhooks, retention) may have opened a pooled session while
    // the database was read-only: here, with one server and no `target_session_attrs`, such a
    // session is read-only too. Its first write refuses (25006), which drops every connection
    // opened before that moment, so the write after it succeeds. Reusing read-only connections
    // would fail every write from here on.
    if let Err(status) = create(&app, "+33 6 00 00 00 03").await {
        assert_unavailable(&status);
        create(&app, "+33 6 00 00 00 04")
            .await
            .expect("a write after the one a read-only session refused succeeds: none is reused");
    }
}

/// The listener's pid once it differs from `other`.
async fn wait_for_listener(admin: &tokio_postgres::Client, other: Option<i32>) -> i32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(pid) = listener_pid(admin).await.filter(|pid| Some(*pid) != other) {
            return pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new listener connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
