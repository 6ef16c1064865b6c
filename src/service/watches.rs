//! Watches, signing keys, the delivery log and payload previews: the rules every front door
//! shares. Every operation is tenant-scoped: another tenant's watch, key or delivery is not
//! found ([`Error::NotFound`]). Secrets are write-only: sealed on the way in, and a watch comes
//! out as a [`WatchView`], which has no secret to show.

mod pages;
mod settings;

use uuid::Uuid;

pub use pages::{Page, PageRequest, MAX_PAGE_SIZE};

use crate::{
    domain::{Call, CallFields, CryptoKey, Delivery, WatchDraft, WatchPatch, WatchView},
    store::{Store, Tenant},
    tokens::TokenSealer,
    webhooks::{payload, signing, template::Template, Webhooks},
    Error,
};

/// The kind of the token that continues a list of watches.
const WATCH_PAGE: &str = "watch-page";
/// The kind of the token that continues a watch's delivery log.
const DELIVERY_PAGE: &str = "delivery-page";

/// The watch operations; cheap to clone.
#[derive(Clone)]
pub struct Watches {
    store: Store,
    webhooks: Webhooks,
    sealer: TokenSealer,
    /// Watches one tenant may have (`CALLSD_TENANT_MAX_WATCHES`).
    max_watches: u32,
}

/// A signing key just created: the only moment its secret is shown.
#[derive(Debug)]
pub struct CreatedCryptoKey {
    pub crypto_key: CryptoKey,
    /// The secret as receivers configure it (`whsec_...`).
    pub secret: String,
}

/// What PreviewWatchPayload renders.
#[derive(Debug, Default)]
pub struct PayloadPreview {
    /// The template of this watch; when `None`, `schema`.
    pub watch_id: Option<Uuid>,
    /// A template to try; empty means the default envelope.
    pub schema: String,
    /// The call to render, with the id the client gave (if any); `None` renders a sample call.
    pub call: Option<(Uuid, CallFields)>,
}

impl Watches {
    pub fn new(store: Store, webhooks: Webhooks, sealer: TokenSealer, max_watches: u32) -> Self {
        Watches {
            store,
            webhooks,
            sealer,
            max_watches,
        }
    }

    /// Creates a watch that delivers the changes made from now on, within the tenant's cap.
    pub async fn create_watch(
        &self,
        tenant: &Tenant,
        draft: WatchDraft,
    ) -> Result<WatchView, Error> {
        let settings =
            settings::validated_settings(&self.webhooks, &self.store, tenant.id, draft, None)
                .await?;
        let start = self.store.watch_start_position().await?;
        let watch = self
            .store
            .create_watch(tenant.id, &settings, start, self.max_watches)
            .await?;
        tracing::info!(watch_id = %watch.id, tenant = %tenant.name, "watch created");
        Ok(WatchView::from(&watch))
    }

    pub async fn get_watch(&self, tenant: &Tenant, id: Uuid) -> Result<WatchView, Error> {
        let watch = self.store.get_watch(tenant.id, id).await?;
        Ok(WatchView::from(&watch))
    }

    /// Applies `patch` to the stored watch. Secrets the patch leaves empty are kept where the
    /// rules allow; enabling a disabled watch starts it from the changes made after now.
    pub async fn update_watch(
        &self,
        tenant: &Tenant,
        id: Uuid,
        mut patch: WatchPatch,
    ) -> Result<WatchView, Error> {
        let current = self.store.get_watch(tenant.id, id).await?;
        if patch.is_empty() {
            return Err(Error::invalid("watch", "sets no field to update"));
        }
        // Fields a watch does not have are reported alone: the client first says what it changes.
        std::mem::take(&mut patch.unknown_fields).finish(|| ())?;
        let draft = patch.apply_to(WatchDraft::from_stored(&current.settings));
        let settings = settings::validated_settings(
            &self.webhooks,
            &self.store,
            tenant.id,
            draft,
            Some(&current.settings),
        )
        .await?;
        let restart_at = if settings.enabled && !current.settings.enabled {
            Some(self.store.watch_start_position().await?)
        } else {
            None
        };
        let watch = self
            .store
            .update_watch(tenant.id, id, &settings, restart_at)
            .await?;
        tracing::info!(watch_id = %watch.id, tenant = %tenant.name, "watch updated");
        Ok(WatchView::from(&watch))
    }

    pub async fn delete_watch(&self, tenant: &Tenant, id: Uuid) -> Result<(), Error> {
        self.store.delete_watch(tenant.id, id).await?;
        tracing::info!(watch_id = %id, tenant = %tenant.name, "watch deleted");
        Ok(())
    }

