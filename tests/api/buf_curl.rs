//! End to end with the real `buf curl` (npm `@bufbuild/buf`), through reflection only, in each
//! of its three protocols: Connect (its default), gRPC and gRPC-Web.

use std::process::{Command, Output};

use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine};
use prost::Message;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, TestApp},
    tools,
};

const PROTOCOLS: [&str; 3] = ["connect", "grpc", "grpcweb"];

/// `buf curl --protocol PROTOCOL -d BODY URL`, run off the runtime (the server lives on it).
async fn buf_curl(app: &TestApp, protocol: &str, method: &str, body: Value) -> Output {
    let mut command = Command::new(tools::buf());
    command
        .args(["curl", "--protocol", protocol])
        .args(["-H", &format!("authorization: Bearer {}", app.key)])
        .args(["-d", &body.to_string()])
        .arg(format!(
            "http://{}/calls.v1.CallService/{method}",
            app.address
        ));
    tokio::task::spawn_blocking(move || command.output().expect("buf runs"))
        .await
        .unwrap()
}

/// The answer of a call that must succeed.
async fn answer(app: &TestApp, protocol: &str, method: &str, body: Value) -> Value {
    let output = buf_curl(app, protocol, method, body).await;
    assert!(
        output.status.success(),
        "buf curl --protocol {protocol} {method} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("buf curl prints JSON")
}

/// The error `buf curl` prints (on stderr) for a call that must fail.
async fn error(app: &TestApp, protocol: &str, method: &str, body: Value) -> Value {
    let output = buf_curl(app, protocol, method, body).await;
    assert!(
        !output.status.success(),
        "{method} succeeded over {protocol}"
    );
    serde_json::from_slice(&output.stderr).unwrap_or_else(|_| {
        panic!(
            "buf curl prints the error as JSON: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn new_call() -> Value {
    json!({"call": {
        "callerNumber": "+33 6 12 34 56 78",
        "calledNumber": "06-12-34-56-78",
        "start": {"dateTime": "2026-11-27T09:30:00", "timeZone": "Europe/Paris"},
        "status": "CALL_STATUS_COMPLETED"
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn buf_curl_creates_gets_and_updates_with_a_canonical_field_mask_in_every_protocol() {
    let app = spawn_app().await;
    for protocol in PROTOCOLS {
        let created = answer(&app, protocol, "CreateCall", new_call()).await;
        let id = created["call"]["id"].as_str().expect("an id").to_owned();

        let fetched = answer(&app, protocol, "GetCall", json!({ "id": id })).await;
        assert_eq!(fetched["call"]["id"], id.as_str(), "{protocol}");

        let update = json!({
            "call": {"id": id, "status": "CALL_STATUS_NO_ANSWERED", "start": {"timeZone": "Europe/London"}},
            "updateMask": "status,start.timeZone"
        });
        let updated = answer(&app, protocol, "UpdateCall", update).await;
        assert_eq!(
            updated["call"]["status"], "CALL_STATUS_NO_ANSWERED",
            "{protocol}"
        );
        assert_eq!(updated["call"]["start"]["timeZone"], "Europe/London");
        // Outside the mask: kept.
        assert_eq!(updated["call"]["start"]["dateTime"], "2026-11-27T09:30:00");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn buf_curl_by_default_shows_error_details_decoded() {
    let app = spawn_app().await;
    let error = error(&app, "connect", "GetCall", json!({"id": "not-a-call-id"})).await;
    assert_eq!(error["code"], "invalid_argument");
    let details = error["details"].as_array().expect("details");
    let debug_of = |type_name: &str| {
        details
            .iter()
            .find(|detail| detail["type"] == type_name)
            .map(|detail| detail["debug"].clone())
            .unwrap_or_else(|| panic!("no {type_name} in {details:?}"))
    };
    assert_eq!(
        debug_of("google.rpc.BadRequest")["fieldViolations"][0]["field"],
        "id"
    );
    assert_eq!(
        debug_of("google.rpc.ErrorInfo")["reason"],
        "INVALID_ARGUMENT"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn buf_curl_over_grpc_and_grpc_web_shows_the_details_it_can_only_print_as_base64() {
    // buf curl decodes a gRPC error's details only for types compiled into buf itself, which
    // the google.rpc ones are not; the Connect protocol carries a JSON rendering (above).
    let app = spawn_app().await;
    for protocol in ["grpc", "grpcweb"] {
        let error = error(&app, protocol, "GetCall", json!({"id": "not-a-call-id"})).await;
        assert_eq!(error["code"], "invalid_argument", "{protocol}");
        let bad_request = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|detail| detail["type"] == "google.rpc.BadRequest")
            .expect("a BadRequest");
        let bytes = STANDARD_NO_PAD
            .decode(bad_request["value"].as_str().unwrap())
            .unwrap();
        let decoded = tonic_types::pb::BadRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.field_violations[0].field, "id", "{protocol}");
    }
}
