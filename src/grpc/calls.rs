//! `calls.v1.CallService` over gRPC: authenticates from metadata, calls the RPC's function in
//! [`crate::api::calls`] (conversion and the service's rules) and maps errors to `Status`.
//! ListCalls writes its answer in wire form (`call_page`), the measured fast path.

use std::{pin::Pin, time::Instant};

use futures::Stream;
use tonic::{Request, Response, Status};

use super::{
    authorization,
    call_page::{EncodedPage, PageEncoder},
    observe, record_handled, record_started, watch, InFlightLimit, CALL_SERVICE,
};
use crate::{
    api,
    auth::Authenticator,
    pb::calls::v1::{self as pb, call_service_server::CallService},
    service::calls::Calls,
    Error,
};

/// Everything the call RPCs need; cheap to clone.
#[derive(Clone)]
pub struct CallApi {
    calls: Calls,
    authenticator: Authenticator,
    in_flight: InFlightLimit,
}

impl CallApi {
    pub fn new(calls: Calls, authenticator: Authenticator, in_flight: InFlightLimit) -> Self {
        CallApi {
            calls,
            authenticator,
            in_flight,
        }
    }
}

type WatchCallsStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchCallsResponse, Status>> + Send + 'static>>;

/// One unary RPC: observed, admitted by its key, then the shared function of the RPC.
macro_rules! unary {
    ($api:ident, $request:ident, $method:literal, $function:path) => {
        observe(
            &$api.in_flight,
            CALL_SERVICE,
            $method,
            $request.get_ref(),
            async {
                let tenant = $api
                    .authenticator
                    .admit(authorization($request.metadata()))
                    .await?;
                $function(&$api.calls, &tenant, $request.get_ref()).await
            },
        )
        .await
    };
}

#[tonic::async_trait]
impl CallService for CallApi {
    async fn create_call(
        &self,
        request: Request<pb::CreateCallRequest>,
    ) -> Result<Response<pb::CreateCallResponse>, Status> {
        unary!(self, request, "CreateCall", api::calls::create_call)
    }

    async fn get_call(
        &self,
        request: Request<pb::GetCallRequest>,
    ) -> Result<Response<pb::GetCallResponse>, Status> {
        unary!(self, request, "GetCall", api::calls::get_call)
    }

    async fn update_call(
        &self,
        request: Request<pb::UpdateCallRequest>,
    ) -> Result<Response<pb::UpdateCallResponse>, Status> {
        unary!(self, request, "UpdateCall", api::calls::update_call)
    }

    async fn delete_call(
        &self,
        request: Request<pb::DeleteCallRequest>,
    ) -> Result<Response<pb::DeleteCallResponse>, Status> {
        unary!(self, request, "DeleteCall", api::calls::delete_call)
    }

    async fn list_calls(
        &self,
        request: Request<pb::ListCallsRequest>,
    ) -> Result<Response<EncodedPage>, Status> {
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "ListCalls",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let input = api::calls::list_input(request.get_ref());
                self.calls
                    .list(&tenant, &input, PageEncoder::default())
                    .await
            },
        )
        .await
    }

    type WatchCallsStream = WatchCallsStream;

    async fn watch_calls(
        &self,
        request: Request<pb::WatchCallsRequest>,
    ) -> Result<Response<Self::WatchCallsStream>, Status> {
        const METHOD: &str = "WatchCalls";
        let started = Instant::now();
        record_started(CALL_SERVICE, METHOD);
        // A stream holds an in-flight slot only while it opens.
        let opened = match super::enter(&self.in_flight) {
            Ok(_slot) => async {
                api::check_request(request.get_ref())?;
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let input = api::calls::watch_input(request.get_ref());
                let events = self.calls.watch(&tenant, &input).await?;
                Ok::<_, Error>(watch::messages(events))
            }
            .await
            .map_err(Status::from),
            Err(status) => Err(status),
        };
        match opened {
            Ok(stream) => Ok(Response::new(watch::observed(stream, METHOD, started))),
            Err(status) => {
                record_handled(CALL_SERVICE, METHOD, status.code(), started);
                Err(status)
            }
        }
    }
}
