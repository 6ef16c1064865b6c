//! WatchCalls: validate the request, open a feed stream, turn its events into messages.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use futures::{Stream, StreamExt};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

use super::{calls::CallApi, convert, record_handled};
use crate::{
    domain::digits_of,
    domain::Cursor,
    error::Violations,
    feed::{FeedEvent, StartFrom, SyncToken, WatchFilters},
    pb::calls::v1 as pb,
    store::{ChangeKind, Tenant},
    Error,
};

type MessageStream = Pin<Box<dyn Stream<Item = Result<pb::WatchCallsResponse, Status>> + Send>>;

/// Validates the request and starts the stream.
pub async fn open(
    api: &CallApi,
    tenant: &Tenant,
    request: &pb::WatchCallsRequest,
) -> Result<MessageStream, Error> {
    let mut violations = Violations::default();
    let tool_id = Some(request.tool_id.clone()).filter(|tool_id| !tool_id.is_empty());
    let search_digits = match request.search.as_str() {
        "" => None,
        search => {
            let digits = digits_of(search);
            if digits.is_empty() {
                violations.add("search", "must contain digits: it matches phone numbers");
            }
            Some(digits)
        }
    };
    let token_template = SyncToken {
        tenant_id: tenant.id,
        tool_id: tool_id.clone().unwrap_or_default(),
        search_digits: search_digits.clone().unwrap_or_default(),
        cursor: Cursor::default(),
    };
    let start = match (request.sync_token.as_str(), request.send_initial_state) {
        ("", false) => Some(StartFrom::Now),
        ("", true) => Some(StartFrom::InitialState),
        (_, true) => {
            violations.add(
                "send_initial_state",
                "cannot be combined with sync_token: a token resumes after the state it saw",
            );
            None
        }
        (token, false) => violations
            .check(SyncToken::open(
                &api.sealer,
                "sync_token",
                token,
                tenant.id,
                &token_template.tool_id,
                &token_template.search_digits,
            ))
            .map(|token| StartFrom::After(token.cursor)),
    };
    let (filters, start) = violations.finish(|| {
        let filters = WatchFilters {
            tool_id,
            search_digits,
        };
        (filters, start.unwrap_or(StartFrom::Now))
    })?;
    // Held for as long as the stream is open: it moves into the stream below.
    let stream_slot = api.authenticator.shares().open_stream(tenant.id)?;
    tracing::info!(tenant = %tenant.name, ?start, "watch stream opened");
    let events = api.feed.watch(tenant.id, filters, start).await?;
    let sealer = api.sealer.clone();
    let messages = ReceiverStream::new(events).map(move |event| {
        let _open = &stream_slot;
        let token_for = |cursor| {
            SyncToken {
                cursor,
                ..token_template.clone()
            }
            .seal(&sealer)
        };
        event
            .and_then(|event| call_event(*event, token_for))
            .map(|event| pb::WatchCallsResponse { event: Some(event) })
            .map_err(Status::from)
    });
    Ok(Box::pin(messages))
}

fn call_event(
    event: FeedEvent,
    token_for: impl Fn(Cursor) -> Result<String, Error>,
) -> Result<pb::CallEvent, Error> {
    use pb::CallEventType as Type;
    let now = convert::timestamp(chrono::Utc::now());
    Ok(match event {
        FeedEvent::Change(record, cursor) => pb::CallEvent {
            r#type: match record.kind {
                ChangeKind::Created => Type::Created,
                ChangeKind::Updated => Type::Updated,
                ChangeKind::Deleted => Type::Deleted,
            } as i32,
            call: Some(convert::call_to_proto(record.call)),
            sync_token: token_for(cursor)?,
            event_time: Some(convert::timestamp(record.event_time)),
        },
        FeedEvent::Initial(call) => pb::CallEvent {
            r#type: Type::Initial as i32,
            call: Some(convert::call_to_proto(call)),
            sync_token: String::new(),
            event_time: Some(now),
        },
        FeedEvent::InitialStateComplete(cursor) => pb::CallEvent {
            r#type: Type::InitialStateComplete as i32,
            call: None,
            sync_token: token_for(cursor)?,
            event_time: Some(now),
        },
        FeedEvent::Heartbeat(cursor) => pb::CallEvent {
            r#type: Type::Heartbeat as i32,
            call: None,
            sync_token: token_for(cursor)?,
            event_time: Some(now),
        },
        FeedEvent::Unreadable(cursor) => {
            return Err(Error::ChangeUnreadable {
                sync_token: token_for(cursor)?,
            })
        }
    })
}

/// Wraps a stream so that its end (or the client leaving) is recorded in the RPC metrics.
pub fn observed(stream: MessageStream, method: &'static str, started: Instant) -> MessageStream {
    Box::pin(ObservedStream {
        inner: stream,
        method,
        started,
        outcome: None,
    })
}

struct ObservedStream {
    inner: MessageStream,
    method: &'static str,
    started: Instant,
    outcome: Option<Code>,
}

impl Stream for ObservedStream {
    type Item = Result<pb::WatchCallsResponse, Status>;

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

impl Drop for ObservedStream {
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
