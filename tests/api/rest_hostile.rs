//! Hostile input at the REST door: each gets a 4xx in Google's error shape, never a 5xx, and
//! nothing is stored.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    helpers::spawn_app,
    rest::{read, seed_call, RestClient},
};

/// Posts raw bytes as a call with `content_type`.
async fn post_raw(rest: &RestClient, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = rest
        .http
        .post(format!("{}/v1/calls", rest.base))
        .bearer_auth(&rest.key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the server answers");
    read(response).await
}

async fn assert_nothing_stored(rest: &RestClient) {
    let (status, listed) = rest.get("/v1/calls").await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed.get("calls").is_none(), "stored: {listed}");
}

fn fields_of(error: &Value) -> Vec<String> {
    error["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|detail| detail["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .flat_map(|detail| {
            detail["fieldViolations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|violation| violation["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_huge_field_gets_400_naming_it_without_echoing_it() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let mut call = seed_call();
    call["externalId"] = json!("x".repeat(100_000));
    let (status, error) = rest.post("/v1/calls", call).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(fields_of(&error), ["call.external_id"]);
    assert!(error.to_string().len() < 2_000, "the value is echoed");
    assert_nothing_stored(&rest).await;
}

#[tokio::test]
async fn a_nul_in_a_field_gets_400_naming_it() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let mut call = seed_call();
    call["buttonId"] = json!("a\u{0}b");
    let (status, error) = rest.post("/v1/calls", call).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(fields_of(&error), ["call.button_id"]);
    assert_nothing_stored(&rest).await;
}

#[tokio::test]
async fn malformed_json_unknown_fields_and_wrong_types_get_400() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    for body in [
        &b"{\"callerNumber\": "[..],
        b"[1, 2, 3]",
        b"{\"callerNumber\": \"1\", \"unknownField\": 1}",
        b"{\"callerNumber\": 12}",
        b"{\"duration\": \"forever\"}",
        b"\xff\xfe",
    ] {
        let (status, error) = post_raw(&rest, "application/json", body.to_vec()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}: {error}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
    }
    assert_nothing_stored(&rest).await;
}

#[tokio::test]
async fn deeply_nested_json_gets_400_without_recursing() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    for depth in [100, 100_000] {
        let body = format!("{{\"record\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
        let (status, error) = post_raw(&rest, "application/json", body.into_bytes()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "depth {depth}: {error}");
    }
    assert_nothing_stored(&rest).await;
}

#[tokio::test]
async fn a_huge_body_gets_413_and_another_content_type_415() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let huge = format!("{{\"externalId\": \"{}\"}}", "x".repeat(3 << 20));
    let (status, error) = post_raw(&rest, "application/json", huge.into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert_eq!(error["error"]["code"], 413);
    let (status, error) = post_raw(
        &rest,
        "application/x-www-form-urlencoded",
        serde_json::to_vec(&seed_call()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error}");
    assert_eq!(error["error"]["code"], 415);
    assert_nothing_stored(&rest).await;
}

#[tokio::test]
async fn bad_query_parameters_get_400_naming_them() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    for (query, field) in [
        ("nonsense=1", "nonsense"),
        ("pageSize=many", "request"),
        ("pageSize=1&pageSize=2", "pageSize"),
        ("search=no+digits", "search"),
        ("syncToken=garbage", "sync_token"),
        ("timeMin=yesterday", "request"),
    ] {
        let (status, error) = rest.get(&format!("/v1/calls?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(fields_of(&error), [field], "{query}: {error}");
    }
    let (status, _) = rest
        .send(
            Method::GET,
            &format!("/v1/calls?search={}", "1".repeat(10_000)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_body_on_a_method_without_one_gets_400() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let (status, error) = rest
        .send(
            Method::GET,
            &format!("/v1/calls/{}", uuid::Uuid::now_v7()),
            Some(json!({"id": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(fields_of(&error), ["body"]);
}

#[tokio::test]
async fn a_huge_path_value_or_too_many_query_parameters_get_400() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let (status, error) = rest.get(&format!("/v1/calls/{}", "a".repeat(5_000))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(fields_of(&error), ["id"]);
    let query = (0..100)
        .map(|index| format!("p{index}=1"))
        .collect::<Vec<_>>()
        .join("&");
    let (status, error) = rest.get(&format!("/v1/calls?{query}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(fields_of(&error), ["query"]);
}
