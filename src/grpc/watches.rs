//! `calls.v1.WatchService`: watches, signing keys, the delivery log and payload previews.
//! Every RPC is tenant-scoped: another tenant's watch, key or delivery is NOT_FOUND.

use tonic::{Request, Response, Status};

use super::{
    authorization, convert, observe, page_budget,
    watch_convert::{self, crypto_key_to_proto, delivery_to_proto, watch_to_proto},
    watch_mask, InFlightLimit,
};
use crate::{
    auth::Authenticator,
    domain::Call,
    pb::calls::v1::{self as pb, watch_service_server::WatchService},
    tokens::TokenSealer,
    webhooks::{payload, signing, template::Template, Webhooks},
    Error,
};

/// The gRPC service name, as health and metrics report it.
pub const WATCH_SERVICE: &str = "calls.v1.WatchService";
const MAX_PAGE_SIZE: usize = 100;
const WATCH_PAGE: &str = "watch-page";
const DELIVERY_PAGE: &str = "delivery-page";

/// Everything the watch RPCs need; cheap to clone.
#[derive(Clone)]
pub struct WatchApi {
    authenticator: Authenticator,
    sealer: TokenSealer,
    webhooks: Webhooks,
    in_flight: InFlightLimit,
    /// Watches one tenant may have (`CALLSD_TENANT_MAX_WATCHES`).
    max_watches: u32,
}

impl WatchApi {
    pub fn new(
        authenticator: Authenticator,
        sealer: TokenSealer,
        webhooks: Webhooks,
        in_flight: InFlightLimit,
        max_watches: u32,
    ) -> Self {
        WatchApi {
            authenticator,
            sealer,
            webhooks,
            in_flight,
            max_watches,
        }
    }
}

