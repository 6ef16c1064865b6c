//! `calls.v1.WatchService` over gRPC: authenticates from metadata, calls the RPC's function in
//! [`crate::api::watches`] (conversion and the service's rules) and maps errors to `Status`.

use tonic::{Request, Response, Status};

use super::{authorization, observe, InFlightLimit};
use crate::{
    api,
    auth::Authenticator,
    pb::calls::v1::{self as pb, watch_service_server::WatchService},
    service::watches::Watches,
};

/// The gRPC service name, as health and metrics report it.
pub const WATCH_SERVICE: &str = "calls.v1.WatchService";

/// Everything the watch RPCs need; cheap to clone.
#[derive(Clone)]
pub struct WatchApi {
    authenticator: Authenticator,
    watches: Watches,
    in_flight: InFlightLimit,
}

impl WatchApi {
    pub fn new(authenticator: Authenticator, watches: Watches, in_flight: InFlightLimit) -> Self {
        WatchApi {
            authenticator,
            watches,
            in_flight,
        }
    }
}

/// One unary RPC: observed, admitted by its key, then the shared function of the RPC.
macro_rules! unary {
    ($api:ident, $request:ident, $method:literal, $function:path) => {{
        // The handler's closure moves in references: the request stays where tonic put it.
        let $request = &$request;
        observe(
            &$api.in_flight,
            WATCH_SERVICE,
            $method,
            $request.get_ref(),
            move || async move {
                let tenant = $api
                    .authenticator
                    .admit(authorization($request.metadata()))
                    .await?;
                $function(&$api.watches, &tenant, $request.get_ref()).await
            },
        )
        .await
    }};
}

#[tonic::async_trait]
impl WatchService for WatchApi {
    async fn create_watch(
        &self,
        request: Request<pb::CreateWatchRequest>,
    ) -> Result<Response<pb::CreateWatchResponse>, Status> {
        unary!(self, request, "CreateWatch", api::watches::create_watch)
    }

    async fn get_watch(
        &self,
        request: Request<pb::GetWatchRequest>,
    ) -> Result<Response<pb::GetWatchResponse>, Status> {
        unary!(self, request, "GetWatch", api::watches::get_watch)
    }

    async fn update_watch(
        &self,
        request: Request<pb::UpdateWatchRequest>,
    ) -> Result<Response<pb::UpdateWatchResponse>, Status> {
        unary!(self, request, "UpdateWatch", api::watches::update_watch)
    }

    async fn delete_watch(
        &self,
        request: Request<pb::DeleteWatchRequest>,
    ) -> Result<Response<pb::DeleteWatchResponse>, Status> {
        unary!(self, request, "DeleteWatch", api::watches::delete_watch)
    }

    async fn list_watches(
        &self,
        request: Request<pb::ListWatchesRequest>,
    ) -> Result<Response<pb::ListWatchesResponse>, Status> {
        unary!(self, request, "ListWatches", api::watches::list_watches)
    }

    async fn create_crypto_key(
        &self,
        request: Request<pb::CreateCryptoKeyRequest>,
    ) -> Result<Response<pb::CreateCryptoKeyResponse>, Status> {
        unary!(
            self,
            request,
            "CreateCryptoKey",
            api::watches::create_crypto_key
        )
    }

    async fn list_crypto_keys(
        &self,
        request: Request<pb::ListCryptoKeysRequest>,
    ) -> Result<Response<pb::ListCryptoKeysResponse>, Status> {
        unary!(
            self,
            request,
            "ListCryptoKeys",
            api::watches::list_crypto_keys
        )
    }

    async fn delete_crypto_key(
        &self,
        request: Request<pb::DeleteCryptoKeyRequest>,
    ) -> Result<Response<pb::DeleteCryptoKeyResponse>, Status> {
        unary!(
            self,
            request,
            "DeleteCryptoKey",
            api::watches::delete_crypto_key
        )
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        unary!(
            self,
            request,
            "ListDeliveries",
            api::watches::list_deliveries
        )
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
        unary!(self, request, "RetryDelivery", api::watches::retry_delivery)
    }

    async fn preview_watch_payload(
        &self,
        request: Request<pb::PreviewWatchPayloadRequest>,
    ) -> Result<Response<pb::PreviewWatchPayloadResponse>, Status> {
        unary!(
            self,
            request,
            "PreviewWatchPayload",
            api::watches::preview_watch_payload
        )
    }
}
