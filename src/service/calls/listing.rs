//! ListCalls: the listing's rules. Checks a request (`request.rs`), opens its page or sync
//! token, reads one page from the store within a byte budget, and decides where the next page
//! starts (`page_token.rs`) and whether the last one hands on a sync token. The calls go to a
//! front door's [`CallPageSink`] straight from their rows.
//!
//! Paging is keyset (never OFFSET): a page token holds the sort key of the last call read, so
//! concurrent inserts neither duplicate nor skip rows. Tokens are sealed (see [`crate::tokens`])
//! and carry the tenant and filters they were issued for.

mod page_token;
mod request;

use chrono::DateTime;

pub use request::{ClientInstant, ListCallsInput};

use super::Calls;
use crate::{
    domain::{Cursor, Position},
    feed::SyncToken,
    service::page_budget::MAX_PAGE_BYTES,
    store::{CallFilters, CallQuery, CallView, ListCursor, Tenant},
    Error,
};
use page_token::{PageKey, PageToken};
use request::ListFilters;

/// Where a front door writes a page: the calls one by one as they are read, then the tokens.
/// gRPC encodes protobuf bytes straight from each row; no [`crate::domain::Call`] is built.
pub trait CallPageSink {
    /// The finished page.
    type Page;

    /// Room for `calls` calls, asked once before the first.
    fn reserve(&mut self, calls: usize);

    /// Adds a call to the page.
    fn push_call(&mut self, call: &CallView<'_>);

    /// What the calls added so far take, in the sink's encoding: the page budget counts it.
    fn encoded_len(&self) -> usize;

    /// Ends the page with its tokens (empty when there is none).
    fn finish(self, next_page_token: &str, next_sync_token: &str) -> Self::Page;
}

impl Calls {
    /// One page of the tenant's calls, written to `sink`: newest first, or, with a sync
    /// token, every change since it (tombstones included), oldest first.
    pub async fn list<Sink: CallPageSink>(
        &self,
        tenant: &Tenant,
        request: &ListCallsInput<'_>,
        mut sink: Sink,
    ) -> Result<Sink::Page, Error> {
        let (filters, page_size) = request::validate(&self.sealer, tenant, request)?;
        if let Some(sync_from) = &filters.sync_from {
            if sync_from.after < self.store.change_log_horizon().await? {
                return Err(Error::SyncTokenExpired);
            }
        }
        let (cursor, barrier, first_page_seen) = if request.page_token.is_empty() {
            let cursor = match &filters.sync_from {
                Some(sync_from) => ListCursor::Changes {
                    after: sync_from.after,
                },
                None => ListCursor::Newest { after: None },
            };
            (cursor, None, None)
        } else {
            let token = PageToken::open(&self.sealer, tenant, &filters, request.page_token)?;
            (token.cursor()?, Some(token.barrier), Some(token.seen))
        };
        let query = CallQuery {
            tenant_id: tenant.id,
            filters: CallFilters {
                time_min: filters
                    .time_min_micros
                    .and_then(DateTime::from_timestamp_micros),
                time_max: filters
                    .time_max_micros
                    .and_then(DateTime::from_timestamp_micros),
                tool_id: filters.tool_id.clone(),
                search_digits: filters.search_digits.clone(),
            },
            cursor,
            barrier,
            limit: page_size,
        };
        let mut page = self.store.list_calls(&query).await?;
        let seen = first_page_seen.unwrap_or(std::mem::take(&mut page.seen));
        // Each call goes to the sink as it is read; the page's tokens follow the calls.
        let filled = fill_page(&mut sink, page.calls(), &filters)?;
        // The next page starts after the last row read, sent or not: a page of changes the
        // holder had may be empty and still be followed by more.
        let next_page_token = match filled.last_read {
            Some(last) if page.has_more || filled.cut_short => {
                let token = PageToken {
                    barrier: page.barrier,
                    seen: seen.clone(),
                    after: PageKey::after(&filters, &last),
                };
                token.seal(&self.sealer, tenant, &filters)?
            }
            _ => String::new(),
        };
        let next_sync_token = if next_page_token.is_empty() && filters.is_syncable() {
            SyncToken {
                tenant_id: tenant.id,
                tool_id: filters.tool_id.clone().unwrap_or_default(),
                search_digits: String::new(),
                cursor: sync_cursor_after_last_page(&filters, page.barrier, seen),
            }
            .seal(&self.sealer)?
        } else {
            String::new()
        };
        Ok(sink.finish(&next_page_token, &next_sync_token))
    }
}

/// What [`fill_page`] read.
struct FilledPage<'a> {
    /// The last row read, whether it was sent or not.
    last_read: Option<CallView<'a>>,
    /// The byte budget ended the page before its rows did.
    cut_short: bool,
}

/// Sends `calls` to `sink` until they or the byte budget run out. The first call always goes,
/// so paging moves on whatever a call's size; calls a sync token's holder already had are read
/// but not sent.
fn fill_page<'a>(
    sink: &mut impl CallPageSink,
    calls: impl ExactSizeIterator<Item = Result<CallView<'a>, Error>>,
    filters: &ListFilters,
) -> Result<FilledPage<'a>, Error> {
    sink.reserve(calls.len());
    let mut filled = FilledPage {
        last_read: None,
        cut_short: false,
    };
    for call in calls {
        if sink.encoded_len() >= MAX_PAGE_BYTES {
            filled.cut_short = true;
            break;
        }
        let call = call?;
        if !filters.holder_had(call.position) {
            sink.push_call(&call);
        }
        filled.last_read = Some(call);
    }
    Ok(filled)
}

