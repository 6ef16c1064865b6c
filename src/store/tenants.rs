//! Tenants and their API keys.

use std::time::Duration;

use chrono_tz::Tz;

use super::Store;
use crate::{
    domain::{parse_time_zone, ApiKeyId, TenantId},
    Error,
};

/// A tenant (the seed's "company") as requests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// Used for calls whose start carries no time zone.
    pub time_zone: Tz,
}

/// A key that was just created: the only moment its secret exists outside the client.
pub struct ApiKeyCreated {
    pub key_id: ApiKeyId,
    pub key: String,
}

impl Store {
    #[tracing::instrument(skip(self))]
    pub async fn create_tenant(&self, name: &str, time_zone: Tz) -> Result<Tenant, Error> {
        let client = self.client().await?;
        let id = TenantId::new_v7();
        let inserted = client
            .execute(
                "INSERT INTO tenants (id, name, time_zone) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&id, &name, &time_zone.name()],
            )
            .await?;
        if inserted == 0 {
            return Err(Error::invalid(
                "name",
                format!("tenant {name:?} already exists"),
            ));
        }
        Ok(Tenant {
            id,
            name: name.to_owned(),
            time_zone,
        })
    }

    /// Finds a tenant by name or by id.
    #[tracing::instrument(skip(self))]
    pub async fn find_tenant(&self, name_or_id: &str) -> Result<Option<Tenant>, Error> {
        let client = self.client().await?;
        let id = name_or_id.parse::<TenantId>().ok();
        let row = client
            .query_opt(
                "SELECT id, name, time_zone FROM tenants WHERE name = $1 OR id = $2",
                &[&name_or_id, &id],
            )
            .await?;
        row.map(|row| tenant_from_row(&row)).transpose()
    }

    /// Sets how long the tenant's calls are kept after they end (`None`: until deleted).
    #[tracing::instrument(skip(self))]
    pub async fn set_call_retention(
        &self,
        tenant_id: TenantId,
        retention: Option<Duration>,
    ) -> Result<(), Error> {
        let client = self.client().await?;
        let seconds = retention
            .map(|retention| i64::try_from(retention.as_secs().max(1)).unwrap_or(i64::MAX));
        client
            .execute(
                "UPDATE tenants SET call_retention_secs = $2 WHERE id = $1",
                &[&tenant_id, &seconds],
            )
            .await?;
        Ok(())
    }

    /// How long the tenant's calls are kept after they end (`None`: until deleted).
    pub async fn call_retention(&self, tenant_id: TenantId) -> Result<Option<Duration>, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT call_retention_secs FROM tenants WHERE id = $1")
            .await?;
        let row = client
            .query_opt(&statement, &[&tenant_id])
            .await?
            .ok_or(Error::NotFound { resource: "tenant" })?;
        Ok(row.get::<_, Option<i64>>(0).map(retention_from_secs))
    }

    /// Every tenant that has a retention period, with it.
    pub async fn tenants_with_retention(&self) -> Result<Vec<(TenantId, Duration)>, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, call_retention_secs FROM tenants
                 WHERE call_retention_secs IS NOT NULL ORDER BY id",
            )
            .await?;
        let rows = client.query(&statement, &[]).await?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), retention_from_secs(row.get(1))))
            .collect())
    }

    /// Stores the hash of a new key for `tenant_id`.
    #[tracing::instrument(skip(self, key_hash))]
    pub async fn insert_api_key(
        &self,
        tenant_id: TenantId,
        key_hash: &[u8],
    ) -> Result<ApiKeyId, Error> {
        let client = self.client().await?;
        let key_id = ApiKeyId::new_v7();
        client
            .execute(
                "INSERT INTO api_keys (id, tenant_id, key_hash) VALUES ($1, $2, $3)",
                &[&key_id, &tenant_id, &key_hash],
            )
            .await?;
        Ok(key_id)
    }

    /// Revokes a key and tells every replica to forget cached keys; false when no live key
    /// has that id.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_api_key(&self, key_id: ApiKeyId) -> Result<bool, Error> {
        let client = self.client().await?;
        let revoked = client
            .execute(
                "UPDATE api_keys SET revoke_time = now() WHERE id = $1 AND revoke_time IS NULL",
                &[&key_id],
            )
            .await?;
        client
            .execute("SELECT pg_notify('callsd_api_keys', '')", &[])
            .await?;
        Ok(revoked == 1)
    }

    /// The tenant owning the live key with this hash.
    pub async fn tenant_for_key_hash(&self, key_hash: &[u8]) -> Result<Option<Tenant>, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT t.id, t.name, t.time_zone FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
                 WHERE k.key_hash = $1 AND k.revoke_time IS NULL",
            )
            .await?;
        let row = client.query_opt(&statement, &[&key_hash]).await?;
        row.map(|row| tenant_from_row(&row)).transpose()
    }
}

fn retention_from_secs(seconds: i64) -> Duration {
    Duration::from_secs(u64::try_from(seconds).unwrap_or(1))
}

fn tenant_from_row(row: &tokio_postgres::Row) -> Result<Tenant, Error> {
    let zone: String = row.get(2);
    Ok(Tenant {
        id: row.get(0),
        name: row.get(1),
        time_zone: parse_time_zone("tenant.time_zone", &zone)
            .map_err(|error| Error::Internal(anyhow::anyhow!("stored tenant zone: {error}")))?,
    })
}
