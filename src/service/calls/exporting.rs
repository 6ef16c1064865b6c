//! ExportCalls: every call a full list with the same filters would return, read from one
//! snapshot and streamed in batches, then (for an export no time window or search narrowed) a
//! sync token from that snapshot, so the next sync list or WatchCalls resumes exactly after it.
//!
//! The stream holds one of the tenant's stream slots and one of the process's
//! [`MAX_CONCURRENT_EXPORTS`] export slots (an export holds a pooled connection while it
//! runs). Memory stays flat: the store reads a
//! batch at a time through a portal and the channel to the client holds two batches; a client
//! that reads nothing for [`SEND_TIMEOUT`] loses its export (its snapshot would hold back
//! vacuum for every tenant). At shutdown the export ends with `ShuttingDown`; a stream that
//! ends without its final message always ends with an error, never as if complete.

use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{listing::ClientInstant, search_filter, time_window, tool_filter, Calls};
use crate::{
    domain::{Call, Cursor},
    error::Violations,
    feed::SyncToken,
    store::{CallFilters, ExportItem, Tenant},
    Error,
};

/// Calls per message: 500 calls of the largest size stay under the 4 MiB message default.
pub const EXPORT_BATCH_SIZE: usize = 500;
/// Batches waiting for the client at once.
const BUFFERED_BATCHES: usize = 2;
/// Exports one process runs at once (each holds a pooled connection while it runs); more are
/// refused with `OVERLOADED` (RESOURCE_EXHAUSTED), to retry later.
pub const MAX_CONCURRENT_EXPORTS: usize = 4;
/// How long a batch waits for a client that reads nothing before the export ends.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// An ExportCalls request as the front door read it; empty strings mean "not given".
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportCallsInput<'a> {
    pub time_min: Option<ClientInstant>,
    pub time_max: Option<ClientInstant>,
    pub search: &'a str,
    pub tool_id: &'a str,
}

/// What an export sends.
#[derive(Debug, Clone)]
pub enum ExportEvent {
    /// The next calls, newest start first.
    Calls(Vec<Call>),
    /// The export is complete; the token is empty when a window or search narrowed it.
    Complete { next_sync_token: String },
}

impl Calls {
    /// Checks the request and starts the export; the stream's items follow one another as
    /// the client reads them.
    pub async fn export(
        &self,
        tenant: &Tenant,
        request: &ExportCallsInput<'_>,
    ) -> Result<impl Stream<Item = Result<ExportEvent, Error>> + Send + 'static, Error> {
        let filters = validate(request)?;
        let stream_slot = self.shares.open_stream(tenant.id)?;
        let export_slot = self
            .exports
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::Overloaded)?;
        let (sender, receiver) = mpsc::channel(BUFFERED_BATCHES);
        let store = self.store.clone();
        let sealer = self.sealer.clone();
        let stop = self.feed.stopping();
        let tenant = tenant.clone();
        tracing::info!(tenant = %tenant.name, "export started");
        self.feed.spawn_stream(async move {
            let _open = (stream_slot, export_slot);
            let mut snapshot: Option<Cursor> = None;
            let exported = store
                .export_calls(tenant.id, &filters, EXPORT_BATCH_SIZE, |item| {
                    let calls = match item {
                        ExportItem::Snapshot(cursor) => {
                            snapshot = Some(cursor);
                            None
                        }
                        ExportItem::Calls(calls) => Some(calls),
                    };
                    let (sender, stop) = (sender.clone(), stop.clone());
                    async move {
                        match calls {
                            Some(calls) => send(&sender, &stop, ExportEvent::Calls(calls)).await,
                            None => Ok(()),
                        }
                    }
                })
                .await;
            let ended = match (exported, snapshot) {
                (Ok(()), Some(cursor)) => {
                    let syncable = filters.time_min.is_none()
                        && filters.time_max.is_none()
                        && filters.search_digits.is_none();
                    let next_sync_token = if syncable {
                        sync_token(&sealer, &tenant, &filters, cursor)
                    } else {
                        Ok(String::new())
                    };
                    match next_sync_token {
                        Ok(next_sync_token) => {
                            send(&sender, &stop, ExportEvent::Complete { next_sync_token }).await
                        }
                        Err(error) => Err(error),
                    }
                }
                (Ok(()), None) => Err(Error::Internal(anyhow::anyhow!(
                    "an export ended without its snapshot"
                ))),
                (Err(error), _) => Err(error),
            };
            match ended {
                Ok(()) => tracing::info!(tenant = %tenant.name, "export complete"),
                // Nobody left to tell.
                Err(_) if sender.is_closed() => {
                    tracing::info!(tenant = %tenant.name, "export abandoned by its client")
                }
                Err(error) => {
                    tracing::warn!(tenant = %tenant.name, %error, "export ended early");
                    // A short wait: the client may not be reading, which may be why it ended.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), sender.send(Err(error))).await;
                }
            }
        });
        Ok(until_complete(receiver))
    }
}

/// The request's filters, every bad field reported at once.
fn validate(request: &ExportCallsInput<'_>) -> Result<CallFilters, Error> {
    let mut violations = Violations::default();
    let (time_min, time_max) = time_window(request.time_min, request.time_max, &mut violations);
    let search_digits = search_filter(request.search, &mut violations);
    violations.finish(|| CallFilters {
        time_min,
        time_max,
        tool_id: tool_filter(request.tool_id),
        search_digits,
    })
}

/// The sync token an export hands on: what a full list's last page would, from the same
/// snapshot: every change below its barrier, and those it saw above.
fn sync_token(
    sealer: &crate::tokens::TokenSealer,
    tenant: &Tenant,
    filters: &CallFilters,
    snapshot: Cursor,
) -> Result<String, Error> {
    debug_assert!(snapshot.seen.iter().all(|seen| *seen > snapshot.after));
    SyncToken {
        tenant_id: tenant.id,
        tool_id: filters.tool_id.clone().unwrap_or_default(),
        search_digits: String::new(),
        cursor: snapshot,
    }
    .seal(sealer)
}

/// Sends `event` unless the client stops reading for [`SEND_TIMEOUT`], leaves, or the server
/// shuts down.
async fn send(
    sender: &mpsc::Sender<Result<ExportEvent, Error>>,
    stop: &CancellationToken,
    event: ExportEvent,
) -> Result<(), Error> {
    tokio::select! {
        () = stop.cancelled() => Err(Error::ShuttingDown),
        sent = tokio::time::timeout(SEND_TIMEOUT, sender.send(Ok(event))) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::Internal(anyhow::anyhow!("the export's client left"))),
            Err(_) => Err(Error::Internal(anyhow::anyhow!(
                "the export's client read nothing for {SEND_TIMEOUT:?}"
            ))),
        },
    }
}

/// The receiver as a stream that, should it end before `Complete`, ends with an error: a
/// client must never take a cut export for a whole one.
fn until_complete(
    receiver: mpsc::Receiver<Result<ExportEvent, Error>>,
) -> impl Stream<Item = Result<ExportEvent, Error>> + Send + 'static {
    futures::stream::unfold((receiver, false), |(mut receiver, finished)| async move {
        if finished {
            return None;
        }
        match receiver.recv().await {
            Some(Ok(ExportEvent::Complete { next_sync_token })) => Some((
                Ok(ExportEvent::Complete { next_sync_token }),
                (receiver, true),
            )),
            Some(Err(error)) => Some((Err(error), (receiver, true))),
            Some(Ok(event)) => Some((Ok(event), (receiver, false))),
            None => Some((Err(Error::ShuttingDown), (receiver, true))),
        }
    })
}
