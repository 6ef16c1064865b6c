//! Watches, their signing keys and their delivery log; and the queries delivery workers use to
//! share the work: leases taken with `FOR UPDATE SKIP LOCKED` that expire when a replica dies.
//!
//! Secrets arrive here already sealed (see `webhooks::secrets`); the store never sees them plain.

use serde_json::Value;
use uuid::Uuid;

use super::{changes::BARRIER_CTE, Store};
use crate::{
    domain::{CryptoKey, OAuth2Settings, Position, Watch, WatchMethod, WatchSettings},
    error::TenantLimit,
    Error,
};

/// How a watch's method is stored in `watches.method`.
fn method_code(method: WatchMethod) -> i16 {
    match method {
        WatchMethod::Post => 1,
        WatchMethod::Put => 2,
        WatchMethod::Patch => 3,
        WatchMethod::Delete => 4,
    }
}

fn method_from_code(code: i16) -> WatchMethod {
    match code {
        2 => WatchMethod::Put,
        3 => WatchMethod::Patch,
        4 => WatchMethod::Delete,
        _ => WatchMethod::Post,
    }
}

pub(super) const WATCH_COLUMNS: &str =
    "id, tenant_id, name, address, method, enabled, disabled_reason,
    basic_username, basic_password, headers, schema, oauth2, oauth2_client_secret,
    oauth2_refresh_token, signature_enabled, crypto_key_ids, add_previous_data, create_time,
    update_time, cursor_tx, cursor_seq, attempts, last_success_time, last_failure_time,
    consecutive_failures";

pub(super) fn decode_watch(row: &tokio_postgres::Row) -> Result<Watch, Error> {
    let headers: Vec<(String, String)> = serde_json::from_value(row.get(9))
        .map_err(|error| Error::Internal(anyhow::anyhow!("stored watch headers: {error}")))?;
    let oauth2 = row
        .get::<_, Option<Value>>(11)
        .map(|json| {
            serde_json::from_value::<OAuth2Settings>(json)
                .map_err(|error| Error::Internal(anyhow::anyhow!("stored watch oauth2: {error}")))
        })
        .transpose()?
        .map(|settings| OAuth2Settings {
            client_secret: row.get(12),
            refresh_token: row.get(13),
            ..settings
        });
    Ok(Watch {
        id: row.get(0),
        tenant_id: row.get(1),
        settings: WatchSettings {
            name: row.get(2),
            address: row.get(3),
            method: method_from_code(row.get(4)),
            enabled: row.get(5),
            basic_username: row.get(7),
            basic_password: row.get(8),
            headers,
            schema: row.get(10),
            oauth2,
            signature_enabled: row.get(14),
            crypto_key_ids: row.get(15),
            add_previous_data: row.get(16),
        },
        disabled_reason: row.get(6),
        create_time: row.get(17),
        update_time: row.get(18),
        cursor: Position {
            tx: row.get(19),
            seq: row.get(20),
        },
        attempts: row.get(21),
        last_success_time: row.get(22),
        last_failure_time: row.get(23),
        consecutive_failures: row.get(24),
    })
}

/// The JSON and sealed-secret columns of a watch's settings, as SQL parameters.
struct SettingsValues {
    method: i16,
    headers: Value,
    oauth2: Option<Value>,
    client_secret: Option<Vec<u8>>,
    refresh_token: Option<Vec<u8>>,
}

impl SettingsValues {
    fn new(settings: &WatchSettings) -> Self {
        SettingsValues {
            method: method_code(settings.method),
            headers: serde_json::to_value(&settings.headers).unwrap_or_default(),
            oauth2: settings
                .oauth2
                .as_ref()
                .and_then(|oauth2| serde_json::to_value(oauth2).ok()),
            client_secret: settings
                .oauth2
                .as_ref()
                .and_then(|oauth2| oauth2.client_secret.clone()),
            refresh_token: settings
                .oauth2
                .as_ref()
                .and_then(|oauth2| oauth2.refresh_token.clone()),
        }
    }
}

