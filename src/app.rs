//! Builds the service once, for `main` and for the tests: the store, the feed, the gRPC server
//! with health, reflection and gRPC-Web, and the shutdown sequence.
//!
//! Shutdown (SIGTERM or Ctrl-C): health turns NOT_SERVING, the server keeps serving for the
//! drain period so load balancers move away, then WatchCalls and health Watch streams end with
//! UNAVAILABLE, connections still in their handshake close, in-flight RPCs finish (up to the
//! shutdown timeout) and background tasks stop, the LISTEN connection (which wakes the feed,
//! clears the auth cache and wakes the webhook worker) among them. ExportCalls streams end with
//! the WatchCalls streams; the retention sweep stops with the background tasks, between two
//! of its batches.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::transport::Server;
use tonic_health::{server::HealthReporter, ServingStatus};

use crate::{
    auth::Authenticator,
    config::ServeSettings,
    connections::{self, ConnectionLimits},
    fair_shares::FairShares,
    feed::{Feed, FeedSettings},
    grpc::{self, CallApi, InFlightLimit, WatchApi, CALL_SERVICE, WATCH_SERVICE},
    pb::calls::v1::{
        call_service_server::CallServiceServer, watch_service_server::WatchServiceServer,
    },
    rest::{Rest, RestLayer},
    service::{
        calls::Calls,
        retention::{self, RetentionSettings},
        watches::Watches,
    },
    store::{self, Channel, Notifications, Store},
    tokens::TokenSealer,
    webhooks::{DeliverySettings, Timeouts, Webhooks},
};

/// The health service name that stays SERVING while the process runs (liveness probes).
pub const LIVENESS_SERVICE: &str = "liveness";
const TOKEN_SECRET_NAME: &str = "token-sealing-key";
/// The HTTP/2 connection window: 1 MiB, so h2's small-frame budget (half of it) holds a
/// request frame for every stream a connection may hold (at most
/// `config::MAX_STREAMS_PER_CONNECTION`, 2,000 x 208 bytes = 406 KiB).
const CONNECTION_WINDOW_BYTES: u32 = 1 << 20;

/// A built, bound, not yet serving application.
pub struct Application {
    settings: ServeSettings,
    store: Store,
    listener: TcpListener,
    /// Where `listener` is bound (the real port when configured with port 0).
    address: SocketAddr,
    api: CallApi,
    watch_api: WatchApi,
    rest: Rest,
    feed: Feed,
    background: TaskTracker,
    stop_background: CancellationToken,
    stop_streams: CancellationToken,
}

