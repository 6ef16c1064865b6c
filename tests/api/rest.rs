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
