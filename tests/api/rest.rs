//! The REST/JSON door on the gRPC port: every route against the real server, requests written
//! as the seed's document writes them, errors in Google's REST shape.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// A REST client for a test server, with its tenant's key.
pub struct RestClient {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

impl RestClient {
    pub fn new(app: &TestApp) -> Self {
        RestClient::with_key(app, &app.key)
    }

    pub fn with_key(app: &TestApp, key: &str) -> Self {
        RestClient {
            base: format!("http://{}", app.address),
            key: key.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends `body` (JSON) to `path` and returns the status and the JSON answer (Null when empty).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(body)).await
    }
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("a body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, value)
}

/// A call as the seed's document writes one.
pub fn seed_call() -> Value {
    json!({
        "callerNumber": "+33 1 23 45 67 89",
        "calledNumber": "+33 9 87 65 43 21",
        "start": {"dateTime": "2026-11-27T09:30:00", "timeZone": "Europe/Paris"},
        "duration": "95s",
        "status": "noAnswered",
        "type": "clickToCall",
        "buttonId": "button-1",
        "record": {"mineType": "audio/mpeg", "url": "https://example.com/r.mp3"}
    })
}

#[tokio::test]
async fn a_call_written_as_the_seed_writes_it_is_created_and_read_back() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let (status, created) = rest.post("/v1/calls", seed_call()).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let call = &created["call"];
    assert_eq!(call["status"], "CALL_STATUS_NO_ANSWERED");
    assert_eq!(call["type"], "CALL_TYPE_CLICK_TO_CALL");
    assert_eq!(call["record"]["mimeType"], "audio/mpeg");
    assert_eq!(call["start"]["timeZone"], "Europe/Paris");
    assert_eq!(call["duration"], "95s");
    let id = call["id"].as_str().expect("an id");

    let (status, read_back) = rest.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read_back["call"], *call);
}

