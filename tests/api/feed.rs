//! The change feed: sync tokens in ListCalls and the WatchCalls stream.

use std::time::Duration;

use callsd::pb::calls::v1::{self as pb, CallEventType};
use tonic::{Code, Streaming};

use crate::helpers::{
    bad_fields, call, reason, spawn_app, spawn_app_on, spawn_app_with, test_settings, with_key,
    TestApp,
};

type Events = Streaming<pb::WatchCallsResponse>;

pub async fn watch(app: &TestApp, request: pb::WatchCallsRequest) -> Events {
    app.client()
        .await
        .watch_calls(app.authed(request))
        .await
        .expect("stream opens")
        .into_inner()
}

/// The next event that is not a heartbeat.
pub async fn next_change(events: &mut Events) -> pb::CallEvent {
    let skip_heartbeats = async {
        loop {
            let event = next_event(events).await;
            if event.r#type != CallEventType::Heartbeat as i32 {
                return event;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), skip_heartbeats)
        .await
        .expect("a change arrives in time")
}

pub async fn next_event(events: &mut Events) -> pb::CallEvent {
    tokio::time::timeout(Duration::from_secs(20), events.message())
        .await
        .expect("an event arrives in time")
        .expect("the stream is healthy")
        .expect("the stream is open")
        .event
        .expect("messages carry an event")
}

