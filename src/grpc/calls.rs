//! `calls.v1.CallService`: authenticate, convert, call the store, convert back.

use std::{pin::Pin, time::Instant};

use futures::Stream;
use tonic::{Request, Response, Status};

use super::{
    authorization, call_page::EncodedPage, convert, listing, observe, record_handled,
    record_started, watch, InFlightLimit, CALL_SERVICE,
};
use crate::{
    auth::Authenticator,
    feed::Feed,
    pb::calls::v1::{self as pb, call_service_server::CallService},
    store::Store,
    tokens::TokenSealer,
    Error,
};

/// Everything the call RPCs need; cheap to clone.
#[derive(Clone)]
pub struct CallApi {
    pub(super) store: Store,
    pub(super) authenticator: Authenticator,
    pub(super) sealer: TokenSealer,
    pub(super) feed: Feed,
    in_flight: InFlightLimit,
}

impl CallApi {
    pub fn new(
        store: Store,
        authenticator: Authenticator,
        sealer: TokenSealer,
        feed: Feed,
        in_flight: InFlightLimit,
    ) -> Self {
        CallApi {
            store,
            authenticator,
            sealer,
            feed,
            in_flight,
        }
    }
}

type WatchCallsStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchCallsResponse, Status>> + Send + 'static>>;

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
                let call = self
                    .store
                    .create_call(tenant.id, request_id, &fields)
                    .await?;
                tracing::info!(call_id = %call.id, tenant = %tenant.name, "call created");
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
                let call = self.store.get_call(tenant.id, id).await?;
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
                let call = self
                    .store
                    .update_call(tenant.id, id, expected_etag, |current| {
                        let mut merged = convert::call_to_proto(current.clone());
                        super::update_mask::apply(&mut merged, patch, &paths);
                        convert::call_fields(&merged, tenant.time_zone)
                    })
                    .await?;
                tracing::info!(call_id = %call.id, tenant = %tenant.name, "call updated");
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
                self.store.delete_call(tenant.id, id, expected_etag).await?;
                tracing::info!(call_id = %id, tenant = %tenant.name, "call deleted");
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
                listing::list_calls(self, &tenant, request.get_ref()).await
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
                watch::open(self, &tenant, request.get_ref()).await
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