impl Application {
    /// Migrates (when enabled), binds the listener and starts the feed.
    pub async fn build(settings: ServeSettings, store: Store) -> anyhow::Result<Self> {
        if settings.migrate {
            let mut client = store
                .client()
                .await
                .context("cannot connect to the database")?;
            let applied = store::migrate(&mut client)
                .await
                .context("migrations failed")?;
            tracing::info!(applied, "database schema is up to date");
        }
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let address = listener.local_addr()?;
        let sealer = TokenSealer::new(&store.shared_secret(TOKEN_SECRET_NAME).await?)?;
        let authenticator = Authenticator::new(
            store.clone(),
            settings.auth_cache_ttl,
            FairShares::new(settings.tenant_limits.fair_shares()),
        );
        let background = TaskTracker::new();
        let stop_background = CancellationToken::new();
        // One LISTEN connection for the process; it outlives the streams, so the auth cache
        // and webhooks stay told until the in-flight requests are done.
        let notifications =
            Notifications::start(store.clone(), stop_background.clone(), &background);
        background.spawn(
            authenticator
                .clone()
                .forget_on_revocation(notifications.subscribe(Channel::ApiKeys)),
        );
        // Streams stop after the drain, the feed's reader with them.
        let stop_streams = stop_background.child_token();
        let feed = Feed::start(
            store.clone(),
            notifications.subscribe(Channel::Changes),
            FeedSettings {
                poll_interval: settings.feed_poll_interval,
                heartbeat_interval: settings.heartbeat_interval,
            },
            stop_streams.clone(),
            &background,
        )
        .await?;
        background.spawn(compact_periodically(
            store.clone(),
            settings.change_retention,
            settings.compaction_interval,
            stop_background.clone(),
        ));
        background.spawn(retention::enforce_periodically(
            store.clone(),
            RetentionSettings {
                interval: settings.retention_interval,
                batch_size: usize::try_from(settings.retention_batch).unwrap_or(500),
            },
            stop_background.clone(),
        ));
        let webhooks = Webhooks::new(
            store.clone(),
            settings.webhooks.secret_key.as_ref(),
            delivery_settings(&settings),
        )
        .await?;
        webhooks.start(
            notifications.subscribe(Channel::Changes),
            &background,
            stop_background.clone(),
        );
        let in_flight = InFlightLimit::new(settings.max_in_flight);
        let watches = Watches::new(
            store.clone(),
            webhooks,
            sealer.clone(),
            settings.tenant_limits.tenant_max_watches,
        );
        let watch_api = WatchApi::new(authenticator.clone(), watches.clone(), in_flight.clone());
        let calls = Calls::new(
            store.clone(),
            sealer,
            feed.clone(),
            authenticator.shares().clone(),
        );
        // Both doors share the service, the keys, the tenants' shares and the in-flight limit.
        let rest = Rest::new(
            calls.clone(),
            watches,
            authenticator.clone(),
            in_flight.clone(),
        )?;
        let api = CallApi::new(calls, authenticator, in_flight);
        Ok(Application {
            settings,
            store,
            listener,
            address,
            api,
            watch_api,
            rest,
            feed,
            background,
            stop_background,
            stop_streams,
        })
    }

    /// The address the gRPC server listens on (the real port when configured with port 0).
    pub fn grpc_address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `shutdown` resolves, then drains and stops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let health = HealthReporter::new();
        let health_service = grpc::health_service(health.clone(), self.stop_streams.clone());
        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let stop_health_checks = CancellationToken::new();
        self.background.spawn(check_health(
            self.store.clone(),
            health.clone(),
            self.settings.health_check_interval,
            stop_health_checks.clone(),
        ));
        let (reflection_v1, reflection_v1alpha) = grpc::reflection_services()?;

        let address = self.grpc_address();
        let stop_serving = CancellationToken::new();
        let limits = ConnectionLimits {
            max_connections: connections::usable_connection_limit(self.settings.max_connections),
            handshake_timeout: self.settings.handshake_timeout,
        };
        let server = Server::builder()
            // Pings only start once a connection's handshake is done; before that the
            // handshake timeout (in `connections`) is what closes a silent peer.
            .http2_keepalive_interval(Some(self.settings.http2_keepalive_interval))
            .http2_keepalive_timeout(Some(self.settings.http2_keepalive_timeout))
            // h2 closes a connection (GOAWAY ENHANCE_YOUR_CALM) once its small DATA frames
            // not yet read exceed half the connection window; every unary request carries
            // one. With the 64 KiB default, ~160 requests queued on one connection under
            // overload were enough. Bounding streams per connection and widening the window
            // keeps the streams allowed x 208 bytes under half the window. (The
            // in-flight limit is in the handlers for the same reason: see InFlightLimit.)
            .max_concurrent_streams(Some(self.settings.max_streams_per_connection))
            .initial_connection_window_size(Some(CONNECTION_WINDOW_BYTES))
            // gRPC-Web and Connect arrive over HTTP/1.1 as often as HTTP/2 (browsers, buf curl);
            // gRPC over HTTP/1.1 is still refused (by tonic-web, with 400). `connections` bounds
            // the wait for an HTTP/1.1 request's first byte, hyper's header timeout (30s) the rest.
            .accept_http1(true)
            // CORS, then the REST door (every request that is not an RPC, see rest::RestLayer),
            // then Connect and gRPC-Web rewritten to gRPC (see grpc::web_layers).
            .layer(grpc::browser_cors(&self.settings.cors_allowed_origins))
            .layer(RestLayer::new(self.rest.clone()))
            .layer(grpc::web_layers())
            .add_service(grpc::observed(health_service, grpc::HEALTH_METHODS))
            .add_service(grpc::observed(reflection_v1, grpc::REFLECTION_METHODS))
            .add_service(grpc::observed(reflection_v1alpha, grpc::REFLECTION_METHODS))
            .add_service(CallServiceServer::new(self.api.clone()))
            .add_service(WatchServiceServer::new(self.watch_api.clone()))
            .serve_with_incoming_shutdown(
                connections::accept(self.listener, limits, stop_serving.clone()),
                stop_serving.clone().cancelled_owned(),
            );
        let mut server = tokio::spawn(server);
        tracing::info!(%address, max_connections = limits.max_connections, "serving gRPC");

