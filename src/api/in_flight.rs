//! How many requests may run at once in this process (`CALLSD_MAX_IN_FLIGHT`), gRPC and REST
//! together: past it, requests are refused at once instead of queueing for the database pool.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The shared in-flight limit; cheap to clone.
#[derive(Debug, Clone)]
pub struct InFlightLimit(Arc<Semaphore>);

impl InFlightLimit {
    pub fn new(max_in_flight: usize) -> Self {
        InFlightLimit(Arc::new(Semaphore::new(max_in_flight.max(1))))
    }

    /// A slot for one request, held until the returned permit drops; `None` when every slot
    /// is taken (the door answers with [`crate::Error::Overloaded`]).
    pub fn try_enter(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}