fn page_size(requested: i32) -> Result<usize, Error> {
    match usize::try_from(requested) {
        Ok(0) => Ok(MAX_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
        Err(_) => Err(Error::invalid("page_size", "must not be negative")),
    }
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
                let settings =
                    watch_convert::watch_settings(&self.webhooks, tenant.id, watch, None).await?;
                let start = self.webhooks.store.watch_start_position().await?;
                let watch = self
                    .webhooks
                    .store
                    .create_watch(tenant.id, &settings, start, self.max_watches)
                    .await?;
                tracing::info!(watch_id = %watch.id, tenant = %tenant.name, "watch created");
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
                let watch = self.webhooks.store.get_watch(tenant.id, id).await?;
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
                let current = self.webhooks.store.get_watch(tenant.id, id).await?;
                let merged = watch_mask::apply_mask(
                    &watch_to_proto(&current),
                    patch,
                    request.update_mask.as_ref(),
                )?;
                let settings = watch_convert::watch_settings(
                    &self.webhooks,
                    tenant.id,
                    &merged,
                    Some(&current.settings),
                )
                .await?;
                // Enabling starts from the changes made after this moment.
                let restart_at = if settings.enabled && !current.settings.enabled {
                    Some(self.webhooks.store.watch_start_position().await?)
                } else {
                    None
                };
                let watch = self
                    .webhooks
                    .store
                    .update_watch(tenant.id, id, &settings, restart_at)
                    .await?;
                tracing::info!(watch_id = %watch.id, tenant = %tenant.name, "watch updated");
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
                self.webhooks.store.delete_watch(tenant.id, id).await?;
                tracing::info!(watch_id = %id, tenant = %tenant.name, "watch deleted");
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
                let limit = page_size(request.page_size)?;
                let after = match request.page_token.as_str() {
                    "" => None,
                    token => Some(
                        self.sealer
                            .open::<_, uuid::Uuid>(WATCH_PAGE, &tenant.id, token)
                            .ok_or_else(|| {
                                Error::invalid("page_token", "is not a valid page token")
                            })?,
                    ),
                };
                let watches = self
                    .webhooks
                    .store
                    .list_watches(tenant.id, after, limit + 1)
                    .await?;
                let mut page: Vec<_> = watches.iter().take(limit).map(watch_to_proto).collect();
                page.truncate(page_budget::items_that_fit(&page));
                let more = watches.len() > page.len();
                let next_page_token =
                    match page.len().checked_sub(1).and_then(|last| watches.get(last)) {
                        Some(last) if more => self.sealer.seal(WATCH_PAGE, &tenant.id, &last.id)?,
                        _ => String::new(),
                    };
                Ok(pb::ListWatchesResponse {
                    watches: page,
                    next_page_token,
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
                let name = request.get_ref().name.clone();
                let secret = signing::new_key_secret();
                let sealed = self.webhooks.secrets.seal(tenant.id.as_bytes(), &secret)?;
                let key = self
                    .webhooks
                    .store
                    .create_crypto_key(tenant.id, &name, &sealed)
                    .await?;
                tracing::info!(key_id = %key.id, tenant = %tenant.name, "crypto key created");
                Ok(pb::CreateCryptoKeyResponse {
                    crypto_key: Some(crypto_key_to_proto(&key)),
                    secret: signing::display_secret(&secret),
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
                let keys = self.webhooks.store.list_crypto_keys(tenant.id).await?;
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
                self.webhooks.store.delete_crypto_key(tenant.id, id).await?;
                tracing::info!(key_id = %id, tenant = %tenant.name, "crypto key deleted");
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
                // NOT_FOUND for another tenant's watch, rather than an empty log.
                self.webhooks.store.get_watch(tenant.id, watch_id).await?;
                let limit = page_size(request.page_size)?;
                let before = match request.page_token.as_str() {
                    "" => None,
                    token => Some(
                        self.sealer
                            .open::<_, uuid::Uuid>(DELIVERY_PAGE, &(tenant.id, watch_id), token)
                            .ok_or_else(|| {
                                Error::invalid("page_token", "is not a valid page token")
                            })?,
                    ),
                };
                let deliveries = self
                    .webhooks
                    .store
                    .list_deliveries(tenant.id, watch_id, before, limit + 1)
                    .await?;
                let mut page: Vec<_> = deliveries
                    .iter()
                    .take(limit)
                    .map(delivery_to_proto)
                    .collect();
                page.truncate(page_budget::items_that_fit(&page));
                // The token continues right after the last item sent, whichever bound stopped it.
                let more = deliveries.len() > page.len();
                let next_page_token = match page
                    .len()
                    .checked_sub(1)
                    .and_then(|last| deliveries.get(last))
                {
                    Some(last) if more => {
                        self.sealer
                            .seal(DELIVERY_PAGE, &(tenant.id, watch_id), &last.id)?
                    }
                    _ => String::new(),
                };
                Ok(pb::ListDeliveriesResponse {
                    deliveries: page,
                    next_page_token,
                })
            },
        )
        .await
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
        observe(&self.in_flight, WATCH_SERVICE, "RetryDelivery", request.get_ref(), async {
            let tenant = self.authenticator.admit(authorization(request.metadata())).await?;
            let id = watch_convert::id("delivery_id", &request.get_ref().delivery_id, "delivery")?;
            let delivery = self.webhooks.store.get_delivery(tenant.id, id).await?;
            let watch = self
                .webhooks
                .store
                .get_watch(tenant.id, delivery.watch_id)
                .await?;
            let resent = self.webhooks.resend(&watch, &delivery).await?;
            tracing::info!(delivery_id = %resent.id, watch_id = %watch.id, "delivery sent again");
            Ok(pb::RetryDeliveryResponse {
                delivery: Some(delivery_to_proto(&resent)),
            })
        })
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
                let schema = match request.watch_id.as_str() {
                    "" => request.schema.clone(),
                    watch_id => {
                        let id = watch_convert::id("watch_id", watch_id, "watch")?;
                        self.webhooks
                            .store
                            .get_watch(tenant.id, id)
                            .await?
                            .settings
                            .schema
                    }
                };
                let template = match schema.as_str() {
                    "" => None,
                    schema => Some(
                        Template::parse(schema).map_err(|error| Error::invalid("schema", error))?,
                    ),
                };
                let data = match &request.call {
                    None => crate::webhooks::template::sample_call(),
                    Some(call) => {
                        let fields = convert::call_fields(call, tenant.time_zone)?;
                        let now = chrono::Utc::now();
                        let start_time = fields
                            .start
                            .instant()
                            .map_err(|error| Error::invalid("call.start", error))?;
                        payload::call_json(&Call {
                            id: uuid::Uuid::parse_str(&call.id).unwrap_or_default(),
                            fields,
                            start_time,
                            create_time: now,
                            update_time: now,
                            version: 1,
                            delete_time: None,
                        })
                    }
                };
                let body = payload::preview(template.as_ref(), data)
                    .map_err(|error| Error::invalid("schema", error))?;
                Ok(pb::PreviewWatchPayloadResponse { payload: body })
            },
        )
        .await
    }
}
