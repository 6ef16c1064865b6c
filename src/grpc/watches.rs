//! `calls.v1.WatchService` over gRPC: authenticates, converts the messages to domain inputs
//! and back, and maps errors; the rules are the service's ([`crate::service::watches`]).

use tonic::{Request, Response, Status};

use super::{
    authorization, convert, observe, page_budget,
    watch_convert::{self, crypto_key_to_proto, delivery_to_proto, watch_to_proto},
    watch_mask, InFlightLimit,
};
use crate::{
    auth::Authenticator,
    pb::calls::v1::{self as pb, watch_service_server::WatchService},
    service::watches::{PageRequest, PayloadPreview, Watches},
    Error,
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

/// `items` as proto messages, as many as fit in one answer (see [`page_budget`]).
fn page_of<Item, Message: prost::Message>(
    items: &[Item],
    to_proto: impl Fn(&Item) -> Message,
) -> Vec<Message> {
    let mut page: Vec<Message> = items.iter().map(to_proto).collect();
    page.truncate(page_budget::items_that_fit(&page));
    page
}

#[tonic::async_trait]
impl WatchService for WatchApi {
    async fn create_watch(
        &self,
        request: Request<pb::CreateWatchRequest>,
    ) -> Result<Response<pb::CreateWatchResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "CreateWatch",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let watch = request
                    .get_ref()
                    .watch
                    .as_ref()
                    .ok_or_else(|| Error::invalid("watch", "is required"))?;
                let draft = watch_convert::watch_draft(watch);
                let watch = self.watches.create_watch(&tenant, draft).await?;
                Ok(pb::CreateWatchResponse {
                    watch: Some(watch_to_proto(&watch)),
                })
            },
        )
        .await
    }

    async fn get_watch(
        &self,
        request: Request<pb::GetWatchRequest>,
    ) -> Result<Response<pb::GetWatchResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "GetWatch",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let id = watch_convert::id("id", &request.get_ref().id, "watch")?;
                let watch = self.watches.get_watch(&tenant, id).await?;
                Ok(pb::GetWatchResponse {
                    watch: Some(watch_to_proto(&watch)),
                })
            },
        )
        .await
    }

    async fn update_watch(
        &self,
        request: Request<pb::UpdateWatchRequest>,
    ) -> Result<Response<pb::UpdateWatchResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "UpdateWatch",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let request = request.get_ref();
                let patch = request
                    .watch
                    .as_ref()
                    .ok_or_else(|| Error::invalid("watch", "is required"))?;
                let id = watch_convert::id("watch.id", &patch.id, "watch")?;
                let patch = watch_mask::watch_patch(patch, request.update_mask.as_ref());
                let watch = self.watches.update_watch(&tenant, id, patch).await?;
                Ok(pb::UpdateWatchResponse {
                    watch: Some(watch_to_proto(&watch)),
                })
            },
        )
        .await
    }

    async fn delete_watch(
        &self,
        request: Request<pb::DeleteWatchRequest>,
    ) -> Result<Response<pb::DeleteWatchResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "DeleteWatch",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let id = watch_convert::id("id", &request.get_ref().id, "watch")?;
                self.watches.delete_watch(&tenant, id).await?;
                Ok(pb::DeleteWatchResponse {})
            },
        )
        .await
    }

    async fn list_watches(
        &self,
        request: Request<pb::ListWatchesRequest>,
    ) -> Result<Response<pb::ListWatchesResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "ListWatches",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let request = request.get_ref();
                let page_request = PageRequest {
                    page_size: request.page_size,
                    page_token: request.page_token.clone(),
                };
                let page = self
                    .watches
                    .list_watches(&tenant, &page_request, |watches| {
                        page_of(watches, watch_to_proto)
                    })
                    .await?;
                Ok(pb::ListWatchesResponse {
                    watches: page.items,
                    next_page_token: page.next_page_token,
                })
            },
        )
        .await
    }

    async fn create_crypto_key(
        &self,
        request: Request<pb::CreateCryptoKeyRequest>,
    ) -> Result<Response<pb::CreateCryptoKeyResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "CreateCryptoKey",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let created = self
                    .watches
                    .create_crypto_key(&tenant, &request.get_ref().name)
                    .await?;
                Ok(pb::CreateCryptoKeyResponse {
                    crypto_key: Some(crypto_key_to_proto(&created.crypto_key)),
                    secret: created.secret,
                })
            },
        )
        .await
    }

    async fn list_crypto_keys(
        &self,
        request: Request<pb::ListCryptoKeysRequest>,
    ) -> Result<Response<pb::ListCryptoKeysResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "ListCryptoKeys",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let keys = self.watches.list_crypto_keys(&tenant).await?;
                Ok(pb::ListCryptoKeysResponse {
                    crypto_keys: keys.iter().map(crypto_key_to_proto).collect(),
                })
            },
        )
        .await
    }

    async fn delete_crypto_key(
        &self,
        request: Request<pb::DeleteCryptoKeyRequest>,
    ) -> Result<Response<pb::DeleteCryptoKeyResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "DeleteCryptoKey",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let id = watch_convert::id("id", &request.get_ref().id, "crypto key")?;
                self.watches.delete_crypto_key(&tenant, id).await?;
                Ok(pb::DeleteCryptoKeyResponse {})
            },
        )
        .await
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "ListDeliveries",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let request = request.get_ref();
                let watch_id = watch_convert::id("watch_id", &request.watch_id, "watch")?;
                let page_request = PageRequest {
                    page_size: request.page_size,
                    page_token: request.page_token.clone(),
                };
                let page = self
                    .watches
                    .list_deliveries(&tenant, watch_id, &page_request, |deliveries| {
                        page_of(deliveries, delivery_to_proto)
                    })
                    .await?;
                Ok(pb::ListDeliveriesResponse {
                    deliveries: page.items,
                    next_page_token: page.next_page_token,
                })
            },
        )
        .await
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "RetryDelivery",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let id =
                    watch_convert::id("delivery_id", &request.get_ref().delivery_id, "delivery")?;
                let resent = self.watches.retry_delivery(&tenant, id).await?;
                Ok(pb::RetryDeliveryResponse {
                    delivery: Some(delivery_to_proto(&resent)),
                })
            },
        )
        .await
    }

    async fn preview_watch_payload(
        &self,
        request: Request<pb::PreviewWatchPayloadRequest>,
    ) -> Result<Response<pb::PreviewWatchPayloadResponse>, Status> {
        observe(
            &self.in_flight,
            WATCH_SERVICE,
            "PreviewWatchPayload",
            request.get_ref(),
            async {
                let tenant = self
                    .authenticator
                    .admit(authorization(request.metadata()))
                    .await?;
                let request = request.get_ref();
                let watch_id = match request.watch_id.as_str() {
                    "" => None,
                    watch_id => Some(watch_convert::id("watch_id", watch_id, "watch")?),
                };
                let call = match &request.call {
                    None => None,
                    Some(call) => Some((
                        // Any id will do for a preview; a malformed one renders as the nil id.
                        uuid::Uuid::parse_str(&call.id).unwrap_or_default(),
                        convert::call_fields(call, tenant.time_zone)?,
                    )),
                };
                let preview = PayloadPreview {
                    watch_id,
                    schema: request.schema.clone(),
                    call,
                };
                let payload = self.watches.preview_payload(&tenant, preview).await?;
                Ok(pb::PreviewWatchPayloadResponse { payload })
            },
        )
        .await
    }
}
