//! Retention per tenant: `callsd tenant update NAME --retention 2y`, readable through
//! GetTenantSettings, and a background sweep that deletes exactly the calls that ended before
//! the horizon, each deletion a DELETED event like any other.

use std::time::Duration;

use callsd::pb::calls::v1::{self as pb, CallEventType};
use chrono::{TimeDelta, Utc};

use crate::{
    feed::{next_change, watch},
    helpers::{call, run_callsd, spawn_app_with, test_settings, with_key, TestApp},
};

/// A call that started `ago` before now (read in UTC) and lasted `duration`.
async fn call_started(app: &TestApp, key: &str, ago: TimeDelta, duration_secs: i64) -> pb::Call {
    let start = (Utc::now() - ago).format("%Y-%m-%dT%H:%M:%S").to_string();
    app.client()
        .await
        .create_call(with_key(
            key,
            pb::CreateCallRequest {
                call: Some(pb::Call {
                    duration: Some(prost_types::Duration {
                        seconds: duration_secs,
                        nanos: 0,
                    }),
                    ..call("+33 6 12 34 56 78", "+33 1 23 45 67 89", &start, "UTC")
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("call is created")
        .into_inner()
        .call
        .unwrap()
}

async fn settings(app: &TestApp) -> pb::TenantSettings {
    app.client()
        .await
        .get_tenant_settings(app.authed(pb::GetTenantSettingsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .tenant_settings
        .unwrap()
}

#[tokio::test]
async fn retention_deletes_exactly_the_calls_that_ended_before_the_horizon_as_deleted_events() {
    let mut server = test_settings();
    server.retention_interval = Duration::from_millis(200);
    server.retention_batch = 2;
    let app = spawn_app_with(server, chrono_tz::Tz::UTC).await;
    assert_eq!(settings(&app).await.call_retention, None, "kept by default");

    // "2y" is 730.5 days.
    let day = TimeDelta::days(1);
    let mut past = Vec::new();
    for extra_days in 1..=5 {
        past.push(call_started(&app, &app.key, day * (730 + extra_days), 60).await);
    }
    let recent = call_started(&app, &app.key, day * 729, 60).await;
    // Started before the horizon, but ended after it.
    let ended_after = call_started(&app, &app.key, day * 731, 2 * 86_400).await;
    let other_key = app.other_tenant("globex").await;
    let others_old = call_started(&app, &other_key, day * 3_000, 60).await;

    let (_, sync_token) = app.list_all(pb::ListCallsRequest::default()).await;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;

    let (updated, _, stderr) = run_callsd(
        &app.database,
        &["tenant", "update", "acme", "--retention", "2y"],
    );
    assert!(updated, "{stderr}");
    let retention = settings(&app).await.call_retention.expect("set");
    assert_eq!(retention.seconds, 730 * 86_400 + 43_200);

    let mut deleted = Vec::new();
    for _ in 0..past.len() {
        let event = next_change(&mut events).await;
        assert_eq!(event.r#type, CallEventType::Deleted as i32);
        deleted.push(event.call.unwrap().id);
    }
    deleted.sort();
    let mut expected: Vec<String> = past.iter().map(|call| call.id.clone()).collect();
    expected.sort();
    assert_eq!(deleted, expected, "the calls past the horizon, each once");

    let synced = app
        .list(pb::ListCallsRequest {
            sync_token,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut tombstones: Vec<String> = synced.calls.iter().map(|call| call.id.clone()).collect();
    tombstones.sort();
    assert_eq!(tombstones, expected, "sync lists see the deletions");

    // A few more sweeps change nothing else.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (left, _) = app.list_all(pb::ListCallsRequest::default()).await;
    let mut left: Vec<String> = left.into_iter().map(|call| call.id).collect();
    left.sort();
    let mut kept = vec![recent.id, ended_after.id];
    kept.sort();
    assert_eq!(left, kept);
    app.client()
        .await
        .get_call(with_key(
            &other_key,
            pb::GetCallRequest {
                id: others_old.id.clone(),
            },
        ))
        .await
        .expect("another tenant without retention keeps its calls");

    let (cleared, _, stderr) = run_callsd(
        &app.database,
        &["tenant", "update", "acme", "--retention", "off"],
    );
    assert!(cleared, "{stderr}");
    assert_eq!(settings(&app).await.call_retention, None);
}

#[tokio::test]
async fn a_retention_that_is_not_a_duration_is_refused_by_the_command() {
    let app = spawn_app_with(test_settings(), chrono_tz::Tz::UTC).await;
    for bad in ["forever", "0s", "-1d", "5000y"] {
        let flag = format!("--retention={bad}");
        let (ok, _, stderr) = run_callsd(&app.database, &["tenant", "update", "acme", &flag]);
        assert!(!ok, "{bad} was accepted");
        assert!(stderr.contains("retention"), "{stderr}");
    }
    let (ok, _, stderr) = run_callsd(
        &app.database,
        &["tenant", "update", "nobody", "--retention", "90d"],
    );
    assert!(!ok && stderr.contains("no tenant"), "{stderr}");
    assert_eq!(settings(&app).await.call_retention, None);
}

#[tokio::test]
async fn two_replicas_sweeping_at_once_delete_each_call_once() {
    let mut server = test_settings();
    server.retention_interval = Duration::from_millis(50);
    server.retention_batch = 1;
    let first = spawn_app_with(server.clone(), chrono_tz::Tz::UTC).await;
    let second = crate::helpers::spawn_app_on(server, &first.database).await;
    let mut old = Vec::new();
    for extra_days in 1..=20 {
        old.push(
            call_started(&first, &first.key, TimeDelta::days(40 + extra_days), 60)
                .await
                .id,
        );
    }
    let mut events = watch(&first, pb::WatchCallsRequest::default()).await;
    first
        .store
        .set_call_retention(first.tenant_id, Some(Duration::from_secs(30 * 86_400)))
        .await
        .unwrap();
    let mut deleted = Vec::new();
    for _ in 0..old.len() {
        let event = next_change(&mut events).await;
        assert_eq!(event.r#type, CallEventType::Deleted as i32);
        deleted.push(event.call.unwrap().id);
    }
    // No event for a second deletion comes: give both sweeps a few more rounds.
    let extra = tokio::time::timeout(Duration::from_millis(500), events.message()).await;
    match extra {
        Err(_) => {}
        Ok(message) => {
            let event = message.unwrap().unwrap().event.unwrap();
            assert_eq!(
                event.r#type,
                CallEventType::Heartbeat as i32,
                "a call deleted twice: {event:?}"
            );
        }
    }
    deleted.sort();
    old.sort();
    assert_eq!(
        deleted, old,
        "each call deleted once, by one replica or the other"
    );
    second.stop().await;
}
