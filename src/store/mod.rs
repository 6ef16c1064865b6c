//! PostgreSQL access: the connection pool, migrations and every query the service runs.
//!
//! Nothing here knows about gRPC: functions take and return domain types and [`Error`].

mod calls;
mod changes;
mod errors;
mod migrate;
mod secrets;
mod tenants;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub use calls::{CallFilters, CallPage, CallQuery, ListCursor};
pub use changes::{ChangeBatch, ChangeKind, ChangeRecord};
pub use errors::database_error;
pub use migrate::migrate;
pub use tenants::{ApiKeyCreated, Tenant};

use crate::Error;

/// How the service talks to PostgreSQL.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: usize,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
}

/// Builds a `tokio_postgres::Config` from a URL or key-value string, with our timeouts.
pub fn connection_config(
    url: &str,
    settings: &PoolSettings,
) -> Result<tokio_postgres::Config, Error> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|error| Error::Internal(anyhow::anyhow!("DATABASE_URL is not valid: {error}")))?;
    apply_settings(&mut config, settings);
    Ok(config)
}

/// Adds keepalives, a connect timeout and a statement timeout to `config`.
pub fn apply_settings(config: &mut tokio_postgres::Config, settings: &PoolSettings) {
    config
        .connect_timeout(settings.connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .application_name("callsd")
        .options(format!(
            "-c statement_timeout={}",
            settings.statement_timeout.as_millis()
        ));
}

/// The service's handle on the database: a pool of verified connections.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    config: tokio_postgres::Config,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl Store {
    pub fn new(config: tokio_postgres::Config, settings: &PoolSettings) -> Result<Self, Error> {
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.max_size)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| Error::Internal(error.into()))?;
        Ok(Store { pool, config })
    }

    /// The connection settings, for connections that must not come from the pool (LISTEN).
    pub fn connection_config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// A pooled connection; a pool or connect failure is `DatabaseUnavailable`.
    pub async fn client(&self) -> Result<Object, Error> {
        let started = std::time::Instant::now();
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| Error::DatabaseUnavailable(error.into()));
        metrics::histogram!("callsd_db_pool_wait_seconds").record(started.elapsed().as_secs_f64());
        client
    }

    /// True when a pooled connection answers a trivial query.
    pub async fn is_healthy(&self) -> bool {
        match self.client().await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    /// Pool usage for metrics: (connections open, connections idle, callers waiting).
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let status = self.pool.status();
        (status.size, status.available, status.waiting)
    }

    pub fn close(&self) {
        self.pool.close();
    }
}
