//! The test harness: databases, a running app, authenticated requests, error inspection.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use callsd::{
    app::Application,
    auth,
    config::ServeSettings,
    embedded_postgres::{Durability, EmbeddedPostgres},
    pb::calls::v1::{self as pb, call_service_client::CallServiceClient},
    store::{self, PoolSettings, Store},
};
use chrono_tz::Tz;
use tokio::sync::OnceCell;
use tonic::{transport::Channel, Code, Request, Status};
use tonic_types::StatusExt;

/// The server the tests create their databases on: DATABASE_URL, or one throwaway cluster per
/// test process.
static SERVER: OnceCell<tokio_postgres::Config> = OnceCell::const_new();
/// Keeps the throwaway cluster alive for the whole test process.
static THROWAWAY: OnceCell<EmbeddedPostgres> = OnceCell::const_new();

pub fn pool_settings() -> PoolSettings {
    PoolSettings {
        max_size: 8,
        connect_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(30),
    }
}

async fn server_config() -> tokio_postgres::Config {
    SERVER
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                return url.parse().expect("DATABASE_URL parses");
            }
            let cluster = THROWAWAY
                .get_or_init(|| async {
                    EmbeddedPostgres::start(&throwaway_dir(), Durability::Throwaway)
                        .await
                        .expect(
                            "a throwaway PostgreSQL starts (are the server binaries installed?)",
                        )
                })
                .await;
            cluster.connection_config()
        })
        .await
        .clone()
}

fn throwaway_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callsd-tests-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Drops the databases earlier test processes left behind (theirs are named by their pid).
async fn drop_leftover_databases(client: &tokio_postgres::Client) {
    static ONCE: OnceCell<()> = OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let Ok(rows) = client
            .query(
                "SELECT datname FROM pg_database WHERE datname LIKE 'callsd_test_%'",
                &[],
            )
            .await
        else {
            return;
        };
        for row in rows {
            let name: String = row.get(0);
            let pid = name
                .split('_')
                .nth(2)
                .and_then(|pid| pid.parse::<u32>().ok());
            let alive =
                pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        }
    })
    .await;
}

/// Creates an empty database and returns its connection settings.
pub async fn fresh_database() -> tokio_postgres::Config {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin = server_config().await;
    let name = format!(
        "callsd_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple()
    );
    let (client, connection) = admin
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL answers");
    tokio::spawn(connection);
    drop_leftover_databases(&client).await;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("test database is created");
    let mut config = admin;
    config.dbname(&name);
    config
}

/// A store on `config`, with the service's connection settings.
pub fn store_for(config: &tokio_postgres::Config) -> Store {
    let mut config = config.clone();
    store::apply_settings(&mut config, &pool_settings());
    Store::new(config, &pool_settings()).expect("pool builds")
}

/// Settings for a test server: any free port, no drain, metrics off.
pub fn test_settings() -> ServeSettings {
    ServeSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        shutdown_drain: Duration::ZERO,
        auth_cache_ttl: Duration::from_secs(30),
        feed_poll_interval: Duration::from_millis(200),
        health_check_interval: Duration::from_millis(200),
        ..ServeSettings::default()
    }
}

/// A running server on its own database, with a tenant `acme` and its key.
pub struct TestApp {
    pub address: SocketAddr,
    pub database: tokio_postgres::Config,
    pub store: Store,
    pub key: String,
    pub tenant_id: callsd::domain::TenantId,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings(), Tz::UTC).await
}

pub async fn spawn_app_with(settings: ServeSettings, tenant_zone: Tz) -> TestApp {
    let database = fresh_database().await;
    let mut app = spawn_app_on(settings, &database).await;
    let tenant = app
        .store
        .create_tenant("acme", tenant_zone)
        .await
        .expect("tenant is created");
    app.key = auth::create_api_key(&app.store, tenant.id)
        .await
        .expect("key is created")
        .key;
    app.tenant_id = tenant.id;
    app
}

