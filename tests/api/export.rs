//! ExportCalls: one consistent snapshot, streamed in batches, handing on a sync token from
//! that snapshot.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use callsd::pb::calls::v1 as pb;
use futures::StreamExt;
use tonic::Code;

use crate::helpers::{bad_fields, call, spawn_app, TestApp};

/// Creates `count` calls, 16 at a time, each starting a minute after the previous.
pub async fn create_many(app: &TestApp, count: usize) -> Vec<pb::Call> {
    let client = app.client().await;
    futures::stream::iter(0..count)
        .map(|index| {
            let mut client = client.clone();
            let request = app.authed(pb::CreateCallRequest {
                call: Some(pb::Call {
                    button_id: format!("tool-{}", index % 3),
                    ..call(
                        &format!("+33 6 {:08}", index),
                        "+1 800 555 0100",
                        &(chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
                            .unwrap()
                            .and_hms_opt(0, 0, 0)
                            .unwrap()
                            + chrono::TimeDelta::minutes(index as i64))
                        .format("%Y-%m-%dT%H:%M:%S")
                        .to_string(),
                        "UTC",
                    )
                }),
                request_id: String::new(),
            });
            async move {
                client
                    .create_call(request)
                    .await
                    .expect("call is created")
                    .into_inner()
                    .call
                    .unwrap()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Every message of an export: the calls in order and the final sync token.
async fn export(
    app: &TestApp,
    request: pb::ExportCallsRequest,
    pause: Duration,
) -> (Vec<pb::Call>, String, usize) {
    let mut stream = app
        .client()
        .await
        .export_calls(app.authed(request))
        .await
        .expect("export starts")
        .into_inner();
    let (mut calls, mut token, mut messages) = (Vec::new(), String::new(), 0);
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("a message in time")
        .expect("the export is healthy")
    {
        messages += 1;
        assert!(token.is_empty(), "the token comes last");
        assert!(message.calls.len() <= 500);
        calls.extend(message.calls);
        token = message.next_sync_token;
        tokio::time::sleep(pause).await;
    }
    (calls, token, messages)
}

#[tokio::test]
async fn an_export_during_writes_is_one_snapshot_and_a_sync_after_it_misses_and_repeats_nothing() {
    let app = spawn_app().await;
    let created = create_many(&app, 3_000).await;

    // A writer creates, updates and deletes calls for as long as the export runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, writes) = (stop.clone(), writes.clone());
        let mut client = app.client().await;
        let ids: Vec<String> = created.iter().map(|call| call.id.clone()).collect();
        let key = app.key.clone();
        tokio::spawn(async move {
            let mut index = 0;
            while !stop.load(Ordering::Relaxed) {
                client
                    .create_call(crate::helpers::with_key(
                        &key,
                        pb::CreateCallRequest {
                            call: Some(call(
                                "+44 20 7946 0000",
                                "+44 20 7946 0001",
                                "2026-06-01T10:00:00",
                                "UTC",
                            )),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .unwrap();
                client
                    .update_call(crate::helpers::with_key(
                        &key,
                        pb::UpdateCallRequest {
                            call: Some(pb::Call {
                                id: ids[index * 2].clone(),
                                external_id: format!("updated-{index}"),
                                ..Default::default()
                            }),
                            update_mask: None,
                        },
                    ))
                    .await
                    .unwrap();
                client
                    .delete_call(crate::helpers::with_key(
                        &key,
                        pb::DeleteCallRequest {
                            id: ids[index * 2 + 1].clone(),
                            etag: String::new(),
                        },
                    ))
                    .await
                    .unwrap();
                writes.fetch_add(3, Ordering::Relaxed);
                index += 1;
            }
        })
    };
    while writes.load(Ordering::Relaxed) < 30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let writes_at_start = writes.load(Ordering::Relaxed);
    let (exported, token, messages) = export(
        &app,
        pb::ExportCallsRequest::default(),
        Duration::from_millis(100),
    )
    .await;
    let writes_at_end = writes.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        writes_at_end > writes_at_start,
        "writes went on during the export"
    );
    assert!(
        messages >= 7,
        "3,000 calls come in batches of 500, then the token"
    );
    assert!(
        !token.is_empty(),
        "an unfiltered export ends with a sync token"
    );

    // One snapshot: no call twice, newest start first.
    let ids: HashSet<&str> = exported.iter().map(|call| call.id.as_str()).collect();
    assert_eq!(ids.len(), exported.len(), "no call is exported twice");
    let starts: Vec<_> = exported
        .iter()
        .map(|call| {
            let start = call.start_time.as_ref().unwrap();
            (start.seconds, start.nanos)
        })
        .collect();
    assert!(starts.windows(2).all(|pair| pair[0] >= pair[1]));

    // The export, with the changes the sync token returns applied, is exactly today's list;
    // and none of those changes is one the export already had. A sync returns only changes
    // below the feed barrier (the oldest transaction in flight on the whole server, which
    // other tests' transactions may hold back): it is followed, token after token, until the
    // rebuilt state catches up. A gap would never catch up.
    let (now, _) = app
        .list_all(pb::ListCallsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await;
    let now: HashMap<String, String> = now.into_iter().map(|call| (call.id, call.etag)).collect();
    let mut state: HashMap<String, pb::Call> = exported
        .iter()
        .map(|call| (call.id.clone(), call.clone()))
        .collect();
    let mut sync_token = token;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut request = pb::ListCallsRequest {
            sync_token: sync_token.clone(),
            page_size: 1000,
            ..Default::default()
        };
        loop {
            let page = app.list(request.clone()).await.expect("sync lists");
            for change in page.calls {
                if let Some(had) = state.get(&change.id) {
                    assert!(
                        change.deleted || had.etag != change.etag,
                        "the sync repeats a change the export had: {change:?}"
                    );
                }
                if change.deleted {
                    state.remove(&change.id);
                } else {
                    state.insert(change.id.clone(), change);
                }
            }
            if page.next_page_token.is_empty() {
                sync_token = page.next_sync_token;
                break;
            }
            request.page_token = page.next_page_token;
        }
        let rebuilt: HashMap<String, String> = state
            .iter()
            .map(|(id, call)| (id.clone(), call.etag.clone()))
            .collect();
        if rebuilt == now {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "export + sync never became today's list: {} calls rebuilt, {} listed, {} missing, \
             {} extra",
            rebuilt.len(),
            now.len(),
            now.keys().filter(|id| !rebuilt.contains_key(*id)).count(),
            rebuilt.keys().filter(|id| !now.contains_key(*id)).count(),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_filtered_export_returns_what_a_list_with_the_same_filters_returns_and_no_token() {
    let app = spawn_app().await;
    create_many(&app, 600).await;
    let filters = pb::ExportCallsRequest {
        tool_id: "tool-1".into(),
        search: "6 0000".into(),
        ..Default::default()
    };
    let (exported, token, _) = export(&app, filters.clone(), Duration::ZERO).await;
    let (listed, _) = app
        .list_all(pb::ListCallsRequest {
            tool_id: filters.tool_id.clone(),
            search: filters.search.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await;
    assert!(!listed.is_empty());
    assert_eq!(exported, listed);
    assert!(
        token.is_empty(),
        "a search narrows the export: no sync token"
    );
}

#[tokio::test]
async fn an_export_by_tool_hands_on_a_sync_token_for_that_tool() {
    let app = spawn_app().await;
    create_many(&app, 30).await;
    let (exported, token, _) = export(
        &app,
        pb::ExportCallsRequest {
            tool_id: "tool-2".into(),
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    assert_eq!(exported.len(), 10);
    let page = app
        .list(pb::ListCallsRequest {
            sync_token: token.clone(),
            tool_id: "tool-2".into(),
            ..Default::default()
        })
        .await
        .expect("the token syncs the same tool");
    assert!(page.calls.is_empty(), "nothing changed since the export");
    let other_tool = app
        .list(pb::ListCallsRequest {
            sync_token: token,
            tool_id: "tool-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&other_tool), ["sync_token"]);
}

#[tokio::test]
async fn an_export_shows_only_the_callers_tenant() {
    let app = spawn_app().await;
    create_many(&app, 5).await;
    let other_key = app.other_tenant("globex").await;
    let mut stream = app
        .client()
        .await
        .export_calls(crate::helpers::with_key(
            &other_key,
            pb::ExportCallsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut calls = 0;
    while let Some(message) = stream.message().await.unwrap() {
        calls += message.calls.len();
    }
    assert_eq!(calls, 0);
}

#[tokio::test]
async fn an_export_ends_with_unavailable_at_shutdown_never_as_if_complete() {
    let app = spawn_app().await;
    // Enough batches that the export cannot finish into the buffers (the channel's two
    // messages, and what tonic holds while HTTP/2 flow control waits) before shutdown.
    create_many(&app, 4_000).await;
    // HTTP/2's smallest windows, so the server cannot push the export ahead of the reader.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.address))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut stream = pb::call_service_client::CallServiceClient::new(channel)
        .export_calls(app.authed(pb::ExportCallsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().expect("a first batch");
    assert_eq!(first.calls.len(), 500);
    let stopping = tokio::spawn(app.stop());
    // Read nothing more until shutdown has reached the export: with the windows this small the
    // server cannot send the rest meanwhile, so the export cannot finish first. Reading on at
    // once let it win the race in one CI run of four.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut ended = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("the stream ends in time")
        {
            Ok(Some(message)) => assert!(
                message.next_sync_token.is_empty(),
                "a cut export never carries the final token"
            ),
            Ok(None) => break,
            Err(status) => {
                ended = Some(status.code());
                break;
            }
        }
    }
    // Either the export finished before shutdown reached it (then it had its token, which
    // the loop would have refused), or it ended with an error.
    assert!(matches!(ended, Some(Code::Unavailable)), "{ended:?}");
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_fifth_export_at_once_is_refused_as_overloaded_and_the_others_go_on() {
    let app = spawn_app().await;
    create_many(&app, 4_000).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.address))
        .unwrap()
        .initial_stream_window_size(65_535)
        // Room for every stream's window: unread streams must not starve the one being read.
        .initial_connection_window_size(8 << 20)
        .connect()
        .await
        .unwrap();
    let mut client = pb::call_service_client::CallServiceClient::new(channel);
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut stream = client
            .export_calls(app.authed(pb::ExportCallsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        stream.message().await.unwrap().expect("a first batch");
        open.push(stream);
    }
    let refused = client
        .export_calls(app.authed(pb::ExportCallsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(crate::helpers::reason(&refused), "OVERLOADED");
    app.list(pb::ListCallsRequest::default())
        .await
        .expect("other requests still find a connection");
    let mut calls = 500;
    while let Some(message) = open[0].message().await.unwrap() {
        calls += message.calls.len();
    }
    assert_eq!(calls, 4_000, "an export that was let in finishes");
}