#[tokio::test]
async fn a_request_without_a_key_gets_401_in_googles_error_shape() {
    let app = spawn_app().await;
    let rest = RestClient::with_key(&app, "not-a-key");
    let (status, error) = rest.get("/v1/calls").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["code"], 401);
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        error["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
    assert_eq!(error["error"]["details"][0]["reason"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn unknown_routes_get_404_and_wrong_methods_405() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let (status, error) = rest.get("/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["status"], "NOT_FOUND");
    let (status, error) = rest.post("/v1/calls/abc", json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{error}");
    assert_eq!(error["error"]["code"], 405);
}

/// Creates the seed's call and returns it as answered.
async fn create_seed_call(rest: &RestClient) -> Value {
    let (status, created) = rest.post("/v1/calls", seed_call()).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created["call"].clone()
}

fn id_of(call: &Value) -> &str {
    call["id"].as_str().expect("an id")
}

#[tokio::test]
async fn the_seeds_enum_spellings_and_proto_names_both_work_in_requests() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    for (status, call_type, expected_status, expected_type) in [
        (
            "completed",
            "callTracking",
            "CALL_STATUS_COMPLETED",
            "CALL_TYPE_CALL_TRACKING",
        ),
        (
            "wrongNumber",
            "clickToCall",
            "CALL_STATUS_WRONG_NUMBER",
            "CALL_TYPE_CLICK_TO_CALL",
        ),
        (
            "CALL_STATUS_BUSY",
            "CALL_TYPE_CLICK_TO_CALL",
            "CALL_STATUS_BUSY",
            "CALL_TYPE_CLICK_TO_CALL",
        ),
    ] {
        let mut call = seed_call();
        call["status"] = json!(status);
        call["type"] = json!(call_type);
        let (answer, created) = rest.post("/v1/calls", call).await;
        assert_eq!(answer, StatusCode::OK, "{created}");
        assert_eq!(created["call"]["status"], expected_status);
        assert_eq!(created["call"]["type"], expected_type);
    }
    let mut call = seed_call();
    call["status"] = json!("pending");
    let (answer, error) = rest.post("/v1/calls", call).await;
    assert_eq!(answer, StatusCode::BAD_REQUEST, "{error}");
}

#[tokio::test]
async fn patch_changes_the_fields_sent_and_put_is_the_seeds_update() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let call = create_seed_call(&rest).await;
    let id = id_of(&call);
    let (status, patched) = rest
        .send(
            Method::PATCH,
            &format!("/v1/calls/{id}"),
            Some(json!({"status": "busy"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["call"]["status"], "CALL_STATUS_BUSY");
    assert_eq!(patched["call"]["callerNumber"], call["callerNumber"]);
    assert_ne!(patched["call"]["etag"], call["etag"]);

    // An update mask in the query: only the fields it names change.
    let (status, masked) = rest
        .send(
            Method::PATCH,
            &format!("/v1/calls/{id}?updateMask=externalId"),
            Some(json!({"externalId": "ext-1", "status": "completed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{masked}");
    assert_eq!(masked["call"]["externalId"], "ext-1");
    assert_eq!(masked["call"]["status"], "CALL_STATUS_BUSY");

    let (status, put) = rest
        .send(
            Method::PUT,
            &format!("/v1/calls/{id}"),
            Some(json!({"buttonId": "button-2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["call"]["buttonId"], "button-2");
    assert_eq!(put["call"]["id"], call["id"]);
}

#[tokio::test]
async fn delete_answers_an_empty_body_and_the_call_is_gone() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let call = create_seed_call(&rest).await;
    let path = format!("/v1/calls/{}", id_of(&call));
    let response = rest
        .http
        .delete(format!("{}{path}", rest.base))
        .bearer_auth(&rest.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap().is_empty());
    let (status, gone) = rest.get(&path).await;
    // A deleted call reads back as its tombstone.
    if status == StatusCode::OK {
        assert_eq!(gone["call"]["deleted"], true);
    } else {
        assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    }
    let (status, listed) = rest.get("/v1/calls").await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed.get("calls").is_none(), "{listed}");
}

#[tokio::test]
async fn a_stale_etag_gets_412_on_update_and_delete() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let call = create_seed_call(&rest).await;
    let path = format!("/v1/calls/{}", id_of(&call));
    let stale = call["etag"].as_str().unwrap().to_owned();
    let (status, updated) = rest
        .send(
            Method::PATCH,
            &path,
            Some(json!({"externalId": "a", "etag": stale})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let (status, error) = rest
        .send(
            Method::PATCH,
            &path,
            Some(json!({"externalId": "b", "etag": stale})),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{error}");
    assert_eq!(error["error"]["code"], 412);
    assert_eq!(error["error"]["details"][0]["reason"], "ETAG_MISMATCH");
    let (status, _) = rest
        .send(Method::DELETE, &format!("{path}?etag={stale}"), None)
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let fresh = updated["call"]["etag"].as_str().unwrap();
    let (status, _) = rest
        .send(Method::DELETE, &format!("{path}?etag={fresh}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_bad_call_gets_400_naming_each_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let (status, error) = rest
        .post(
            "/v1/calls",
            json!({"callerNumber": "not a number", "start": {"dateTime": "yesterday"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
    let violations = error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .expect("a BadRequest")["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|violation| violation["field"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(
        violations.contains(&"call.caller_number".to_owned()),
        "{violations:?}"
    );
    assert!(
        violations.contains(&"call.called_number".to_owned()),
        "{violations:?}"
    );
    assert!(
        violations.contains(&"call.start.date_time".to_owned()),
        "{violations:?}"
    );
    let (_, listed) = rest.get("/v1/calls").await;
    assert!(listed.get("calls").is_none(), "{listed}");
}

#[tokio::test]
async fn an_unknown_call_gets_404() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let (status, error) = rest
        .get(&format!("/v1/calls/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["error"]["status"], "NOT_FOUND");
    let (status, error) = rest.get("/v1/calls/not-an-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
}

#[tokio::test]
async fn list_pages_with_page_tokens_then_syncs_with_the_sync_token() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(&create_seed_call(&rest).await).to_owned());
    }
    let (status, first) = rest.get("/v1/calls?pageSize=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["calls"].as_array().unwrap().len(), 2);
    let token = first["nextPageToken"].as_str().expect("a next page");
    let (_, second) = rest
        .get(&format!("/v1/calls?pageSize=2&pageToken={token}"))
        .await;
    assert_eq!(second["calls"].as_array().unwrap().len(), 1);
    assert!(second.get("nextPageToken").is_none());
    let sync_token = second["nextSyncToken"].as_str().expect("a sync token");

    let (status, _) = rest
        .send(
            Method::PATCH,
            &format!("/v1/calls/{}", ids[0]),
            Some(json!({"externalId": "changed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The change log may take a moment to show a commit to a sync list.
    let mut changed = Vec::new();
    for _ in 0..50 {
        let (status, synced) = rest.get(&format!("/v1/calls?syncToken={sync_token}")).await;
        assert_eq!(status, StatusCode::OK, "{synced}");
        changed = synced["calls"].as_array().cloned().unwrap_or_default();
        if !changed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["id"], ids[0]);
    assert_eq!(changed[0]["externalId"], "changed");
}

#[tokio::test]
async fn the_seeds_start_date_and_end_date_filter_like_time_max_and_time_min() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    // 08:30 UTC, lasting 95 s.
    create_seed_call(&rest).await;
    let listed = |query: &'static str| {
        let rest = &rest;
        async move {
            let (status, page) = rest.get(&format!("/v1/calls?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            page["calls"].as_array().map_or(0, Vec::len)
        }
    };
    // startDate: calls that start before it.
    assert_eq!(listed("startDate=2026-11-27T08:31:00Z").await, 1);
    assert_eq!(listed("startDate=2026-11-27T08:29:00Z").await, 0);
    // endDate: calls that end after it.
    assert_eq!(listed("endDate=2026-11-27T08:31:00Z").await, 1);
    assert_eq!(listed("endDate=2026-11-27T08:33:00Z").await, 0);
    assert_eq!(listed("timeMax=2026-11-27T08:29:00Z").await, 0);
    assert_eq!(listed("timeMin=2026-11-27T08:29:00Z&search=12345").await, 1);
    assert_eq!(listed("toolId=other").await, 0);
}

#[tokio::test]
async fn another_tenant_can_neither_see_nor_touch_a_call() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let call = create_seed_call(&rest).await;
    let path = format!("/v1/calls/{}", id_of(&call));
    let other = RestClient::with_key(&app, &app.other_tenant("globex").await);
    assert_eq!(other.get(&path).await.0, StatusCode::NOT_FOUND);
    let (status, _) = other
        .send(Method::PATCH, &path, Some(json!({"externalId": "x"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        other.send(Method::DELETE, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, listed) = other.get("/v1/calls").await;
    assert!(listed.get("calls").is_none());
    let (status, ours) = rest.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ours["call"], call);
}

#[tokio::test]
async fn watches_crypto_keys_deliveries_and_previews_have_their_routes() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let (status, key) = rest
        .post("/v1/cryptoKeys", json!({"name": "signing"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert!(key["secret"]
        .as_str()
        .is_some_and(|secret| !secret.is_empty()));
    let key_id = key["cryptoKey"]["id"].as_str().unwrap().to_owned();
    let (status, keys) = rest.get("/v1/cryptoKeys").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys["cryptoKeys"][0]["id"], key_id.as_str());

    let (status, created) = rest
        .post(
            "/v1/watches",
            json!({"address": "https://hooks.example.com/calls", "name": "crm"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let watch_id = created["watch"]["id"].as_str().unwrap().to_owned();
    let (status, read) = rest.get(&format!("/v1/watches/{watch_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["watch"]["name"], "crm");
    let (status, renamed) = rest
        .send(
            Method::PATCH,
            &format!("/v1/watches/{watch_id}?updateMask=name"),
            Some(json!({"name": "crm-2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["watch"]["name"], "crm-2");
    let (status, listed) = rest.get("/v1/watches").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["watches"].as_array().unwrap().len(), 1);
    let (status, deliveries) = rest
        .get(&format!("/v1/watches/{watch_id}/deliveries"))
        .await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    let (status, error) = rest
        .post(
            &format!("/v1/watches/-/deliveries/{}:retry", uuid::Uuid::now_v7()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (status, preview) = rest
        .post(
            &format!("/v1/watches/{watch_id}:preview"),
            json!({"call": seed_call()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert!(preview["payload"].as_str().is_some(), "{preview}");
    let (status, preview) = rest
        .post(
            "/v1/watches:preview",
            json!({"schema": r#"{"a": "${$.id}"}"#}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");

    assert_eq!(
        rest.send(Method::DELETE, &format!("/v1/watches/{watch_id}"), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        rest.send(Method::DELETE, &format!("/v1/cryptoKeys/{key_id}"), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        rest.get(&format!("/v1/watches/{watch_id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_tenant_past_its_rate_gets_429_with_retry_after() {
    use callsd::config::{ServeSettings, TenantLimitSettings};
    let settings = ServeSettings {
        tenant_limits: TenantLimitSettings {
            tenant_rate: 1.0,
            tenant_burst: 2,
            ..crate::helpers::test_settings().tenant_limits
        },
        ..crate::helpers::test_settings()
    };
    let app = crate::helpers::spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let rest = RestClient::new(&app);
    let mut refused = None;
    for _ in 0..10 {
        let response = rest
            .http
            .get(format!("{}/v1/calls", rest.base))
            .bearer_auth(&rest.key)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = refused.expect("a request past the burst is refused");
    assert!(refused.headers().contains_key("retry-after"));
    let (_, error) = read(refused).await;
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        error["error"]["details"][0]["reason"],
        "TENANT_RATE_LIMITED"
    );
    assert!(error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .any(|detail| detail["@type"] == "type.googleapis.com/google.rpc.RetryInfo"));
}

#[tokio::test]
async fn an_allowed_origin_may_call_the_rest_api_from_a_browser_and_another_may_not() {
    let mut settings = crate::helpers::test_settings();
    settings.cors_allowed_origins =
        callsd::config::parse_allowed_origins("https://app.example.com").unwrap();
    let app = crate::helpers::spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let rest = RestClient::new(&app);
    let preflight = |origin: &'static str| {
        rest.http
            .request(Method::OPTIONS, format!("{}/v1/calls/x", rest.base))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PATCH"));
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(!refused
        .headers()
        .contains_key("access-control-allow-origin"));

    let answer = rest
        .http
        .get(format!("{}/v1/calls", rest.base))
        .bearer_auth(&rest.key)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
}

#[tokio::test]
async fn answers_carry_an_etag_header_and_if_match_guards_updates_and_deletes() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let call = create_seed_call(&rest).await;
    let url = format!("{}/v1/calls/{}", rest.base, id_of(&call));
    let read = rest
        .http
        .get(&url)
        .bearer_auth(&rest.key)
        .send()
        .await
        .unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", call["etag"].as_str().unwrap()));

    let updated = rest
        .http
        .patch(&url)
        .bearer_auth(&rest.key)
        .header("if-match", &etag)
        .json(&json!({"externalId": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let fresh = updated.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(fresh, etag);
    let stale = rest
        .http
        .patch(&url)
        .bearer_auth(&rest.key)
        .header("if-match", &etag)
        .json(&json!({"externalId": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let stale_delete = rest
        .http
        .delete(&url)
        .bearer_auth(&rest.key)
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), StatusCode::PRECONDITION_FAILED);
    let deleted = rest
        .http
        .delete(&url)
        .bearer_auth(&rest.key)
        .header("if-match", &fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let unquoted = rest
        .http
        .get(&url)
        .bearer_auth(&rest.key)
        .header("if-match", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(unquoted.status(), StatusCode::BAD_REQUEST);
}