/// Starts a server on an existing database (a second replica, say); no tenant is created.
pub async fn spawn_app_on(settings: ServeSettings, database: &tokio_postgres::Config) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        callsd::telemetry::init_logging(callsd::config::LogFormat::Text);
    }
    let store = store_for(database);
    let application = Application::build(settings, store.clone())
        .await
        .expect("application builds");
    let address = application.grpc_address();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        database: database.clone(),
        store,
        key: String::new(),
        tenant_id: callsd::domain::TenantId::default(),
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub async fn client(&self) -> CallServiceClient<Channel> {
        CallServiceClient::connect(format!("http://{}", self.address))
            .await
            .expect("client connects")
    }

    /// Wraps `message` with this app's API key.
    pub fn authed<T>(&self, message: T) -> Request<T> {
        with_key(&self.key, message)
    }

    /// A second tenant with its own key.
    pub async fn other_tenant(&self, name: &str) -> String {
        let tenant = self
            .store
            .create_tenant(name, Tz::UTC)
            .await
            .expect("tenant is created");
        auth::create_api_key(&self.store, tenant.id)
            .await
            .expect("key is created")
            .key
    }

    pub async fn create(&self, call: pb::Call) -> pb::Call {
        self.client()
            .await
            .create_call(self.authed(pb::CreateCallRequest {
                call: Some(call),
                request_id: String::new(),
            }))
            .await
            .expect("call is created")
            .into_inner()
            .call
            .expect("response has the call")
    }

    pub async fn list(
        &self,
        request: pb::ListCallsRequest,
    ) -> Result<pb::ListCallsResponse, Status> {
        self.client()
            .await
            .list_calls(self.authed(request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every call of a full list, following page tokens.
    pub async fn list_all(&self, mut request: pb::ListCallsRequest) -> (Vec<pb::Call>, String) {
        let mut calls = Vec::new();
        loop {
            let page = self.list(request.clone()).await.expect("page lists");
            calls.extend(page.calls);
            if page.next_page_token.is_empty() {
                return (calls, page.next_sync_token);
            }
            request.page_token = page.next_page_token;
        }
    }

    /// Stops the server the way SIGTERM would and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }
}

pub fn with_key<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii metadata"),
    );
    request
}

/// A valid call: only the required fields.
pub fn call(caller: &str, called: &str, date_time: &str, time_zone: &str) -> pb::Call {
    pb::Call {
        caller_number: caller.into(),
        called_number: called.into(),
        start: Some(pb::CallStart {
            date_time: date_time.into(),
            time_zone: time_zone.into(),
        }),
        ..pb::Call::default()
    }
}

/// The fields a BadRequest names, in order.
pub fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("INVALID_ARGUMENT carries a BadRequest")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .expect("every error carries an ErrorInfo")
        .reason
}

/// `config` as a key-value connection string, for the `callsd` binary's DATABASE_URL.
pub fn connection_string(config: &tokio_postgres::Config) -> String {
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
    };
    let mut text = format!(
        "host={host} port={} user={} dbname={}",
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("postgres"),
    );
    if let Some(password) = config.get_password() {
        text.push_str(&format!(" password={}", String::from_utf8_lossy(password)));
    }
    text
}

/// Runs the real `callsd` binary against `database`; returns (success, stdout, stderr).
pub fn run_callsd(database: &tokio_postgres::Config, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_callsd"))
        .args(args)
        .env("DATABASE_URL", connection_string(database))
        .env("RUST_LOG", "warn")
        .output()
        .expect("callsd runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Ends the app's sessions named `application_name`, waits until they are gone and the app
/// has read the server's goodbye, and says how many there were.
pub async fn terminate_sessions(admin: &tokio_postgres::Client, application_name: &str) -> usize {
    let pids: Vec<i32> = admin
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND application_name = $1",
            &[&application_name],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
            &[&pids],
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
            &[&pids],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the app's connection tasks read the server's goodbye.
    tokio::time::sleep(Duration::from_millis(200)).await;
    pids.len()
}
