//! ExportCalls' refusals: hostile filters, named by field.

use callsd::pb::calls::v1 as pb;
use tonic::Code;

use crate::helpers::{bad_fields, spawn_app};

#[tokio::test]
async fn hostile_export_filters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            pb::ExportCallsRequest {
                search: "no digits".into(),
                ..Default::default()
            },
            "search",
        ),
        (
            pb::ExportCallsRequest {
                time_min: Some(prost_types::Timestamp {
                    seconds: 253_402_300_800,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "time_min",
        ),
        (
            pb::ExportCallsRequest {
                tool_id: "x".repeat(100_000),
                ..Default::default()
            },
            "tool_id",
        ),
    ];
    for (request, field) in cases {
        let status = app
            .client()
            .await
            .export_calls(app.authed(request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            bad_fields(&status).iter().any(|bad| bad.ends_with(field)),
            "{status:?}"
        );
    }
}
