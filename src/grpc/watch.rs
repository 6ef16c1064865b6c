//! WatchCalls over gRPC: the service's events as `WatchCallsResponse` messages, and the
//! stream's end recorded in the RPC metrics.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use futures::{Stream, StreamExt};
use tonic::{Code, Status};

use super::record_handled;
use crate::{api, pb::calls::v1 as pb, service::calls::CallWatchEvent, Error};

/// The service's stream of events as gRPC messages; an error ends it with its `Status`.
pub fn messages(
    events: impl Stream<Item = Result<CallWatchEvent, Error>> + Send + 'static,
) -> BoxedStream<pb::WatchCallsResponse> {
    Box::pin(events.map(|event| {
        event
            .map(|event| pb::WatchCallsResponse {
                event: Some(api::calls::call_event(event)),
            })
            .map_err(Status::from)
    }))
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
