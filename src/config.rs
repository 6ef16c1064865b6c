//! Every setting of `callsd`: a command-line flag with an environment variable and a default.
//! `callsd --help` (and `callsd serve --help`) lists them all.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::store::PoolSettings;

/// The most streams `CALLSD_MAX_STREAMS_PER_CONNECTION` allows (its default, written out in
/// its `#[arg]` where scripts/check_helm.py reads it): the server's HTTP/2 connection window is
/// sized to hold a request frame for each (src/app.rs).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 2_000;

mod allowed_origins;
mod listen_address;

pub use allowed_origins::{parse_allowed_origins, AllowedOrigins};
pub use listen_address::parse_listen_address;

/// The call-history service and its operator commands.
#[derive(Debug, Parser)]
#[command(name = "callsd", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseSettings,

    #[command(flatten)]
    pub telemetry: TelemetrySettings,

    /// Threads running requests; 0 is one per CPU this process may use. On a machine shared
    /// with PostgreSQL, fewer can be faster: threads waking each other cost more than they
    /// add (BENCHMARKS.md).
    #[arg(
        long,
        env = "CALLSD_WORKER_THREADS",
        default_value_t = 0,
        global = true
    )]
    pub worker_threads: usize,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC API (the default).
    // Boxed: the settings are far larger than the other commands.
    Serve(Box<ServeSettings>),
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and its first API key; prints the key alone on the last line of stdout.
    Create {
        /// Unique tenant name.
        name: String,
        /// IANA time zone used for calls whose start has none.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
    },
    /// Change a tenant's settings.
    Update {
        /// Tenant name or id.
        name: String,
        /// Delete calls that ended longer ago than this ("2y", "90d", "36h", any humantime
        /// duration); "off" keeps them until deleted.
        #[arg(long, value_parser = parse_retention)]
        retention: Option<Retention>,
    },
}

/// A tenant's call retention as the operator wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep calls until they are deleted.
    Off,
    /// Delete calls that ended longer ago than this.
    After(Duration),
}

/// "off" (or "none"), or a humantime duration of at least one second ("2y", "90d").
pub fn parse_retention(text: &str) -> Result<Retention, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none") {
        return Ok(Retention::Off);
    }
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("{error}: write a duration such as 2y, 90d or 36h, or off"))?;
    if duration < Duration::from_secs(1) {
        return Err("a retention must be at least 1s (or off)".to_owned());
    }
    // Beyond what PostgreSQL's intervals and timestamps can subtract from now.
    if duration > Duration::from_secs(1_000 * 366 * 24 * 3600) {
        return Err("a retention must be under 1000 years (or off)".to_owned());
    }
    Ok(Retention::After(duration))
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a tenant (name or id); prints the key alone on the last line.
    Create {
        /// Tenant name or id.
        tenant: String,
    },
    /// Revoke an API key by its id; every replica stops accepting it at once.
    Revoke {
        /// The key id printed when the key was created.
        key_id: crate::domain::ApiKeyId,
    },
}

/// Where the data lives.
#[derive(Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL. When unset, callsd starts its own PostgreSQL in --data-dir.
    ///
    /// A URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE) or a key-value string (host=HOST
    /// port=PORT user=USER dbname=DATABASE). For a highly available PostgreSQL, either one
    /// address that always leads to the primary (CloudNativePG's CLUSTER-rw Service, a Patroni
    /// Service) or every node, the writable one chosen at each connection:
    /// postgres://USER:PASSWORD@HOST1:PORT1,HOST2:PORT2/DATABASE?target_session_attrs=read-write
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory of the embedded PostgreSQL (used only without DATABASE_URL).
    #[arg(
        long,
        env = "CALLSD_DATA_DIR",
        default_value = ".callsd",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Largest number of pooled database connections.
    #[arg(long, env = "CALLSD_DB_POOL_SIZE", default_value_t = 16, global = true)]
    pub db_pool_size: usize,

    /// Time allowed to open a database connection.
    #[arg(long, env = "CALLSD_DB_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub db_connect_timeout: Duration,

    /// Time a request waits for a free pooled connection before failing with UNAVAILABLE.
    #[arg(long, env = "CALLSD_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub db_acquire_timeout: Duration,

    /// Longest a single SQL statement may run.
    #[arg(long, env = "CALLSD_DB_STATEMENT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub db_statement_timeout: Duration,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: say only whether it is set.
        formatter
            .debug_struct("DatabaseSettings")
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("data_dir", &self.data_dir)
            .field("db_pool_size", &self.db_pool_size)
            .finish_non_exhaustive()
    }
}

