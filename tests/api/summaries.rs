//! SummarizeCalls: counts and durations by local day, week or month, checked against a hand
//! computation across DST changes in Europe/Paris and America/New_York.

use callsd::pb::calls::v1::{self as pb, CallStatus, SummaryGroupBy, SummaryInterval};
use chrono::{DateTime, Utc};

use crate::helpers::{bad_fields, call, spawn_app_with, TestApp};

fn at(text: &str) -> Option<prost_types::Timestamp> {
    let time: DateTime<Utc> = text.parse().unwrap();
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

async fn create(app: &TestApp, local: &str, zone: &str, seconds: i64, status: CallStatus) {
    app.create(pb::Call {
        duration: Some(prost_types::Duration { seconds, nanos: 0 }),
        status: status as i32,
        ..call("+33 6 12 34 56 78", "+33 1 23 45 67 89", local, zone)
    })
    .await;
}

async fn summarize(
    app: &TestApp,
    request: pb::SummarizeCallsRequest,
) -> Result<pb::SummarizeCallsResponse, tonic::Status> {
    app.client()
        .await
        .summarize_calls(app.authed(request))
        .await
        .map(tonic::Response::into_inner)
}

/// (start date, count, total seconds, average seconds) of each summary.
fn rows(response: &pb::SummarizeCallsResponse) -> Vec<(String, i64, i64, i64)> {
    response
        .summaries
        .iter()
        .map(|summary| {
            (
                summary.start_date.clone(),
                summary.call_count,
                summary.total_duration.unwrap().seconds,
                summary.average_duration.unwrap().seconds,
            )
        })
        .collect()
}

fn row(date: &str, count: i64, total: i64, average: i64) -> (String, i64, i64, i64) {
    (date.to_owned(), count, total, average)
}

/// Five calls around Paris' spring change (29 March 2026, a 23-hour Sunday) and four around
/// New York's autumn change (1 November 2026, a 25-hour Sunday).
async fn dst_app() -> TestApp {
    let app = spawn_app_with(crate::helpers::test_settings(), chrono_tz::Europe::Paris).await;
    use CallStatus::{Busy, Completed};
    // Paris: 22:30Z on the 28th, 23:30Z on the 28th, 01:30Z, 21:30Z and 22:30Z on the 29th.
    create(&app, "2026-03-28T23:30:00", "Europe/Paris", 60, Completed).await;
    create(&app, "2026-03-29T00:30:00", "Europe/Paris", 120, Busy).await;
    create(&app, "2026-03-29T03:30:00", "Europe/Paris", 30, Completed).await;
    create(&app, "2026-03-29T23:30:00", "Europe/Paris", 90, Completed).await;
    create(&app, "2026-03-30T00:30:00", "Europe/Paris", 45, Busy).await;
    // New York: 04:30Z and 05:30Z (01:30 repeated: the earlier, EDT) on the 1st, then 04:30Z
    // and 05:30Z on the 2nd.
    create(
        &app,
        "2026-11-01T00:30:00",
        "America/New_York",
        10,
        Completed,
    )
    .await;
    create(
        &app,
        "2026-11-01T01:30:00",
        "America/New_York",
        20,
        Completed,
    )
    .await;
    create(
        &app,
        "2026-11-01T23:30:00",
        "America/New_York",
        30,
        Completed,
    )
    .await;
    create(
        &app,
        "2026-11-02T00:30:00",
        "America/New_York",
        40,
        Completed,
    )
    .await;
    app
}

fn paris_window() -> pb::SummarizeCallsRequest {
    pb::SummarizeCallsRequest {
        time_min: at("2026-03-27T00:00:00Z"),
        time_max: at("2026-04-01T00:00:00Z"),
        interval: SummaryInterval::Day as i32,
        ..Default::default()
    }
}

fn new_york_window(zone: &str) -> pb::SummarizeCallsRequest {
    pb::SummarizeCallsRequest {
        time_min: at("2026-10-31T00:00:00Z"),
        time_max: at("2026-11-04T00:00:00Z"),
        interval: SummaryInterval::Day as i32,
        time_zone: zone.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn days_are_local_days_across_dst_changes_in_paris_and_new_york() {
    let app = dst_app().await;

    // The tenant's zone by default: the 23-hour 29 March holds three calls.
    let paris = summarize(&app, paris_window()).await.unwrap();
    assert_eq!(paris.time_zone, "Europe/Paris");
    assert_eq!(
        rows(&paris),
        [
            row("2026-03-28", 1, 60, 60),
            row("2026-03-29", 3, 240, 80),
            row("2026-03-30", 1, 45, 45),
        ]
    );
    // The same calls by UTC day.
    let utc = summarize(
        &app,
        pb::SummarizeCallsRequest {
            time_zone: "UTC".into(),
            ..paris_window()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&utc),
        [row("2026-03-28", 2, 180, 90), row("2026-03-29", 3, 165, 55)]
    );

    // New York's 25-hour 1 November holds three calls, the repeated 01:30 among them.
    let new_york = summarize(&app, new_york_window("America/New_York"))
        .await
        .unwrap();
    assert_eq!(
        rows(&new_york),
        [row("2026-11-01", 3, 60, 20), row("2026-11-02", 1, 40, 40)]
    );
    let utc = summarize(&app, new_york_window("UTC")).await.unwrap();
    assert_eq!(
        rows(&utc),
        [row("2026-11-01", 2, 30, 15), row("2026-11-02", 2, 70, 35)]
    );
}

#[tokio::test]
async fn weeks_start_on_monday_months_on_the_first_and_groups_split_buckets() {
    let app = dst_app().await;
    let weeks = summarize(
        &app,
        pb::SummarizeCallsRequest {
            interval: SummaryInterval::Week as i32,
            ..paris_window()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&weeks),
        [row("2026-03-23", 4, 300, 75), row("2026-03-30", 1, 45, 45)]
    );
    let months = summarize(
        &app,
        pb::SummarizeCallsRequest {
            interval: SummaryInterval::Month as i32,
            ..new_york_window("America/New_York")
        },
    )
    .await
    .unwrap();
    assert_eq!(rows(&months), [row("2026-11-01", 4, 100, 25)]);

    let by_status = summarize(
        &app,
        pb::SummarizeCallsRequest {
            group_by: SummaryGroupBy::Status as i32,
            ..paris_window()
        },
    )
    .await
    .unwrap();
    let statuses: Vec<(String, i32, i64)> = by_status
        .summaries
        .iter()
        .map(|summary| {
            (
                summary.start_date.clone(),
                summary.status,
                summary.call_count,
            )
        })
        .collect();
    let (completed, busy) = (CallStatus::Completed as i32, CallStatus::Busy as i32);
    assert_eq!(
        statuses,
        [
            ("2026-03-28".to_owned(), completed, 1),
            ("2026-03-29".to_owned(), completed, 2),
            ("2026-03-29".to_owned(), busy, 1),
            ("2026-03-30".to_owned(), busy, 1),
        ]
    );
}

#[tokio::test]
async fn hostile_summaries_are_refused_naming_the_field() {
    let app = spawn_app_with(crate::helpers::test_settings(), chrono_tz::Tz::UTC).await;
    let cases = [
        (
            pb::SummarizeCallsRequest {
                time_min: at("2000-01-01T00:00:00Z"),
                time_max: at("2026-01-01T00:00:00Z"),
                interval: SummaryInterval::Day as i32,
                ..Default::default()
            },
            "time_max",
        ),
        (
            pb::SummarizeCallsRequest {
                time_zone: "Mars/Olympus_Mons".into(),
                ..paris_window()
            },
            "time_zone",
        ),
        (
            pb::SummarizeCallsRequest {
                time_zone: "E".repeat(100_000),
                ..paris_window()
            },
            "time_zone",
        ),
        (
            pb::SummarizeCallsRequest {
                interval: 0,
                ..paris_window()
            },
            "interval",
        ),
        (
            pb::SummarizeCallsRequest {
                interval: 99,
                ..paris_window()
            },
            "interval",
        ),
        (
            pb::SummarizeCallsRequest {
                group_by: 42,
                ..paris_window()
            },
            "group_by",
        ),
        (
            pb::SummarizeCallsRequest {
                time_min: None,
                ..paris_window()
            },
            "time_min",
        ),
        (
            pb::SummarizeCallsRequest {
                time_max: at("2026-03-01T00:00:00Z"),
                ..paris_window()
            },
            "time_max",
        ),
    ];
    for (request, field) in cases {
        let status = summarize(&app, request).await.unwrap_err();
        assert!(
            bad_fields(&status).iter().any(|bad| bad.ends_with(field)),
            "{field}: {status:?}"
        );
    }
    // Years of days are refused, years of months are not.
    summarize(
        &app,
        pb::SummarizeCallsRequest {
            time_min: at("2000-01-01T00:00:00Z"),
            time_max: at("2026-01-01T00:00:00Z"),
            interval: SummaryInterval::Month as i32,
            ..Default::default()
        },
    )
    .await
    .expect("312 months are within the cap");
}
