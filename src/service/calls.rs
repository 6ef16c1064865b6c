//! [`Calls`]: what a tenant may do with its calls. Writes and reads go to the store under the
//! tenant's id; listing ([`listing`]) and watching ([`watching`]) hold the rules of paging and
//! sync tokens.

mod exporting;
#[cfg(test)]
mod fixtures;
mod listing;
mod purging;
mod summarizing;
mod watching;

pub use exporting::{ExportCallsInput, ExportEvent, EXPORT_BATCH_SIZE};
pub use listing::{CallPageSink, ClientInstant, ListCallsInput};
pub use purging::{PurgeCallsInput, PurgeOutcome, MAX_ERASED_PER_REQUEST};
pub use summarizing::{CallSummary, SummarizeCallsInput, Summary, MAX_BUCKETS, MAX_SUMMARIES};
pub use watching::{CallWatchEvent, WatchCallsInput};

/// What an operator set for a tenant, as the tenant may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    pub name: String,
    pub time_zone: chrono_tz::Tz,
    /// Calls that ended longer ago are deleted; `None`: kept until deleted.
    pub call_retention: Option<std::time::Duration>,
}

use chrono::{DateTime, Utc};

use crate::{
    domain::{digits_of, Call, CallFields, CallId},
    error::Violations,
    fair_shares::FairShares,
    feed::Feed,
    store::{Store, Tenant},
    tokens::TokenSealer,
    Error,
};

/// The call operations of the service; cheap to clone.
#[derive(Clone)]
pub struct Calls {
    store: Store,
    /// Seals and opens page and sync tokens.
    sealer: TokenSealer,
    feed: Feed,
    /// For the WatchCalls stream slot each open stream holds.
    shares: FairShares,
    /// Exports running at once in this process: each holds a pooled connection for its whole
    /// length, so they may never take the pool from everything else.
    exports: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Calls {
    pub fn new(store: Store, sealer: TokenSealer, feed: Feed, shares: FairShares) -> Self {
        Calls {
            store,
            sealer,
            feed,
            shares,
            exports: std::sync::Arc::new(tokio::sync::Semaphore::new(
                exporting::MAX_CONCURRENT_EXPORTS,
            )),
        }
    }

    /// Stores a new call. A repeated `request_id` returns the call its first request made
    /// instead of a second one.
    pub async fn create(
        &self,
        tenant: &Tenant,
        request_id: Option<&str>,
        fields: &CallFields,
    ) -> Result<Call, Error> {
        let call = self
            .store
            .create_call(tenant.id, request_id, fields)
            .await?;
        tracing::info!(call_id = %call.id, tenant = %tenant.name, "call created");
        Ok(call)
    }

    /// One of the tenant's calls; tombstones included.
    pub async fn get(&self, tenant: &Tenant, id: CallId) -> Result<Call, Error> {
        self.store.get_call(tenant.id, id).await
    }

    /// Replaces a call's fields with `change(current)`. With `expected_etag`, only if the call
    /// is still at that version (`EtagMismatch` otherwise); without, the change is applied to
    /// whatever version is current, read again if another writer got there first.
    pub async fn update(
        &self,
        tenant: &Tenant,
        id: CallId,
        expected_etag: Option<&str>,
        change: impl Fn(&Call) -> Result<CallFields, Error>,
    ) -> Result<Call, Error> {
        let call = self
            .store
            .update_call(tenant.id, id, expected_etag, change)
            .await?;
        tracing::info!(call_id = %call.id, tenant = %tenant.name, "call updated");
        Ok(call)
    }

    /// The calling tenant's settings.
    pub async fn tenant_settings(&self, tenant: &Tenant) -> Result<TenantSettings, Error> {
        Ok(TenantSettings {
            name: tenant.name.clone(),
            time_zone: tenant.time_zone,
            call_retention: self.store.call_retention(tenant.id).await?,
        })
    }

    /// Deletes a call, leaving a tombstone for sync listings and streams. With
    /// `expected_etag`, only if the call is still at that version.
    pub async fn delete(
        &self,
        tenant: &Tenant,
        id: CallId,
        expected_etag: Option<&str>,
    ) -> Result<(), Error> {
        self.store.delete_call(tenant.id, id, expected_etag).await?;
        tracing::info!(call_id = %id, tenant = %tenant.name, "call deleted");
        Ok(())
    }
}

/// A `tool_id` filter; empty means "every tool".
fn tool_filter(tool_id: &str) -> Option<String> {
    Some(tool_id.to_owned()).filter(|tool_id| !tool_id.is_empty())
}

/// A time window from the client's instants: each a timestamp, and `time_max` after
/// `time_min` when both are given; every bad field goes to `violations`.
fn time_window(
    time_min: Option<ClientInstant>,
    time_max: Option<ClientInstant>,
    violations: &mut Violations,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let time_min = time_min.and_then(|time| violations.check(time.checked("time_min")));
    let time_max = time_max.and_then(|time| violations.check(time.checked("time_max")));
    if let (Some(time_min), Some(time_max)) = (time_min, time_max) {
        if time_min >= time_max {
            violations.add("time_max", "must be after time_min");
        }
    }
    (time_min, time_max)
}

/// The digits a `search` filter matches phone numbers by; empty means "no search". A search
/// without digits could match nothing and is refused.
fn search_filter(search: &str, violations: &mut Violations) -> Option<String> {
    if search.is_empty() {
        return None;
    }
    let digits = digits_of(search);
    if digits.is_empty() {
        violations.add("search", "must contain digits: it matches phone numbers");
    }
    Some(digits)
}