impl Store {
    /// Stores a new watch that delivers the changes after `cursor`.
    #[tracing::instrument(skip(self, settings))]
    /// Creates a watch unless the tenant already has `max_watches` of them. (Two creates
    /// racing at the limit may both pass; the cap bounds work, it is not an exact quota.)
    pub async fn create_watch(
        &self,
        tenant_id: Uuid,
        settings: &WatchSettings,
        cursor: Position,
        max_watches: u32,
    ) -> Result<Watch, Error> {
        let client = self.client().await?;
        let values = SettingsValues::new(settings);
        let statement = client
            .prepare_cached(&format!(
                "INSERT INTO watches (id, tenant_id, name, address, method, enabled,
                     basic_username, basic_password, headers, schema, oauth2,
                     oauth2_client_secret, oauth2_refresh_token, signature_enabled,
                     crypto_key_ids, add_previous_data, cursor_tx, cursor_seq)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18
                 WHERE (SELECT count(*) FROM watches WHERE tenant_id = $2) < $19
                 RETURNING {WATCH_COLUMNS}"
            ))
            .await?;
        let max_watches = i64::from(max_watches);
        let row = client
            .query_opt(
                &statement,
                &[
                    &Uuid::now_v7(),
                    &tenant_id,
                    &settings.name,
                    &settings.address,
                    &values.method,
                    &settings.enabled,
                    &settings.basic_username,
                    &settings.basic_password,
                    &values.headers,
                    &settings.schema,
                    &values.oauth2,
                    &values.client_secret,
                    &values.refresh_token,
                    &settings.signature_enabled,
                    &settings.crypto_key_ids,
                    &settings.add_previous_data,
                    &cursor.tx,
                    &cursor.seq,
                    &max_watches,
                ],
            )
            .await?
            .ok_or(Error::TenantLimited {
                limit: TenantLimit::Watches,
                retry_after: None,
            })?;
        decode_watch(&row)
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_watch(&self, tenant_id: Uuid, id: Uuid) -> Result<Watch, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {WATCH_COLUMNS} FROM watches WHERE tenant_id = $1 AND id = $2"
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[&tenant_id, &id])
            .await?
            .ok_or(Error::NotFound { resource: "watch" })?;
        decode_watch(&row)
    }

    /// Replaces a watch's settings. `restart_at` (on enabling) moves the cursor there and forgets
    /// the failure history, so the watch starts from the changes made after that moment.
    #[tracing::instrument(skip(self, settings))]
    pub async fn update_watch(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        settings: &WatchSettings,
        restart_at: Option<Position>,
    ) -> Result<Watch, Error> {
        let client = self.client().await?;
        let values = SettingsValues::new(settings);
        let statement = client
            .prepare_cached(&format!(
                "UPDATE watches SET name = $3, address = $4, method = $5, enabled = $6,
                     basic_username = $7, basic_password = $8, headers = $9, schema = $10,
                     oauth2 = $11, oauth2_client_secret = $12, oauth2_refresh_token = $13,
                     signature_enabled = $14, crypto_key_ids = $15, add_previous_data = $16,
                     update_time = now(),
                     disabled_reason = CASE WHEN $6 THEN '' ELSE disabled_reason END,
                     cursor_tx = COALESCE($17, cursor_tx), cursor_seq = COALESCE($18, cursor_seq),
                     attempts = CASE WHEN $17::bigint IS NULL THEN attempts ELSE 0 END,
                     next_attempt_time = CASE WHEN $17::bigint IS NULL THEN next_attempt_time
                         ELSE now() END,
                     failing_since = CASE WHEN $17::bigint IS NULL THEN failing_since END,
                     consecutive_failures = CASE WHEN $17::bigint IS NULL
                         THEN consecutive_failures ELSE 0 END
                 WHERE tenant_id = $1 AND id = $2
                 RETURNING {WATCH_COLUMNS}"
            ))
            .await?;
        let restart_tx = restart_at.map(|position| position.tx);
        let restart_seq = restart_at.map(|position| position.seq);
        let row = client
            .query_opt(
                &statement,
                &[
                    &tenant_id,
                    &id,
                    &settings.name,
                    &settings.address,
                    &values.method,
                    &settings.enabled,
                    &settings.basic_username,
                    &settings.basic_password,
                    &values.headers,
                    &settings.schema,
                    &values.oauth2,
                    &values.client_secret,
                    &values.refresh_token,
                    &settings.signature_enabled,
                    &settings.crypto_key_ids,
                    &settings.add_previous_data,
                    &restart_tx,
                    &restart_seq,
                ],
            )
            .await?
            .ok_or(Error::NotFound { resource: "watch" })?;
        decode_watch(&row)
    }

    #[tracing::instrument(skip(self))]
    pub async fn delete_watch(&self, tenant_id: Uuid, id: Uuid) -> Result<(), Error> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM watches WHERE tenant_id = $1 AND id = $2",
                &[&tenant_id, &id],
            )
            .await?;
        if deleted == 0 {
            return Err(Error::NotFound { resource: "watch" });
        }
        Ok(())
    }

    /// Up to `limit` watches after the watch `after`, oldest first (ids are time-ordered).
    #[tracing::instrument(skip(self))]
    pub async fn list_watches(
        &self,
        tenant_id: Uuid,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Watch>, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {WATCH_COLUMNS} FROM watches
                 WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2)
                 ORDER BY id LIMIT $3"
            ))
            .await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        client
            .query(&statement, &[&tenant_id, &after, &limit])
            .await?
            .iter()
            .map(decode_watch)
            .collect()
    }

    #[tracing::instrument(skip(self, sealed_secret))]
    pub async fn create_crypto_key(
        &self,
        tenant_id: Uuid,
        name: &str,
        sealed_secret: &[u8],
    ) -> Result<CryptoKey, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO crypto_keys (id, tenant_id, name, secret) VALUES ($1, $2, $3, $4)
                 RETURNING id, name, create_time",
                &[&Uuid::now_v7(), &tenant_id, &name, &sealed_secret],
            )
            .await?;
        Ok(CryptoKey {
            id: row.get(0),
            name: row.get(1),
            create_time: row.get(2),
        })
    }

    #[tracing::instrument(skip(self))]
    pub async fn list_crypto_keys(&self, tenant_id: Uuid) -> Result<Vec<CryptoKey>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, name, create_time FROM crypto_keys WHERE tenant_id = $1 ORDER BY id",
                &[&tenant_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| CryptoKey {
                id: row.get(0),
                name: row.get(1),
                create_time: row.get(2),
            })
            .collect())
    }

    #[tracing::instrument(skip(self))]
    pub async fn delete_crypto_key(&self, tenant_id: Uuid, id: Uuid) -> Result<(), Error> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM crypto_keys WHERE tenant_id = $1 AND id = $2",
                &[&tenant_id, &id],
            )
            .await?;
        if deleted == 0 {
            return Err(Error::NotFound {
                resource: "crypto key",
            });
        }
        Ok(())
    }

    /// The sealed secrets of the tenant's keys among `ids` (deleted keys are skipped).
    pub async fn crypto_key_secrets(
        &self,
        tenant_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, Vec<u8>)>, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, secret FROM crypto_keys WHERE tenant_id = $1 AND id = ANY($2)
                 ORDER BY id",
            )
            .await?;
        let rows = client.query(&statement, &[&tenant_id, &ids]).await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// The position "now" for a new or re-enabled watch: below the feed barrier.
    pub async fn watch_start_position(&self) -> Result<Position, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(&format!("WITH {BARRIER_CTE} SELECT tx FROM barrier"), &[])
            .await?;
        Ok(Position::below_barrier(row.get(0)))
    }
}
