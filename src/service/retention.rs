//! Retention per tenant: a background sweep deletes the calls of every tenant with a retention
//! period once they ended longer ago than it. Each batch is one short transaction through the
//! erasure path (`store/erasure.rs`): a DELETED change that WatchCalls, sync lists and watches
//! see like any deletion, the numbers scrubbed from every copy. Replicas may sweep at once:
//! each batch skips the calls another holds (`FOR UPDATE SKIP LOCKED`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{
    store::{EraseScope, Store},
    Error,
};

/// How the sweep runs.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    /// Time between sweeps.
    pub interval: Duration,
    /// Calls deleted per transaction.
    pub batch_size: usize,
}

/// Sweeps every `settings.interval` until `stop` is cancelled (checked between batches too).
pub async fn enforce_periodically(
    store: Store,
    settings: RetentionSettings,
    stop: CancellationToken,
) {
    loop {
        match sweep(&store, settings.batch_size.max(1), &stop).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(
                deleted,
                "retention deleted calls past their tenants' horizon"
            ),
            Err(error) => tracing::warn!(%error, "retention sweep failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
    }
}

/// One sweep over every tenant with a retention period; returns how many calls it deleted.
async fn sweep(store: &Store, batch_size: usize, stop: &CancellationToken) -> Result<usize, Error> {
    let mut deleted = 0;
    for (tenant_id, retention) in store.tenants_with_retention().await? {
        let scope = EraseScope::EndedLongerAgoThan {
            seconds: retention.as_secs_f64(),
        };
        loop {
            if stop.is_cancelled() {
                return Ok(deleted);
            }
            let erased = store.erase_calls(tenant_id, &scope, batch_size).await?;
            deleted += erased.len();
            metrics::counter!("callsd_retention_deleted_calls_total")
                .increment(erased.len() as u64);
            if erased.len() < batch_size {
                break;
            }
        }
    }
    Ok(deleted)
}