impl DatabaseSettings {
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_size: self.db_pool_size,
            connect_timeout: self.db_connect_timeout,
            acquire_timeout: self.db_acquire_timeout,
            statement_timeout: self.db_statement_timeout,
        }
    }
}

/// How the server behaves.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address of the gRPC server: IP:PORT, HOST:PORT (resolved at start-up) or :PORT for
    /// every interface. It serves gRPC-Web and the Connect protocol (binary codec) too, over
    /// HTTP/1.1 or HTTP/2, for browsers and `buf curl`.
    #[arg(long, env = "CALLSD_LISTEN", default_value = "127.0.0.1:50051", value_parser = parse_listen_address)]
    pub listen: SocketAddr,

    /// Comma-separated origins of the web pages allowed to call the API from a browser (CORS,
    /// for gRPC-Web and Connect), e.g. "https://app.example.com,http://localhost:5173"; "*"
    /// allows any. Empty (the default): no page may. Clients outside a browser (grpcurl,
    /// `buf curl`, gRPC libraries) need no origin.
    #[arg(long, env = "CALLSD_CORS_ALLOWED_ORIGINS", default_value = "", value_parser = parse_allowed_origins)]
    pub cors_allowed_origins: AllowedOrigins,

    /// Address of the Prometheus /metrics endpoint, written like --listen; "off" disables it.
    // `std::option::Option` keeps clap from treating the flag as optional: "off" is the None.
    #[arg(long, env = "CALLSD_METRICS_LISTEN", default_value = "127.0.0.1:9464", value_parser = parse_optional_address)]
    pub metrics_listen: std::option::Option<SocketAddr>,

    /// Apply migrations at start-up (under an advisory lock, safe with many replicas).
    #[arg(long, env = "CALLSD_MIGRATE", default_value_t = true, action = ArgAction::Set)]
    pub migrate: bool,

    /// After SIGTERM, keep serving this long while reporting NOT_SERVING, so load balancers
    /// stop sending new requests before the server closes.
    #[arg(long, env = "CALLSD_SHUTDOWN_DRAIN", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_drain: Duration,

    /// After the drain, longest wait for in-flight RPCs to finish.
    #[arg(long, env = "CALLSD_SHUTDOWN_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// A WatchCalls stream idle this long gets a heartbeat carrying the current sync token.
    #[arg(long, env = "CALLSD_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,

    /// How long the change log (and so sync tokens and tombstones) is kept.
    #[arg(long, env = "CALLSD_CHANGE_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub change_retention: Duration,

    /// How often the change log is compacted.
    #[arg(long, env = "CALLSD_COMPACTION_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub compaction_interval: Duration,

    /// How often the retention sweep deletes the calls that ended before their tenant's
    /// retention period (`callsd tenant update NAME --retention 2y`).
    #[arg(long, env = "CALLSD_RETENTION_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retention_interval: Duration,

    /// Calls the retention sweep deletes per transaction (small batches: no long transaction).
    #[arg(long, env = "CALLSD_RETENTION_BATCH", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub retention_batch: u32,

    /// How often the feed reads the change log when no notification woke it.
    #[arg(long, env = "CALLSD_FEED_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub feed_poll_interval: Duration,

    /// How long a resolved API key is trusted without asking the database again (revocations
    /// are pushed to every replica at once; this bounds staleness if that push is lost).
    #[arg(long, env = "CALLSD_AUTH_CACHE_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub auth_cache_ttl: Duration,

    /// How often the database is checked for the health service.
    #[arg(long, env = "CALLSD_HEALTH_CHECK_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub health_check_interval: Duration,

    /// Most RPCs handled at once by this process; beyond it a new RPC fails at once with
    /// RESOURCE_EXHAUSTED (retry with backoff) instead of queueing for the database pool.
    /// A WatchCalls stream counts only while it opens. See BENCHMARKS.md for how it was chosen.
    #[arg(long, env = "CALLSD_MAX_IN_FLIGHT", default_value_t = 128)]
    pub max_in_flight: usize,

    /// A client connection that has not sent the whole HTTP/2 preface and its first SETTINGS
    /// frame this long after it was accepted is closed, so silent connections cannot pile up
    /// and use every file descriptor.
    #[arg(long, env = "CALLSD_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// Most client connections open at once; past it a new connection is closed as soon as it
    /// is accepted (counted in `callsd_connections_refused_total`). Lowered at start-up if the
    /// open-file limit cannot hold it with room to spare.
    #[arg(long, env = "CALLSD_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Streams one client connection may hold open at once, unary calls and WatchCalls alike
    /// (HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS): a client queues the rest itself, and the
    /// server spends no refusal on them. With a client's connections x this under
    /// CALLSD_TENANT_MAX_IN_FLIGHT, that client waits when it overloads the server instead of
    /// being refused, and goodput stays near the peak (BENCHMARKS.md); but a client holding
    /// more WatchCalls streams than this on one connection waits for one of them to end.
    #[arg(long, env = "CALLSD_MAX_STREAMS_PER_CONNECTION", default_value_t = 2_000,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_STREAMS_PER_CONNECTION)))]
    pub max_streams_per_connection: u32,

    /// How often the server pings each HTTP/2 connection, so a peer that vanished without
    /// closing (a host gone, a NAT that forgot us) does not keep its connection forever.
    #[arg(long, env = "CALLSD_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_interval: Duration,

    /// A connection whose peer does not answer a keepalive ping within this is closed.
    #[arg(long, env = "CALLSD_HTTP2_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_timeout: Duration,

    /// Each tenant's fair share of this process.
    #[command(flatten)]
    pub tenant_limits: TenantLimitSettings,

    /// Webhook (watch) delivery settings.
    #[command(flatten)]
    pub webhooks: Box<WebhookSettings>,
}

