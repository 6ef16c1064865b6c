//! `GET /v1/calls:watch` as Server-Sent Events: sync tokens as event ids, resuming with
//! `Last-Event-ID` (or `syncToken`) with no gap and no duplicate, across a server restart too.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    helpers::{spawn_app, spawn_app_on, test_settings, TestApp},
    rest::{read, seed_call, RestClient},
};

/// One Server-Sent Event.
#[derive(Debug)]
struct Event {
    id: Option<String>,
    kind: String,
    data: Value,
}

/// A stream of events being read.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(rest: &RestClient, query: &str, last_event_id: Option<&str>) -> Events {
        let mut request = rest
            .http
            .get(format!("{}/v1/calls:watch{query}", rest.base))
            .bearer_auth(&rest.key);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the server answers");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    kind: String::new(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id: ") {
                        event.id = Some(id.to_owned());
                    } else if let Some(kind) = line.strip_prefix("event: ") {
                        event.kind = kind.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(data).expect("data is JSON");
                    }
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }

    /// The next change (heartbeats skipped).
    async fn next_change(&mut self) -> Event {
        loop {
            let event = self.next().await.expect("the stream goes on");
            if event.kind != "heartbeat" {
                return event;
            }
        }
    }
}

async fn create(rest: &RestClient) -> String {
    let (status, created) = rest.post("/v1/calls", seed_call()).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created["call"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_change_is_an_event_whose_id_is_its_sync_token() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let mut events = Events::open(&rest, "", None).await;
    let id = create(&rest).await;
    let event = events.next_change().await;
    assert_eq!(event.kind, "created");
    assert_eq!(event.data["type"], "CALL_EVENT_TYPE_CREATED");
    assert_eq!(event.data["call"]["id"], id.as_str());
    assert_eq!(event.id.as_deref(), event.data["syncToken"].as_str());
    assert!(event.id.is_some());
}

#[tokio::test]
async fn last_event_id_resumes_with_no_gap_and_no_duplicate() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let mut events = Events::open(&rest, "", None).await;
    create(&rest).await;
    let seen = events.next_change().await;
    drop(events);
    let missed = [create(&rest).await, create(&rest).await];
    let mut resumed = Events::open(&rest, "", seen.id.as_deref()).await;
    for id in &missed {
        let event = resumed.next_change().await;
        assert_eq!(event.data["call"]["id"], id.as_str());
    }
    // The same from the syncToken query parameter.
    let token = seen.id.unwrap();
    let mut resumed = Events::open(&rest, &format!("?syncToken={token}"), None).await;
    assert_eq!(
        resumed.next_change().await.data["call"]["id"],
        missed[0].as_str()
    );
}

#[tokio::test]
async fn a_stream_resumes_across_a_server_restart() {
    let app = spawn_app().await;
    let key = app.key.clone();
    let database = app.database.clone();
    let rest = RestClient::new(&app);
    let mut events = Events::open(&rest, "", None).await;
    create(&rest).await;
    let seen = events.next_change().await;
    drop(events);
    app.stop().await;

    let mut restarted: TestApp = spawn_app_on(test_settings(), &database).await;
    restarted.key = key;
    let rest = RestClient::new(&restarted);
    let missed = create(&rest).await;
    let mut resumed = Events::open(&rest, "", seen.id.as_deref()).await;
    let event = resumed.next_change().await;
    assert_eq!(event.data["call"]["id"], missed.as_str());
}

#[tokio::test]
async fn shutdown_ends_the_stream_with_an_error_event() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let mut events = Events::open(&rest, "", None).await;
    create(&rest).await;
    events.next_change().await;
    app.stop().await;
    let last = events.next_change().await;
    assert_eq!(last.kind, "error");
    assert_eq!(last.data["error"]["status"], "UNAVAILABLE");
    assert_eq!(last.data["error"]["details"][0]["reason"], "SHUTTING_DOWN");
    assert!(events.next().await.is_none(), "the stream ends");
}

#[tokio::test]
async fn a_stream_needs_a_key_and_a_valid_token() {
    let app = spawn_app().await;
    let anonymous = RestClient::with_key(&app, "nope");
    let response = anonymous
        .http
        .get(format!("{}/v1/calls:watch", anonymous.base))
        .send()
        .await
        .unwrap();
    let (status, error) = read(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");
    let rest = RestClient::new(&app);
    let response = rest
        .http
        .get(format!("{}/v1/calls:watch", rest.base))
        .bearer_auth(&rest.key)
        .header("last-event-id", "garbage")
        .send()
        .await
        .unwrap();
    let (status, error) = read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats_carrying_the_current_sync_token() {
    let mut settings = test_settings();
    settings.heartbeat_interval = Duration::from_millis(300);
    let app = crate::helpers::spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let rest = RestClient::new(&app);
    let mut events = Events::open(&rest, "", None).await;
    let heartbeat = events.next().await.expect("a heartbeat");
    assert_eq!(heartbeat.kind, "heartbeat");
    assert!(heartbeat.id.is_some());
    assert_eq!(
        heartbeat.id.as_deref(),
        heartbeat.data["syncToken"].as_str()
    );
}

#[tokio::test]
async fn a_tenant_past_its_stream_cap_gets_429_and_the_grpc_cap_is_the_same() {
    let mut settings = test_settings();
    settings.tenant_limits.tenant_max_streams = 1;
    let app = crate::helpers::spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let rest = RestClient::new(&app);
    let _open = Events::open(&rest, "", None).await;
    let response = rest
        .http
        .get(format!("{}/v1/calls:watch", rest.base))
        .bearer_auth(&rest.key)
        .send()
        .await
        .unwrap();
    let (status, error) = read(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{error}");
    assert_eq!(
        error["error"]["details"][0]["reason"],
        "TENANT_STREAM_LIMIT"
    );
    // The SSE stream holds the tenant's one slot for gRPC streams too.
    let refused = app
        .client()
        .await
        .watch_calls(app.authed(callsd::pb::calls::v1::WatchCallsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
}

#[tokio::test]
async fn send_initial_state_sends_every_call_then_a_marker_whose_id_resumes() {
    let app = spawn_app().await;
    let rest = RestClient::new(&app);
    let existing = create(&rest).await;
    let mut events = Events::open(&rest, "?sendInitialState=true", None).await;
    let initial = events.next_change().await;
    assert_eq!(initial.kind, "initial");
    assert_eq!(initial.data["call"]["id"], existing.as_str());
    // An initial event has no position of its own: a client resumes from the marker.
    assert!(initial.id.is_none());
    let marker = events.next_change().await;
    assert_eq!(marker.kind, "initialStateComplete");
    assert!(marker.id.is_some());
    let later = create(&rest).await;
    drop(events);
    let mut resumed = Events::open(&rest, "", marker.id.as_deref()).await;
    assert_eq!(
        resumed.next_change().await.data["call"]["id"],
        later.as_str()
    );
}
