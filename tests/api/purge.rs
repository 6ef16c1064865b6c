//! PurgeCalls (AIP-165): a preview that changes nothing, and a forced purge that deletes the
//! calls (DELETED events for streams, sync lists and watches) and leaves the number in no copy
//! the service keeps, which a `pg_dump` of the whole database shows, while another tenant's
//! calls with the same number stay untouched.

use std::{process::Command, time::Duration};

use callsd::pb::calls::v1::{self as pb, watch_service_client::WatchServiceClient, CallEventType};
use tonic::Code;

use crate::{
    feed::{next_change, watch},
    helpers::{call, connection_string, spawn_app_with, test_settings, with_key, TestApp},
};

/// The number to erase, as callers send it, and in the other forms it is kept in.
const NUMBER: &str = "+33 6 98 76 54 32";
const NUMBER_FORMS: [&str; 4] = [NUMBER, "33698765432", "+33698765432", "6 98 76 54 32"];

/// A receiver that answers every webhook with its own body, so the delivery log's response
/// bodies hold the number too.
async fn echo_receiver() -> String {
    let router = axum::Router::new().fallback(|body: String| async move { body });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/hook")
}

pub async fn purge(
    app: &TestApp,
    request: pb::PurgeCallsRequest,
) -> Result<pb::PurgeCallsResponse, tonic::Status> {
    app.client()
        .await
        .purge_calls(app.authed(request))
        .await
        .map(tonic::Response::into_inner)
}

