//! The delivery worker: leases watches that have changes due, delivers each watch's changes in
//! commit order, and records every attempt in the same transaction that moves the watch's
//! cursor. Replicas share the work through the leases; a lease that is not renewed (the
//! replica died) expires and another replica sends the same event again, same `webhook-id`.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use super::{payload, template::Template, Webhooks};
use crate::{
    domain::{Delivery, DeliveryId, DeliveryOutcome, Position, Watch, WatchMethod},
    store::{AttemptEffect, ChangeKind, ChangeRecord, Subscription, UnreadableChange},
};

/// Changes read per query for one watch.
const BATCH_SIZE: usize = 64;
/// How long a watch whose changes cannot be read waits before it is leased again.
const READ_FAILURE_BACKOFF: Duration = Duration::from_secs(1);
/// How often the delivery log is trimmed.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// The first look again after a notification that found nothing due, doubled up to the poll.
const FIRST_RECHECK: Duration = Duration::from_millis(10);

/// One per process: owns the leases it takes under its own id.
pub(super) struct Worker {
    webhooks: Webhooks,
    owner: Uuid,
}

impl Worker {
    pub(super) fn new(webhooks: Webhooks) -> Self {
        Worker {
            webhooks,
            owner: Uuid::new_v4(),
        }
    }

    /// Leases and delivers until `stop`; in-flight attempts are abandoned (not recorded) and
    /// their leases given back, so another replica sends them again. `changes` (the process's
    /// listener) wakes it when calls change or after a reconnect; the poll covers the rest.
    pub(super) async fn run(self, mut changes: Subscription, stop: CancellationToken) {
        let settings = self.webhooks.settings.clone();
        // Woken when a delivery frees its slot.
        let wake = Arc::new(Notify::new());
        let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let deliveries = TaskTracker::new();
        let mut last_purge: Option<tokio::time::Instant> = None;
        // A change is due only once every older transaction has ended (the feed's barrier):
        // one still in flight anywhere on the server hides it from the lease when its
        // notification arrives, and nothing notifies when that transaction ends. So a
        // notification is followed by looks again, 10 ms then twice as long each time, up to
        // the poll. Without them a webhook waited for the poll (in the tests, 120 s) whenever
        // another database's transaction overlapped the change.
        let mut recheck: Option<Duration> = None;
        let this = Arc::new(self);
        loop {
            if last_purge.is_none_or(|time| time.elapsed() >= PURGE_INTERVAL) {
                last_purge = Some(tokio::time::Instant::now());
                match this
                    .webhooks
                    .store
                    .purge_deliveries(settings.retention)
                    .await
                {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "trimmed the delivery log"),
                    Err(error) => tracing::warn!(%error, "cannot trim the delivery log"),
                }
            }
            let free = slots.available_permits();
            if free > 0 {
                match this
                    .webhooks
                    .store
                    .lease_due_watches(this.owner, settings.lease, free)
                    .await
                {
                    Ok(watches) => {
                        for watch in watches {
                            let Ok(slot) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let (worker, stop, wake) = (this.clone(), stop.clone(), wake.clone());
                            deliveries.spawn(async move {
                                worker.deliver_watch(watch, &stop).await;
                                drop(slot);
                                wake.notify_one();
                            });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot lease watches"),
                }
            }
            let wait = recheck.map_or(settings.poll_interval, |recheck| {
                recheck.min(settings.poll_interval)
            });
            tokio::select! {
                () = stop.cancelled() => break,
                () = wake.notified() => {}
                // `None` (the listener stopped) disables this branch: the poll goes on.
                Some(_) = changes.changed() => recheck = Some(FIRST_RECHECK),
                () = tokio::time::sleep(wait) => {
                    recheck = recheck
                        .map(|recheck| recheck * 2)
                        .filter(|recheck| *recheck < settings.poll_interval);
                }
            }
        }
        deliveries.close();
        deliveries.wait().await;
    }

    /// Delivers the watch's pending changes in order until it is caught up, must wait for a
    /// retry, or loses its lease.
    async fn deliver_watch(&self, mut watch: Watch, stop: &CancellationToken) {
        let store = &self.webhooks.store;
        let settings = &self.webhooks.settings;
        let template = match watch.settings.schema.as_str() {
            "" => Ok(None),
            schema => Template::parse(schema).map(Some),
        };
        'batches: loop {
            let batch = match store
                .read_changes(Some(watch.tenant_id), watch.cursor, BATCH_SIZE)
                .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, watch_id = %watch.id, "cannot read changes to deliver");
                    // Leased again at once, a watch whose reads fail would spin: wait first.
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = tokio::time::sleep(READ_FAILURE_BACKOFF) => {}
                    }
                    break;
                }
            };
            let mut pending: Vec<Pending> = batch.records.iter().map(Pending::Change).collect();
            pending.extend(batch.unreadable.iter().map(Pending::Unreadable));
            if pending.is_empty() {
                break;
            }
            pending.sort_by_key(Pending::position);
            for event in pending {
                let attempt = match event {
                    Pending::Change(record) => tokio::select! {
                        () = stop.cancelled() => break 'batches,
                        attempt = self.attempt(&watch, template.as_ref(), record) => attempt,
                    },
                    Pending::Unreadable(change) => unreadable_attempt(&watch, change),
                };
                let number = usize::try_from(attempt.attempt).unwrap_or(usize::MAX);
                let (outcome, effect) = if attempt.error.is_empty() {
                    (DeliveryOutcome::Succeeded, AttemptEffect::Finish)
                } else if matches!(event, Pending::Unreadable(_)) {
                    // Retrying cannot make it readable; the watch goes on with the next change.
                    (DeliveryOutcome::Failed, AttemptEffect::Finish)
                } else if let Some(delay) = settings.retry_schedule.get(number) {
                    let delay = (*delay).max(attempt.retry_after.unwrap_or_default());
                    (DeliveryOutcome::Retrying, AttemptEffect::RetryAfter(delay))
                } else {
                    (DeliveryOutcome::Failed, AttemptEffect::Finish)
                };
                let delivery = Delivery {
                    outcome,
                    ..attempt.delivery
                };
                let outcome_name = match outcome {
                    DeliveryOutcome::Succeeded => "succeeded",
                    DeliveryOutcome::Retrying => "retrying",
                    DeliveryOutcome::Failed => "failed",
                };
                metrics::counter!("callsd_webhook_attempts_total", "outcome" => outcome_name)
                    .increment(1);
                metrics::histogram!("callsd_webhook_attempt_seconds")
                    .record(delivery.duration.as_secs_f64());
                match store
                    .record_attempt(
                        self.owner,
                        &delivery,
                        effect,
                        settings.lease,
                        settings.disable_after,
                    )
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!(watch_id = %watch.id, "lease lost or watch disabled; stopping");
                        break 'batches;
                    }
                    Err(error) => {
                        tracing::warn!(%error, watch_id = %watch.id, "cannot record a delivery");
                        break 'batches;
                    }
                }
                match effect {
                    AttemptEffect::Finish => {
                        watch.cursor = event.position();
                        watch.attempts = 0;
                    }
                    AttemptEffect::RetryAfter(_) => break 'batches,
                }
            }
        }
        if let Err(error) = store.release_watch(self.owner, watch.id).await {
            tracing::warn!(%error, watch_id = %watch.id, "cannot release a lease; it will expire");
        }
    }

    /// Renders and sends one event; the result is not yet recorded.
    async fn attempt(
        &self,
        watch: &Watch,
        template: Result<&Option<Template>, &String>,
        record: &ChangeRecord,
    ) -> Attempt {
        let started = chrono::Utc::now();
        let event_id = payload::event_id(record.position);
        let previous = if watch.settings.add_previous_data && record.kind != ChangeKind::Created {
            self.webhooks
                .store
                .call_before(watch.tenant_id, record.call.id, record.position)
                .await
                .unwrap_or_default()
        } else {
            None
        };
        let body = template
            .map_err(|error| format!("the watch's template is not valid: {error}"))
            .and_then(|template| payload::body(template.as_ref(), record, previous.as_ref()));
        let mut delivery = Delivery {
            id: DeliveryId::new_v7(),
            watch_id: watch.id,
            tenant_id: watch.tenant_id,
            event_id: event_id.clone(),
            event_type: payload::event_type(record.kind).to_owned(),
            call_id: record.call.id,
            position: record.position,
            attempt: watch.attempts + 1,
            attempt_time: started,
            request_headers: Vec::new(),
            request_body: String::new(),
            response_status: 0,
            response_body: String::new(),
            error: String::new(),
            duration: Duration::ZERO,
            outcome: DeliveryOutcome::Failed,
            manual: false,
        };
        let body = match body {
            Ok(body) => body,
            Err(error) => {
                delivery.error = error;
                return Attempt::from(delivery, None);
            }
        };
        let sent = self.webhooks.sender.send(watch, &event_id, &body).await;
        delivery.request_headers = sent.headers;
        // DELETE carries no body; the log shows what was sent.
        if watch.settings.method != WatchMethod::Delete {
            delivery.request_body = body;
        }
        delivery.response_status = i32::from(sent.status);
        delivery.response_body = sent.response_body;
        delivery.error = sent.error;
        delivery.duration = sent.duration;
        Attempt::from(delivery, sent.retry_after)
    }
}

