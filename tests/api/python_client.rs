//! End to end with Python `grpcio`: `python_client.py` builds its stubs from reflection, sends
//! canonical proto3 JSON (the FieldMask as a string) and decodes error details with
//! grpcio-status, as a newcomer's script would.

use std::process::Command;

use crate::{helpers::spawn_app, tools};

#[tokio::test(flavor = "multi_thread")]
async fn a_python_client_built_from_reflection_calls_the_api_and_decodes_error_details() {
    let app = spawn_app().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/python_client.py");
    let mut command = Command::new(tools::python());
    command
        .arg(script)
        .arg(app.address.to_string())
        .arg(&app.key);
    let output = tokio::task::spawn_blocking(move || command.output().expect("python runs"))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "python_client.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(seen["fetched_id"], seen["created_id"]);
    assert_eq!(seen["updated_status"], "CALL_STATUS_NO_ANSWERED");
    assert_eq!(seen["updated_time_zone"], "Europe/London");
    assert_eq!(seen["updated_date_time"], "2026-11-27T09:30:00");
    assert_eq!(seen["error_code"], "INVALID_ARGUMENT");
    assert_eq!(seen["bad_fields"], serde_json::json!(["id"]));
    assert_eq!(seen["reason"], "INVALID_ARGUMENT");
    assert_eq!(
        seen["files"],
        serde_json::json!({
            "google.rpc.BadRequest": "google/rpc/error_details.proto",
            "google.rpc.Status": "google/rpc/status.proto",
            "grpc.health.v1.Health": "grpc/health/v1/health.proto",
        })
    );
}
