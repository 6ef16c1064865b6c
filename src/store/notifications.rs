//! The process's one LISTEN connection, shared by everything that waits for the database: the
//! feed, the auth cache and the webhook worker each subscribe to the channels they care about.
//!
//! NOTIFY only says "read now"; the change log and the `api_keys` table are the truth. So a
//! subscriber gets a signal, never a payload, and signals that arrive while it is busy coalesce
//! into one. After every (re)connect each subscriber gets [`Wake::CatchUp`]: notifications sent
//! while nobody listened are lost, so whatever they would have announced must be read again.
//!
//! The connection is dedicated (a pooled one would carry its LISTENs to the next borrower),
//! shows as `callsd-listener` in `pg_stat_activity`, and is reopened with backoff when lost.
//! It is reopened too when a server is found read-only after it connected (see `pool.rs`): a
//! demoted primary that stays up would keep it open, and no write would ever notify it again.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::Store;

/// The listener's `application_name`, so operators and tests can tell it from the pool.
pub const LISTENER_APPLICATION_NAME: &str = "callsd-listener";
/// The first wait before reconnecting; it doubles with each failure, up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// What the database announces, one channel each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The change log grew (the `change_log_notify` trigger).
    Changes,
    /// An API key was revoked ([`Store::revoke_api_key`]).
    ApiKeys,
}

impl Channel {
    const ALL: [Channel; 2] = [Channel::Changes, Channel::ApiKeys];

    /// The name the SQL notifies on.
    pub const fn name(self) -> &'static str {
        match self {
            Channel::Changes => "callsd_changes",
            Channel::ApiKeys => "callsd_api_keys",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn named(name: &str) -> Option<Channel> {
        Channel::ALL
            .into_iter()
            .find(|channel| channel.name() == name)
    }
}

/// Why a subscriber woke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A notification arrived on the channel.
    Notified,
    /// The listener (re)connected: notifications may have been missed, read everything.
    CatchUp,
}

/// What a channel's subscribers watch. Counters rather than events, so that any number of
/// signals between two looks is one wake-up and no queue grows behind a slow subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Signals {
    notifications: u64,
    connections: u64,
}

/// One subscriber's view of one channel.
pub struct Subscription {
    receiver: watch::Receiver<Signals>,
    seen: Signals,
}

impl Subscription {
    fn new(mut receiver: watch::Receiver<Signals>) -> Self {
        let seen = *receiver.borrow_and_update();
        Subscription { receiver, seen }
    }

    /// Waits for the next signal; `None` once the listener has stopped for good. A catch-up
    /// outranks the notifications it coalesces with. Cancel-safe (for `select!`).
    pub async fn changed(&mut self) -> Option<Wake> {
        self.receiver.changed().await.ok()?;
        let now = *self.receiver.borrow_and_update();
        let wake = if now.connections == self.seen.connections {
            Wake::Notified
        } else {
            Wake::CatchUp
        };
        self.seen = now;
        Some(wake)
    }
}

/// A handle to subscribe with; cheap to clone. The listener task holds the only senders, so
/// subscriptions end when it stops.
#[derive(Clone)]
pub struct Notifications {
    receivers: [watch::Receiver<Signals>; 2],
}

impl Notifications {
    /// Starts the listener; it connects in the background and stops when `stop` is cancelled.
    pub fn start(store: Store, stop: CancellationToken, tasks: &TaskTracker) -> Notifications {
        let (senders, receivers) = channels();
        tasks.spawn(listen(store, senders, stop));
        Notifications { receivers }
    }

    /// Signals for `channel` from now on.
    pub fn subscribe(&self, channel: Channel) -> Subscription {
        Subscription::new(self.receivers[channel.index()].clone())
    }
}

fn channels() -> ([watch::Sender<Signals>; 2], [watch::Receiver<Signals>; 2]) {
    let (changes, changes_receiver) = watch::channel(Signals::default());
    let (api_keys, api_keys_receiver) = watch::channel(Signals::default());
    debug_assert_eq!(Channel::ALL.map(Channel::index), [0, 1]);
    ([changes, api_keys], [changes_receiver, api_keys_receiver])
}

