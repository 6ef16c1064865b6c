//! `calls.v1.WatchService`, one transport-free function per RPC: the request message in, the
//! [`Watches`] service called, the response message out. Both doors call these.

use super::{
    convert,
    watch_convert::{self, crypto_key_to_proto, delivery_to_proto, watch_to_proto},
    watch_mask,
};
use crate::{
    pb::calls::v1 as pb,
    service::{
        page_budget,
        watches::{PageRequest, PayloadPreview, Watches},
    },
    store::Tenant,
    Error,
};

/// `items` as proto messages, as many as fit in one answer (see [`page_budget`]), each measured
/// as an element of the answer's repeated field.
fn page_of<Item, Message: prost::Message>(
    items: &[Item],
    to_proto: impl Fn(&Item) -> Message,
) -> Vec<Message> {
    let mut page: Vec<Message> = items.iter().map(to_proto).collect();
    let sizes = page
        .iter()
        .map(|item| prost::encoding::message::encoded_len(1, item));
    page.truncate(page_budget::items_that_fit(sizes));
    page
}

pub async fn create_watch(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::CreateWatchRequest,
) -> Result<pb::CreateWatchResponse, Error> {
    let watch = request
        .watch
        .as_ref()
        .ok_or_else(|| Error::invalid("watch", "is required"))?;
    let draft = watch_convert::watch_draft(watch);
    let watch = watches.create_watch(tenant, draft).await?;
    Ok(pb::CreateWatchResponse {
        watch: Some(watch_to_proto(&watch)),
    })
}

pub async fn get_watch(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::GetWatchRequest,
) -> Result<pb::GetWatchResponse, Error> {
    let id = watch_convert::watch_id("id", &request.id)?;
    let watch = watches.get_watch(tenant, id).await?;
    Ok(pb::GetWatchResponse {
        watch: Some(watch_to_proto(&watch)),
    })
}

pub async fn update_watch(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::UpdateWatchRequest,
) -> Result<pb::UpdateWatchResponse, Error> {
    let patch = request
        .watch
        .as_ref()
        .ok_or_else(|| Error::invalid("watch", "is required"))?;
    let id = watch_convert::watch_id("watch.id", &patch.id)?;
    let patch = watch_mask::watch_patch(patch, request.update_mask.as_ref());
    let watch = watches.update_watch(tenant, id, patch).await?;
    Ok(pb::UpdateWatchResponse {
        watch: Some(watch_to_proto(&watch)),
    })
}

pub async fn delete_watch(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::DeleteWatchRequest,
) -> Result<pb::DeleteWatchResponse, Error> {
    let id = watch_convert::watch_id("id", &request.id)?;
    watches.delete_watch(tenant, id).await?;
    Ok(pb::DeleteWatchResponse {})
}

pub async fn list_watches(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::ListWatchesRequest,
) -> Result<pb::ListWatchesResponse, Error> {
    let page_request = PageRequest {
        page_size: request.page_size,
        page_token: request.page_token.clone(),
    };
    let page = watches
        .list_watches(tenant, &page_request, |watches| {
            page_of(watches, watch_to_proto)
        })
        .await?;
    Ok(pb::ListWatchesResponse {
        watches: page.items,
        next_page_token: page.next_page_token,
    })
}

pub async fn create_crypto_key(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::CreateCryptoKeyRequest,
) -> Result<pb::CreateCryptoKeyResponse, Error> {
    let created = watches.create_crypto_key(tenant, &request.name).await?;
    Ok(pb::CreateCryptoKeyResponse {
        crypto_key: Some(crypto_key_to_proto(&created.crypto_key)),
        secret: created.secret,
    })
}

pub async fn list_crypto_keys(
    watches: &Watches,
    tenant: &Tenant,
    _request: &pb::ListCryptoKeysRequest,
) -> Result<pb::ListCryptoKeysResponse, Error> {
    let keys = watches.list_crypto_keys(tenant).await?;
    Ok(pb::ListCryptoKeysResponse {
        crypto_keys: keys.iter().map(crypto_key_to_proto).collect(),
    })
}

pub async fn delete_crypto_key(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::DeleteCryptoKeyRequest,
) -> Result<pb::DeleteCryptoKeyResponse, Error> {
    let id = watch_convert::crypto_key_id("id", &request.id)?;
    watches.delete_crypto_key(tenant, id).await?;
    Ok(pb::DeleteCryptoKeyResponse {})
}

pub async fn list_deliveries(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::ListDeliveriesRequest,
) -> Result<pb::ListDeliveriesResponse, Error> {
    let watch_id = watch_convert::watch_id("watch_id", &request.watch_id)?;
    let page_request = PageRequest {
        page_size: request.page_size,
        page_token: request.page_token.clone(),
    };
    let page = watches
        .list_deliveries(tenant, watch_id, &page_request, |deliveries| {
            page_of(deliveries, delivery_to_proto)
        })
        .await?;
    Ok(pb::ListDeliveriesResponse {
        deliveries: page.items,
        next_page_token: page.next_page_token,
    })
}

pub async fn retry_delivery(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::RetryDeliveryRequest,
) -> Result<pb::RetryDeliveryResponse, Error> {
    let id = watch_convert::delivery_id("delivery_id", &request.delivery_id)?;
    let resent = watches.retry_delivery(tenant, id).await?;
    Ok(pb::RetryDeliveryResponse {
        delivery: Some(delivery_to_proto(&resent)),
    })
}

pub async fn preview_watch_payload(
    watches: &Watches,
    tenant: &Tenant,
    request: &pb::PreviewWatchPayloadRequest,
) -> Result<pb::PreviewWatchPayloadResponse, Error> {
    let watch_id = match request.watch_id.as_str() {
        "" => None,
        watch_id => Some(watch_convert::watch_id("watch_id", watch_id)?),
    };
    let call = match &request.call {
        None => None,
        Some(call) => Some((
            // Any id will do for a preview; a malformed one renders as the nil id.
            call.id.parse().unwrap_or_default(),
            convert::call_fields(call, tenant.time_zone)?,
        )),
    };
    let preview = PayloadPreview {
        watch_id,
        schema: request.schema.clone(),
        call,
    };
    let payload = watches.preview_payload(tenant, preview).await?;
    Ok(pb::PreviewWatchPayloadResponse { payload })
}
