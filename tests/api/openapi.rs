//! The OpenAPI document the REST door serves at `/openapi.json`: served without a key, every
//! route in it answers on the real server, and schemathesis (PyPI) finds no failure in any
//! operation.

use std::time::Duration;

use serde_json::Value;

use callsd::pb::calls::v1::{self as pb, watch_service_client::WatchServiceClient};

use crate::{
    helpers::{call, spawn_app, TestApp},
    tools,
};

/// How long one REST request of these tests may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Schemathesis' whole run, a bound far above the ~1 minute it takes on a loaded machine.
const SCHEMATHESIS_TIMEOUT: Duration = Duration::from_secs(600);

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a client builds")
}

async fn document(app: &TestApp) -> Value {
    let response = http_client()
        .get(format!("http://{}/openapi.json", app.address))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_key() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.0.3");
    assert!(document["paths"]["/v1/calls"]["post"].is_object());
    assert!(document["components"]["schemas"]["Call"].is_object());
}

/// A call, a signing key and a watch of the tenant, whose ids fill the paths.
struct Fixtures {
    call_id: String,
    watch_id: String,
    crypto_key_id: String,
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let call = app
        .create(call(
            "+33 1 23 45 67 89",
            "+33 9 87 65 43 21",
            "2026-11-27T09:30:00",
            "Europe/Paris",
        ))
        .await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.address))
        .expect("an address")
        .connect()
        .await
        .expect("the server accepts connections");
    let mut watches = WatchServiceClient::new(channel);
    let crypto_key = watches
        .create_crypto_key(app.authed(pb::CreateCryptoKeyRequest {
            name: "routes".into(),
        }))
        .await
        .expect("a key is created")
        .into_inner()
        .crypto_key
        .expect("the key");
    let watch = watches
        .create_watch(app.authed(pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                address: "https://hooks.example.com/calls".into(),
                status: pb::WatchStatus::Disabled.into(),
                ..pb::Watch::default()
            }),
        }))
        .await
        .expect("a watch is created")
        .into_inner()
        .watch
        .expect("the watch");
    Fixtures {
        call_id: call.id,
        watch_id: watch.id,
        crypto_key_id: crypto_key.id,
    }
}

/// `path` with each variable filled with the id of an existing resource (a delivery has none:
/// its id is a well-formed one nothing has).
fn filled(path: &str, fixtures: &Fixtures) -> String {
    let id = if path.starts_with("/v1/calls/") {
        &fixtures.call_id
    } else if path.starts_with("/v1/cryptoKeys/") {
        &fixtures.crypto_key_id
    } else {
        &fixtures.watch_id
    };
    path.replace("{id}", id)
        .replace("{watch_id}", &fixtures.watch_id)
        .replace("{delivery_id}", "018f0000-0000-7000-8000-000000000000")
}

/// Routes answered by the router itself rather than an RPC: no route, a wrong method.
fn reason_of(body: &Value) -> String {
    body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|detail| {
            detail["@type"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("ErrorInfo"))
        })
        .and_then(|detail| detail["reason"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn every_route_in_the_openapi_document_answers() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let fixtures = fixtures(&app).await;
    let client = http_client();
    let mut operations: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            operations.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    // Deletes last, so every other route still finds its resource.
    operations.sort_by_key(|(method, _, _)| method == "delete");
    assert_eq!(operations.len(), 23, "every binding of every RPC");
    let mut answers = Vec::new();
    for (method, path, operation) in &operations {
        let url = format!("http://{}{}", app.address, filled(path, &fixtures));
        let mut request = client
            .request(method.to_uppercase().parse().expect("a method"), &url)
            .bearer_auth(&app.key);
        if operation.get("requestBody").is_some() {
            request = request
                .header("content-type", "application/json")
                .body("{}");
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let documented = operation["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{method} {path}: {status} is not documented"));
        if content_type.starts_with("text/event-stream") {
            // The watch stream: its head is the answer; the stream itself never ends.
            assert!(documented["content"]["text/event-stream"].is_object());
            drop(response);
        } else if content_type.starts_with("application/x-ndjson") {
            // The export: a line of JSON each, the last one the token that says it is whole.
            assert!(documented["content"]["application/x-ndjson"].is_object());
            let text = response.text().await.expect("the export ends");
            let last: Value = serde_json::from_str(text.lines().last().unwrap_or_default())
                .unwrap_or_else(|error| panic!("{method} {path}: {error}: {text}"));
            assert!(
                last.get("nextSyncToken").is_some(),
                "{method} {path}: {text}"
            );
        } else if status != 200 || method != "delete" {
            let body: Value = response.json().await.unwrap_or_else(|error| {
                panic!("{method} {path}: {status} without a JSON body: {error}")
            });
            if status == 404 {
                // Only a resource nobody has, never a missing route.
                assert_ne!(
                    reason_of(&body),
                    "ROUTE_NOT_FOUND",
                    "{method} {path}: {body}"
                );
                assert_eq!(
                    operation["operationId"], "RetryDelivery",
                    "{method} {path}: {body}"
                );
            }
        }
        assert!(
            ![404, 405, 501].contains(&status) || operation["operationId"] == "RetryDelivery",
            "{method} {path} answers {status}"
        );
        answers.push(format!("{} {method} {path}", status));
    }
    // Each RPC ran: the fixtures are gone through their own delete routes.
    assert!(
        answers
            .iter()
            .filter(|answer| answer.starts_with("200 delete"))
            .count()
            == 3,
        "{answers:#?}"
    );
}

/// Schemathesis generates requests for every operation of the served document (examples,
/// boundary values and random data, valid and not) and checks each answer: no 5xx, a
/// documented status, the documented content type and headers, a body that matches the
/// documented schema. Bounded (20 examples an operation, derandomized: schemathesis'
/// deterministic mode, which needs no seed), so it takes the same minute or so every run.
///
/// `WatchCalls` is left out: its stream never ends, which a tool that reads whole answers
/// counts as a timeout; `every_route_in_the_openapi_document_answers` and the SSE tests cover
/// it. The watches it creates have the address of the proto's example, in `.invalid` (RFC
/// 2606), which no resolver answers, or addresses made up of random strings, which the SSRF
/// guard refuses: its deliveries reach no one.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_failure_in_any_operation() {
    let schemathesis = tools::schemathesis();
    let app = spawn_app().await;
    let run_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "schemathesis-{}-{}",
        std::process::id(),
        app.address.port()
    ));
    std::fs::create_dir_all(&run_dir).expect("a run directory");
    let mut command = tokio::process::Command::new(schemathesis);
    command
        .current_dir(&run_dir)
        .arg("run")
        .arg(format!("http://{}/openapi.json", app.address))
        .args(["--header", &format!("Authorization: Bearer {}", app.key)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "20",
            "--generation-deterministic",
            "--exclude-operation-id",
            "WatchCalls",
            "--request-timeout",
            "20",
            "--workers",
            "1",
            "--no-color",
            "--output-truncate",
            "false",
        ])
        // The server is on loopback, whatever proxy the environment names for the registries.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCHEMATHESIS_TIMEOUT, command.output())
        .await
        .expect("schemathesis finishes in time")
        .expect("schemathesis runs");
    let _ = std::fs::remove_dir_all(&run_dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("22 selected / 23 total"),
        "every operation but WatchCalls: {stdout}"
    );
}
