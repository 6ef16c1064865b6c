//! `calls.v1.CallService` over gRPC: authenticate, convert the request, call the
//! [`Calls`] service, convert its answer. The rules live in [`crate::service::calls`].

use std::{pin::Pin, time::Instant};

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{
    authorization,
    call_page::{EncodedPage, PageEncoder},
    convert, observe, personal_data, record_handled, record_started, watch, InFlightLimit,
    CALL_SERVICE,
};
use crate::{
    auth::Authenticator,
    pb::calls::v1::{self as pb, call_service_server::CallService},
    service::calls::{Calls, ListCallsInput, WatchCallsInput},
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
type ExportCallsStream = watch::BoxedStream<pb::ExportCallsResponse>;

#[tonic::async_trait]
impl CallService for CallApi {
    async fn create_call(
        &self,
        request: Request<pb::CreateCallRequest>,
    ) -> Result<Response<pb::CreateCallResponse>, Status> {
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "CreateCall",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let request = request.get_ref();
                let call = request
                    .call
                    .as_ref()
                    .ok_or_else(|| Error::invalid("call", "is required"))?;
                let fields = convert::call_fields(call, tenant.time_zone)?;
                let request_id = Some(request.request_id.as_str()).filter(|id| !id.is_empty());
                let call = self.calls.create(&tenant, request_id, &fields).await?;
                Ok(pb::CreateCallResponse {
                    call: Some(convert::call_to_proto(call)),
                })
            },
        )
        .await
    }

    async fn get_call(
        &self,
        request: Request<pb::GetCallRequest>,
    ) -> Result<Response<pb::GetCallResponse>, Status> {
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "GetCall",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let id = convert::call_id("id", &request.get_ref().id)?;
                let call = self.calls.get(&tenant, id).await?;
                Ok(pb::GetCallResponse {
                    call: Some(convert::call_to_proto(call)),
                })
            },
        )
        .await
    }

    async fn update_call(
        &self,
        request: Request<pb::UpdateCallRequest>,
    ) -> Result<Response<pb::UpdateCallResponse>, Status> {
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "UpdateCall",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let request = request.get_ref();
                let patch = request
                    .call
                    .as_ref()
                    .ok_or_else(|| Error::invalid("call", "is required"))?;
                let id = convert::call_id("call.id", &patch.id)?;
                let paths = super::update_mask::mask_paths(patch, request.update_mask.as_ref())?;
                let expected_etag = (!patch.etag.is_empty()).then_some(patch.etag.as_str());
                // The mask names proto fields: the patch is merged as a proto, then validated
                // like a whole call.
                let call = self
                    .calls
                    .update(&tenant, id, expected_etag, |current| {
                        let mut merged = convert::call_to_proto(current.clone());
                        super::update_mask::apply(&mut merged, patch, &paths);
                        convert::call_fields(&merged, tenant.time_zone)
                    })
                    .await?;
                Ok(pb::UpdateCallResponse {
                    call: Some(convert::call_to_proto(call)),
                })
            },
        )
        .await
    }

    async fn delete_call(
        &self,
        request: Request<pb::DeleteCallRequest>,
    ) -> Result<Response<pb::DeleteCallResponse>, Status> {
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "DeleteCall",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let request = request.get_ref();
                let id = convert::call_id("id", &request.id)?;
                let expected_etag = (!request.etag.is_empty()).then_some(request.etag.as_str());
                self.calls.delete(&tenant, id, expected_etag).await?;
                Ok(pb::DeleteCallResponse {})
            },
        )
        .await
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
                let request = request.get_ref();
                let input = ListCallsInput {
                    page_size: request.page_size,
                    page_token: &request.page_token,
                    sync_token: &request.sync_token,
                    time_min: request.time_min.as_ref().map(convert::client_instant),
                    time_max: request.time_max.as_ref().map(convert::client_instant),
                    tool_id: &request.tool_id,
                    search: &request.search,
                };
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
        let opened = match self.in_flight.enter() {
            Ok(_slot) => async {
                super::check_request(request.get_ref())?;
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let request = request.get_ref();
                let input = WatchCallsInput {
                    tool_id: &request.tool_id,
                    search: &request.search,
                    sync_token: &request.sync_token,
                    send_initial_state: request.send_initial_state,
                };
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

    type ExportCallsStream = ExportCallsStream;

    async fn export_calls(
        &self,
        request: Request<pb::ExportCallsRequest>,
    ) -> Result<Response<Self::ExportCallsStream>, Status> {
        const METHOD: &str = "ExportCalls";
        let started = Instant::now();
        record_started(CALL_SERVICE, METHOD);
        // Like WatchCalls: an in-flight slot while it opens, a tenant stream slot while open.
        let opened = match self.in_flight.enter() {
            Ok(_slot) => async {
                super::check_request(request.get_ref())?;
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let input = personal_data::export_input(request.get_ref());
                let events = self.calls.export(&tenant, &input).await?;
                let messages: ExportCallsStream = Box::pin(events.map(|event| {
                    event
                        .map(personal_data::export_message)
                        .map_err(Status::from)
                }));
                Ok::<_, Error>(messages)
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

    async fn summarize_calls(
        &self,
        request: Request<pb::SummarizeCallsRequest>,
    ) -> Result<Response<pb::SummarizeCallsResponse>, Status> {
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "SummarizeCalls",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let input = personal_data::summarize_input(request.get_ref());
                let summary = self.calls.summarize(&tenant, &input).await?;
                Ok(personal_data::summary_response(summary))
            },
        )
        .await
    }

    async fn purge_calls(
        &self,
        request: Request<pb::PurgeCallsRequest>,
    ) -> Result<Response<pb::PurgeCallsResponse>, Status> {
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "PurgeCalls",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let input = personal_data::purge_input(request.get_ref());
                let outcome = self.calls.purge(&tenant, &input).await?;
                Ok(personal_data::purge_response(outcome))
            },
        )
        .await
    }

    async fn get_tenant_settings(
        &self,
        request: Request<pb::GetTenantSettingsRequest>,
    ) -> Result<Response<pb::GetTenantSettingsResponse>, Status> {
        observe(
            &self.in_flight,
            CALL_SERVICE,
            "GetTenantSettings",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let settings = self.calls.tenant_settings(&tenant).await?;
                Ok(personal_data::tenant_settings(settings))
            },
        )
        .await
    }
}
