//! Logs (tracing) and metrics (Prometheus).

use std::{io::IsTerminal, net::SocketAddr, time::Duration};

use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// How often the `process_*` metrics are read from /proc: Prometheus scrapes every 15 s or
/// more, so a value is never much older than the scrape that reads it.
const PROCESS_METRICS_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the global log subscriber. `RUST_LOG` overrides the default `info` filter.
/// Logs go to stderr, so stdout stays free for what commands print (API keys). Colours only
/// on a terminal (and not with `NO_COLOR`): in a file or a log collector they are noise.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colours = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (tests build several apps in one process): keep the first.
    let _ = result;
}

/// Reports the error that stops `callsd`, once: a plain `error: ...` line for people reading
/// text logs, a JSON event where logs are parsed.
pub fn report_fatal(format: LogFormat, error: &anyhow::Error) {
    match format {
        LogFormat::Text => eprintln!("error: {error:#}"),
        LogFormat::Json => tracing::error!(error = %format!("{error:#}"), "callsd failed"),
    }
}

/// Starts the Prometheus exporter on `address` and describes the service's metrics.
pub fn init_metrics(address: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install()?;
    metrics::describe_counter!("grpc_server_started_total", "RPCs started on the server");
    metrics::describe_counter!(
        "grpc_server_handled_total",
        "RPCs completed on the server, by gRPC code"
    );
    metrics::describe_histogram!(
        "grpc_server_handling_seconds",
        metrics::Unit::Seconds,
        "Time to handle an RPC, by method"
    );
    metrics::describe_counter!(
        "http_server_requests_total",
        "REST requests answered, by RPC (empty when no route matched) and HTTP status"
    );
    metrics::describe_histogram!(
        "http_server_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a REST request (to open a stream, for the SSE watch), by RPC"
    );
    metrics::describe_gauge!("callsd_watch_streams", "Open WatchCalls streams");
    metrics::describe_counter!(
        "callsd_feed_unreadable_changes_total",
        "Change-log rows that could not be decoded; each ends its tenant's streams"
    );
    metrics::describe_gauge!("callsd_connections_open", "Open client connections");
    metrics::describe_counter!(
        "callsd_connections_refused_total",
        "Client connections closed at once because CALLSD_MAX_CONNECTIONS were open"
    );
    metrics::describe_counter!(
        "callsd_connections_handshake_timeouts_total",
        "Client connections closed for not finishing the HTTP/2 handshake in time"
    );
    metrics::describe_gauge!(
        "callsd_db_pool_connections",
        "Open pooled database connections"
    );
    metrics::describe_gauge!("callsd_db_pool_idle", "Idle pooled database connections");
    metrics::describe_gauge!(
        "callsd_db_pool_waiting",
        "Requests waiting for a connection"
    );
    metrics::describe_histogram!(
        "callsd_db_pool_wait_seconds",
        metrics::Unit::Seconds,
        "Time spent waiting for a pooled database connection"
    );
    metrics::describe_counter!(
        "callsd_webhook_attempts_total",
        "Webhook delivery attempts, by outcome (succeeded, retrying, failed)"
    );
    metrics::describe_histogram!(
        "callsd_webhook_attempt_seconds",
        metrics::Unit::Seconds,
        "Time of one webhook delivery attempt, answer included"
    );
    metrics::describe_gauge!(
        "callsd_build_info",
        "Always 1; the version label says which build is running"
    );
    metrics::gauge!("callsd_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Present from the start, so a dashboard shows 0 rather than "no data" (and rate() has a
    // first sample) before the first stream, connection or delivery.
    metrics::gauge!("callsd_watch_streams").set(0.0);
    metrics::gauge!("callsd_connections_open").set(0.0);
    for outcome in ["succeeded", "retrying", "failed"] {
        metrics::counter!("callsd_webhook_attempts_total", "outcome" => outcome).increment(0);
    }
    let _registered = metrics::histogram!("callsd_webhook_attempt_seconds");
    start_process_metrics();
    Ok(())
}

/// The standard `process_*` metrics (CPU seconds, memory, open and max fds, start time),
/// refreshed on a thread of their own: reading /proc is blocking, and with thousands of
/// connections listing the open fds takes a while.
fn start_process_metrics() {
    let collector = metrics_process::Collector::default();
    collector.describe();
    let collect = move || {
        collector.collect();
        // metrics-process reports an unlimited address space as 0, which reads as "no memory
        // allowed"; Prometheus's own clients report RLIM_INFINITY as the largest value.
        let unlimited = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_AS)
            .is_ok_and(|(soft, _)| soft == nix::sys::resource::RLIM_INFINITY);
        if unlimited {
            metrics::gauge!("process_virtual_memory_max_bytes").set(u64::MAX as f64);
        }
    };
    collect();
    let spawned = std::thread::Builder::new()
        .name("process-metrics".into())
        .spawn(move || loop {
            std::thread::sleep(PROCESS_METRICS_INTERVAL);
            collect();
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the process metrics thread; they will not update");
    }
}
