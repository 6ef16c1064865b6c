//! Fair shares between tenants: a token bucket per tenant (rate and burst), a cap on each
//! tenant's requests in flight and on its open WatchCalls streams. A tenant over its share is
//! refused at once with RESOURCE_EXHAUSTED and a retry delay, so it cannot take the whole
//! process-wide in-flight limit (`CALLSD_MAX_IN_FLIGHT`) from the others.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{domain::TenantId, error::TenantLimit, Error};

/// Each tenant's share of the process.
#[derive(Debug, Clone, PartialEq)]
pub struct FairShareSettings {
    /// Requests a second a tenant may start on average; 0 turns the bucket off.
    pub rate: f64,
    /// Requests a tenant may start at once after being idle.
    pub burst: u32,
    /// Requests of one tenant in flight at once in this process.
    pub max_in_flight: usize,
    /// WatchCalls streams of one tenant open at once in this process.
    pub max_streams: usize,
}

/// Held while a request runs: its place in the tenant's in-flight share.
#[derive(Debug)]
pub struct RequestSlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// Held while a WatchCalls stream is open.
#[derive(Debug)]
pub struct StreamSlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// The shares of every tenant seen by this process; cheap to clone.
#[derive(Clone)]
pub struct FairShares {
    settings: Arc<FairShareSettings>,
    tenants: Arc<Mutex<HashMap<TenantId, Arc<Share>>>>,
}

struct Share {
    bucket: Mutex<Bucket>,
    in_flight: Arc<Semaphore>,
    streams: Arc<Semaphore>,
}

/// Tokens refill at `rate` a second up to `burst`; each request takes one.
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl FairShares {
    pub fn new(settings: FairShareSettings) -> Self {
        FairShares {
            settings: Arc::new(settings),
            tenants: Arc::default(),
        }
    }

    /// Admits one request of `tenant_id`, or says how long to wait before trying again.
    pub fn admit_request(&self, tenant_id: TenantId) -> Result<RequestSlot, Error> {
        let share = self.share(tenant_id);
        // The in-flight slot first: a request refused for it does not spend a token.
        let slot =
            share
                .in_flight
                .clone()
                .try_acquire_owned()
                .map_err(|_| Error::TenantLimited {
                    limit: TenantLimit::InFlight,
                    retry_after: Some(Duration::from_millis(50)),
                })?;
        self.take_token(&share)?;
        Ok(RequestSlot(slot))
    }

    /// Admits one more open stream of `tenant_id`.
    pub fn open_stream(&self, tenant_id: TenantId) -> Result<StreamSlot, Error> {
        self.share(tenant_id)
            .streams
            .clone()
            .try_acquire_owned()
            .map(StreamSlot)
            .map_err(|_| Error::TenantLimited {
                limit: TenantLimit::Streams,
                retry_after: Some(Duration::from_secs(1)),
            })
    }

    fn take_token(&self, share: &Share) -> Result<(), Error> {
        let (rate, burst) = (self.settings.rate, f64::from(self.settings.burst.max(1)));
        if rate <= 0.0 {
            return Ok(());
        }
        let mut bucket = lock(&share.bucket);
        let now = Instant::now();
        let refill = now.duration_since(bucket.refilled).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64(((1.0 - bucket.tokens) / rate).min(60.0));
        Err(Error::TenantLimited {
            limit: TenantLimit::Rate,
            retry_after: Some(wait.max(Duration::from_millis(1))),
        })
    }

    fn share(&self, tenant_id: TenantId) -> Arc<Share> {
        let mut tenants = lock(&self.tenants);
        tenants
            .entry(tenant_id)
            .or_insert_with(|| {
                Arc::new(Share {
                    bucket: Mutex::new(Bucket {
                        tokens: f64::from(self.settings.burst.max(1)),
                        refilled: Instant::now(),
                    }),
                    in_flight: Arc::new(Semaphore::new(self.settings.max_in_flight.max(1))),
                    streams: Arc::new(Semaphore::new(self.settings.max_streams.max(1))),
                })
            })
            .clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here can be left half-written by a panic; keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(rate: f64, burst: u32, max_in_flight: usize) -> FairShares {
        FairShares::new(FairShareSettings {
            rate,
            burst,
            max_in_flight,
            max_streams: 2,
        })
    }

    fn limit_of(result: Result<impl std::fmt::Debug, Error>) -> Option<TenantLimit> {
        match result {
            Ok(_) => None,
            Err(Error::TenantLimited { limit, .. }) => Some(limit),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_tenant_gets_its_burst_then_is_told_to_wait() {
        let shares = shares(1.0, 3, 100);
        let tenant = TenantId::new_v7();
        for _ in 0..3 {
            assert_eq!(limit_of(shares.admit_request(tenant)), None);
        }
        match shares.admit_request(tenant) {
            Err(Error::TenantLimited {
                limit: TenantLimit::Rate,
                retry_after: Some(wait),
            }) => assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1)),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        // Another tenant has a bucket of its own.
        assert_eq!(limit_of(shares.admit_request(TenantId::new_v7())), None);
    }

    #[test]
    fn requests_in_flight_are_capped_per_tenant_until_one_ends() {
        let shares = shares(0.0, 1, 2);
        let tenant = TenantId::new_v7();
        let first = shares.admit_request(tenant).unwrap();
        let _second = shares.admit_request(tenant).unwrap();
        assert_eq!(
            limit_of(shares.admit_request(tenant)),
            Some(TenantLimit::InFlight)
        );
        assert_eq!(limit_of(shares.admit_request(TenantId::new_v7())), None);
        drop(first);
        assert_eq!(limit_of(shares.admit_request(tenant)), None);
    }

    #[test]
    fn open_streams_are_capped_per_tenant() {
        let shares = shares(0.0, 1, 2);
        let tenant = TenantId::new_v7();
        let _streams = [
            shares.open_stream(tenant).unwrap(),
            shares.open_stream(tenant).unwrap(),
        ];
        assert_eq!(
            limit_of(shares.open_stream(tenant)),
            Some(TenantLimit::Streams)
        );
    }
}
