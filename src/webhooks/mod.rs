//! Webhooks: delivery of every call change to the tenant's watches, at least once and in commit
//! order per watch, signed (Standard Webhooks), with Basic or OAuth2 credentials, behind an
//! SSRF guard.
//!
//! - [`worker`]: leases watches, delivers their changes, records each attempt.
//! - [`sender`]: one HTTP request with its headers, signature and credentials.
//! - [`payload`] and [`template`]: the body, default envelope or the watch's template.
//! - [`signing`]: Standard Webhooks signatures and key secrets.
//! - [`oauth`]: bearer tokens, cached per watch.
//! - [`ssrf`]: which addresses webhooks may reach, at write time and at connect time.
//! - [`secrets`]: AES-GCM for the write-only secrets at rest.

pub mod oauth;
pub mod payload;
pub mod secrets;
pub mod sender;
pub mod signing;
pub mod ssrf;
pub mod template;
mod worker;

use std::time::Duration;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use secrets::{parse_secret_key, SecretBox, SecretKey};
pub use sender::{Sender, SentRequest, Timeouts};
pub use ssrf::{parse_allowed_cidrs, AddressGuard, AllowedCidrs};

use crate::{
    domain::{Delivery, DeliveryId, DeliveryOutcome, TenantId, Watch},
    store::{stored_body, Store, Subscription},
    Error,
};

/// The name under which the generated secret key is kept when `CALLSD_SECRET_KEY` is unset.
const SECRET_KEY_NAME: &str = "webhook-secret-key";

/// Parses `CALLSD_WEBHOOK_RETRY_SCHEDULE`: comma-separated delays such as `0s,5s,5m,30m`.
/// The first is the delay of the first attempt (deliveries start at once), each next one the
/// delay after a failure; after the last one the delivery is marked failed.
pub fn parse_retry_schedule(text: &str) -> Result<RetrySchedule, String> {
    let delays = text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| humantime::parse_duration(part).map_err(|error| format!("{part:?}: {error}")))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err("needs at least one delay".to_owned());
    }
    Ok(RetrySchedule(delays))
}

/// The retry schedule: the delay before each attempt of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

/// How deliveries run.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Delay before attempt n+1 is `retry_schedule[n]`; past its end the delivery has failed.
    pub retry_schedule: Vec<Duration>,
    pub timeouts: Timeouts,
    /// How long a replica owns a watch without renewing (renewed with every attempt).
    pub lease: Duration,
    /// A worker looks for due watches this often when no notification woke it.
    pub poll_interval: Duration,
    /// A watch failing for this long is disabled.
    pub disable_after: Duration,
    /// How long the delivery log keeps attempts.
    pub retention: Duration,
    /// Watches one replica delivers to at the same time.
    pub concurrency: usize,
    pub allowed_cidrs: AllowedCidrs,
}

/// Everything webhooks need; cheap to clone. Its parts are its own: the service asks it to
/// check an address, seal a secret or send an event again, and the worker (a child module)
/// uses the rest.
#[derive(Clone)]
pub struct Webhooks {
    store: Store,
    secrets: SecretBox,
    guard: AddressGuard,
    sender: Sender,
    settings: DeliverySettings,
}

impl Webhooks {
    /// Builds the webhook machinery; `secret_key` unset means a key generated once and kept in
    /// the database (`server_secrets`), shared by every replica.
    pub async fn new(
        store: Store,
        secret_key: Option<&SecretKey>,
        settings: DeliverySettings,
    ) -> Result<Self, Error> {
        let key = match secret_key {
            Some(key) => key.clone(),
            None => SecretKey::from_bytes(&store.shared_secret(SECRET_KEY_NAME).await?)
                .map_err(|error| Error::Internal(anyhow::anyhow!("stored secret key {error}")))?,
        };
        let secrets = SecretBox::new(&key);
        let guard = AddressGuard::new(settings.allowed_cidrs.clone());
        let sender = Sender::new(
            store.clone(),
            secrets.clone(),
            guard.clone(),
            settings.timeouts,
        )?;
        Ok(Webhooks {
            store,
            secrets,
            guard,
            sender,
            settings,
        })
    }

    /// Checks an address a watch is to send to (a receiver or an OAuth2 token endpoint): an
    /// http(s) URL without credentials whose host is, or resolves only to, addresses webhooks
    /// may reach. The error says why not, for the client to read.
    pub async fn check_address(&self, address: &str) -> Result<(), String> {
        self.guard.check_url(address).await.map(|_| ())
    }

    /// Seals a write-only secret of `tenant_id`'s watch for storage; bound to the tenant, so a
    /// sealed secret copied to another tenant's row does not open.
    pub fn seal_secret(&self, tenant_id: TenantId, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.secrets.seal(tenant_id.as_bytes(), plaintext)
    }

    /// Starts this replica's delivery worker, woken by `changes`; it stops when `stop` is
    /// cancelled.
    pub fn start(&self, changes: Subscription, tasks: &TaskTracker, stop: CancellationToken) {
        tasks.spawn(worker::Worker::new(self.clone()).run(changes, stop));
    }

    /// Sends the event of `delivery` again, now, with the same `webhook-id` and body, and
    /// records the attempt. It does not change where the watch's cursor is.
    ///
    /// A body the log keeps only the start of, or that an erasure emptied, cannot be sent
    /// again: the attempt is recorded as failed, saying so, rather than sending a body the
    /// receiver could not parse.
    pub async fn resend(&self, watch: &Watch, delivery: &Delivery) -> Result<Delivery, Error> {
        let attempt_time = chrono::Utc::now();
        // PurgeCalls and the retention sweep empty the bodies of the calls they erase.
        let erased = delivery.request_body.is_empty().then(|| {
            "this attempt's body is empty (erased with its call by PurgeCalls or retention, or \
             never rendered), so it cannot be sent again"
                .to_owned()
        });
        let cut = stored_body::was_cut(&delivery.request_body).then(|| {
            format!(
                "the delivery log keeps only the first {} bytes of this event's body, so it \
                 cannot be sent again",
                stored_body::MAX_STORED_BODY_BYTES
            )
        });
        let sent = if let Some(error) = erased.or(cut) {
            SentRequest {
                headers: Vec::new(),
                status: 0,
                response_body: String::new(),
                error,
                duration: Duration::ZERO,
                retry_after: None,
            }
        } else {
            self.sender
                .send(watch, &delivery.event_id, &delivery.request_body)
                .await
        };
        let outcome = if sent.succeeded() {
            DeliveryOutcome::Succeeded
        } else {
            DeliveryOutcome::Failed
        };
        let resent = Delivery {
            id: DeliveryId::new_v7(),
            attempt: delivery.attempt + 1,
            attempt_time,
            request_headers: sent.headers,
            response_status: i32::from(sent.status),
            response_body: sent.response_body,
            error: sent.error,
            duration: sent.duration,
            outcome,
            manual: true,
            ..delivery.clone()
        };
        self.store.record_manual_attempt(&resent).await?;
        Ok(resent)
    }
}
