//! ListCalls: order, keyset paging, filters, search normalisation, time windows, tokens.

use std::collections::HashSet;

use callsd::pb::calls::v1 as pb;
use prost_types::Timestamp;

use crate::helpers::{bad_fields, call, spawn_app, with_key};

fn utc(text: &str) -> Timestamp {
    let time = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    }
}

#[tokio::test]
async fn list_returns_newest_start_first_across_pages_without_duplicates() {
    let app = spawn_app().await;
    for day in 1..=9 {
        app.create(call("1", "2", &format!("2026-11-0{day}T12:00:00"), "UTC"))
            .await;
    }
    let mut request = pb::ListCallsRequest {
        page_size: 4,
        ..Default::default()
    };
    let mut starts = Vec::new();
    let mut pages = 0;
    loop {
        let page = app.list(request.clone()).await.unwrap();
        pages += 1;
        starts.extend(
            page.calls
                .iter()
                .map(|call| call.start.clone().unwrap().date_time),
        );
        if page.next_page_token.is_empty() {
            assert!(
                !page.next_sync_token.is_empty(),
                "the last page carries a sync token"
            );
            break;
        }
        assert!(
            page.next_sync_token.is_empty(),
            "only the last page carries a sync token"
        );
        request.page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (1..=9)
        .rev()
        .map(|day| format!("2026-11-0{day}T12:00:00"))
        .collect();
    assert_eq!(starts, expected);
}

#[tokio::test]
async fn page_size_is_defaulted_capped_and_never_negative() {
    let app = spawn_app().await;
    for minute in 0..55 {
        app.create(call(
            "1",
            "2",
            &format!("2026-11-01T12:{minute:02}:00"),
            "UTC",
        ))
        .await;
    }
    let default_page = app.list(pb::ListCallsRequest::default()).await.unwrap();
    assert_eq!(default_page.calls.len(), 50);
    let huge = app
        .list(pb::ListCallsRequest {
            page_size: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(huge.calls.len(), 55);
    let negative = app
        .list(pb::ListCallsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&negative), ["page_size"]);
}

#[tokio::test]
async fn search_matches_digits_whatever_the_formatting() {
    let app = spawn_app().await;
    let international = app
        .create(call(
            "+33 6 12 34 56 78",
            "100",
            "2026-11-01T12:00:00",
            "UTC",
        ))
        .await;
    let national = app
        .create(call("200", "06-12-34-56-78", "2026-11-02T12:00:00", "UTC"))
        .await;
    let tracked = app
        .create(pb::Call {
            tracking_number: "(061) 234.5".into(),
            ..call("300", "400", "2026-11-03T12:00:00", "UTC")
        })
        .await;
    app.create(call(
        "+44 20 7946 0000",
        "500",
        "2026-11-04T12:00:00",
        "UTC",
    ))
    .await;

    let found = app
        .list(pb::ListCallsRequest {
            search: "612345".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: HashSet<_> = found.calls.iter().map(|call| call.id.clone()).collect();
    assert_eq!(
        ids,
        HashSet::from([
            international.id.clone(),
            national.id.clone(),
            tracked.id.clone()
        ])
    );
    let formatted = app
        .list(pb::ListCallsRequest {
            search: "6 12-34".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(formatted.calls.len(), 3);
    assert!(
        found.next_sync_token.is_empty(),
        "a searched list is not a sync point"
    );

    let no_digits = app
        .list(pb::ListCallsRequest {
            search: "abc".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&no_digits), ["search"]);
}

#[tokio::test]
async fn a_late_evening_call_in_new_york_is_found_by_a_utc_window_on_the_next_day() {
    let app = spawn_app().await;
    let evening = app
        .create(pb::Call {
            duration: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
            ..call("1", "2", "2026-11-27T23:30:00", "America/New_York")
        })
        .await;
    app.create(call("1", "2", "2026-11-27T12:00:00", "America/New_York"))
        .await;

    let next_day = app
        .list(pb::ListCallsRequest {
            time_min: Some(utc("2026-11-28T00:00:00Z")),
            time_max: Some(utc("2026-11-29T00:00:00Z")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        next_day
            .calls
            .iter()
            .map(|call| &call.id)
            .collect::<Vec<_>>(),
        [&evening.id]
    );

    // Overlap: a window that starts during the call (04:35Z) still finds it.
    let during = app
        .list(pb::ListCallsRequest {
            time_min: Some(utc("2026-11-28T04:35:00Z")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(during.calls.len(), 1);
    let after = app
        .list(pb::ListCallsRequest {
            time_min: Some(utc("2026-11-28T04:41:00Z")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(after.calls.is_empty());

    let inverted = app
        .list(pb::ListCallsRequest {
            time_min: Some(utc("2026-11-29T00:00:00Z")),
            time_max: Some(utc("2026-11-28T00:00:00Z")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&inverted), ["time_max"]);
}

#[tokio::test]
async fn tool_id_selects_the_calls_of_one_button() {
    let app = spawn_app().await;
    let of_button = app
        .create(pb::Call {
            button_id: "btn-1".into(),
            ..call("1", "2", "2026-11-01T12:00:00", "UTC")
        })
        .await;
    app.create(pb::Call {
        button_id: "btn-2".into(),
        ..call("1", "2", "2026-11-01T13:00:00", "UTC")
    })
    .await;
    let page = app
        .list(pb::ListCallsRequest {
            tool_id: "btn-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.calls.iter().map(|call| &call.id).collect::<Vec<_>>(),
        [&of_button.id]
    );
}

#[tokio::test]
async fn a_page_token_only_works_with_its_filters_and_its_tenant() {
    let app = spawn_app().await;
    for day in 1..=3 {
        app.create(call("1", "2", &format!("2026-11-0{day}T12:00:00"), "UTC"))
            .await;
    }
    let first = app
        .list(pb::ListCallsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let other_filters = app
        .list(pb::ListCallsRequest {
            page_size: 1,
            search: "1".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&other_filters), ["page_token"]);

    let other_key = app.other_tenant("globex").await;
    let stolen = app
        .client()
        .await
        .list_calls(with_key(
            &other_key,
            pb::ListCallsRequest {
                page_size: 1,
                page_token: first.next_page_token.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&stolen), ["page_token"]);

    let forged = app
        .list(pb::ListCallsRequest {
            page_size: 1,
            page_token: "eyJhIjoxfQ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&forged), ["page_token"]);
}

#[tokio::test]
async fn paging_while_others_insert_neither_repeats_nor_skips_existing_calls() {
    let app = spawn_app().await;
    let mut existing = HashSet::new();
    for minute in 0..60 {
        let created = app
            .create(call(
                "1",
                "2",
                &format!("2026-11-01T12:{minute:02}:00"),
                "UTC",
            ))
            .await;
        existing.insert(created.id);
    }
    let writer = {
        let client = app.client().await;
        let key = app.key.clone();
        tokio::spawn(async move {
            let mut client = client;
            for minute in 0..60 {
                // Newer, older and interleaved start times, all while the reader pages.
                let date_time = format!("2026-11-01T12:{minute:02}:30");
                client
                    .create_call(with_key(
                        &key,
                        pb::CreateCallRequest {
                            call: Some(call("3", "4", &date_time, "UTC")),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut request = pb::ListCallsRequest {
        page_size: 7,
        ..Default::default()
    };
    loop {
        let page = app.list(request.clone()).await.unwrap();
        seen.extend(page.calls.into_iter().map(|call| call.id));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no call appears twice");
    assert!(
        existing.is_subset(&unique),
        "every call that existed before paging is seen"
    );
}

#[tokio::test]
async fn page_and_sync_tokens_are_short_and_reveal_nothing_readable() {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

    let app = spawn_app().await;
    for day in 1..=3 {
        app.create(call("1", "2", &format!("2026-11-0{day}T12:00:00"), "UTC"))
            .await;
    }
    let first = app
        .list(pb::ListCallsRequest {
            page_size: 2,
            tool_id: "contact-page".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, sync_token) = app.list_all(pb::ListCallsRequest::default()).await;
    let tenant_id = app.tenant_id.to_string();
    for token in [&first.next_page_token, &sync_token] {
        assert!(token.len() <= 100, "{} characters: {token}", token.len());
        let bytes = URL_SAFE_NO_PAD.decode(token).expect("base64url");
        let text = String::from_utf8_lossy(&bytes);
        for readable in [tenant_id.as_str(), "contact-page", "tenant", "{\""] {
            assert!(!text.contains(readable), "{readable:?} readable in {token}");
        }
        assert!(
            !bytes
                .windows(16)
                .any(|window| window == app.tenant_id.as_bytes()),
            "the tenant id's bytes are in {token}"
        );
    }
}
