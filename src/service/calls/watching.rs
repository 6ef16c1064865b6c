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

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::Position;

    fn tenant() -> Tenant {
        Tenant {
            id: Uuid::new_v4(),
            name: "tenant".to_owned(),
            time_zone: chrono_tz::UTC,
        }
    }

    fn sealer() -> TokenSealer {
        TokenSealer::new(b"test key").expect("a key of any length is accepted")
    }

    fn refused_fields(result: Result<WatchPlan, Error>) -> Vec<String> {
        match result {
            Err(Error::InvalidArgument(violations)) => violations
                .into_iter()
                .map(|violation| violation.field)
                .collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn token_at(sealer: &TokenSealer, tenant: &Tenant, tool_id: &str, search: &str) -> String {
        SyncToken {
            tenant_id: tenant.id,
            tool_id: tool_id.to_owned(),
            search_digits: search.to_owned(),
            cursor: Cursor::at(Position { tx: 9, seq: 2 }),
        }
        .seal(sealer)
        .expect("a sync token seals")
    }

    #[test]
    fn without_a_token_a_stream_starts_now_or_with_the_initial_state() {
        let (sealer, tenant) = (sealer(), tenant());
        let start = |send_initial_state| {
            let request = WatchCallsInput {
                send_initial_state,
                ..WatchCallsInput::default()
            };
            plan(&sealer, &tenant, &request).map(|plan| plan.start).ok()
        };
        assert_eq!(start(false), Some(StartFrom::Now));
        assert_eq!(start(true), Some(StartFrom::InitialState));
    }

    #[test]
    fn a_sync_token_and_the_initial_state_cannot_be_asked_together() {
        let (sealer, tenant) = (sealer(), tenant());
        let token = token_at(&sealer, &tenant, "", "");
        let request = WatchCallsInput {
            sync_token: &token,
            send_initial_state: true,
            ..WatchCallsInput::default()
        };
        let refused = refused_fields(plan(&sealer, &tenant, &request));
        assert_eq!(refused, ["send_initial_state"]);
    }

    #[test]
    fn a_sync_token_resumes_only_for_its_tenant_tool_and_search() {
        let (sealer, tenant) = (sealer(), tenant());
        let token = token_at(&sealer, &tenant, "tool-a", "555");
        let request = |tool_id, search| WatchCallsInput {
            tool_id,
            search,
            sync_token: &token,
            send_initial_state: false,
        };
        let resumed = plan(&sealer, &tenant, &request("tool-a", "+555")).map(|plan| plan.start);
        let expected = StartFrom::After(Cursor::at(Position { tx: 9, seq: 2 }));
        assert_eq!(resumed.ok(), Some(expected));
        for (tool_id, search) in [("tool-b", "555"), ("tool-a", ""), ("", "555")] {
            let refused = refused_fields(plan(&sealer, &tenant, &request(tool_id, search)));
            assert_eq!(
                refused,
                ["sync_token"],
                "tool {tool_id:?}, search {search:?}"
            );
        }
        let refused = refused_fields(plan(&sealer, &self::tenant(), &request("tool-a", "555")));
        assert_eq!(refused, ["sync_token"], "another tenant");
    }

    #[test]
    fn a_search_without_digits_is_refused() {
        let request = WatchCallsInput {
            search: "no digits",
            ..WatchCallsInput::default()
        };
        assert_eq!(
            refused_fields(plan(&sealer(), &tenant(), &request)),
            ["search"]
        );
    }

    #[test]
    fn an_unreadable_change_ends_the_stream_with_a_token_that_resumes_before_it() {
        let (sealer, tenant) = (sealer(), tenant());
        let request = WatchCallsInput {
            tool_id: "tool-a",
            ..WatchCallsInput::default()
        };
        let plan = plan(&sealer, &tenant, &request).expect("a valid request");
        let last_good = Cursor::at(Position { tx: 4, seq: 0 });
        let event = FeedEvent::Unreadable(last_good.clone());
        let Err(Error::ChangeUnreadable { sync_token }) =
            watch_event(event, &sealer, &plan.token_template)
        else {
            panic!("an unreadable change ends the stream");
        };
        let reopened = SyncToken::open(&sealer, "sync_token", &sync_token, tenant.id, "tool-a", "");
        assert_eq!(reopened.map(|token| token.cursor).ok(), Some(last_good));
    }
}
