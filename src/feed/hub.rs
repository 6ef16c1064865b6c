//! The hub: one reader of the change log per process, publishing to every stream.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::sync::{broadcast, Notify};
use tokio_postgres::AsyncMessage;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    auth::Authenticator,
    domain::Position,
    store::{ChangeBatch, Store},
    Error,
};

/// Changes read per query; also the most a slow stream reads from the database at once.
pub(super) const BATCH_SIZE: usize = 256;
/// Batches the hub keeps for streams that are behind; a stream further behind reads the log.
const BROADCAST_CAPACITY: usize = 128;
/// Re-read this soon when changes were waiting for an older transaction to finish.
const IN_FLIGHT_RETRY: Duration = Duration::from_millis(5);
const CHANGES_CHANNEL: &str = "callsd_changes";
const API_KEYS_CHANNEL: &str = "callsd_api_keys";

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
    /// Starts the listener and the reader; both stop when `shutdown` is cancelled.
    ///
    /// The reader's start is read before this returns: a stream opened afterwards starts at or
    /// after it, so the hub publishes every change such a stream can wait for.
    pub async fn start(
        store: Store,
        authenticator: Authenticator,
        settings: FeedSettings,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Feed, Error> {
        let start = store.current_position().await?;
        let (batches, _) = broadcast::channel(BROADCAST_CAPACITY);
        let wake = Arc::new(Notify::new());
        let feed = Feed {
            store: store.clone(),
            batches,
            settings,
            shutdown: shutdown.clone(),
            streams: TaskTracker::new(),
        };
        tasks.spawn(listen(store, authenticator, wake.clone(), shutdown));
        tasks.spawn(feed.clone().read_log(start, wake));
        Ok(feed)
    }

    /// Waits for every stream task to end (they end on shutdown).
    pub async fn wait_for_streams(&self) {
        self.streams.close();
        self.streams.wait().await;
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.batches.subscribe()
    }

    /// Reads the log after `start`, publishing each batch, until shutdown.
    async fn read_log(self, start: Position, wake: Arc<Notify>) {
        let mut cursor = start;
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = wake.notified() => {}
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

/// Holds one dedicated (never pooled) connection that LISTENs for changes and key revocations,
/// reconnecting with backoff. Every (re)connect wakes the reader, which catches up from the log.
async fn listen(
    store: Store,
    authenticator: Authenticator,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = listen_once(&store, &authenticator, &wake) => outcome,
        };
        match outcome {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "change listener lost its connection");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(
    store: &Store,
    authenticator: &Authenticator,
    wake: &Notify,
) -> Result<(), tokio_postgres::Error> {
    // The connection must be polled for queries to progress and to receive notifications;
    // dispatching here keeps every notification, without a queue in between.
    let (client, mut messages) = store.connect_dedicated().await?;
    let dispatch = async {
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(notification) = message? {
                match notification.channel() {
                    CHANGES_CHANNEL => wake.notify_one(),
                    API_KEYS_CHANNEL => authenticator.forget_all(),
                    _ => {}
                }
            }
        }
        Ok(())
    };
    let subscribe = async {
        client
            .batch_execute(&format!(
                "LISTEN {CHANGES_CHANNEL}; LISTEN {API_KEYS_CHANNEL}"
            ))
            .await?;
        // Anything may have happened while we were not listening.
        authenticator.forget_all();
        wake.notify_one();
        tracing::debug!("change listener connected");
        std::future::pending::<Result<(), tokio_postgres::Error>>().await
    };
    tokio::select! {
        result = dispatch => result,
        result = subscribe => result,
    }
}