        tokio::select! {
            () = shutdown => {}
            result = &mut server => {
                self.stop_background.cancel();
                return result?.context("the gRPC server failed");
            }
        }

        tracing::info!(drain = ?self.settings.shutdown_drain, "shutting down: reporting NOT_SERVING");
        stop_health_checks.cancel();
        health.set_not_serving::<CallServiceServer<CallApi>>().await;
        health
            .set_not_serving::<WatchServiceServer<WatchApi>>()
            .await;
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        tokio::time::sleep(self.settings.shutdown_drain).await;

        tracing::info!("ending watch streams and finishing in-flight requests");
        self.stop_streams.cancel();
        stop_serving.cancel();
        match tokio::time::timeout(self.settings.shutdown_timeout, &mut server).await {
            Ok(result) => result?.context("the gRPC server failed")?,
            Err(_) => {
                tracing::warn!("in-flight requests did not finish in time; closing anyway");
                server.abort();
            }
        }
        self.feed.wait_for_streams().await;
        self.stop_background.cancel();
        self.background.close();
        self.background.wait().await;
        self.store.close();
        tracing::info!("stopped");
        Ok(())
    }
}

/// Keeps the health service in step with the database: SERVING only while it answers.
async fn check_health(
    store: Store,
    health: HealthReporter,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut last = None;
    loop {
        let healthy =
            tokio::time::timeout(interval.max(Duration::from_secs(1)), store.is_healthy())
                .await
                .unwrap_or(false);
        if stop.is_cancelled() {
            return;
        }
        let status = if healthy {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(healthy) {
            if healthy {
                tracing::info!("database answers: SERVING");
            } else {
                tracing::warn!("database does not answer or takes no writes: NOT_SERVING");
            }
            last = Some(healthy);
        }
        health.set_service_status("", status).await;
        health.set_service_status(CALL_SERVICE, status).await;
        health.set_service_status(WATCH_SERVICE, status).await;
        let (open, idle, waiting) = store.pool_status();
        metrics::gauge!("callsd_db_pool_connections").set(open as f64);
        metrics::gauge!("callsd_db_pool_idle").set(idle as f64);
        metrics::gauge!("callsd_db_pool_waiting").set(waiting as f64);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Compacts the change log now and then; one replica at a time does the work.
async fn compact_periodically(
    store: Store,
    retention: Duration,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        match store.compact_change_log(retention).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "compacted the change log"),
            Err(error) => tracing::warn!(%error, "change log compaction failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The webhook delivery settings out of the server settings.
fn delivery_settings(settings: &ServeSettings) -> DeliverySettings {
    let settings = &settings.webhooks;
    DeliverySettings {
        retry_schedule: settings.webhook_retry_schedule.0.clone(),
        timeouts: Timeouts {
            connect: settings.webhook_connect_timeout,
            total: settings.webhook_timeout,
        },
        lease: settings.webhook_lease,
        poll_interval: settings.webhook_poll_interval,
        disable_after: settings.webhook_disable_after,
        retention: settings.webhook_delivery_retention,
        concurrency: settings.webhook_concurrency,
        allowed_cidrs: settings.webhook_allowed_cidrs.clone(),
    }
}
