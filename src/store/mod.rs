//! PostgreSQL access: the connection pool, migrations, every query the service runs, and the
//! one LISTEN connection that tells the rest of the process when to read again.
//!
//! Nothing here knows about gRPC: functions take and return domain types and [`Error`].

mod call_rows;
mod calls;
mod changes;
mod column_bytes;
mod connect_error;
mod deliveries;
mod erasure;
mod errors;
mod export;
mod migrate;
mod notifications;
mod pool;
mod secrets;
pub mod stored_body;
mod summaries;
mod tenants;
mod watches;

use std::{sync::Arc, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use futures::{
    stream::{poll_fn, BoxStream},
    StreamExt,
};
use tokio_postgres::{config::SslMode, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use call_rows::{CallView, LocalMicros, UnixMicros};
pub use calls::{CallFilters, CallPage, CallQuery, ListCursor};
pub use changes::{ChangeBatch, ChangeKind, ChangeRecord, UnreadableChange};
pub use connect_error::server_address;
pub use deliveries::AttemptEffect;
pub use erasure::EraseScope;
pub use errors::database_error;
pub use export::ExportItem;
pub use migrate::migrate;
pub use notifications::{Channel, Notifications, Subscription, Wake, LISTENER_APPLICATION_NAME};
pub use summaries::{SummaryGrouping, SummaryInterval, SummaryQuery, SummaryRow};
pub use tenants::{ApiKeyCreated, Tenant};

use crate::Error;
use pool::{Pool, PooledClient, ReadOnlySeen, VerifyingManager};

/// How the service talks to PostgreSQL.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: usize,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
}

/// Builds a `tokio_postgres::Config` from a URL or key-value string, with our timeouts.
///
/// A bad value is the operator's mistake: the error says what the setting should look like.
/// tokio-postgres's parse errors name an option or a byte position, never a value, so the
/// password cannot leak through them; the value itself is not repeated.
pub fn connection_config(
    url: &str,
    settings: &PoolSettings,
) -> anyhow::Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|error| {
        anyhow::anyhow!(
            "DATABASE_URL is neither a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE) \
             nor a key-value string (host=HOST port=PORT user=USER dbname=DATABASE): {}",
            connect_error::with_root_cause(&error)
        )
    })?;
    apply_settings(&mut config, settings);
    Ok(config)
}

/// Adds keepalives, a connect timeout, a statement timeout and generic plans to `config`.
///
/// Every statement is prepared once per connection and written to be index-driven whatever
/// its parameters, so PostgreSQL's per-execution custom plans only cost planning time. They
/// also never stop: a list's `LIMIT $n` makes the generic plan *look* expensive (the planner
/// assumes a tenth of the table), so the first page was planned afresh on every call, about
/// half of PostgreSQL's time under a list load (perf: copyObject, get_relation_info).
pub fn apply_settings(config: &mut tokio_postgres::Config, settings: &PoolSettings) {
    config
        .connect_timeout(settings.connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .application_name("callsd")
        .options(format!(
            "-c statement_timeout={} -c plan_cache_mode=force_generic_plan",
            settings.statement_timeout.as_millis()
        ));
}

/// The service's handle on the database: a pool of connections, verified after idling. Cheap
/// to clone (every part is shared): services and doors hold copies, and tower clones the doors
/// for every request.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Behind an `Arc`: a `Config` holds its hosts, user and options on the heap, and cloning it
    /// for each of the ~40 `Store` clones a request made cost 5 % of a ListCalls page
    /// (callgrind, BENCHMARKS.md).
    config: Arc<tokio_postgres::Config>,
    /// When a server was last found read-only (see `pool.rs`).
    read_only: ReadOnlySeen,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// Notifications and notices of a dedicated connection.
pub type ConnectionMessages =
    BoxStream<'static, Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>>;

/// TLS for connections whose settings ask for it (`sslmode=require`): rustls with the Mozilla
/// root certificates. Other connections (Unix sockets, `sslmode=prefer` on a trusted network)
/// go without, rather than fail on a server's self-signed certificate.
fn tls_for(config: &tokio_postgres::Config) -> Result<Option<MakeRustlsConnect>, Error> {
    if config.get_ssl_mode() != SslMode::Require {
        return Ok(None);
    }
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| Error::Internal(error.into()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(client_config)))
}

impl Store {
    pub fn new(config: tokio_postgres::Config, settings: &PoolSettings) -> Result<Self, Error> {
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls_for(&config)? {
            Some(tls) => Manager::from_config(config.clone(), tls, manager_config),
            None => Manager::from_config(config.clone(), NoTls, manager_config),
        };
        let read_only = ReadOnlySeen::default();
        let pool = Pool::builder(VerifyingManager::new(manager, read_only.clone()))
            .max_size(settings.max_size)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| Error::Internal(error.into()))?;
        Ok(Store {
            pool,
            config: Arc::new(config),
            read_only,
        })
    }

    /// A connection outside the pool (for LISTEN, which must never go back to a pool), with
    /// the pool's settings and TLS, named `application_name` in `pg_stat_activity`. Its
    /// messages must be polled for queries to progress.
    pub async fn connect_dedicated(
        &self,
        application_name: &str,
    ) -> Result<(tokio_postgres::Client, ConnectionMessages), tokio_postgres::Error> {
        let mut config = (*self.config).clone();
        config.application_name(application_name);
        let tls = tls_for(&config).ok().flatten();
        Ok(match tls {
            Some(tls) => {
                let (client, mut connection) = config.connect(tls).await?;
                let messages = poll_fn(move |context| connection.poll_message(context)).boxed();
                (client, messages)
            }
            None => {
                let (client, mut connection) = config.connect(NoTls).await?;
                let messages = poll_fn(move |context| connection.poll_message(context)).boxed();
                (client, messages)
            }
        })
    }

    /// A pooled connection; a pool or connect failure is `DatabaseUnavailable`.
    pub async fn client(&self) -> Result<PooledClient, Error> {
        let started = std::time::Instant::now();
        let client = self.pool.get().await.map_err(|error| {
            let described = connect_error::describe_pool_error(&self.config, &error);
            Error::DatabaseUnavailable(anyhow::anyhow!(described))
        });
        metrics::histogram!("callsd_db_pool_wait_seconds").record(started.elapsed().as_secs_f64());
        Ok(PooledClient::new(client?, self.read_only.clone()))
    }

    /// True when a pooled connection answers and its server takes writes. A server in recovery
    /// (a standby) or read-only by setting is marked as such, so that every connection opened
    /// before moves (to the primary, through `target_session_attrs=read-write`), reads too.
    pub async fn is_healthy(&self) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        let statement =
            "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool";
        let read_only = match client.query_one(statement, &[]).await {
            Ok(row) => row.get::<_, bool>(0),
            Err(_) => return false,
        };
        if read_only {
            drop(client);
            self.read_only.record();
            self.drop_outdated_connections();
        }
        !read_only
    }

    /// Closes the idle connections opened before a server was last found read-only now,
    /// rather than at their next checkout.
    fn drop_outdated_connections(&self) {
        self.pool
            .retain(|_, metrics| !self.read_only.outdates(metrics.created));
    }

    /// Wakes whenever a server is found read-only: the LISTEN connection moves then.
    pub(crate) fn read_only_marks(
        &self,
    ) -> tokio::sync::watch::Receiver<Option<std::time::Instant>> {
        self.read_only.subscribe()
    }

    /// True when a connection opened at `opened` may be on a server since found read-only.
    pub(crate) fn outdated(&self, opened: std::time::Instant) -> bool {
        self.read_only.outdates(opened)
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
