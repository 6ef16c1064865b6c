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
async fn the_personal_data_rpcs_answer_over_rest_and_export_downloads_as_ndjson_or_csv() {
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

    // The export: NDJSON by default, a call a line, then the token line that says it is whole.
    let download = |accept: &'static str| {
        rest.http
            .get(format!("{}/v1/calls:export", rest.base))
            .bearer_auth(&rest.key)
            .header("accept", accept)
            .send()
    };
    let response = download("application/x-ndjson").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-ndjson",
        "{response:?}"
    );
    let text = response.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["call"]["callerNumber"], "+1 202 555 0101");
    assert!(
        !lines[1]["nextSyncToken"].as_str().unwrap().is_empty(),
        "{text}"
    );
    // CSV: a header row named after the call's JSON fields, then the call.
    let response = download("text/csv").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|row| !row.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    let header: Vec<&str> = rows[0].split(',').collect();
    let cells: Vec<&str> = rows[1].split(',').collect();
    let cell = |name: &str| cells[header.iter().position(|n| *n == name).unwrap()];
    assert_eq!(cell("callerNumber"), "+1 202 555 0101");
    assert_eq!(cell("start.dateTime"), "2026-01-10T10:00:00");
    // A hostile filter is refused before anything streams.
    let (status, refused) = rest.get("/v1/calls:export?search=12%0034").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

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

    // After the purge the export holds no call, and still ends with its token line.
    let text = download("*/*").await.unwrap().text().await.unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("{\"nextSyncToken\""), "{text}");
}