fn kind(event: &pb::CallEvent) -> CallEventType {
    CallEventType::try_from(event.r#type).unwrap()
}

async fn update_external_id(app: &TestApp, id: &str, external_id: &str) -> pb::Call {
    app.client()
        .await
        .update_call(app.authed(pb::UpdateCallRequest {
            call: Some(pb::Call {
                id: id.into(),
                external_id: external_id.into(),
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .call
        .unwrap()
}

async fn delete(app: &TestApp, id: &str) {
    app.client()
        .await
        .delete_call(app.authed(pb::DeleteCallRequest {
            id: id.into(),
            etag: String::new(),
        }))
        .await
        .unwrap();
}

/// Syncs from `sync_token` until `expected` changes came back. A sync list returns only final
/// changes: one that committed while an older write transaction (of any database on the server)
/// was still open shows up in the next sync, never in none and never twice.
async fn sync_until(app: &TestApp, sync_token: &str, expected: usize) -> (Vec<pb::Call>, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut changes = Vec::new();
    let mut token = sync_token.to_owned();
    while changes.len() < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "changes missing: {changes:?}"
        );
        let (more, next) = app.list_all(sync_request(&token)).await;
        changes.extend(more);
        token = next;
    }
    (changes, token)
}

fn sync_request(sync_token: &str) -> pb::ListCallsRequest {
    pb::ListCallsRequest {
        sync_token: sync_token.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn list_with_a_sync_token_returns_changes_since_with_deleted_calls_as_tombstones() {
    let app = spawn_app().await;
    let kept = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    let updated = app
        .create(call("1", "2", "2026-11-02T12:00:00", "UTC"))
        .await;
    let deleted = app
        .create(call("1", "2", "2026-11-03T12:00:00", "UTC"))
        .await;
    let (_, sync_token) = app.list_all(pb::ListCallsRequest::default()).await;
    assert!(!sync_token.is_empty());

    let created = app
        .create(call("1", "2", "2026-11-04T12:00:00", "UTC"))
        .await;
    update_external_id(&app, &updated.id, "changed").await;
    update_external_id(&app, &updated.id, "changed twice").await;
    delete(&app, &deleted.id).await;

    let (changes, next_sync_token) = sync_until(&app, &sync_token, 3).await;
    let summary: Vec<(String, bool, String)> = changes
        .iter()
        .map(|call| (call.id.clone(), call.deleted, call.external_id.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (created.id.clone(), false, String::new()),
            (updated.id.clone(), false, "changed twice".into()),
            (deleted.id.clone(), true, String::new()),
        ],
        "each changed call once, in change order, latest state"
    );
    assert!(changes[2].delete_time.is_some());
    assert!(!changes.iter().any(|call| call.id == kept.id));

    let (nothing_new, _) = app.list_all(sync_request(&next_sync_token)).await;
    assert!(nothing_new.is_empty());
}

#[tokio::test]
async fn a_sync_list_pages_like_any_list_and_gives_its_token_on_the_last_page() {
    let app = spawn_app().await;
    let (_, sync_token) = app.list_all(pb::ListCallsRequest::default()).await;
    for minute in 0..25 {
        app.create(call(
            "1",
            "2",
            &format!("2026-11-01T12:{minute:02}:00"),
            "UTC",
        ))
        .await;
    }
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    let mut token = sync_token;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 25 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} changes came back",
            seen.len()
        );
        let mut request = pb::ListCallsRequest {
            page_size: 10,
            ..sync_request(&token)
        };
        loop {
            let page = app.list(request.clone()).await.unwrap();
            pages += 1;
            for call in page.calls {
                assert!(seen.insert(call.id), "a change came back twice");
            }
            if page.next_page_token.is_empty() {
                assert!(!page.next_sync_token.is_empty());
                token = page.next_sync_token;
                break;
            }
            assert!(page.next_sync_token.is_empty());
            request.page_token = page.next_page_token;
        }
    }
    assert!(pages >= 3, "25 changes take three pages of 10");
}

#[tokio::test]
async fn sync_tokens_refuse_other_filters_other_tenants_and_tampering() {
    let app = spawn_app().await;
    let (_, sync_token) = app.list_all(pb::ListCallsRequest::default()).await;
    let with_search = app
        .list(pb::ListCallsRequest {
            search: "12".into(),
            ..sync_request(&sync_token)
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&with_search), ["sync_token"]);
    let other_tool = app
        .list(pb::ListCallsRequest {
            tool_id: "btn".into(),
            ..sync_request(&sync_token)
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&other_tool), ["sync_token"]);
    let (_, tool_token) = app
        .list_all(pb::ListCallsRequest {
            tool_id: "btn".into(),
            ..Default::default()
        })
        .await;
    app.list(pb::ListCallsRequest {
        tool_id: "btn".into(),
        ..sync_request(&tool_token)
    })
    .await
    .expect("a token works with the tool_id it was issued for");

    let other_key = app.other_tenant("globex").await;
    let stolen = app
        .client()
        .await
        .list_calls(with_key(&other_key, sync_request(&sync_token)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&stolen), ["sync_token"]);
    let mut tampered = sync_token.clone().into_bytes();
    tampered[5] ^= 1;
    let tampered = app
        .list(sync_request(&String::from_utf8_lossy(&tampered)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&tampered), ["sync_token"]);
}

#[tokio::test]
async fn a_token_older_than_the_retained_log_is_expired_for_list_and_watch() {
    let app = spawn_app().await;
    let (_, sync_token) = app.list_all(pb::ListCallsRequest::default()).await;
    app.create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    // The app's own compaction may hold the job at this moment: ask until this call does it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.store.compact_change_log(Duration::ZERO).await.unwrap() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "compaction never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let listed = app.list(sync_request(&sync_token)).await.unwrap_err();
    assert_eq!(listed.code(), Code::FailedPrecondition);
    assert_eq!(reason(&listed), "SYNC_TOKEN_EXPIRED");

    let refused = app
        .client()
        .await
        .watch_calls(app.authed(pb::WatchCallsRequest {
            sync_token,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "SYNC_TOKEN_EXPIRED");
}

#[tokio::test]
async fn watch_streams_creates_updates_and_deletes_in_commit_order() {
    let app = spawn_app().await;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;
    let created = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    update_external_id(&app, &created.id, "v2").await;
    delete(&app, &created.id).await;

    let first = next_change(&mut events).await;
    assert_eq!(kind(&first), CallEventType::Created);
    assert_eq!(first.call.as_ref().unwrap(), &created);
    assert!(!first.sync_token.is_empty() && first.event_time.is_some());
    let second = next_change(&mut events).await;
    assert_eq!(kind(&second), CallEventType::Updated);
    assert_eq!(second.call.unwrap().external_id, "v2");
    let third = next_change(&mut events).await;
    assert_eq!(kind(&third), CallEventType::Deleted);
    assert!(third.call.unwrap().deleted);
}

#[tokio::test]
async fn watch_with_initial_state_sends_every_call_then_a_marker_then_changes() {
    let app = spawn_app().await;
    let existing = [
        app.create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
            .await,
        app.create(call("1", "2", "2026-11-02T12:00:00", "UTC"))
            .await,
    ];
    let mut events = watch(
        &app,
        pb::WatchCallsRequest {
            send_initial_state: true,
            ..Default::default()
        },
    )
    .await;
    let mut initial = Vec::new();
    let marker = loop {
        let event = next_change(&mut events).await;
        if kind(&event) == CallEventType::InitialStateComplete {
            break event;
        }
        assert_eq!(kind(&event), CallEventType::Initial);
        initial.push(event.call.unwrap().id);
    };
    initial.sort();
    let mut expected: Vec<_> = existing.iter().map(|call| call.id.clone()).collect();
    expected.sort();
    assert_eq!(initial, expected);
    assert!(!marker.sync_token.is_empty());

    let live = app
        .create(call("1", "2", "2026-11-03T12:00:00", "UTC"))
        .await;
    let event = next_change(&mut events).await;
    assert_eq!(
        (kind(&event), event.call.unwrap().id),
        (CallEventType::Created, live.id)
    );
}

#[tokio::test]
async fn watch_resumes_right_after_a_list_token_or_an_event_token() {
    let app = spawn_app().await;
    let (_, list_token) = app.list_all(pb::ListCallsRequest::default()).await;
    let first = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    let second = app
        .create(call("1", "2", "2026-11-02T12:00:00", "UTC"))
        .await;

    let mut from_list = watch(
        &app,
        pb::WatchCallsRequest {
            sync_token: list_token,
            ..Default::default()
        },
    )
    .await;
    let event = next_change(&mut from_list).await;
    assert_eq!(event.call.as_ref().unwrap().id, first.id);
    let after_first = event.sync_token;
    assert_eq!(
        next_change(&mut from_list).await.call.unwrap().id,
        second.id
    );
    drop(from_list);

    let third = app
        .create(call("1", "2", "2026-11-03T12:00:00", "UTC"))
        .await;
    let mut from_event = watch(
        &app,
        pb::WatchCallsRequest {
            sync_token: after_first,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        next_change(&mut from_event).await.call.unwrap().id,
        second.id,
        "no gap"
    );
    assert_eq!(
        next_change(&mut from_event).await.call.unwrap().id,
        third.id,
        "no duplicate"
    );
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats_carrying_a_resumable_token() {
    let mut settings = test_settings();
    settings.heartbeat_interval = Duration::from_millis(300);
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;
    let before = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    assert_eq!(next_change(&mut events).await.call.unwrap().id, before.id);
    let heartbeat = next_event(&mut events).await;
    assert_eq!(kind(&heartbeat), CallEventType::Heartbeat);
    assert!(heartbeat.call.is_none());
    drop(events);

    let after = app
        .create(call("1", "2", "2026-11-02T12:00:00", "UTC"))
        .await;
    let mut resumed = watch(
        &app,
        pb::WatchCallsRequest {
            sync_token: heartbeat.sync_token,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(next_change(&mut resumed).await.call.unwrap().id, after.id);
}

/// Updates the call the way the service writes, in a transaction left open: its change takes
/// a position before later writes but commits (`COMMIT` on the returned client) after them.
async fn begin_slow_update(app: &TestApp, call_id: &str) -> tokio_postgres::Client {
    let (slow, connection) = app.database.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    slow.batch_execute("BEGIN").await.unwrap();
    let id = uuid::Uuid::parse_str(call_id).unwrap();
    slow.execute(
        "WITH updated AS (
            UPDATE calls SET external_id = 'slow', version = version + 1,
                (change_tx, change_seq) = (pg_current_xact_id()::text::bigint, nextval('change_seq'))
            WHERE id = $1 RETURNING *)
         INSERT INTO change_log (change_tx, change_seq, tenant_id, call_id, kind, call)
         SELECT change_tx, change_seq, tenant_id, id, 2, to_jsonb(updated) FROM updated",
        &[&id],
    )
    .await
    .unwrap();
    slow
}

/// A writer that takes its position first and commits last must not be passed over.
#[tokio::test]
async fn a_change_that_commits_after_a_later_one_is_still_delivered() {
    let app = spawn_app().await;
    let slow_target = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;

    let slow = begin_slow_update(&app, &slow_target.id).await;

    // A fast writer with a later position commits first.
    let fast = app
        .create(call("1", "2", "2026-11-02T12:00:00", "UTC"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    slow.batch_execute("COMMIT").await.unwrap();

    let first = next_change(&mut events).await;
    let second = next_change(&mut events).await;
    assert_eq!(kind(&first), CallEventType::Updated);
    assert_eq!(
        [first.call.unwrap().id, second.call.unwrap().id],
        [slow_target.id.clone(), fast.id.clone()],
        "both changes arrive, in position order"
    );
}

/// A full list made while a write was open gives a token that marks the calls it showed above
/// the barrier as had. A sync page made only of those is empty, yet must lead to what follows.
#[tokio::test]
async fn a_sync_page_of_changes_the_holder_had_still_leads_to_the_later_ones() {
    let app = spawn_app().await;
    let updated = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    let slow = begin_slow_update(&app, &updated.id).await;
    let mut had = Vec::new();
    for minute in 1..4 {
        let created = app
            .create(call(
                "1",
                "2",
                &format!("2026-11-01T12:{minute:02}:00"),
                "UTC",
            ))
            .await;
        had.push(created.id);
    }
    let (listed, sync_token) = app.list_all(pb::ListCallsRequest::default()).await;
    assert_eq!(listed.len(), 4);
    slow.batch_execute("COMMIT").await.unwrap();
    let later = app
        .create(call("1", "2", "2026-11-01T13:00:00", "UTC"))
        .await;

    let mut changes = Vec::new();
    let mut token = sync_token;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !changes.contains(&later.id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the later call never came back; changes: {changes:?}"
        );
        // A page of one: the page after the slow update holds only calls the list showed.
        let (synced, next_token) = app
            .list_all(pb::ListCallsRequest {
                page_size: 1,
                ..sync_request(&token)
            })
            .await;
        changes.extend(synced.into_iter().map(|call| call.id));
        token = next_token;
    }
    assert!(changes.contains(&updated.id), "the slow update is synced");
    assert!(
        had.iter().all(|id| !changes.contains(id)),
        "calls the full list showed are not sent again: {changes:?}"
    );
}

#[tokio::test]
async fn a_change_made_through_one_replica_reaches_streams_on_another() {
    let first = spawn_app().await;
    let second = {
        let mut replica = spawn_app_on(test_settings(), &first.database).await;
        replica.key = first.key.clone();
        replica
    };
    let mut events = watch(&second, pb::WatchCallsRequest::default()).await;
    let created = first
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    let event = next_change(&mut events).await;
    assert_eq!(event.call.unwrap().id, created.id);
}

#[tokio::test]
async fn a_stream_never_carries_another_tenants_calls() {
    let app = spawn_app().await;
    let other_key = app.other_tenant("globex").await;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;
    app.client()
        .await
        .create_call(with_key(
            &other_key,
            pb::CreateCallRequest {
                call: Some(call("9", "9", "2026-11-01T12:00:00", "UTC")),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let ours = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    assert_eq!(next_change(&mut events).await.call.unwrap().id, ours.id);
}

#[tokio::test]
async fn a_slow_consumer_catches_up_from_the_log_without_gaps() {
    let app = spawn_app().await;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;
    // Far more changes than the stream buffers and the hub keeps, while the client reads none.
    let total = 1_500;
    let mut created = Vec::with_capacity(total);
    let mut client = app.client().await;
    for minute in 0..total {
        let call = call(
            "1",
            "2",
            &format!("2026-11-01T12:{:02}:{:02}", minute / 60 % 60, minute % 60),
            "UTC",
        );
        let response = client
            .create_call(app.authed(pb::CreateCallRequest {
                call: Some(call),
                request_id: String::new(),
            }))
            .await
            .unwrap();
        created.push(response.into_inner().call.unwrap().id);
    }
    let mut received = Vec::with_capacity(total);
    while received.len() < total {
        received.push(next_change(&mut events).await.call.unwrap().id);
    }
    assert_eq!(received, created);
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_unavailable() {
    let app = spawn_app().await;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;
    app.create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    next_change(&mut events).await;
    app.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), events.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(ended.code(), Code::Unavailable);
    assert_eq!(reason(&ended), "SHUTTING_DOWN");
}

#[tokio::test]
async fn watch_refuses_bad_filters_and_tokens() {
    let app = spawn_app().await;
    let status = app
        .client()
        .await
        .watch_calls(app.authed(pb::WatchCallsRequest {
            sync_token: "garbage".into(),
            search: "no digits".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["search", "sync_token"]);
}
