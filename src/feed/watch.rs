//! One `WatchCalls` stream: catch up from the change log, then follow the hub.
//!
//! A stream keeps its own cursor. It subscribes to the hub *before* reading the log, so every
//! change above what the log read returned is in its subscription; changes at or below its
//! cursor are skipped, so nothing arrives twice. A stream that falls behind the hub's buffer
//! (a slow client) goes back to reading the log at its own pace: memory stays bounded.

use tokio::{
    sync::{broadcast::error::RecvError, mpsc},
    time::Instant,
};

use super::{hub::BATCH_SIZE, Feed};
use crate::{
    domain::{Call, Cursor, Position, TenantId},
    store::{CallFilters, CallQuery, ChangeBatch, ChangeRecord, ListCursor},
    Error,
};

/// Events a stream buffers for a client that is not reading; then the stream waits.
const STREAM_BUFFER: usize = 32;

/// Where a stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// From now on.
    Now,
    /// Every current call first, then a marker, then changes.
    InitialState,
    /// Right after what this cursor has.
    After(Cursor),
}

/// Which calls a stream carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchFilters {
    pub tool_id: Option<String>,
    pub search_digits: Option<String>,
}

impl WatchFilters {
    fn matches(&self, call: &Call) -> bool {
        self.tool_id
            .as_ref()
            .is_none_or(|tool_id| call.fields.button_id == *tool_id)
            && self.search_digits.as_ref().is_none_or(|digits| {
                is_erased(call) || call.fields.number_digits().contains(digits.as_str())
            })
    }
}

/// A tombstone whose numbers PurgeCalls or retention scrubbed: it no longer says whether it
/// matched a search, so it goes to every searching stream (a client drops an id it never had),
/// lest a client keep an erased call it did have.
fn is_erased(call: &Call) -> bool {
    call.delete_time.is_some()
        && call.fields.caller_number.as_str().is_empty()
        && call.fields.called_number.as_str().is_empty()
}

/// What a stream sends; each but `Initial` carries the cursor a client may resume from.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    Change(ChangeRecord, Cursor),
    Initial(Call),
    InitialStateComplete(Cursor),
    Heartbeat(Cursor),
    /// The tenant's next change cannot be read: the stream ends, the cursor is the last good one.
    Unreadable(Cursor),
}

/// What [`Stream::send_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Nothing,
    Changes,
    Unreadable,
}

/// The receiving end of a stream, for the gRPC layer.
/// Events are boxed: the channel reserves its slots up front, and an idle stream should cost
/// a few pointers per slot, not a whole event (10,000 idle streams: 162 MiB unboxed).
pub type WatchStream = mpsc::Receiver<Result<Box<FeedEvent>, Error>>;

impl Feed {
    /// Starts a stream for `tenant_id`. Where it starts is settled before this returns, so a
    /// change committed after the RPC answered is never taken for the past. Fails with
    /// `SyncTokenExpired` when `start` is older than the retained log. The stream ends with
    /// `ShuttingDown` on shutdown, and quietly when the client goes away.
    pub async fn watch(
        &self,
        tenant_id: TenantId,
        filters: WatchFilters,
        start: StartFrom,
    ) -> Result<WatchStream, Error> {
        let start = match start {
            StartFrom::Now => StartFrom::After(self.store.current_cursor(tenant_id).await?),
            StartFrom::After(cursor) => {
                if cursor.after < self.store.change_log_horizon().await? {
                    return Err(Error::SyncTokenExpired);
                }
                StartFrom::After(cursor)
            }
            StartFrom::InitialState => StartFrom::InitialState,
        };
        let (events, receiver) = mpsc::channel(STREAM_BUFFER);
        let stream = Stream {
            feed: self.clone(),
            tenant_id,
            filters,
            events,
        };
        self.streams.spawn(stream.run(start));
        Ok(receiver)
    }
}

struct Stream {
    feed: Feed,
    tenant_id: TenantId,
    filters: WatchFilters,
    events: mpsc::Sender<Result<Box<FeedEvent>, Error>>,
}

/// Why a stream stopped early without an error to report.
struct ClientGone;

impl Stream {
    async fn run(self, start: StartFrom) {
        metrics::gauge!("callsd_watch_streams").increment(1.0);
        let outcome = self.follow(start).await;
        metrics::gauge!("callsd_watch_streams").decrement(1.0);
        if let Ok(Err(error)) = outcome {
            let _ = self.events.send(Err(error)).await;
        }
    }

