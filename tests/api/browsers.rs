//! What a browser sees: gRPC-Web over HTTP/1.1 on the gRPC port, CORS for the configured
//! origins only (`CALLSD_CORS_ALLOWED_ORIGINS`), and a Connect client sending JSON told what to
//! send instead. Raw HTTP, as a browser's `fetch` would send it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use callsd::{
    config::parse_allowed_origins,
    pb::calls::v1::{GetCallRequest, GetCallResponse},
};
use chrono_tz::Tz;
use prost::Message;
use reqwest::{header::HeaderMap, Client, Response};

use crate::helpers::{call, spawn_app, spawn_app_with, test_settings, TestApp};

const ALLOWED: &str = "https://app.example.com";

async fn app_allowing(origins: &str) -> TestApp {
    let mut settings = test_settings();
    settings.cors_allowed_origins = parse_allowed_origins(origins).unwrap();
    spawn_app_with(settings, Tz::UTC).await
}

/// The preflight a browser sends before a gRPC-Web call from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> Response {
    Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/calls.v1.CallService/GetCall", app.address),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-grpc-web,x-user-agent",
        )
        .send()
        .await
        .expect("the preflight is answered")
}

fn allowed_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("access-control-allow-origin")
        .map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn a_preflight_from_a_configured_origin_is_allowed_with_the_headers_grpc_web_sends() {
    let app = app_allowing(&format!("{ALLOWED},http://localhost:5173")).await;
    let answer = preflight(&app, ALLOWED).await;
    assert!(answer.status().is_success());
    assert_eq!(allowed_origin(answer.headers()), Some(ALLOWED));
    let allowed_headers = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    for header in [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
    ] {
        assert!(allowed_headers.contains(header), "{allowed_headers}");
    }
}

#[tokio::test]
async fn a_preflight_from_another_origin_is_refused() {
    let app = app_allowing(ALLOWED).await;
    let answer = preflight(&app, "https://evil.example.net").await;
    assert_eq!(allowed_origin(answer.headers()), None);
}

#[tokio::test]
async fn no_origin_is_allowed_by_default() {
    let app = spawn_app().await;
    let answer = preflight(&app, ALLOWED).await;
    assert_eq!(allowed_origin(answer.headers()), None);
}

#[tokio::test]
async fn a_grpc_web_call_over_http1_from_an_allowed_origin_gets_its_answer_and_status() {
    let app = app_allowing(ALLOWED).await;
    let created = app
        .create(call(
            "+33612345678",
            "0612345678",
            "2026-11-27T09:30:00",
            "Europe/Paris",
        ))
        .await;
    let request = GetCallRequest {
        id: created.id.clone(),
    };
    // reqwest is built here without HTTP/2: this is HTTP/1.1, as from most browsers' fetch.
    let answer = Client::new()
        .post(format!(
            "http://{}/calls.v1.CallService/GetCall",
            app.address
        ))
        .header("origin", ALLOWED)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("authorization", format!("Bearer {}", app.key))
        .body(framed(0, &request.encode_to_vec()))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(answer.version(), reqwest::Version::HTTP_11);
    assert_eq!(allowed_origin(answer.headers()), Some(ALLOWED));
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(exposed.contains("grpc-status"), "{exposed}");

    let mut body = answer.bytes().await.unwrap();
    let (flags, message) = next_frame(&mut body);
    assert_eq!(flags, 0);
    let fetched = GetCallResponse::decode(message).unwrap().call.unwrap();
    assert_eq!(fetched.id, created.id);
    // gRPC-Web sends the trailers as a last frame, flagged 0x80.
    let (flags, trailers) = next_frame(&mut body);
    assert_eq!(flags, 0x80);
    let trailers = String::from_utf8(trailers.to_vec()).unwrap();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}

/// The README's browser example, byte for byte: `fetch` of a health check over gRPC-Web.
#[tokio::test]
async fn the_readme_fetch_of_a_health_check_over_grpc_web_answers_serving() {
    let app = app_allowing(ALLOWED).await;
    let answer = Client::new()
        .post(format!(
            "http://{}/grpc.health.v1.Health/Check",
            app.address
        ))
        .header("origin", ALLOWED)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(vec![0_u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(allowed_origin(answer.headers()), Some(ALLOWED));
    let body = answer.bytes().await.unwrap();
    // A message frame holding HealthCheckResponse { status: SERVING }, then the trailers.
    assert_eq!(body[..7], [0, 0, 0, 0, 2, 8, 1], "{body:?}");
    assert_eq!(body[7], 0x80);
}

#[tokio::test]
async fn a_connect_client_sending_json_is_told_to_use_the_binary_codec() {
    // connect-es in a browser sends JSON unless told `useBinaryFormat: true`.
    let app = spawn_app().await;
    let answer = Client::new()
        .post(format!(
            "http://{}/calls.v1.CallService/GetCall",
            app.address
        ))
        .header("content-type", "application/json")
        .header("connect-protocol-version", "1")
        .header("authorization", format!("Bearer {}", app.key))
        .body(r#"{"id":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::NOT_IMPLEMENTED);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["code"], "unimplemented");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("application/proto"), "{message}");
    assert!(message.contains("useBinaryFormat"), "{message}");
}

fn framed(flags: u8, message: &[u8]) -> Vec<u8> {
    let mut frame = BytesMut::new();
    frame.put_u8(flags);
    frame.put_u32(message.len() as u32);
    frame.put_slice(message);
    frame.to_vec()
}

fn next_frame(body: &mut Bytes) -> (u8, Bytes) {
    let flags = body.get_u8();
    let length = body.get_u32() as usize;
    (flags, body.split_to(length))
}
