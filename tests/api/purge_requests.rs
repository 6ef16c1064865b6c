//! PurgeCalls' refusals (hostile filters erase nothing) and the unary personal-data RPCs over
//! the REST door.

use callsd::pb::calls::v1 as pb;

use crate::{
    helpers::{bad_fields, call, spawn_app_with, test_settings},
    purge::purge,
};

#[tokio::test]
async fn hostile_purges_are_refused_naming_the_field_and_erase_nothing() {
    let app = spawn_app_with(test_settings(), chrono_tz::Tz::UTC).await;
    app.create(call(
        "+1 202 555 0101",
        "+1 202 555 0102",
        "2026-01-10T10:00:00",
        "UTC",
    ))
    .await;
    let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let cases = [
        (
            pb::PurgeCallsRequest {
                force: true,
                ..Default::default()
            },
            "phone_number",
        ),
        (
            pb::PurgeCallsRequest {
                phone_number: "+1 2".into(),
                force: true,
                ..Default::default()
            },
            "phone_number",
        ),
        (
            pb::PurgeCallsRequest {
                phone_number: "no digits at all".into(),
                force: true,
                ..Default::default()
            },
            "phone_number",
        ),
        (
            pb::PurgeCallsRequest {
                time_min: at(2_000_000_000),
                time_max: at(1_000_000_000),
                force: true,
                ..Default::default()
            },
            "time_max",
        ),
        (
            pb::PurgeCallsRequest {
                time_max: at(i64::MAX),
                force: true,
                ..Default::default()
            },
            "time_max",
        ),
        (
            pb::PurgeCallsRequest {
                phone_number: "1".repeat(10_000),
                force: true,
                ..Default::default()
            },
            "phone_number",
        ),
    ];
    for (request, field) in cases {
        let status = purge(&app, request).await.unwrap_err();
        assert!(
            bad_fields(&status).iter().any(|bad| bad.ends_with(field)),
            "{field}: {status:?}"
        );
    }
    let (left, _) = app.list_all(pb::ListCallsRequest::default()).await;
    assert_eq!(left.len(), 1, "nothing was erased");
}

#[tokio::test]
async fn the_unary_personal_data_rpcs_answer_over_rest_and_export_is_not_served_there_yet() {
    use reqwest::StatusCode;
    use serde_json::json;

    let app = spawn_app_with(test_settings(), chrono_tz::Tz::UTC).await;
    app.create(call(
        "+1 202 555 0101",
        "+1 202 555 0102",
        "2026-01-10T10:00:00",
        "UTC",
    ))
    .await;
    let rest = crate::rest::RestClient::new(&app);

    let (status, settings) = rest.get("/v1/tenant").await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["tenantSettings"]["name"], "acme");

    let (status, summary) = rest
        .get("/v1/calls:summarize?timeMin=2026-01-01T00:00:00Z&timeMax=2026-02-01T00:00:00Z&interval=SUMMARY_INTERVAL_MONTH")
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["summaries"][0]["callCount"], "1");

    let (status, refused) = rest.post("/v1/calls:purge", json!({"force": true})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (status, purged) = rest
        .post(
            "/v1/calls:purge",
            json!({"phoneNumber": "202 555 0101", "force": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{purged}");
    assert_eq!(purged["purgeCount"], "1");

    let (status, _) = rest.get("/v1/calls:export").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