/// Keeps one connection LISTENing, reconnecting with backoff, until `stop`.
async fn listen(store: Store, senders: [watch::Sender<Signals>; 2], stop: CancellationToken) {
    let mut retry = FIRST_RETRY;
    loop {
        let mut listened = false;
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = listen_once(&store, &senders, &mut listened) => outcome,
        };
        if listened {
            retry = FIRST_RETRY;
        }
        match outcome {
            Ok(Ended::Closed) => {
                tracing::warn!(retry_in = ?retry, "the database closed the change listener's connection");
            }
            Ok(Ended::ServerReadOnly) => {
                tracing::info!(
                    "moving the change listener: a server was found read-only since it connected"
                );
                retry = FIRST_RETRY;
            }
            Err(error) => {
                // tokio-postgres's own message is often just "db error"; the cause says why.
                let error = super::connect_error::with_root_cause(&error);
                tracing::warn!(%error, retry_in = ?retry, "change listener lost its connection");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// Why a listening connection was given up.
enum Ended {
    /// The server closed it.
    Closed,
    /// A server was found read-only after it connected: it may be on a demoted primary.
    ServerReadOnly,
}

/// Connects, LISTENs on every channel, signals a catch-up, then dispatches notifications until
/// the connection ends or may be on a read-only server. Sets `listened` once the LISTENs are in
/// place.
async fn listen_once(
    store: &Store,
    senders: &[watch::Sender<Signals>; 2],
    listened: &mut bool,
) -> Result<Ended, tokio_postgres::Error> {
    let mut read_only_marks = store.read_only_marks();
    let opened = Instant::now();
    let (client, mut messages) = store.connect_dedicated(LISTENER_APPLICATION_NAME).await?;
    let outdated = async {
        loop {
            if store.outdated(opened) {
                return;
            }
            if read_only_marks.changed().await.is_err() {
                // The store is gone: only `stop` ends this listener now.
                std::future::pending::<()>().await;
            }
        }
    };
    // The connection must be polled for the LISTENs to run and for notifications to arrive;
    // dispatching right here keeps every one of them without a queue in between.
    let dispatch = async {
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(notification) = message? {
                if let Some(channel) = Channel::named(notification.channel()) {
                    senders[channel.index()].send_modify(|signals| signals.notifications += 1);
                }
            }
        }
        Ok(Ended::Closed)
    };
    let subscribe = async {
        let statement = Channel::ALL
            .map(|channel| format!("LISTEN {}", channel.name()))
            .join("; ");
        client.batch_execute(&statement).await?;
        *listened = true;
        // Anything may have happened while nobody was listening.
        for sender in senders {
            sender.send_modify(|signals| signals.connections += 1);
        }
        tracing::debug!("change listener connected");
        std::future::pending::<Result<Ended, tokio_postgres::Error>>().await
    };
    tokio::select! {
        result = dispatch => result,
        result = subscribe => result,
        () = outdated => Ok(Ended::ServerReadOnly),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notifications_coalesce_and_a_reconnect_reads_as_a_catch_up() {
        let (senders, receivers) = channels();
        let mut changes = Subscription::new(receivers[Channel::Changes.index()].clone());
        let mut keys = Subscription::new(receivers[Channel::ApiKeys.index()].clone());

        senders[Channel::Changes.index()].send_modify(|signals| signals.notifications += 1);
        senders[Channel::Changes.index()].send_modify(|signals| signals.notifications += 1);
        assert_eq!(changes.changed().await, Some(Wake::Notified));
        let nothing_more = tokio::time::timeout(Duration::from_millis(20), changes.changed()).await;
        assert!(nothing_more.is_err(), "two notifications wake once");

        senders[Channel::Changes.index()].send_modify(|signals| signals.notifications += 1);
        for sender in &senders {
            sender.send_modify(|signals| signals.connections += 1);
        }
        assert_eq!(changes.changed().await, Some(Wake::CatchUp));
        assert_eq!(keys.changed().await, Some(Wake::CatchUp));

        drop(senders);
        assert_eq!(changes.changed().await, None, "the listener stopped");
    }

    #[test]
    fn a_subscription_starts_with_nothing_to_report() {
        let (senders, receivers) = channels();
        senders[0].send_modify(|signals| signals.connections += 1);
        let subscription = Subscription::new(receivers[0].clone());
        assert!(!subscription.receiver.has_changed().unwrap());
        assert_eq!(Channel::named("callsd_api_keys"), Some(Channel::ApiKeys));
        assert_eq!(Channel::named("other"), None);
    }
}