async fn delivery_count(app: &TestApp, watch_id: &str) -> usize {
    WatchServiceClient::connect(format!("http://{}", app.address))
        .await
        .unwrap()
        .list_deliveries(app.authed(pb::ListDeliveriesRequest {
            watch_id: watch_id.into(),
            page_size: 100,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .deliveries
        .len()
}

async fn wait_for_deliveries(app: &TestApp, watch_id: &str, count: usize) {
    for _ in 0..1500 {
        if delivery_count(app, watch_id).await >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {count} deliveries");
}

/// The whole database as `pg_dump` writes it, with the system's PostgreSQL binaries.
fn pg_dump(app: &TestApp) -> String {
    let bin = callsd::embedded_postgres::find_binaries().expect("PostgreSQL binaries");
    let output = Command::new(bin.join("pg_dump"))
        .arg("--no-owner")
        .arg("-d")
        .arg(connection_string(&app.database))
        .output()
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("a UTF-8 dump")
}

async fn tenant_id_of(app: &TestApp, name: &str) -> String {
    app.store
        .find_tenant(name)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

#[tokio::test]
async fn a_forced_purge_leaves_the_number_in_no_copy_and_other_tenants_untouched() {
    let mut settings = test_settings();
    settings.webhooks.webhook_allowed_cidrs =
        callsd::webhooks::parse_allowed_cidrs("127.0.0.0/8").unwrap();
    settings.webhooks.webhook_poll_interval = Duration::from_millis(50);
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let hook = echo_receiver().await;
    let watch_id = WatchServiceClient::connect(format!("http://{}", app.address))
        .await
        .unwrap()
        .create_watch(app.authed(pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                address: hook,
                add_previous_data: true,
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .watch
        .unwrap()
        .id;

    let mut client = app.client().await;
    // As caller, with an idempotency key.
    let as_caller = client
        .create_call(app.authed(pb::CreateCallRequest {
            call: Some(call(
                NUMBER,
                "+33 1 23 45 67 89",
                "2026-03-01T10:00:00",
                "UTC",
            )),
            request_id: format!("retry-{}", NUMBER),
        }))
        .await
        .unwrap()
        .into_inner()
        .call
        .unwrap();
    // As tracking number, formatted otherwise.
    let as_tracking = app
        .create(pb::Call {
            tracking_number: "+33698765432".into(),
            ..call(
                "+44 20 7946 0000",
                "+44 20 7946 0001",
                "2026-03-02T10:00:00",
                "UTC",
            )
        })
        .await;
    // Had the number, then an update changed it: only its history holds it.
    let changed = app
        .create(call(
            NUMBER,
            "+33 1 23 45 67 89",
            "2026-03-03T10:00:00",
            "UTC",
        ))
        .await;
    client
        .update_call(app.authed(pb::UpdateCallRequest {
            call: Some(pb::Call {
                id: changed.id.clone(),
                caller_number: "+49 30 1234567".into(),
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await
        .unwrap();
    // Deleted before the purge: its tombstone and history hold it.
    let deleted = app
        .create(call("+49 30 7654321", NUMBER, "2026-03-04T10:00:00", "UTC"))
        .await;
    client
        .delete_call(app.authed(pb::DeleteCallRequest {
            id: deleted.id.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap();
    let unrelated = app
        .create(call(
            "+49 30 1111111",
            "+49 30 2222222",
            "2026-03-05T10:00:00",
            "UTC",
        ))
        .await;
    let other_key = app.other_tenant("globex").await;
    let other_call = client
        .create_call(with_key(
            &other_key,
            pb::CreateCallRequest {
                call: Some(call(
                    NUMBER,
                    "+33 1 23 45 67 89",
                    "2026-03-01T10:00:00",
                    "UTC",
                )),
                request_id: format!("retry-{}", NUMBER),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .call
        .unwrap();
    // Every change so far delivered (7), so none is in flight while the purge runs.
    wait_for_deliveries(&app, &watch_id, 7).await;

    // The preview counts the live calls carrying the number and changes nothing.
    let preview = purge(
        &app,
        pb::PurgeCallsRequest {
            phone_number: NUMBER.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(preview.purge_count, 2);
    let mut sample = preview.purge_sample.clone();
    sample.sort();
    let mut expected = vec![as_caller.id.clone(), as_tracking.id.clone()];
    expected.sort();
    assert_eq!(sample, expected);
    assert!(
        pg_dump(&app).contains("33698765432"),
        "the preview erased nothing"
    );

    let (_, sync_token) = app.list_all(pb::ListCallsRequest::default()).await;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;
    let mut searching = watch(
        &app,
        pb::WatchCallsRequest {
            search: "98 76 54 32".into(),
            ..Default::default()
        },
    )
    .await;

    let purged = purge(
        &app,
        pb::PurgeCallsRequest {
            phone_number: NUMBER.into(),
            force: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(purged.purge_count, 2);

    // Streams, sync lists and watches see two deletions, tombstones without numbers.
    let mut streamed = Vec::new();
    for _ in 0..2 {
        let event = next_change(&mut events).await;
        assert_eq!(event.r#type, CallEventType::Deleted as i32);
        streamed.push(event.call.unwrap().id);
    }
    streamed.sort();
    assert_eq!(streamed, expected);
    // A stream searching for the number gets them too, though the tombstones no longer carry it.
    let mut searched = Vec::new();
    for _ in 0..2 {
        let event = next_change(&mut searching).await;
        assert_eq!(event.r#type, CallEventType::Deleted as i32);
        searched.push(event.call.unwrap().id);
    }
    searched.sort();
    assert_eq!(searched, expected);
    let synced = app
        .list(pb::ListCallsRequest {
            sync_token,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(synced.calls.len(), 2);
    assert!(synced.calls.iter().all(|call| call.deleted));
    wait_for_deliveries(&app, &watch_id, 9).await;
    let status = client
        .get_call(app.authed(pb::GetCallRequest {
            id: as_caller.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // The number is in no form anywhere but in the other tenant's rows.
    let dump = pg_dump(&app);
    let globex = tenant_id_of(&app, "globex").await;
    let mut other_tenants_copies = 0;
    for line in dump.lines() {
        for form in NUMBER_FORMS {
            if line.contains(form) {
                assert!(
                    line.contains(&globex),
                    "{form:?} is still in a row of the purging tenant: {line}"
                );
                other_tenants_copies += 1;
            }
        }
    }
    assert!(
        other_tenants_copies > 0,
        "the dump does show the other tenant's copies"
    );

    // An erased attempt cannot be sent again: its body is gone.
    let mut watches = WatchServiceClient::connect(format!("http://{}", app.address))
        .await
        .unwrap();
    let log = watches
        .list_deliveries(app.authed(pb::ListDeliveriesRequest {
            watch_id: watch_id.clone(),
            page_size: 100,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    let erased = log
        .iter()
        .find(|delivery| delivery.call_id == as_caller.id && delivery.event_type != "call.deleted")
        .expect("the purged call's creation was delivered");
    assert!(erased.request_body.is_empty() && erased.response_body.is_empty());
    let retried = watches
        .retry_delivery(app.authed(pb::RetryDeliveryRequest {
            delivery_id: erased.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .delivery
        .unwrap();
    assert!(retried.error.contains("empty"), "{retried:?}");
    assert!(retried.request_body.is_empty());

    // The other tenant's call, and the purging tenant's other calls, are untouched.
    let kept = client
        .get_call(with_key(
            &other_key,
            pb::GetCallRequest {
                id: other_call.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .call
        .unwrap();
    assert_eq!(kept, other_call);
    for id in [&unrelated.id, &changed.id] {
        client
            .get_call(app.authed(pb::GetCallRequest { id: id.clone() }))
            .await
            .expect("a call without the number stays");
    }
}

#[tokio::test]
async fn a_purge_by_window_erases_only_the_calls_in_it() {
    let app = spawn_app_with(test_settings(), chrono_tz::Tz::UTC).await;
    let early = app
        .create(call(
            "+1 202 555 0101",
            "+1 202 555 0102",
            "2026-01-10T10:00:00",
            "UTC",
        ))
        .await;
    let late = app
        .create(call(
            "+1 202 555 0101",
            "+1 202 555 0102",
            "2026-02-10T10:00:00",
            "UTC",
        ))
        .await;
    let window = pb::PurgeCallsRequest {
        phone_number: "202 555 0101".into(),
        time_min: Some(prost_types::Timestamp {
            seconds: "2026-02-01T00:00:00Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                .timestamp(),
            nanos: 0,
        }),
        force: true,
        ..Default::default()
    };
    let purged = purge(&app, window).await.unwrap();
    assert_eq!(purged.purge_sample, [late.id]);
    let (left, _) = app.list_all(pb::ListCallsRequest::default()).await;
    assert_eq!(left, [early]);
}
