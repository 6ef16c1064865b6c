//! Watches (webhooks): CRUD with write-only secrets, tenant isolation, the SSRF guard, and
//! delivery to a real HTTP receiver and OAuth2 token endpoint on loopback: headers, signatures
//! checked by an independent Standard Webhooks verifier, retries, order, templates, replicas.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use callsd::{
    config::ServeSettings,
    pb::calls::v1::{self as pb, watch_service_client::WatchServiceClient},
    webhooks::{parse_allowed_cidrs, parse_retry_schedule},
};
use hmac::{Hmac, Mac};
use prost_types::FieldMask;
use sha2::Sha256;
use tonic::{transport::Channel, Code};

use crate::helpers::{
    bad_fields, call, spawn_app_on, spawn_app_with, test_settings, with_key, TestApp,
};

mod delivery;
mod neighbour;
mod replicas;
mod templates;
mod watches;

// ---------------------------------------------------------------------------------------------
// The receiver: records every request, answers from a script (200 when the script is empty).

#[derive(Debug, Clone)]
pub(crate) struct Received {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: String,
    at: chrono::DateTime<chrono::Utc>,
}

impl Received {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }
}

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

fn reply(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        delay: Duration::ZERO,
    }
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    tokens_issued: Arc<Mutex<Vec<String>>>,
}

pub(crate) struct Receiver {
    address: SocketAddr,
    state: ReceiverState,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let state = ReceiverState::default();
        let router = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .fallback(hook)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver { address, state }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived (30 s at most: a loaded machine) and returns them.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..1500 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {count} requests, received {:?}", self.received());
    }
}

async fn hook(
    State(state): State<ReceiverState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.received.lock().unwrap().push(Received {
        method,
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: chrono::Utc::now(),
    });
    let next = state.script.lock().unwrap().pop_front();
    let next = next.unwrap_or_else(|| reply(200));
    tokio::time::sleep(next.delay).await;
    let mut response = (StatusCode::from_u16(next.status).unwrap(), "answer").into_response();
    for (name, value) in next.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

async fn token(State(state): State<ReceiverState>, body: String) -> Response {
    let mut issued = state.tokens_issued.lock().unwrap();
    issued.push(body);
    let token = format!("token-{}", issued.len());
    axum::Json(
        serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
    )
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Test settings with loopback allowed and a compressed retry schedule.
pub(crate) fn webhook_settings() -> ServeSettings {
    let mut settings = test_settings();
    settings.webhooks.webhook_allowed_cidrs = parse_allowed_cidrs("127.0.0.0/8").unwrap();
    settings.webhooks.webhook_retry_schedule = parse_retry_schedule("0s,100ms,200ms").unwrap();
    settings.webhooks.webhook_poll_interval = Duration::from_millis(50);
    settings.webhooks.webhook_timeout = Duration::from_secs(2);
    settings.webhooks.webhook_lease = Duration::from_secs(2);
    settings
}

async fn spawn_webhook_app() -> TestApp {
    spawn_app_with(webhook_settings(), chrono_tz::Tz::UTC).await
}

async fn watches(app: &TestApp) -> WatchServiceClient<Channel> {
    WatchServiceClient::connect(format!("http://{}", app.address))
        .await
        .expect("client connects")
}

pub(crate) async fn create_watch(app: &TestApp, watch: pb::Watch) -> pb::Watch {
    watches(app)
        .await
        .create_watch(app.authed(pb::CreateWatchRequest { watch: Some(watch) }))
        .await
        .expect("watch is created")
        .into_inner()
        .watch
        .unwrap()
}

pub(crate) fn watch_to(address: String) -> pb::Watch {
    pb::Watch {
        address,
        name: "test".into(),
        ..pb::Watch::default()
    }
}

async fn new_call(app: &TestApp, caller: &str) -> pb::Call {
    app.create(call(
        caller,
        "+33 1 23 45 67 89",
        "2026-11-27T09:30:00",
        "Europe/Paris",
    ))
    .await
}

async fn deliveries(app: &TestApp, watch_id: &str) -> Vec<pb::Delivery> {
    watches(app)
        .await
        .list_deliveries(app.authed(pb::ListDeliveriesRequest {
            watch_id: watch_id.into(),
            page_size: 100,
            page_token: String::new(),
        }))
        .await
        .expect("deliveries list")
        .into_inner()
        .deliveries
}

/// Waits until the delivery log of `watch_id` holds `count` attempts; returns them oldest first.
async fn wait_for_deliveries(app: &TestApp, watch_id: &str, count: usize) -> Vec<pb::Delivery> {
    for _ in 0..1500 {
        let mut log = deliveries(app, watch_id).await;
        if log.len() >= count {
            log.reverse();
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {count} deliveries, got {:?}",
        deliveries(app, watch_id).await
    );
}

/// The Standard Webhooks check, written from the specification: HMAC-SHA256 over
/// `id.timestamp.body` with the base64-decoded part of `whsec_...`, compared to each `v1,` entry.
fn signature_matches(secret: &str, received: &Received, signature: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    let signed = format!(
        "{}.{}.{}",
        received.header("webhook-id"),
        received.header("webhook-timestamp"),
        received.body
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(signed.as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    signature == format!("v1,{expected}")
}
