//! `calls.v1.CallService` over gRPC: authenticates from metadata, calls the RPC's function in
//! [`crate::api::calls`] (conversion and the service's rules) and maps errors to `Status`.
//! ListCalls writes its answer in wire form (`call_page`), the measured fast path.

use std::time::Instant;

use futures::StreamExt;
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

type WatchCallsStream = watch::BoxedStream<pb::WatchCallsResponse>;
type ExportCallsStream = watch::BoxedStream<pb::ExportCallsResponse>;

/// One unary RPC: observed, admitted by its key, then the shared function of the RPC.
macro_rules! unary {
    ($api:ident, $request:ident, $method:literal, $function:path) => {{
        // The handler's closure moves in references: the request stays where tonic put it.
        let $request = &$request;
        observe(
            &$api.in_flight,
            CALL_SERVICE,
            $method,
            $request.get_ref(),
            move || async move {
                let tenant = $api
                    .authenticator
                    .admit(authorization($request.metadata()))
                    .await?;
                $function(&$api.calls, &tenant, $request.get_ref()).await
            },
        )
        .await
    }};
}

/// One server-streaming RPC: an in-flight slot only while it opens, admitted by its key, then
/// `$open` with the tenant bound to `$tenant` (the stream, or the error the RPC ends with at
/// once); the stream's end is recorded in the RPC metrics.
macro_rules! server_stream {
    ($api:ident, $request:ident, $method:literal, |$tenant:ident| $open:expr) => {{
        let started = Instant::now();
        record_started(CALL_SERVICE, $method);
        let opened = match super::enter(&$api.in_flight) {
            Ok(_slot) => async {
                api::check_request($request.get_ref())?;
                let $tenant = $api
                    .authenticator
                    .admit(authorization($request.metadata()))
                    .await?;
                let stream: Result<watch::BoxedStream<_>, Error> = $open;
                stream
            }
            .await
            .map_err(Status::from),
            Err(status) => Err(status),
        };
        match opened {
            Ok(stream) => Ok(Response::new(watch::observed(stream, $method, started))),
            Err(status) => {
                record_handled(CALL_SERVICE, $method, status.code(), started);
                Err(status)
            }
        }
    }};
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
        let request = &request;
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "ListCalls",
            request.get_ref(),
            move || async move {
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
        server_stream!(self, request, "WatchCalls", |tenant| {
            let input = api::calls::watch_input(request.get_ref());
            let events = self.calls.watch(&tenant, &input).await?;
            Ok(watch::messages(events))
        })
    }

    type ExportCallsStream = ExportCallsStream;

    async fn export_calls(
        &self,
        request: Request<pb::ExportCallsRequest>,
    ) -> Result<Response<Self::ExportCallsStream>, Status> {
        server_stream!(self, request, "ExportCalls", |tenant| {
            let messages =
                api::personal_data::export_calls(&self.calls, &tenant, request.get_ref()).await?;
            Ok(Box::pin(
                messages.map(|message| message.map_err(Status::from)),
            ))
        })
    }

    async fn summarize_calls(
        &self,
        request: Request<pb::SummarizeCallsRequest>,
    ) -> Result<Response<pb::SummarizeCallsResponse>, Status> {
        unary!(
            self,
            request,
            "SummarizeCalls",
            api::personal_data::summarize_calls
        )
    }

    async fn purge_calls(
        &self,
        request: Request<pb::PurgeCallsRequest>,
    ) -> Result<Response<pb::PurgeCallsResponse>, Status> {
        unary!(self, request, "PurgeCalls", api::personal_data::purge_calls)
    }

    async fn get_tenant_settings(
        &self,
        request: Request<pb::GetTenantSettingsRequest>,
    ) -> Result<Response<pb::GetTenantSettingsResponse>, Status> {
        unary!(
            self,
            request,
            "GetTenantSettings",
            api::personal_data::get_tenant_settings
        )
    }
}
