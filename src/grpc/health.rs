//! `grpc.health.v1.Health` whose Watch streams end at shutdown.
//!
//! tonic-health's Watch stream follows a status forever; the server's graceful shutdown waits
//! for every open stream, so one open Watch held shutdown until its timeout. This wraps
//! tonic-health's service: Check is unchanged, and a Watch stream ends with UNAVAILABLE
//! (reason `SHUTTING_DOWN`, like WatchCalls) once `stop` fires, after the drain has let it
//! report NOT_SERVING.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::{
    pb::{
        health_server::{Health, HealthServer},
        HealthCheckRequest, HealthCheckResponse,
    },
    server::{HealthReporter, HealthService},
};

use crate::Error;

/// The health service over `reporter`'s statuses; its Watch streams end when `stop` fires.
pub fn health_service(
    reporter: HealthReporter,
    stop: CancellationToken,
) -> HealthServer<StoppingHealth> {
    HealthServer::new(StoppingHealth {
        inner: HealthService::from_health_reporter(reporter),
        stop,
    })
}

pub struct StoppingHealth {
    inner: HealthService,
    stop: CancellationToken,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for StoppingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        let stream =
            futures::stream::unfold(Some((statuses, self.stop.clone())), |state| async move {
                let (mut statuses, stop) = state?;
                tokio::select! {
                    biased;
                    () = stop.cancelled() => Some((Err(Status::from(Error::ShuttingDown)), None)),
                    next = statuses.next() => next.map(|item| (item, Some((statuses, stop)))),
                }
            })
            .boxed();
        Ok(Response::new(stream))
    }
}
