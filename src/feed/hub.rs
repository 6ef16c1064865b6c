//! The hub: one reader of the change log per process, publishing to every stream.

use std::{sync::Arc, time::Duration};

use tokio::sync::broadcast;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    domain::Position,
    store::{ChangeBatch, Store, Subscription, Wake},
    Error,
};

/// Changes read per query; also the most a slow stream reads from the database at once.
pub(super) const BATCH_SIZE: usize = 256;
/// Batches the hub keeps for streams that are behind; a stream further behind reads the log.
const BROADCAST_CAPACITY: usize = 128;
/// Re-read this soon when changes were waiting for an older transaction to finish.
const IN_FLIGHT_RETRY: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
pub struct FeedSettings {
    pub poll_interval: Duration,
    pub heartbeat_interval: Duration,
}

/// A handle on this process's feed; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    pub(super) store: Store,
    pub(super) batches: broadcast::Sender<Arc<ChangeBatch>>,
    pub(super) settings: FeedSettings,
    pub(super) shutdown: CancellationToken,
    pub(super) streams: TaskTracker,
}

impl Feed {
    /// Starts the reader, woken by `changes` (the process's listener on the change channel)
    /// or by its poll; it stops when `shutdown` is cancelled.
    ///
    /// The reader's start is read before this returns: a stream opened afterwards starts at or
    /// after it, so the hub publishes every change such a stream can wait for.
    pub async fn start(
        store: Store,
        changes: Subscription,
        settings: FeedSettings,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Feed, Error> {
        let start = store.current_position().await?;
        let (batches, _) = broadcast::channel(BROADCAST_CAPACITY);
        let feed = Feed {
            store: store.clone(),
            batches,
            settings,
            shutdown: shutdown.clone(),
            streams: TaskTracker::new(),
        };
        tasks.spawn(feed.clone().read_log(start, changes));
        Ok(feed)
    }

    /// Waits for every stream task to end (they end on shutdown).
    /// Runs a stream's task (an export, say) among the feed's streams: shutdown waits for it,
    /// and [`Feed::stopping`] tells it when to end.
    pub fn spawn_stream(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.streams.spawn(task);
    }

    /// Cancelled when streams must end (after the shutdown drain).
    pub fn stopping(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn wait_for_streams(&self) {
        self.streams.close();
        self.streams.wait().await;
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.batches.subscribe()
    }

    /// Reads the log after `start`, publishing each batch, until shutdown. A notification or
    /// a listener's reconnect reads at once; the poll covers a listener that is down.
    async fn read_log(self, start: Position, mut changes: Subscription) {
        let mut cursor = start;
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                // `None` (the listener stopped) disables this branch: the poll goes on.
                Some(wake) = changes.changed() => {
                    if wake == Wake::CatchUp {
                        tracing::debug!("feed catches up after the listener reconnected");
                    }
                }
                () = tokio::time::sleep(wait) => {}
            }
            wait = self.settings.poll_interval;
            match self.store.read_changes(None, cursor, BATCH_SIZE).await {
                Ok(batch) => {
                    let full = batch.records.len() >= BATCH_SIZE;
                    if batch.in_flight {
                        wait = IN_FLIGHT_RETRY;
                    }
                    if full {
                        wait = Duration::ZERO;
                    }
                    if batch.complete_through > cursor {
                        log_unreadable(&batch);
                        tracing::trace!(
                            changes = batch.records.len(),
                            complete_through = ?batch.complete_through,
                            "feed read the change log"
                        );
                        cursor = batch.complete_through;
                        // No receivers is fine: nobody is watching right now.
                        let _ = self.batches.send(Arc::new(batch));
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "feed cannot read the change log; retrying");
                    wait = Duration::from_millis(500);
                }
            }
        }
    }
}

/// Reports each change that cannot be read, once: the hub reads every position once.
fn log_unreadable(batch: &ChangeBatch) {
    for change in &batch.unreadable {
        metrics::counter!("callsd_feed_unreadable_changes_total").increment(1);
        tracing::error!(
            tenant_id = %change.tenant_id,
            call_id = %change.call_id,
            position = ?change.position,
            reason = %change.reason,
            "a change cannot be read; that tenant's streams end at it, others go on"
        );
    }
}
