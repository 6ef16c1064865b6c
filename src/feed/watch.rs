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
use uuid::Uuid;

use super::{hub::BATCH_SIZE, Feed, Position};
use crate::{
    domain::Call,
    store::{CallFilters, CallQuery, ChangeRecord, ListCursor},
    Error,
};

/// Events a stream buffers for a client that is not reading; then the stream waits.
const STREAM_BUFFER: usize = 32;

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// From now on.
    Now,
    /// Every current call first, then a marker, then changes.
    InitialState,
    /// Right after this position.
    After(Position),
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
            && self
                .search_digits
                .as_ref()
                .is_none_or(|digits| call.fields.number_digits().contains(digits.as_str()))
    }
}

/// What a stream sends; each carries the position a client may resume after.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    Change(ChangeRecord),
    Initial(Call),
    InitialStateComplete(Position),
    Heartbeat(Position),
}

/// The receiving end of a stream, for the gRPC layer.
pub type WatchStream = mpsc::Receiver<Result<FeedEvent, Error>>;

impl Feed {
    /// Starts a stream for `tenant_id`. The stream ends with `ShuttingDown` on shutdown, with
    /// `SyncTokenExpired` when `start` is older than the retained log, and quietly when the
    /// client goes away.
    pub fn watch(&self, tenant_id: Uuid, filters: WatchFilters, start: StartFrom) -> WatchStream {
        let (events, receiver) = mpsc::channel(STREAM_BUFFER);
        let stream = Stream {
            feed: self.clone(),
            tenant_id,
            filters,
            events,
        };
        self.streams.spawn(stream.run(start));
        receiver
    }
}

struct Stream {
    feed: Feed,
    tenant_id: Uuid,
    filters: WatchFilters,
    events: mpsc::Sender<Result<FeedEvent, Error>>,
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
            StartFrom::Now => match self.feed.store.current_position().await {
                Ok(position) => position,
                Err(error) => return Ok(Err(error)),
            },
            StartFrom::InitialState => match self.send_initial_state().await? {
                Ok(position) => position,
                Err(error) => return Ok(Err(error)),
            },
            StartFrom::After(position) => match self.feed.store.change_log_horizon().await {
                Ok(horizon) if position < horizon => return Ok(Err(Error::SyncTokenExpired)),
                Ok(_) => position,
                Err(error) => return Ok(Err(error)),
            },
        };
        loop {
            let mut batches = self.feed.subscribe();
            // Catch up from the log until a read comes back short.
            loop {
                let batch = match self
                    .feed
                    .store
                    .read_changes(Some(self.tenant_id), cursor, BATCH_SIZE)
                    .await
                {
                    Ok(batch) => batch,
                    Err(error) => return Ok(Err(error)),
                };
                for record in &batch.records {
                    self.send_change(record).await?;
                }
                cursor = cursor.max(batch.complete_through);
                if batch.records.len() < BATCH_SIZE {
                    break;
                }
            }
            // Follow the hub.
            let mut heartbeat_at = Instant::now() + self.feed.settings.heartbeat_interval;
            loop {
                tokio::select! {
                    () = self.feed.shutdown.cancelled() => return Ok(Err(Error::ShuttingDown)),
                    () = self.events.closed() => return Err(ClientGone),
                    () = tokio::time::sleep_until(heartbeat_at) => {
                        self.send(FeedEvent::Heartbeat(cursor)).await?;
                        heartbeat_at = Instant::now() + self.feed.settings.heartbeat_interval;
                    }
                    received = batches.recv() => match received {
                        Ok(batch) => {
                            for record in &batch.records {
                                if record.tenant_id == self.tenant_id && record.position > cursor {
                                    self.send_change(record).await?;
                                    heartbeat_at =
                                        Instant::now() + self.feed.settings.heartbeat_interval;
                                }
                            }
                            cursor = cursor.max(batch.complete_through);
                        }
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
    async fn send_initial_state(&self) -> Result<Result<Position, Error>, ClientGone> {
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
        loop {
            let page = match self.feed.store.list_calls(&query).await {
                Ok(page) => page,
                Err(error) => return Ok(Err(error)),
            };
            query.barrier = Some(page.barrier);
            for (call, _) in &page.calls {
                self.send(FeedEvent::Initial(call.clone())).await?;
            }
            match page.calls.last() {
                Some((last, _)) if page.has_more => {
                    query.cursor = ListCursor::Newest {
                        after: Some((last.start_time, last.id)),
                    };
                }
                _ => break,
            }
        }
        let start = Position::below_barrier(query.barrier.unwrap_or_default());
        self.send(FeedEvent::InitialStateComplete(start)).await?;
        Ok(Ok(start))
    }

    async fn send_change(&self, record: &ChangeRecord) -> Result<(), ClientGone> {
        if self.filters.matches(&record.call) {
            self.send(FeedEvent::Change(record.clone())).await?;
        }
        Ok(())
    }

    /// Waits for room in the client's buffer; a client that left or a shutdown stops the wait.
    async fn send(&self, event: FeedEvent) -> Result<(), ClientGone> {
        tokio::select! {
            sent = self.events.send(Ok(event)) => sent.map_err(|_| ClientGone),
            () = self.feed.shutdown.cancelled() => {
                // Best effort: tell the client why, if its buffer has room.
                let _ = self.events.try_send(Err(Error::ShuttingDown));
                Err(ClientGone)
            }
        }
    }
}