/// What one tenant may take of a replica, so that no tenant starves the others. Past a limit a
/// request fails at once with RESOURCE_EXHAUSTED, an ErrorInfo reason (`TENANT_...`) and, where
/// waiting helps, a RetryInfo delay.
#[derive(Debug, Clone, Args)]
pub struct TenantLimitSettings {
    /// Requests a second one tenant may start on average, per replica (a token bucket);
    /// 0 turns the rate limit off. Size it to your tenants' traffic.
    #[arg(long, env = "CALLSD_TENANT_RATE", default_value_t = 0.0)]
    pub tenant_rate: f64,

    /// Requests one tenant may start at once after being idle (the bucket's size).
    #[arg(long, env = "CALLSD_TENANT_BURST", default_value_t = 200)]
    pub tenant_burst: u32,

    /// Requests of one tenant in flight at once per replica: by default half of
    /// CALLSD_MAX_IN_FLIGHT, so another tenant always finds room.
    #[arg(long, env = "CALLSD_TENANT_MAX_IN_FLIGHT", default_value_t = 64)]
    pub tenant_max_in_flight: usize,

    /// WatchCalls streams one tenant may hold open per replica.
    #[arg(long, env = "CALLSD_TENANT_MAX_STREAMS", default_value_t = 1000)]
    pub tenant_max_streams: usize,

    /// Watches (webhooks) one tenant may have.
    #[arg(long, env = "CALLSD_TENANT_MAX_WATCHES", default_value_t = 100)]
    pub tenant_max_watches: u32,
}

impl TenantLimitSettings {
    pub fn fair_shares(&self) -> crate::fair_shares::FairShareSettings {
        crate::fair_shares::FairShareSettings {
            rate: self.tenant_rate,
            burst: self.tenant_burst,
            max_in_flight: self.tenant_max_in_flight,
            max_streams: self.tenant_max_streams,
        }
    }
}