    /// `Err(ClientGone)` when the client left; `Ok(Err(error))` when the stream must end.
    async fn follow(&self, start: StartFrom) -> Result<Result<(), Error>, ClientGone> {
        let mut cursor = match start {
            StartFrom::After(cursor) => cursor,
            // `watch` turned "now" into a cursor already; reading it again here is harmless.
            StartFrom::Now => {
                match Box::pin(self.feed.store.current_cursor(self.tenant_id)).await {
                    Ok(cursor) => cursor,
                    Err(error) => return Ok(Err(error)),
                }
            }
            StartFrom::InitialState => match Box::pin(self.send_initial_state()).await? {
                Ok(cursor) => cursor,
                Err(error) => return Ok(Err(error)),
            },
        };
        loop {
            let mut batches = self.feed.subscribe();
            // Catch up from the log until a read comes back short.
            loop {
                // Boxed, like every database call here: the task keeps the size of its largest
                // await for its whole life, and an idle stream should not pay for a query's.
                let batch = match Box::pin(self.feed.store.read_changes(
                    Some(self.tenant_id),
                    cursor.after,
                    BATCH_SIZE,
                ))
                .await
                {
                    Ok(batch) => batch,
                    Err(error) => return Ok(Err(error)),
                };
                if self.send_batch(&batch, &mut cursor).await? == Sent::Unreadable {
                    return Ok(Ok(()));
                }
                tracing::trace!(
                    changes = batch.records.len(),
                    ?cursor,
                    "watch stream read the log"
                );
                if batch.records.len() < BATCH_SIZE {
                    break;
                }
            }
            // Follow the hub.
            let heartbeat_interval = self.feed.settings.heartbeat_interval;
            let mut heartbeat_at = Instant::now() + heartbeat_interval;
            loop {
                tokio::select! {
                    () = self.feed.shutdown.cancelled() => return Ok(Err(Error::ShuttingDown)),
                    () = self.events.closed() => return Err(ClientGone),
                    () = tokio::time::sleep_until(heartbeat_at) => {
                        self.send(FeedEvent::Heartbeat(cursor.clone())).await?;
                        heartbeat_at = Instant::now() + heartbeat_interval;
                    }
                    received = batches.recv() => match received {
                        Ok(batch) => match self.send_batch(&batch, &mut cursor).await? {
                            Sent::Changes => heartbeat_at = Instant::now() + heartbeat_interval,
                            Sent::Nothing => {}
                            Sent::Unreadable => return Ok(Ok(())),
                        },
                        Err(RecvError::Lagged(skipped)) => {
                            tracing::debug!(skipped, "watch stream fell behind; reading the log");
                            break;
                        }
                        Err(RecvError::Closed) => return Ok(Err(Error::ShuttingDown)),
                    },
                }
            }
        }
    }

    /// Sends every live call (filtered), then the marker; returns where live changes start.
    async fn send_initial_state(&self) -> Result<Result<Cursor, Error>, ClientGone> {
        let mut query = CallQuery {
            tenant_id: self.tenant_id,
            filters: CallFilters {
                tool_id: self.filters.tool_id.clone(),
                search_digits: self.filters.search_digits.clone(),
                ..CallFilters::default()
            },
            cursor: ListCursor::Newest { after: None },
            barrier: None,
            limit: BATCH_SIZE,
        };
        let mut start = None;
        loop {
            let page = match self.feed.store.list_calls(&query).await {
                Ok(page) => page,
                Err(error) => return Ok(Err(error)),
            };
            query.barrier = Some(page.barrier);
            // The first page decides what the listing has: below its barrier, and what it saw.
            start.get_or_insert_with(|| Cursor {
                after: Position::below_barrier(page.barrier),
                seen: page.seen.clone(),
            });
            let calls = match page.calls().collect::<Result<Vec<_>, _>>() {
                Ok(calls) => calls,
                Err(error) => return Ok(Err(error)),
            };
            let mut last_sent = None;
            for call in &calls {
                match call.to_call() {
                    Ok(call) => {
                        last_sent = Some((call.start_time, call.id));
                        self.send(FeedEvent::Initial(call)).await?;
                    }
                    Err(error) => return Ok(Err(error)),
                }
            }
            match last_sent {
                Some(last) if page.has_more => {
                    query.cursor = ListCursor::Newest { after: Some(last) };
                }
                _ => break,
            }
        }
        let start = start.unwrap_or_default();
        self.send(FeedEvent::InitialStateComplete(start.clone()))
            .await?;
        Ok(Ok(start))
    }

    /// Sends this tenant's changes in `batch` that the client does not have yet, in order, and
    /// moves `cursor` past the batch. A change that cannot be read ends the stream right
    /// before it, with the cursor of the last change sent, so the client loses nothing silently.
    async fn send_batch(
        &self,
        batch: &ChangeBatch,
        cursor: &mut Cursor,
    ) -> Result<Sent, ClientGone> {
        let unreadable = batch
            .first_unreadable(self.tenant_id, |position| !cursor.has_seen(position))
            .map(|change| change.position);
        let mut sent = Sent::Nothing;
        for record in &batch.records {
            if unreadable.is_some_and(|position| record.position > position) {
                break;
            }
            if record.tenant_id == self.tenant_id && self.send_change(record, cursor).await? {
                sent = Sent::Changes;
            }
        }
        if unreadable.is_some() {
            self.send(FeedEvent::Unreadable(cursor.clone())).await?;
            return Ok(Sent::Unreadable);
        }
        cursor.advance(batch.complete_through);
        Ok(sent)
    }

    /// Sends a change the client does not have yet, if it passes the filters; true when sent.
    async fn send_change(
        &self,
        record: &ChangeRecord,
        cursor: &mut Cursor,
    ) -> Result<bool, ClientGone> {
        if cursor.has_seen(record.position) {
            return Ok(false);
        }
        cursor.advance(record.position);
        if !self.filters.matches(&record.call) {
            return Ok(false);
        }
        self.send(FeedEvent::Change(record.clone(), cursor.clone()))
            .await?;
        Ok(true)
    }

    /// Waits for room in the client's buffer; a client that left or a shutdown stops the wait.
    async fn send(&self, event: FeedEvent) -> Result<(), ClientGone> {
        tokio::select! {
            sent = self.events.send(Ok(Box::new(event))) => sent.map_err(|_| ClientGone),
            () = self.feed.shutdown.cancelled() => {
                // Best effort: tell the client why, if its buffer has room.
                let _ = self.events.try_send(Err(Error::ShuttingDown));
                Err(ClientGone)
            }
        }
    }
}
