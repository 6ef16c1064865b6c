//! WatchCalls: the stream's rules. Where it starts (now, the initial state, or after a sync
//! token bound to the tenant and filters), the tenant's stream slot it holds while open, and
//! a sync token on every event a client may resume from.

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::ReceiverStream;

use super::{search_filter, tool_filter, Calls};
use crate::{
    domain::{Call, Cursor},
    error::Violations,
    feed::{FeedEvent, StartFrom, SyncToken, WatchFilters},
    store::{ChangeKind, Tenant},
    tokens::TokenSealer,
    Error,
};

/// A WatchCalls request as the front door read it; empty strings mean "not given".
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchCallsInput<'a> {
    pub tool_id: &'a str,
    pub search: &'a str,
    pub sync_token: &'a str,
    pub send_initial_state: bool,
}

/// What a WatchCalls stream sends. Each event but `Initial` carries the sync token that
/// resumes right after it. A change that cannot be read ends the stream with
/// [`Error::ChangeUnreadable`], which carries the last good token.
#[derive(Debug, Clone)]
pub enum CallWatchEvent {
    Changed {
        kind: ChangeKind,
        call: Call,
        event_time: DateTime<Utc>,
        sync_token: String,
    },
    /// A current call, sent first when the client asked for the initial state.
    Initial(Call),
    /// Every `Initial` call was sent; changes follow.
    InitialStateComplete { sync_token: String },
    /// Nothing changed for a while; the token moves on anyway.
    Heartbeat { sync_token: String },
}

/// A checked WatchCalls request: which calls the stream carries, where it starts, and the
/// sync token its events carry (bound to the tenant and the filters; the cursor changes).
#[derive(Debug)]
struct WatchPlan {
    filters: WatchFilters,
    start: StartFrom,
    token_template: SyncToken,
}

impl Calls {
    /// Validates the request and starts a stream of the tenant's call changes. The stream
    /// holds one of the tenant's stream slots until it is dropped.
    pub async fn watch(
        &self,
        tenant: &Tenant,
        request: &WatchCallsInput<'_>,
    ) -> Result<impl Stream<Item = Result<CallWatchEvent, Error>> + Send + 'static, Error> {
        let WatchPlan {
            filters,
            start,
            token_template,
        } = plan(&self.sealer, tenant, request)?;
        // Held for as long as the stream is open: it moves into the stream below.
        let stream_slot = self.shares.open_stream(tenant.id)?;
        tracing::info!(tenant = %tenant.name, ?start, "watch stream opened");
        let events = self.feed.watch(tenant.id, filters, start).await?;
        let sealer = self.sealer.clone();
        Ok(ReceiverStream::new(events).map(move |event| {
            let _open = &stream_slot;
            event.and_then(|event| watch_event(*event, &sealer, &token_template))
        }))
    }
}

/// The request's filters and start, every bad field reported at once.
fn plan(
    sealer: &TokenSealer,
    tenant: &Tenant,
    request: &WatchCallsInput<'_>,
) -> Result<WatchPlan, Error> {
    let mut violations = Violations::default();
    let tool_id = tool_filter(request.tool_id);
    let search_digits = search_filter(request.search, &mut violations);
    let token_template = SyncToken {
        tenant_id: tenant.id,
        tool_id: tool_id.clone().unwrap_or_default(),
        search_digits: search_digits.clone().unwrap_or_default(),
        cursor: Cursor::default(),
    };
    let start = match (request.sync_token, request.send_initial_state) {
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
                sealer,
                "sync_token",
                token,
                tenant.id,
                &token_template.tool_id,
                &token_template.search_digits,
            ))
            .map(|token| StartFrom::After(token.cursor)),
    };
    violations.finish(|| WatchPlan {
        filters: WatchFilters {
            tool_id,
            search_digits,
        },
        start: start.unwrap_or(StartFrom::Now),
        token_template,
    })
}

/// The event a client sees for a feed event, its cursor sealed as a sync token.
fn watch_event(
    event: FeedEvent,
    sealer: &TokenSealer,
    token_template: &SyncToken,
) -> Result<CallWatchEvent, Error> {
    let token_for = |cursor| {
        SyncToken {
            cursor,
            ..token_template.clone()
        }
        .seal(sealer)
    };
    Ok(match event {
        FeedEvent::Change(record, cursor) => CallWatchEvent::Changed {
            kind: record.kind,
            call: record.call,
            event_time: record.event_time,
            sync_token: token_for(cursor)?,
        },
        FeedEvent::Initial(call) => CallWatchEvent::Initial(call),
        FeedEvent::InitialStateComplete(cursor) => CallWatchEvent::InitialStateComplete {
            sync_token: token_for(cursor)?,
        },
        FeedEvent::Heartbeat(cursor) => CallWatchEvent::Heartbeat {
            sync_token: token_for(cursor)?,
        },
        FeedEvent::Unreadable(cursor) => {
            return Err(Error::ChangeUnreadable {
                sync_token: token_for(cursor)?,
            })
        }
    })
}