/// The next thing a watch delivers: a change, or one that cannot be read.
#[derive(Clone, Copy)]
enum Pending<'a> {
    Change(&'a ChangeRecord),
    Unreadable(&'a UnreadableChange),
}

impl Pending<'_> {
    fn position(&self) -> Position {
        match self {
            Pending::Change(record) => record.position,
            Pending::Unreadable(change) => change.position,
        }
    }
}

/// A change that cannot be read is logged as a failed delivery saying why, so the tenant sees
/// it in ListDeliveries, and nothing is sent.
fn unreadable_attempt(watch: &Watch, change: &UnreadableChange) -> Attempt {
    let delivery = Delivery {
        id: DeliveryId::new_v7(),
        watch_id: watch.id,
        tenant_id: watch.tenant_id,
        event_id: payload::event_id(change.position),
        event_type: "call.unreadable".to_owned(),
        call_id: change.call_id,
        position: change.position,
        attempt: watch.attempts + 1,
        attempt_time: chrono::Utc::now(),
        request_headers: Vec::new(),
        request_body: String::new(),
        response_status: 0,
        response_body: String::new(),
        error: "the stored change cannot be read, so it cannot be delivered".to_owned(),
        duration: Duration::ZERO,
        outcome: DeliveryOutcome::Failed,
        manual: false,
    };
    Attempt::from(delivery, None)
}

struct Attempt {
    attempt: i32,
    error: String,
    retry_after: Option<Duration>,
    delivery: Delivery,
}

impl Attempt {
    fn from(delivery: Delivery, retry_after: Option<Duration>) -> Self {
        Attempt {
            attempt: delivery.attempt,
            error: delivery.error.clone(),
            retry_after,
            delivery,
        }
    }
}