/// How watches deliver their webhooks (see the README's "Webhooks (watches)").
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Key that encrypts webhook secrets at rest (AES-256-GCM): base64 of 32 random bytes
    /// (`openssl rand -base64 32`). When unset, a key is generated once and kept in the
    /// database (table `server_secrets`, in the data dir with the embedded PostgreSQL), shared
    /// by every replica; set it to keep the key out of the database. Changing it makes stored
    /// webhook secrets unreadable.
    #[arg(long, env = "CALLSD_SECRET_KEY", hide_env_values = true, value_parser = crate::webhooks::parse_secret_key)]
    pub secret_key: Option<crate::webhooks::SecretKey>,

    /// Comma-separated CIDRs webhooks may reach although they are not public (loopback,
    /// private, link-local...), e.g. "127.0.0.0/8,10.1.0.0/16". Empty: public addresses only.
    #[arg(long, env = "CALLSD_WEBHOOK_ALLOWED_CIDRS", default_value = "", value_parser = crate::webhooks::parse_allowed_cidrs)]
    pub webhook_allowed_cidrs: crate::webhooks::AllowedCidrs,

    /// Comma-separated delays before each attempt of a webhook event (the first is the first
    /// attempt); after the last one the event is marked failed and the watch moves on.
    /// `Retry-After` (seconds) lengthens a delay.
    #[arg(long, env = "CALLSD_WEBHOOK_RETRY_SCHEDULE", default_value = "0s,5s,5m,30m,2h,5h,10h,10h", value_parser = crate::webhooks::parse_retry_schedule)]
    pub webhook_retry_schedule: crate::webhooks::RetrySchedule,

    /// Time allowed to connect to a webhook address.
    #[arg(long, env = "CALLSD_WEBHOOK_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub webhook_connect_timeout: Duration,

    /// Time allowed for a whole webhook request, answer included; slower counts as a failure.
    #[arg(long, env = "CALLSD_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// How long the delivery log keeps each attempt.
    #[arg(long, env = "CALLSD_WEBHOOK_DELIVERY_RETENTION", default_value = "10days", value_parser = humantime::parse_duration)]
    pub webhook_delivery_retention: Duration,

    /// A watch whose deliveries fail for this long is disabled (and says why).
    #[arg(long, env = "CALLSD_WEBHOOK_DISABLE_AFTER", default_value = "5days", value_parser = humantime::parse_duration)]
    pub webhook_disable_after: Duration,

    /// How long a replica owns a watch's deliveries without renewing; when a replica dies,
    /// another takes over after this. Keep it well above the webhook timeout.
    #[arg(long, env = "CALLSD_WEBHOOK_LEASE", default_value = "1m", value_parser = humantime::parse_duration)]
    pub webhook_lease: Duration,

    /// How often the delivery worker looks for work when no change notification woke it.
    #[arg(long, env = "CALLSD_WEBHOOK_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub webhook_poll_interval: Duration,

    /// Watches one replica delivers to at the same time.
    #[arg(long, env = "CALLSD_WEBHOOK_CONCURRENCY", default_value_t = 32)]
    pub webhook_concurrency: usize,
}

impl Default for ServeSettings {
    fn default() -> Self {
        // The defaults declared above, so tests and `callsd` (no subcommand) agree with --help.
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            serve: ServeSettings,
        }
        Defaults::parse_from(["callsd"]).serve
    }
}

/// Log output settings.
#[derive(Debug, Clone, Args)]
pub struct TelemetrySettings {
    /// Log format: human-readable text, or one JSON object per line for clusters.
    /// The filter comes from RUST_LOG (default "info").
    #[arg(long, env = "CALLSD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_optional_address(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.eq_ignore_ascii_case("off") || text.is_empty() {
        return Ok(None);
    }
    parse_listen_address(text).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_per_connection_default_to_the_most_the_connection_window_holds() {
        assert_eq!(
            ServeSettings::default().max_streams_per_connection,
            MAX_STREAMS_PER_CONNECTION
        );
    }
}
