//! CreateCall, GetCall, UpdateCall, DeleteCall: validation, time zones, masks, etags, retries.

use callsd::pb::calls::v1 as pb;
use chrono_tz::Tz;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{bad_fields, call, reason, spawn_app, spawn_app_with, test_settings, TestApp};

fn create_request(call: pb::Call) -> pb::CreateCallRequest {
    pb::CreateCallRequest {
        call: Some(call),
        request_id: String::new(),
    }
}

/// The status of a CreateCall that must fail.
async fn refused(app: &TestApp, call: pb::Call) -> tonic::Status {
    app.client()
        .await
        .create_call(app.authed(create_request(call)))
        .await
        .expect_err("the call is refused")
}

#[tokio::test]
async fn create_call_stores_every_field_and_returns_server_fields() {
    let app = spawn_app().await;
    let sent = pb::Call {
        button_id: "button-7".into(),
        client_id: "client-3".into(),
        tracking_number: "+1 (800) 555-0100".into(),
        duration: Some(prost_types::Duration {
            seconds: 95,
            nanos: 500_000_000,
        }),
        status: pb::CallStatus::NoAnswered as i32,
        external_id: "ext-42".into(),
        r#type: pb::CallType::CallTracking as i32,
        record: Some(pb::CallRecord {
            mime_type: "audio/mpeg".into(),
            url: "https://records.example.com/42.mp3".into(),
        }),
        ..call(
            "+33 6 12 34 56 78",
            "06-12-34-56-78",
            "2026-11-27T09:30:00.250",
            "Europe/Paris",
        )
    };
    let created = app.create(sent.clone()).await;

    assert!(uuid::Uuid::parse_str(&created.id).is_ok());
    assert_eq!(created.etag, "1");
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert_eq!(created.start_time.unwrap().seconds, 1_795_768_200); // 08:30:00.25Z
    let fetched = app
        .client()
        .await
        .get_call(app.authed(pb::GetCallRequest {
            id: created.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .call
        .unwrap();
    assert_eq!(fetched, created);
    let expected = pb::Call {
        id: created.id.clone(),
        create_time: created.create_time,
        update_time: created.update_time,
        etag: created.etag.clone(),
        start_time: created.start_time,
        ..sent
    };
    assert_eq!(fetched, expected);
}

#[tokio::test]
async fn create_call_names_every_missing_or_bad_field_and_stores_nothing() {
    let app = spawn_app().await;
    let bad = pb::Call {
        caller_number: "call me maybe".into(),
        status: 42,
        duration: Some(prost_types::Duration {
            seconds: -5,
            nanos: 0,
        }),
        record: Some(pb::CallRecord {
            mime_type: "mp3".into(),
            url: "ftp://x".into(),
        }),
        ..pb::Call::default()
    };
    let status = refused(&app, bad).await;

    assert_eq!(
        bad_fields(&status),
        [
            "call.caller_number",
            "call.called_number",
            "call.start.date_time",
            "call.duration",
            "call.status",
            "call.record.mime_type",
            "call.record.url"
        ]
    );
    assert_eq!(reason(&status), "INVALID_ARGUMENT");
    let missing_call = app
        .client()
        .await
        .create_call(app.authed(pb::CreateCallRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&missing_call), ["call"]);
    let (calls, _) = app.list_all(pb::ListCallsRequest::default()).await;
    assert!(calls.is_empty(), "nothing is stored on bad input");
}

#[tokio::test]
async fn create_call_refuses_a_date_time_with_an_offset_and_says_why() {
    let app = spawn_app().await;
    for date_time in ["2026-11-27T09:30:00Z", "2026-11-27T09:30:00+01:00"] {
        let status = refused(&app, call("1", "2", date_time, "")).await;
        assert_eq!(bad_fields(&status), ["call.start.date_time"]);
        assert!(
            status.message().contains("UTC offset"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn create_call_refuses_unknown_zones_and_times_skipped_by_daylight_saving() {
    let app = spawn_app().await;
    let unknown_zone = refused(&app, call("1", "2", "2026-11-27T09:30:00", "Mars/Base")).await;
    assert_eq!(bad_fields(&unknown_zone), ["call.start.time_zone"]);

    let in_gap = refused(
        &app,
        call("1", "2", "2026-03-08T02:30:00", "America/New_York"),
    )
    .await;
    assert_eq!(bad_fields(&in_gap), ["call.start.date_time"]);
    assert!(in_gap.message().contains("does not exist"));
}

#[tokio::test]
async fn an_ambiguous_local_time_takes_the_earlier_instant() {
    let app = spawn_app().await;
    // 01:30 happens twice in New York on 2026-11-01: first at -04:00 (05:30Z), then at -05:00.
    let created = app
        .create(call("1", "2", "2026-11-01T01:30:00", "America/New_York"))
        .await;
    let start_time = created.start_time.unwrap();
    assert_eq!(
        chrono::DateTime::from_timestamp(start_time.seconds, 0)
            .unwrap()
            .to_rfc3339(),
        "2026-11-01T05:30:00+00:00"
    );
}

#[tokio::test]
async fn a_start_without_zone_takes_the_tenant_zone() {
    let app = spawn_app_with(test_settings(), Tz::Asia__Tokyo).await;
    let created = app.create(call("1", "2", "2026-11-27T09:00:00", "")).await;
    assert_eq!(created.start.unwrap().time_zone, "Asia/Tokyo");
    assert_eq!(
        chrono::DateTime::from_timestamp(created.start_time.unwrap().seconds, 0)
            .unwrap()
            .to_rfc3339(),
        "2026-11-27T00:00:00+00:00"
    );
}

#[tokio::test]
async fn retrying_create_with_the_same_request_id_returns_the_first_call() {
    let app = spawn_app().await;
    let request = pb::CreateCallRequest {
        call: Some(call("111", "222", "2026-11-27T09:30:00", "UTC")),
        request_id: "3f1d7c1e-retry".into(),
    };
    let first = app
        .client()
        .await
        .create_call(app.authed(request.clone()))
        .await
        .unwrap();
    let second = app
        .client()
        .await
        .create_call(app.authed(request))
        .await
        .unwrap();
    assert_eq!(first.into_inner(), second.into_inner());
    let (calls, _) = app.list_all(pb::ListCallsRequest::default()).await;
    assert_eq!(calls.len(), 1);
}

#[tokio::test]
async fn get_call_of_an_unknown_id_is_not_found_and_a_malformed_id_is_invalid() {
    let app = spawn_app().await;
    let unknown = app
        .client()
        .await
        .get_call(app.authed(pb::GetCallRequest {
            id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason(&unknown), "NOT_FOUND");
    let malformed = app
        .client()
        .await
        .get_call(app.authed(pb::GetCallRequest {
            id: "'; DROP TABLE calls; --".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&malformed), ["id"]);
}

async fn update(
    app: &TestApp,
    call: pb::Call,
    paths: Option<&[&str]>,
) -> Result<pb::Call, tonic::Status> {
    app.client()
        .await
        .update_call(app.authed(pb::UpdateCallRequest {
            call: Some(call),
            update_mask: paths.map(|paths| FieldMask {
                paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            }),
        }))
        .await
        .map(|response| response.into_inner().call.unwrap())
}

#[tokio::test]
async fn update_with_a_mask_changes_only_the_masked_fields() {
    let app = spawn_app().await;
    let created = app
        .create(pb::Call {
            external_id: "keep-me".into(),
            ..call("111", "222", "2026-11-27T09:30:00", "Europe/Paris")
        })
        .await;
    let patch = pb::Call {
        id: created.id.clone(),
        status: pb::CallStatus::Busy as i32,
        external_id: "ignored: not in the mask".into(),
        start: Some(pb::CallStart {
            date_time: String::new(),
            time_zone: "Asia/Tokyo".into(),
        }),
        ..pb::Call::default()
    };
    let updated = update(&app, patch, Some(&["status", "start.time_zone"]))
        .await
        .unwrap();

    assert_eq!(updated.status, pb::CallStatus::Busy as i32);
    assert_eq!(updated.external_id, "keep-me");
    assert_eq!(updated.caller_number, "111");
    let start = updated.start.clone().unwrap();
    assert_eq!(
        (start.date_time.as_str(), start.time_zone.as_str()),
        ("2026-11-27T09:30:00", "Asia/Tokyo")
    );
    assert_eq!(updated.etag, "2");
    assert_ne!(
        updated.start_time, created.start_time,
        "the instant follows the new zone"
    );
}

#[tokio::test]
async fn update_without_a_mask_changes_the_fields_that_are_set() {
    let app = spawn_app().await;
    let created = app
        .create(call("111", "222", "2026-11-27T09:30:00", "UTC"))
        .await;
    let patch = pb::Call {
        id: created.id.clone(),
        called_number: "333".into(),
        ..pb::Call::default()
    };
    let updated = update(&app, patch, None).await.unwrap();
    assert_eq!(
        (
            updated.caller_number.as_str(),
            updated.called_number.as_str()
        ),
        ("111", "333")
    );
}

#[tokio::test]
async fn update_with_star_replaces_every_writable_field() {
    let app = spawn_app().await;
    let created = app
        .create(pb::Call {
            button_id: "b1".into(),
            status: pb::CallStatus::Completed as i32,
            ..call("111", "222", "2026-11-27T09:30:00", "UTC")
        })
        .await;
    let replacement = pb::Call {
        id: created.id.clone(),
        ..call("444", "555", "2026-11-28T10:00:00", "UTC")
    };
    let updated = update(&app, replacement, Some(&["*"])).await.unwrap();
    assert_eq!(updated.button_id, "");
    assert_eq!(updated.status, 0);
    assert_eq!(updated.caller_number, "444");
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.create_time, created.create_time);
}

#[tokio::test]
async fn update_refuses_unknown_and_output_only_mask_paths_and_invalid_results() {
    let app = spawn_app().await;
    let created = app
        .create(call("111", "222", "2026-11-27T09:30:00", "UTC"))
        .await;
    let patch = pb::Call {
        id: created.id.clone(),
        ..pb::Call::default()
    };
    let status = update(&app, patch.clone(), Some(&["nonsense", "etag"]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["update_mask", "update_mask"]);
    let cleared = update(&app, patch, Some(&["caller_number"]))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&cleared), ["call.caller_number"]);
}

#[tokio::test]
async fn update_and_delete_with_a_stale_etag_are_aborted() {
    let app = spawn_app().await;
    let created = app
        .create(call("111", "222", "2026-11-27T09:30:00", "UTC"))
        .await;
    let fresh = pb::Call {
        id: created.id.clone(),
        etag: created.etag.clone(),
        external_id: "first writer".into(),
        ..pb::Call::default()
    };
    update(&app, fresh.clone(), None).await.unwrap();
    let stale = update(
        &app,
        pb::Call {
            external_id: "second writer".into(),
            ..fresh
        },
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(reason(&stale), "ETAG_MISMATCH");

    let delete = app
        .client()
        .await
        .delete_call(app.authed(pb::DeleteCallRequest {
            id: created.id.clone(),
            etag: created.etag,
        }))
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Code::Aborted);
}

#[tokio::test]
async fn deleted_calls_are_gone_and_deleting_twice_is_not_found() {
    let app = spawn_app().await;
    let created = app
        .create(call("111", "222", "2026-11-27T09:30:00", "UTC"))
        .await;
    let delete = pb::DeleteCallRequest {
        id: created.id.clone(),
        etag: created.etag.clone(),
    };
    app.client()
        .await
        .delete_call(app.authed(delete.clone()))
        .await
        .unwrap();

    let get = app
        .client()
        .await
        .get_call(app.authed(pb::GetCallRequest {
            id: created.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let again = app
        .client()
        .await
        .delete_call(app.authed(delete))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    let update = update(
        &app,
        pb::Call {
            id: created.id,
            external_id: "x".into(),
            ..pb::Call::default()
        },
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(update.code(), Code::NotFound);
}

#[tokio::test]
async fn hostile_text_is_refused_not_stored_or_crashing() {
    let app = spawn_app().await;
    let status = refused(
        &app,
        pb::Call {
            button_id: "nul\u{0}byte".into(),
            client_id: "x".repeat(10_000),
            ..call("1", "2", "+99999-01-01T00:00:00", "")
        },
    )
    .await;
    // Limits come first: a value past one is refused before anything interprets it.
    assert_eq!(bad_fields(&status), ["call.button_id", "call.client_id"]);
    let status = refused(&app, call("1", "2", "+99999-01-01T00:00:00", "")).await;
    assert_eq!(bad_fields(&status), ["call.start.date_time"]);
}
