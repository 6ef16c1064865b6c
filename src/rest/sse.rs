//! `GET /v1/calls:watch`: the WatchCalls stream as Server-Sent Events. Each event's `id:` is
//! its sync token, so a browser's `EventSource` (or `curl -N -H 'Last-Event-ID: ...'`) resumes
//! right after the last event it saw, with no gap and no duplicate: the `Last-Event-ID`
//! header, when present, is the request's `syncToken`. `event:` is the event's type in
//! camelCase (`created`, `updated`, `deleted`, `initial`, `initialStateComplete`,
//! `heartbeat`), `data:` the `CallEvent` in proto3 JSON. Heartbeats are events too (they carry
//! the current sync token). The stream has the gRPC stream's limits (the tenant's stream cap,
//! taken by the service) and ends like it: at shutdown or on an error, with a last `error`
//! event in the REST error shape.

use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Frame;
use prost_reflect::DynamicMessage;
use tonic::body::Body;

use super::{json, routes::Route, status::Refusal};
use crate::{api, pb::calls::v1 as pb, service::calls::Calls, store::Tenant, Error};

/// Opens the stream for the WatchCalls request `message`.
pub async fn open(
    calls: &Calls,
    tenant: &Tenant,
    route: &Route,
    message: DynamicMessage,
    headers: &HeaderMap,
) -> Result<Response<Body>, Refusal> {
    let mut request: pb::WatchCallsRequest = json::typed_request(message)?;
    if let Some(last_event_id) = headers.get("last-event-id") {
        let last_event_id = last_event_id
            .to_str()
            .map_err(|_| Error::invalid("Last-Event-ID", "must be a sync token"))?;
        if !last_event_id.is_empty() {
            request.sync_token = last_event_id.to_owned();
            api::check_request(&request)?;
        }
    }
    let events = calls
        .watch(tenant, &api::calls::watch_input(&request))
        .await?;
    let output = route.rpc.output();
    let event_descriptor = output
        .get_field_by_name("event")
        .and_then(|field| field.kind().as_message().cloned())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("WatchCallsResponse has no event")))?;
    let frames = events.scan(false, move |ended, event| {
        // After an error event the stream is over.
        if *ended {
            return futures::future::ready(None);
        }
        let text = match event {
            Ok(event) => event_text(&event_descriptor, api::calls::call_event(event)),
            Err(error) => {
                *ended = true;
                error_text(&Refusal::Service(error))
            }
        };
        futures::future::ready(Some(Ok::<_, Infallible>(Frame::data(Bytes::from(text)))))
    });
    let mut response = Response::new(Body::new(http_body_util::StreamBody::new(frames)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies that buffer (nginx) would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One event in SSE's text form.
fn event_text(descriptor: &prost_reflect::MessageDescriptor, event: pb::CallEvent) -> String {
    let kind = event_type(event.r#type());
    let mut text = String::new();
    if !event.sync_token.is_empty() {
        text.push_str("id: ");
        text.push_str(&event.sync_token);
        text.push('\n');
    }
    let mut dynamic = DynamicMessage::new(descriptor.clone());
    let data = match dynamic.transcode_from(&event) {
        Ok(()) => json::message_json(&dynamic).unwrap_or_else(|_| b"{}".to_vec()),
        Err(_) => b"{}".to_vec(),
    };
    text.push_str("event: ");
    text.push_str(&kind);
    text.push_str("\ndata: ");
    // Compact JSON holds no line break.
    text.push_str(&String::from_utf8_lossy(&data));
    text.push_str("\n\n");
    text
}

fn error_text(refusal: &Refusal) -> String {
    if let Refusal::Service(error) = refusal {
        error.log_cause();
    }
    format!("event: error\ndata: {}\n\n", refusal.body())
}

/// `CALL_EVENT_TYPE_INITIAL_STATE_COMPLETE` -> `initialStateComplete`.
fn event_type(kind: pb::CallEventType) -> String {
    let name = kind.as_str_name();
    json::camel_case(name.strip_prefix("CALL_EVENT_TYPE_").unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_camel_case() {
        assert_eq!(event_type(pb::CallEventType::Created), "created");
        assert_eq!(
            event_type(pb::CallEventType::InitialStateComplete),
            "initialStateComplete"
        );
    }
}
