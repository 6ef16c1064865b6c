//! API keys: how a request proves which tenant it acts for.
//!
//! Keys are 32 random bytes shown once (`csk_<base64url>`); the database keeps only their
//! SHA-256 (enough for high-entropy secrets, and constant work per lookup). Resolved keys are
//! cached briefly; `callsd key revoke` notifies every replica to drop the cache at once.

use std::{
    collections::HashMap,
    ops::Deref,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    domain::TenantId,
    fair_shares::{FairShares, RequestSlot},
    store::{ApiKeyCreated, Store, Subscription, Tenant},
    Error,
};

const KEY_PREFIX: &str = "csk_";
/// Bounds the cache so a flood of random keys cannot grow memory.
const MAX_CACHED_KEYS: usize = 10_000;

/// Creates a key for `tenant_id` and stores its hash; the returned key is never stored.
pub async fn create_api_key(store: &Store, tenant_id: TenantId) -> Result<ApiKeyCreated, Error> {
    let mut secret = [0_u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let key_id = store.insert_api_key(tenant_id, &hash_key(&key)).await?;
    Ok(ApiKeyCreated { key_id, key })
}

fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Key hash -> the tenant it resolved to, and when.
type KeyCache = HashMap<Vec<u8>, (Tenant, Instant)>;

/// A tenant admitted to run one request within its fair share, until this drops.
pub struct Admitted {
    tenant: Tenant,
    _slot: RequestSlot,
}

impl Deref for Admitted {
    type Target = Tenant;

    fn deref(&self) -> &Tenant {
        &self.tenant
    }
}

/// Resolves the `authorization: Bearer <key>` metadata of a request to its tenant, and admits
/// the request within that tenant's fair share.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    cache: Arc<Mutex<KeyCache>>,
    cache_ttl: Duration,
    shares: FairShares,
}

impl Authenticator {
    pub fn new(store: Store, cache_ttl: Duration, shares: FairShares) -> Self {
        Authenticator {
            store,
            cache: Arc::default(),
            cache_ttl,
            shares,
        }
    }

    /// The caller's tenant, from the value of its `authorization` header (gRPC metadata or
    /// HTTP alike), admitted within its fair share (see [`FairShares`]).
    pub async fn admit(&self, authorization: Option<&str>) -> Result<Admitted, Error> {
        let tenant = self.authenticate(authorization).await?;
        let slot = self.shares.admit_request(tenant.id)?;
        Ok(Admitted {
            tenant,
            _slot: slot,
        })
    }

    /// Every tenant's fair shares, for what outlives one request (streams).
    pub fn shares(&self) -> &FairShares {
        &self.shares
    }

    /// The caller's tenant. Missing, malformed, unknown and revoked keys all give the same
    /// `Unauthenticated`, so a caller learns nothing about which keys exist.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Tenant, Error> {
        let key = authorization
            .and_then(bearer_key)
            .ok_or(Error::Unauthenticated)?;
        let key_hash = hash_key(key);
        if let Some(tenant) = self.cached(&key_hash) {
            return Ok(tenant);
        }
        let tenant = self
            .store
            .tenant_for_key_hash(&key_hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        self.remember(key_hash, tenant.clone());
        Ok(tenant)
    }

    /// Drops every cached key (a key was revoked somewhere).
    pub fn forget_all(&self) {
        self.lock_cache().clear();
    }

    /// Drops every cached key whenever `revocations` (the process's listener on the API-key
    /// channel) signals, a reconnect included: a revocation may have gone unheard. Ends when
    /// the listener stops.
    pub async fn forget_on_revocation(self, mut revocations: Subscription) {
        while revocations.changed().await.is_some() {
            self.forget_all();
        }
    }

    fn cached(&self, key_hash: &[u8]) -> Option<Tenant> {
        let cache = self.lock_cache();
        let (tenant, cached_at) = cache.get(key_hash)?;
        (cached_at.elapsed() < self.cache_ttl).then(|| tenant.clone())
    }

    fn remember(&self, key_hash: Vec<u8>, tenant: Tenant) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let mut cache = self.lock_cache();
        if cache.len() >= MAX_CACHED_KEYS {
            cache.clear();
        }
        cache.insert(key_hash, (tenant, Instant::now()));
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        // A panic while holding this lock cannot leave the map half-written; keep serving.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The API key of an `authorization: Bearer csk_...` header value.
fn bearer_key(authorization: &str) -> Option<&str> {
    let (scheme, key) = authorization.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && key.starts_with(KEY_PREFIX)).then_some(key)
}
