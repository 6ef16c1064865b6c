//! What a hostile tenant's input gets: a clear, small error and nothing stored, while other
//! tenants go on as if nothing happened.

use std::time::Duration;

use callsd::pb::calls::v1::{self as pb, watch_service_client::WatchServiceClient, CallEventType};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{
    feed::{next_change, watch},
    helpers::{bad_fields, call, reason, spawn_app, with_key, TestApp},
};

/// Checks that an error is small on the wire: its message and its details (which travel
/// base64-encoded) under 8 KiB.
fn assert_small(status: &Status) {
    let size = status.message().len() + status.details().len().div_ceil(3) * 4;
    assert!(size < 8 * 1024, "the error takes {size} bytes");
}

async fn create_call(app: &TestApp, call: pb::Call) -> Result<pb::Call, Status> {
    app.client()
        .await
        .create_call(app.authed(pb::CreateCallRequest {
            call: Some(call),
            request_id: String::new(),
        }))
        .await
        .map(|response| response.into_inner().call.expect("the call"))
}

async fn create_watch(app: &TestApp, watch: pb::Watch) -> Result<pb::Watch, Status> {
    WatchServiceClient::connect(format!("http://{}", app.address))
        .await
        .expect("client connects")
        .create_watch(app.authed(pb::CreateWatchRequest { watch: Some(watch) }))
        .await
        .map(|response| response.into_inner().watch.expect("the watch"))
}

async fn stored_calls(app: &TestApp) -> usize {
    app.list_all(pb::ListCallsRequest::default()).await.0.len()
}

async fn stored_watches(app: &TestApp) -> usize {
    WatchServiceClient::connect(format!("http://{}", app.address))
        .await
        .expect("client connects")
        .list_watches(app.authed(pb::ListWatchesRequest::default()))
        .await
        .expect("watches list")
        .into_inner()
        .watches
        .len()
}

#[tokio::test]
async fn a_huge_time_zone_gets_a_small_error_naming_the_field() {
    let app = spawn_app().await;
    let huge = "Z".repeat(100_000);
    let error = create_call(&app, call("+33 6", "+33 1", "2026-11-27T09:30:00", &huge))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["call.start.time_zone"]);
    assert!(!error.message().contains("ZZZZ"), "{}", error.message());
    assert_small(&error);
    assert_eq!(stored_calls(&app).await, 0);
}

#[tokio::test]
async fn a_hundred_thousand_crypto_key_ids_get_invalid_argument_not_a_metadata_error() {
    let app = spawn_app().await;
    let error = create_watch(
        &app,
        pb::Watch {
            address: "https://hooks.example.com/calls".into(),
            signature: Some(pb::WatchSignature {
                enabled: true,
                crypto_key_ids: vec![uuid::Uuid::new_v4().to_string(); 100_000],
            }),
            ..pb::Watch::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad_fields(&error), ["watch.signature.crypto_key_ids"]);
    assert_small(&error);
    assert_eq!(stored_watches(&app).await, 0);
}

#[tokio::test]
async fn a_nul_in_a_watch_name_or_address_is_invalid_argument_not_internal() {
    let app = spawn_app().await;
    let error = create_watch(
        &app,
        pb::Watch {
            name: "hook\0".into(),
            address: "https://hooks.example.com/\0".into(),
            ..pb::Watch::default()
        },
    )
    .await
    .unwrap_err();
    let mut fields = bad_fields(&error);
    fields.sort();
    assert_eq!(fields, ["watch.address", "watch.name"]);
    assert_eq!(stored_watches(&app).await, 0);
}

#[tokio::test]
async fn every_credential_string_of_a_watch_has_a_limit() {
    let app = spawn_app().await;
    let huge = "x".repeat(100_000);
    let error = create_watch(
        &app,
        pb::Watch {
            address: "https://hooks.example.com/calls".into(),
            basic_auth: Some(pb::BasicAuth {
                username: huge.clone(),
                password: huge.clone(),
                password_set: false,
            }),
            oauth2_auth: Some(pb::OAuth2Auth {
                grant_type: "client_credentials".into(),
                client_id: huge.clone(),
                client_secret: huge.clone(),
                refresh_token: huge.clone(),
                auth_url: huge.clone(),
                access_token_url: huge.clone(),
                scope: huge.clone(),
                ..pb::OAuth2Auth::default()
            }),
            ..pb::Watch::default()
        },
    )
    .await
    .unwrap_err();
    let details = error.get_details_bad_request().expect("a BadRequest");
    let mut fields: Vec<String> = details
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "watch.basic_auth.password",
            "watch.basic_auth.username",
            "watch.oauth2_auth.access_token_url",
            "watch.oauth2_auth.auth_url",
            "watch.oauth2_auth.client_id",
            "watch.oauth2_auth.client_secret",
            "watch.oauth2_auth.refresh_token",
            "watch.oauth2_auth.scope",
        ]
    );
    assert_small(&error);
    assert_eq!(stored_watches(&app).await, 0);
}

#[tokio::test]
async fn a_start_whose_instant_no_timestamp_can_carry_is_refused() {
    let app = spawn_app().await;
    for (date_time, zone) in [
        ("0001-01-01T00:00:00", "Europe/Paris"),
        ("9999-12-31T23:00:00", "America/New_York"),
    ] {
        let error = create_call(&app, call("+33 6", "+33 1", date_time, zone))
            .await
            .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            ["call.start.date_time"],
            "{date_time} {zone}"
        );
    }
    let ends_too_late = pb::Call {
        duration: Some(prost_types::Duration {
            seconds: 7_200,
            nanos: 0,
        }),
        ..call("+33 6", "+33 1", "9999-12-31T23:00:00", "UTC")
    };
    let error = create_call(&app, ends_too_late).await.unwrap_err();
    assert_eq!(bad_fields(&error), ["call.duration"]);
    assert_eq!(stored_calls(&app).await, 0);
}