/// What a listing's last page hands on: everything below its barrier, and what it saw above.
fn sync_cursor_after_last_page(filters: &ListFilters, barrier: i64, seen: Vec<Position>) -> Cursor {
    let below_barrier = Position::below_barrier(barrier);
    match &filters.sync_from {
        // A sync listing reads only below its barrier: it has what its token had, and more.
        Some(sync_from) => {
            let mut cursor = sync_from.clone();
            cursor.advance(below_barrier);
            cursor
        }
        // A full listing showed every visible call, those changed above the barrier too.
        None => Cursor {
            after: below_barrier,
            seen,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        domain::CallId,
        store::{LocalMicros, UnixMicros},
    };

    /// Counts what it is sent as if each call took `call_bytes`.
    #[derive(Default)]
    struct CountingSink {
        call_bytes: usize,
        sent: Vec<Position>,
    }

    impl CallPageSink for CountingSink {
        type Page = Vec<Position>;

        fn reserve(&mut self, _calls: usize) {}

        fn push_call(&mut self, call: &CallView<'_>) {
            self.sent.push(call.position);
        }

        fn encoded_len(&self) -> usize {
            self.sent.len() * self.call_bytes
        }

        fn finish(self, _next_page_token: &str, _next_sync_token: &str) -> Vec<Position> {
            self.sent
        }
    }

    /// A call whose latest change is at `tx`, and which starts `tx` microseconds after 1970.
    pub(super) fn call_at(tx: i64) -> CallView<'static> {
        CallView {
            id: CallId::default(),
            button_id: "",
            client_id: "",
            caller_number: "",
            called_number: "",
            tracking_number: "",
            start_local: LocalMicros(0),
            start_zone: "UTC",
            start_time: UnixMicros(tx),
            duration: Duration::ZERO,
            status: None,
            external_id: "",
            call_type: None,
            record_mime_type: "",
            record_url: "",
            version: 1,
            create_time: UnixMicros(0),
            update_time: UnixMicros(0),
            delete_time: None,
            position: Position { tx, seq: 0 },
        }
    }

    fn calls(count: i64) -> impl ExactSizeIterator<Item = Result<CallView<'static>, Error>> {
        (1..=count)
            .map(|tx| Ok(call_at(tx)))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn a_page_stops_at_the_byte_budget_and_says_it_was_cut_short() {
        let mut sink = CountingSink {
            call_bytes: 300 * 1024,
            ..CountingSink::default()
        };
        let filled = fill_page(&mut sink, calls(10), &ListFilters::default());
        let filled = filled.expect("every row decodes");
        assert!(filled.cut_short);
        assert_eq!(sink.sent.len(), 4, "four calls pass 1 MiB");
        let last_read = filled.last_read.map(|call| call.position.tx);
        assert_eq!(last_read, Some(4));
    }

    #[test]
    fn the_first_call_is_sent_whatever_its_size() {
        let mut sink = CountingSink {
            call_bytes: 2 * MAX_PAGE_BYTES,
            ..CountingSink::default()
        };
        let filled = fill_page(&mut sink, calls(3), &ListFilters::default());
        assert!(filled.expect("every row decodes").cut_short);
        assert_eq!(sink.sent.len(), 1);
    }

    #[test]
    fn changes_the_sync_token_holder_had_are_read_but_not_sent() {
        let filters = ListFilters {
            sync_from: Some(Cursor {
                after: Position::default(),
                seen: vec![Position { tx: 2, seq: 0 }],
            }),
            ..ListFilters::default()
        };
        let mut sink = CountingSink::default();
        let filled = fill_page(&mut sink, calls(2), &filters).expect("every row decodes");
        assert_eq!(sink.sent, [Position { tx: 1, seq: 0 }]);
        assert!(!filled.cut_short);
        let last_read = filled.last_read.map(|call| call.position.tx);
        assert_eq!(
            last_read,
            Some(2),
            "the next page starts after the unsent change"
        );
    }

    #[test]
    fn a_full_listing_hands_on_what_it_saw_above_its_barrier() {
        let seen = vec![Position { tx: 12, seq: 0 }];
        let cursor = sync_cursor_after_last_page(&ListFilters::default(), 10, seen.clone());
        assert_eq!(cursor.after, Position::below_barrier(10));
        assert_eq!(cursor.seen, seen);
    }

    #[test]
    fn a_sync_listing_keeps_what_its_token_had_and_moves_to_its_barrier() {
        let above = Position { tx: 12, seq: 0 };
        let filters = ListFilters {
            sync_from: Some(Cursor {
                after: Position { tx: 5, seq: 1 },
                seen: vec![above],
            }),
            ..ListFilters::default()
        };
        let cursor = sync_cursor_after_last_page(&filters, 10, Vec::new());
        assert_eq!(cursor.after, Position::below_barrier(10));
        assert_eq!(cursor.seen, [above]);
    }
}
