//! WatchCalls over gRPC: the service's events as `WatchCallsResponse` messages, and the
//! stream's end recorded in the RPC metrics.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use futures::{Stream, StreamExt};
use tonic::{Code, Status};

use super::{convert, record_handled};
use crate::{pb::calls::v1 as pb, service::calls::CallWatchEvent, store::ChangeKind, Error};

type MessageStream = Pin<Box<dyn Stream<Item = Result<pb::WatchCallsResponse, Status>> + Send>>;

/// The service's stream of events as gRPC messages; an error ends it with its `Status`.
pub fn messages(
    events: impl Stream<Item = Result<CallWatchEvent, Error>> + Send + 'static,
) -> MessageStream {
    Box::pin(events.map(|event| {
        event
            .map(|event| pb::WatchCallsResponse {
                event: Some(call_event(event)),
            })
            .map_err(Status::from)
    }))
}

fn call_event(event: CallWatchEvent) -> pb::CallEvent {
    use pb::CallEventType as Type;
    let now = convert::timestamp(chrono::Utc::now());
    match event {
        CallWatchEvent::Changed {
            kind,
            call,
            event_time,
            sync_token,
        } => pb::CallEvent {
            r#type: match kind {
                ChangeKind::Created => Type::Created,
                ChangeKind::Updated => Type::Updated,
                ChangeKind::Deleted => Type::Deleted,
            } as i32,
            call: Some(convert::call_to_proto(call)),
            sync_token,
            event_time: Some(convert::timestamp(event_time)),
        },
        CallWatchEvent::Initial(call) => pb::CallEvent {
            r#type: Type::Initial as i32,
            call: Some(convert::call_to_proto(call)),
            sync_token: String::new(),
            event_time: Some(now),
        },
        CallWatchEvent::InitialStateComplete { sync_token } => pb::CallEvent {
            r#type: Type::InitialStateComplete as i32,
            call: None,
            sync_token,
            event_time: Some(now),
        },
        CallWatchEvent::Heartbeat { sync_token } => pb::CallEvent {
            r#type: Type::Heartbeat as i32,
            call: None,
            sync_token,
            event_time: Some(now),
        },
    }
}

/// A server stream of `Message`s, as tonic serves it.
pub type BoxedStream<Message> = Pin<Box<dyn Stream<Item = Result<Message, Status>> + Send>>;

/// Wraps a stream so that its end (or the client leaving) is recorded in the RPC metrics.
pub fn observed<Message: Send + 'static>(
    stream: BoxedStream<Message>,
    method: &'static str,
    started: Instant,
) -> BoxedStream<Message> {
    Box::pin(ObservedStream {
        inner: stream,
        method,
        started,
        outcome: None,
    })
}

struct ObservedStream<Message> {
    inner: BoxedStream<Message>,
    method: &'static str,
    started: Instant,
    outcome: Option<Code>,
}

impl<Message> Stream for ObservedStream<Message> {
    type Item = Result<Message, Status>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(context);
        match &polled {
            Poll::Ready(Some(Err(status))) => self.outcome = Some(status.code()),
            Poll::Ready(None) if self.outcome.is_none() => self.outcome = Some(Code::Ok),
            _ => {}
        }
        polled
    }
}

impl<Message> Drop for ObservedStream<Message> {
    fn drop(&mut self) {
        // Dropped before it ended: the client went away.
        record_handled(
            super::CALL_SERVICE,
            self.method,
            self.outcome.unwrap_or(Code::Cancelled),
            self.started,
        );
    }
}