    /// One page of the tenant's watches, oldest first. `render` is the front door's
    /// conversion (see [`pages::page`]: it may send fewer than it is given).
    pub async fn list_watches<Item>(
        &self,
        tenant: &Tenant,
        request: &PageRequest,
        render: impl FnOnce(&[WatchView]) -> Vec<Item>,
    ) -> Result<Page<Item>, Error> {
        let limit = pages::page_size(request.page_size)?;
        let after: Option<Uuid> =
            pages::open_token(&self.sealer, WATCH_PAGE, &tenant.id, &request.page_token)?;
        let watches = self.store.list_watches(tenant.id, after, limit + 1).await?;
        let views: Vec<WatchView> = watches.iter().map(WatchView::from).collect();
        pages::page(views, limit, render, |last| {
            self.sealer.seal(WATCH_PAGE, &tenant.id, &last.id)
        })
    }

    /// Creates a signing key; its secret is returned now and never again.
    pub async fn create_crypto_key(
        &self,
        tenant: &Tenant,
        name: &str,
    ) -> Result<CreatedCryptoKey, Error> {
        let secret = signing::new_key_secret();
        let sealed = self.webhooks.seal_secret(tenant.id, &secret)?;
        let crypto_key = self
            .store
            .create_crypto_key(tenant.id, name, &sealed)
            .await?;
        tracing::info!(key_id = %crypto_key.id, tenant = %tenant.name, "crypto key created");
        Ok(CreatedCryptoKey {
            crypto_key,
            secret: signing::display_secret(&secret),
        })
    }

    pub async fn list_crypto_keys(&self, tenant: &Tenant) -> Result<Vec<CryptoKey>, Error> {
        self.store.list_crypto_keys(tenant.id).await
    }

    pub async fn delete_crypto_key(&self, tenant: &Tenant, id: Uuid) -> Result<(), Error> {
        self.store.delete_crypto_key(tenant.id, id).await?;
        tracing::info!(key_id = %id, tenant = %tenant.name, "crypto key deleted");
        Ok(())
    }

    /// One page of a watch's delivery log, newest first; NOT_FOUND for another tenant's
    /// watch rather than an empty log.
    pub async fn list_deliveries<Item>(
        &self,
        tenant: &Tenant,
        watch_id: Uuid,
        request: &PageRequest,
        render: impl FnOnce(&[Delivery]) -> Vec<Item>,
    ) -> Result<Page<Item>, Error> {
        self.store.get_watch(tenant.id, watch_id).await?;
        let limit = pages::page_size(request.page_size)?;
        let binding = (tenant.id, watch_id);
        let before: Option<Uuid> =
            pages::open_token(&self.sealer, DELIVERY_PAGE, &binding, &request.page_token)?;
        let deliveries = self
            .store
            .list_deliveries(tenant.id, watch_id, before, limit + 1)
            .await?;
        pages::page(deliveries, limit, render, |last| {
            self.sealer.seal(DELIVERY_PAGE, &binding, &last.id)
        })
    }

    /// Sends a logged event again, now, and returns the new attempt.
    pub async fn retry_delivery(
        &self,
        tenant: &Tenant,
        delivery_id: Uuid,
    ) -> Result<Delivery, Error> {
        let delivery = self.store.get_delivery(tenant.id, delivery_id).await?;
        let watch = self.store.get_watch(tenant.id, delivery.watch_id).await?;
        let resent = self.webhooks.resend(&watch, &delivery).await?;
        tracing::info!(delivery_id = %resent.id, watch_id = %watch.id, "delivery sent again");
        Ok(resent)
    }

    /// The body a watch would send for a call, without sending anything.
    pub async fn preview_payload(
        &self,
        tenant: &Tenant,
        preview: PayloadPreview,
    ) -> Result<String, Error> {
        let schema = match preview.watch_id {
            None => preview.schema,
            Some(id) => self.store.get_watch(tenant.id, id).await?.settings.schema,
        };
        let template = match schema.as_str() {
            "" => None,
            schema => {
                Some(Template::parse(schema).map_err(|error| Error::invalid("schema", error))?)
            }
        };
        let data = match preview.call {
            None => crate::webhooks::template::sample_call(),
            Some((id, fields)) => {
                let now = chrono::Utc::now();
                let start_time = fields
                    .start
                    .instant()
                    .map_err(|error| Error::invalid("call.start", error))?;
                payload::call_json(&Call {
                    id,
                    fields,
                    start_time,
                    create_time: now,
                    update_time: now,
                    version: 1,
                    delete_time: None,
                })
            }
        };
        payload::preview(template.as_ref(), data).map_err(|error| Error::invalid("schema", error))
    }
}