/// Writes a change for `call_id` the way a row stored before the start range was checked looks:
/// its start instant in year 0, which PostgreSQL writes as a BC date.
pub async fn store_an_unreadable_change(app: &TestApp, call_id: &str) {
    let (client, connection) = app
        .database
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the test database answers");
    tokio::spawn(connection);
    let call_id: uuid::Uuid = call_id.parse().expect("a call id");
    let inserted = client
        .execute(
            "INSERT INTO change_log (change_tx, change_seq, tenant_id, call_id, kind, call)
             SELECT pg_current_xact_id()::text::bigint, nextval('change_seq'), tenant_id,
                 call_id, 2, jsonb_set(call, '{start_time}',
                     to_jsonb('0001-12-31 23:50:39+00 BC'::timestamptz))
             FROM change_log WHERE call_id = $1
             ORDER BY change_tx DESC, change_seq DESC LIMIT 1",
            &[&call_id],
        )
        .await
        .expect("the change is stored");
    assert_eq!(inserted, 1);
}

#[tokio::test]
async fn an_unreadable_change_ends_only_its_own_tenants_streams_with_the_last_good_token() {
    let app = spawn_app().await;
    let neighbour_key = app.other_tenant("neighbour").await;
    let neighbour_stream = app
        .client()
        .await
        .watch_calls(with_key(&neighbour_key, pb::WatchCallsRequest::default()))
        .await
        .expect("stream opens")
        .into_inner();
    let mut neighbour_events = neighbour_stream;
    let mut events = watch(&app, pb::WatchCallsRequest::default()).await;

    let readable = app
        .create(call("+33 6 00", "+33 1 00", "2026-11-27T09:30:00", "UTC"))
        .await;
    store_an_unreadable_change(&app, &readable.id).await;
    app.create(call("+33 6 01", "+33 1 01", "2026-11-27T09:31:00", "UTC"))
        .await;
    let neighbours_call = app
        .client()
        .await
        .create_call(with_key(
            &neighbour_key,
            pb::CreateCallRequest {
                call: Some(call(
                    "+1 555 0100",
                    "+1 555 0101",
                    "2026-11-27T09:32:00",
                    "UTC",
                )),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the neighbour's call is created")
        .into_inner()
        .call
        .expect("the call");

    // The neighbour's feed goes on.
    let event = next_change(&mut neighbour_events).await;
    assert_eq!(event.call.expect("a call").id, neighbours_call.id);

    // This tenant's stream sends what it can read, then ends with the last good token.
    let event = next_change(&mut events).await;
    assert_eq!(event.r#type, CallEventType::Created as i32);
    assert_eq!(
        event.call.expect("a call").id,
        readable.id,
        "{}",
        event.sync_token
    );
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.message().await {
                Ok(Some(message)) => {
                    let event = message.event.expect("an event");
                    assert_eq!(event.r#type, CallEventType::Heartbeat as i32, "{event:?}");
                }
                Ok(None) => panic!("the stream ended without saying why"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the stream ends in time");
    assert_eq!(ended.code(), Code::DataLoss, "{ended:?}");
    assert_eq!(reason(&ended), "CHANGE_UNREADABLE");
    let info = ended.get_details_error_info().expect("an ErrorInfo");
    let resume = info
        .metadata
        .get("sync_token")
        .expect("the last good token");

    // Resuming from it sends nothing twice and stops at the same change.
    let mut resumed = watch(
        &app,
        pb::WatchCallsRequest {
            sync_token: resume.clone(),
            ..pb::WatchCallsRequest::default()
        },
    )
    .await;
    let again = tokio::time::timeout(Duration::from_secs(20), resumed.message())
        .await
        .expect("the resumed stream answers in time")
        .expect_err("the resumed stream ends at the same change");
    assert_eq!(reason(&again), "CHANGE_UNREADABLE");

    // The rest of the service still serves this tenant.
    assert_eq!(stored_calls(&app).await, 2);
}

#[tokio::test]
async fn a_page_of_calls_with_every_field_at_its_limit_stops_at_one_mebibyte() {
    let app = spawn_app().await;
    let big = |letter: &str| letter.repeat(256);
    let calls = 400;
    let mut created = std::collections::BTreeSet::new();
    for index in 0..calls {
        let call = pb::Call {
            button_id: big("b"),
            client_id: big("c"),
            external_id: big("e"),
            record: Some(pb::CallRecord {
                mime_type: "audio/mpeg".into(),
                url: format!("https://records.example.com/{index}/{}", "u".repeat(2000)),
            }),
            ..call(
                "+33 6 12 34 56 78",
                "+33 1 23 45 67 89",
                "2026-11-27T09:30:00",
                "UTC",
            )
        };
        created.insert(app.create(call).await.id);
    }
    let first = app
        .list(pb::ListCallsRequest {
            page_size: 1000,
            ..pb::ListCallsRequest::default()
        })
        .await
        .expect("a page");
    let encoded = prost::Message::encoded_len(&first);
    assert!(first.calls.len() < calls, "the page stopped early");
    assert!(encoded <= (1 << 20) + 4096, "{encoded} bytes");
    assert!(!first.next_page_token.is_empty(), "and says there is more");
    let (listed, _) = app
        .list_all(pb::ListCallsRequest {
            page_size: 1000,
            ..pb::ListCallsRequest::default()
        })
        .await;
    let listed: Vec<String> = listed.into_iter().map(|call| call.id).collect();
    assert_eq!(listed.len(), calls, "no call twice");
    assert_eq!(
        listed
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        created
    );
}
