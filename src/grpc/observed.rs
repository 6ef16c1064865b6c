//! Counts the RPCs of the services whose handlers are not ours (health, reflection) in the
//! same `grpc_server_*` metrics as CallService and WatchService (whose handlers record their
//! own in `observe`). It wraps the service at the HTTP level and reads the outcome where gRPC
//! puts it: the `grpc-status` header of a trailers-only answer, else the trailers; a stream
//! dropped before either was cut short by its client (`Canceled`).
//!
//! Only the methods listed are counted: the method name comes from the request's path, and a
//! client must not be able to mint label values.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use http_body::{Body as _, Frame};
use tonic::{
    body::Body,
    codegen::{http, BoxFuture, Bytes, Service},
    server::NamedService,
    Code, Status,
};

use super::{record_handled_as, record_started_as};

/// A method of a wrapped service and its go-grpc-prometheus type (`unary`, `server_stream`,
/// `bidi_stream`...).
pub type MethodType = (&'static str, &'static str);

/// `grpc.health.v1.Health`'s methods.
pub const HEALTH_METHODS: &[MethodType] = &[("Check", "unary"), ("Watch", "server_stream")];
/// The reflection services' one method: a stream of requests, a stream of answers.
pub const REFLECTION_METHODS: &[MethodType] = &[("ServerReflectionInfo", "bidi_stream")];

/// `inner`, with its `methods` counted in the `grpc_server_*` metrics.
pub fn observed<S: NamedService>(inner: S, methods: &'static [MethodType]) -> Observed<S> {
    Observed { inner, methods }
}

#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
    methods: &'static [MethodType],
}

impl<S: NamedService> NamedService for Observed<S> {
    const NAME: &'static str = S::NAME;
}

impl<S: NamedService> Observed<S> {
    /// The listed method a request path (`/grpc.health.v1.Health/Check`) names, if any.
    fn method_of(&self, path: &str) -> Option<MethodType> {
        let method = path
            .strip_prefix('/')?
            .strip_prefix(S::NAME)?
            .strip_prefix('/')?;
        self.methods
            .iter()
            .find(|(name, _)| *name == method)
            .copied()
    }
}

impl<S, B> Service<http::Request<B>> for Observed<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>
        + NamedService,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = self.method_of(request.uri().path());
        let response = self.inner.call(request);
        let Some((method, kind)) = method else {
            return Box::pin(response);
        };
        let started = Instant::now();
        record_started_as(S::NAME, method, kind);
        Box::pin(async move {
            let response = response.await?;
            let code = response
                .headers()
                .get("grpc-status")
                .map(|value| Code::from_bytes(value.as_bytes()));
            let outcome = Outcome {
                method,
                kind,
                service: S::NAME,
                started,
                code,
                ended: false,
            };
            Ok(response.map(|body| Body::new(ObservedBody { body, outcome })))
        })
    }
}

/// The answer's body, recording the RPC when it is dropped (after its end, or cut short).
struct ObservedBody {
    body: Body,
    outcome: Outcome,
}

struct Outcome {
    service: &'static str,
    method: &'static str,
    kind: &'static str,
    started: Instant,
    /// From the headers or the trailers, once seen.
    code: Option<Code>,
    /// The body was read to its end.
    ended: bool,
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.body).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(status) = frame
                    .trailers_ref()
                    .and_then(|trailers| trailers.get("grpc-status"))
                {
                    self.outcome.code = Some(Code::from_bytes(status.as_bytes()));
                }
            }
            Poll::Ready(Some(Err(status))) => self.outcome.code = Some(status.code()),
            Poll::Ready(None) => self.outcome.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        let outcome = &self.outcome;
        let code = match outcome.code {
            Some(code) => code,
            None if outcome.ended || self.body.is_end_stream() => Code::Unknown,
            None => Code::Cancelled,
        };
        record_handled_as(
            outcome.service,
            outcome.method,
            outcome.kind,
            code,
            outcome.started,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Named;

    impl NamedService for Named {
        const NAME: &'static str = "grpc.health.v1.Health";
    }

    #[test]
    fn only_listed_methods_of_the_service_are_counted() {
        let observed = observed(Named, HEALTH_METHODS);
        assert_eq!(
            observed.method_of("/grpc.health.v1.Health/Check"),
            Some(("Check", "unary"))
        );
        assert_eq!(
            observed.method_of("/grpc.health.v1.Health/Watch"),
            Some(("Watch", "server_stream"))
        );
        for path in [
            "/grpc.health.v1.Health/Anything",
            "/grpc.health.v1.Health/Check/more",
            "/grpc.health.v1.HealthX/Check",
            "grpc.health.v1.Health/Check",
        ] {
            assert_eq!(observed.method_of(path), None, "{path}");
        }
    }
}
