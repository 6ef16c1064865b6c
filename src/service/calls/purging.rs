//! PurgeCalls (AIP-165): erase a tenant's calls by phone number and/or time window. Without
//! `force` nothing changes: the answer counts the calls and samples their ids. With it the
//! calls are erased in batches of [`ERASE_BATCH`], each its own short transaction (see
//! `store/erasure.rs` for every copy scrubbed), at most [`MAX_ERASED_PER_REQUEST`] per
//! request: a client repeats the request until it erases nothing. The phone number is never
//! logged.

use super::{listing::ClientInstant, time_window, Calls};
use crate::{
    domain::{digits_of, CallId},
    error::Violations,
    store::{EraseScope, Tenant},
    Error,
};

/// Fewest digits a purge by number takes: fewer would match a large share of any tenant's
/// calls (and the digit-gram index needs four).
pub const MIN_PURGE_DIGITS: usize = 4;
/// Calls erased per transaction.
pub const ERASE_BATCH: usize = 500;
/// Calls erased per request, so that one request's work is bounded.
pub const MAX_ERASED_PER_REQUEST: usize = 10_000;
/// Most calls a preview counts.
pub const MAX_PREVIEW_COUNT: usize = 1_000_000;
/// Ids returned in `purge_sample`.
pub const SAMPLE_SIZE: usize = 100;

/// A PurgeCalls request as the front door read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PurgeCallsInput<'a> {
    pub phone_number: &'a str,
    pub time_min: Option<ClientInstant>,
    pub time_max: Option<ClientInstant>,
    pub force: bool,
}

/// What a purge did, or would do.
#[derive(Debug, Clone, Default)]
pub struct PurgeOutcome {
    /// Calls matched (preview) or erased (force).
    pub purge_count: i64,
    pub purge_sample: Vec<CallId>,
}

impl Calls {
    pub async fn purge(
        &self,
        tenant: &Tenant,
        request: &PurgeCallsInput<'_>,
    ) -> Result<PurgeOutcome, Error> {
        let scope = validate(request)?;
        if !request.force {
            let (purge_count, purge_sample) = self
                .store
                .count_erasable(tenant.id, &scope, MAX_PREVIEW_COUNT, SAMPLE_SIZE)
                .await?;
            return Ok(PurgeOutcome {
                purge_count,
                purge_sample,
            });
        }
        let mut outcome = PurgeOutcome::default();
        let mut erased_total = 0;
        while erased_total < MAX_ERASED_PER_REQUEST {
            let batch = ERASE_BATCH.min(MAX_ERASED_PER_REQUEST - erased_total);
            let erased = self.store.erase_calls(tenant.id, &scope, batch).await?;
            erased_total += erased.len();
            let room = SAMPLE_SIZE.saturating_sub(outcome.purge_sample.len());
            outcome
                .purge_sample
                .extend(erased.iter().copied().take(room));
            if erased.len() < batch {
                break;
            }
        }
        let mut history_scrubbed = 0;
        if let EraseScope::Purge {
            digits: Some(digits),
            time_min,
            time_max,
        } = &scope
        {
            history_scrubbed = self
                .store
                .scrub_number_history(tenant.id, digits, *time_min, *time_max)
                .await?;
        }
        outcome.purge_count = i64::try_from(erased_total).unwrap_or(i64::MAX);
        tracing::info!(
            tenant = %tenant.name,
            erased = erased_total,
            history_scrubbed,
            "calls purged"
        );
        Ok(outcome)
    }
}

/// The request's scope, every bad field reported at once. A purge with no filter at all is
/// refused: erasing every call takes an explicit window.
fn validate(request: &PurgeCallsInput<'_>) -> Result<EraseScope, Error> {
    let mut violations = Violations::default();
    let digits = if request.phone_number.is_empty() {
        None
    } else {
        let digits = digits_of(request.phone_number);
        if digits.len() < MIN_PURGE_DIGITS {
            violations.add(
                "phone_number",
                format!("must contain at least {MIN_PURGE_DIGITS} digits"),
            );
        }
        Some(digits)
    };
    let (time_min, time_max) = time_window(request.time_min, request.time_max, &mut violations);
    if request.phone_number.is_empty() && request.time_min.is_none() && request.time_max.is_none() {
        violations.add(
            "phone_number",
            "a purge needs phone_number, time_min or time_max: it never erases every call \
             by default",
        );
    }
    violations.finish(|| EraseScope::Purge {
        digits,
        time_min,
        time_max,
    })
}
