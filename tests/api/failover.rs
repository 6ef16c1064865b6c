//! PostgreSQL failing over under load: two replicas on a real pg_auto_failover cluster
//! (`scripts/ha-cluster.sh`: monitor, primary, synchronous standby), reached through
//! `postgres://...@h1:p1,h2:p2/callsd?target_session_attrs=read-write`, with steady creates and
//! updates, a WatchCalls stream and a webhook watch, through (a) a planned switchover and (b) a
//! crash of the primary node (kill -9 of its pg_autoctl and postgres). What a client must see:
//! no acknowledged write lost, no error but UNAVAILABLE, the stream resumed from its last
//! token with no gap and no duplicate, every change delivered to the webhook. It prints the
//! time from each fault to the first successful write.
//!
//! It needs pg_auto_failover (installed by the script as root, or with sudo) and about a minute,
//! so plain `cargo test` skips it (`#[ignore]`); `scripts/failover-test.sh` runs it, and so
//! does `.ci/run`, where a cluster that cannot start fails the run rather than skipping it.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use callsd::{
    auth,
    pb::calls::v1::{self as pb, call_service_client::CallServiceClient, CallEventType},
};
use tonic::{transport::Channel, Code};

use crate::{
    helpers::{call, spawn_app_on, with_key, TestApp},
    webhooks::{create_watch, watch_to, webhook_settings, Receiver},
};

/// A request that takes longer than this counts as a failure of its own kind (a hang).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Writers: each creates a call, then updates it, then pauses.
const WRITERS: usize = 4;
const PAUSE_BETWEEN_WRITES: Duration = Duration::from_millis(60);
/// Steady load before, between and after the faults.
const STEADY: Duration = Duration::from_secs(3);
/// The stream is reopened on the other replica this often, from its last token.
const STREAM_REOPEN_EVERY: Duration = Duration::from_millis(1500);

/// The cluster of `scripts/ha-cluster.sh`, stopped and deleted on drop.
struct HaCluster {
    dir: String,
    database_url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/ha-cluster.sh")
}

fn run_script(args: &[&str]) -> String {
    let output = Command::new(script())
        .args(args)
        .output()
        .expect("scripts/ha-cluster.sh runs");
    assert!(
        output.status.success(),
        "scripts/ha-cluster.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl HaCluster {
    fn start() -> HaCluster {
        let printed = run_script(&["start"]);
        let values: HashMap<&str, &str> = printed
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        HaCluster {
            dir: values["HA_DIR"].to_owned(),
            database_url: values["DATABASE_URL"].to_owned(),
        }
    }

    fn run(&self, command: &str, extra: &[&str]) -> String {
        let mut args = vec![command, self.dir.as_str()];
        args.extend(extra);
        run_script(&args)
    }
}

impl Drop for HaCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the monitor decided, and each node's log, for whoever reads the failure.
            for command in ["state", "events"] {
                if let Ok(output) = Command::new(script()).args([command, &self.dir]).output() {
                    println!("{}", String::from_utf8_lossy(&output.stdout));
                }
            }
            let _ = Command::new(script())
                .args(["stop", &self.dir, "--keep"])
                .status();
        } else {
            let _ = Command::new(script()).args(["stop", &self.dir]).output();
        }
    }
}

/// What the clients saw, with when.
#[derive(Default)]
struct Log {
    /// Acknowledged writes: (call id, version, external_id).
    acknowledged: Vec<(String, i64, String)>,
    /// When each successful write started.
    successes: Vec<Instant>,
    /// Every failure: when, and its code (None: the request hung past REQUEST_TIMEOUT).
    failures: Vec<(Instant, Option<Code>, String)>,
}

type SharedLog = Arc<Mutex<Log>>;

/// Runs `attempt` until it succeeds, logging each failure; gives up (None) once `stop` is set.
async fn until_acknowledged<T, F, Fut>(
    log: &SharedLog,
    stop: &tokio_util::sync::CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    loop {
        let started = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, attempt()).await {
            Ok(Ok(value)) => {
                log.lock().unwrap().successes.push(started);
                return Some(value);
            }
            Ok(Err(status)) => log.lock().unwrap().failures.push((
                started,
                Some(status.code()),
                status.message().to_owned(),
            )),
            Err(_) => log
                .lock()
                .unwrap()
                .failures
                .push((started, None, "hung".into())),
        }
        if stop.is_cancelled() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One writer: create (with a request id, so a retry after an unknown outcome is safe), update,
/// pause; until `stop`.
async fn write_steadily(
    writer: usize,
    channel: Channel,
    key: String,
    log: SharedLog,
    stop: tokio_util::sync::CancellationToken,
) {
    let client = CallServiceClient::new(channel);
    for sequence in 0.. {
        if stop.is_cancelled() {
            return;
        }
        let request_id = format!("writer-{writer}-{sequence}");
        let created = until_acknowledged(&log, &stop, || {
            let mut client = client.clone();
            let request = with_key(
                &key,
                pb::CreateCallRequest {
                    call: Some(call(
                        &format!(
                            "+33 6 {writer:02} 00 {:02} {:02}",
                            sequence / 100 % 100,
                            sequence % 100
                        ),
                        "+33 1 23 45 67 89",
                        "2026-11-27T09:30:00",
                        "Europe/Paris",
                    )),
                    request_id: request_id.clone(),
                },
            );
            async move { client.create_call(request).await }
        })
        .await;
        let Some(created) = created else { return };
        let created = created.into_inner().call.unwrap();
        log.lock().unwrap().acknowledged.push((
            created.id.clone(),
            created.etag.parse().unwrap(),
            String::new(),
        ));
        let external_id = format!("updated-{writer}-{sequence}");
        let updated = until_acknowledged(&log, &stop, || {
            let request = with_key(
                &key,
                pb::UpdateCallRequest {
                    call: Some(pb::Call {
                        id: created.id.clone(),
                        external_id: external_id.clone(),
                        ..pb::Call::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["external_id".into()],
                    }),
                },
            );
            let mut client = client.clone();
            async move { client.update_call(request).await }
        })
        .await;
        let Some(updated) = updated else { return };
        let updated = updated.into_inner().call.unwrap();
        log.lock().unwrap().acknowledged.push((
            updated.id,
            updated.etag.parse().unwrap(),
            updated.external_id,
        ));
        tokio::time::sleep(PAUSE_BETWEEN_WRITES).await;
    }
}

/// What the WatchCalls stream delivered: each change as (call id, version, external_id),
/// and every error the stream or its reopening answered.
#[derive(Default)]
struct Streamed {
    changes: Vec<(String, i64, String)>,
    errors: Vec<Code>,
    /// Times a stream was opened (the first from the start token, the rest from the last).
    opened: usize,
}

/// Follows WatchCalls from `token` until `stop`, reopening from the last token received after
/// any error, and every `STREAM_REOPEN_EVERY` on the other replica (as a client moved by a load
/// balancer would), so resumption is exercised through both faults.
async fn follow(
    channels: [Channel; 2],
    key: String,
    mut token: String,
    streamed: Arc<Mutex<Streamed>>,
    stop: tokio_util::sync::CancellationToken,
) {
    for replica in (0..2).cycle() {
        if stop.is_cancelled() {
            return;
        }
        let mut client = CallServiceClient::new(channels[replica].clone());
        let request = with_key(
            &key,
            pb::WatchCallsRequest {
                sync_token: token.clone(),
                ..pb::WatchCallsRequest::default()
            },
        );
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            opened = tokio::time::timeout(REQUEST_TIMEOUT, client.watch_calls(request)) => opened,
        };
        let mut events = match opened {
            Ok(Ok(events)) => events.into_inner(),
            Ok(Err(status)) => {
                streamed.lock().unwrap().errors.push(status.code());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => {
                streamed.lock().unwrap().errors.push(Code::DeadlineExceeded);
                continue;
            }
        };
        streamed.lock().unwrap().opened += 1;
        let reopen = tokio::time::sleep(STREAM_REOPEN_EVERY);
        tokio::pin!(reopen);
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                () = &mut reopen => break,
                message = events.message() => message,
            };
            match message {
                Ok(Some(response)) => {
                    let event = response.event.unwrap();
                    token = event.sync_token.clone();
                    if event.r#type == CallEventType::Heartbeat as i32 {
                        continue;
                    }
                    let call = event.call.unwrap();
                    streamed.lock().unwrap().changes.push((
                        call.id,
                        call.etag.parse().unwrap(),
                        call.external_id,
                    ));
                }
                Ok(None) => break,
                Err(status) => {
                    streamed.lock().unwrap().errors.push(status.code());
                    break;
                }
            }
        }
    }
}

/// How writes went after a fault at `fault`, up to `window_end`.
struct Recovery {
    /// Requests that failed in the window.
    failures: usize,
    /// From the fault to the first failure, if any failed.
    first_failure: Option<Duration>,
    /// From the fault to the first write that succeeded after the first failure: the time
    /// from the fault to writes being back.
    writes_back: Option<Duration>,
    /// The longest stretch in the window without a successful write.
    longest_without_write: Duration,
}

fn recovery(log: &Log, fault: Instant, window_end: Instant) -> Recovery {
    let in_window = |at: &Instant| *at >= fault && *at < window_end;
    let first_failure = log
        .failures
        .iter()
        .map(|(at, _, _)| *at)
        .filter(in_window)
        .min();
    let mut successes: Vec<Instant> = log.successes.iter().copied().filter(in_window).collect();
    successes.sort();
    let writes_back = first_failure.map(|first| {
        successes
            .iter()
            .find(|at| **at > first)
            .map_or(window_end - fault, |at| *at - fault)
    });
    let mut longest_without_write = Duration::ZERO;
    let mut previous = fault;
    for at in &successes {
        longest_without_write = longest_without_write.max(*at - previous);
        previous = *at;
    }
    Recovery {
        failures: log
            .failures
            .iter()
            .filter(|(at, _, _)| in_window(at))
            .count(),
        first_failure: first_failure.map(|at| at - fault),
        writes_back,
        longest_without_write,
    }
}

fn seconds(duration: Option<Duration>) -> String {
    duration.map_or("-".into(), |duration| {
        format!("{:.2} s", duration.as_secs_f64())
    })
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} requests failed (UNAVAILABLE), the first {} after the fault; first successful write {} after the fault; longest stretch without a successful write {:.2} s",
            self.failures,
            seconds(self.first_failure),
            seconds(self.writes_back),
            self.longest_without_write.as_secs_f64()
        )
    }
}

/// Waits until every write the clients saw acknowledged has arrived, or `within`.
async fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs pg_auto_failover and a minute: scripts/failover-test.sh"]
async fn writes_streams_and_webhooks_come_through_a_switchover_and_a_primary_crash() {
    let started = Instant::now();
    let cluster = HaCluster::start();
    println!(
        "cluster up in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        cluster.database_url
    );
    let database: tokio_postgres::Config = cluster.database_url.parse().unwrap();

    let mut first: TestApp = spawn_app_on(webhook_settings(), &database).await;
    let mut second: TestApp = spawn_app_on(webhook_settings(), &database).await;
    let tenant = first
        .store
        .create_tenant("acme", chrono_tz::Tz::UTC)
        .await
        .unwrap();
    let key = auth::create_api_key(&first.store, tenant.id)
        .await
        .unwrap()
        .key;
    first.key = key.clone();
    second.key = key.clone();
    let receiver = Receiver::start().await;
    create_watch(&first, watch_to(receiver.url("/hook"))).await;
    let (_, start_token) = second.list_all(pb::ListCallsRequest::default()).await;

    let channels = [&first, &second].map(|app| {
        Channel::from_shared(format!("http://{}", app.address))
            .unwrap()
            .connect_lazy()
    });
    let log = SharedLog::default();
    let streamed = Arc::new(Mutex::new(Streamed::default()));
    let stop_writers = tokio_util::sync::CancellationToken::new();
    let stop_stream = tokio_util::sync::CancellationToken::new();
    let stream = tokio::spawn(follow(
        channels.clone(),
        key.clone(),
        start_token,
        streamed.clone(),
        stop_stream.clone(),
    ));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            tokio::spawn(write_steadily(
                writer,
                channels[writer % 2].clone(),
                key.clone(),
                log.clone(),
                stop_writers.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(STEADY).await;
    let switchover = Instant::now();
    let dir = cluster.dir.clone();
    tokio::task::spawn_blocking(move || run_script(&["switchover", &dir]))
        .await
        .unwrap();
    let switched = Instant::now();
    tokio::time::sleep(STEADY).await;

    let crashed = cluster.run("crash-primary", &[]);
    // The script's last act was the kill.
    let crash = Instant::now();
    // Writes come back on the standby; the crashed node rejoins as a standby afterwards.
    let deadline = Instant::now() + Duration::from_secs(60);
    let writes_back = || {
        let log = log.lock().unwrap();
        let quiet_since = Instant::now() - Duration::from_secs(1);
        log.successes.iter().any(|at| *at > crash)
            && log.failures.iter().all(|(at, _, _)| *at < quiet_since)
    };
    while !writes_back() {
        assert!(
            Instant::now() < deadline,
            "writes never came back after the crash"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(STEADY).await;
    let crash_window_end = Instant::now();
    let dir = cluster.dir.clone();
    tokio::task::spawn_blocking(move || {
        run_script(&["revive", &dir, &crashed]);
        run_script(&["wait-healthy", &dir, "120"]);
    })
    .await
    .unwrap();
    stop_writers.cancel();
    for writer in writers {
        writer.await.unwrap();
    }

    // Every acknowledged write, in the database as acknowledged (or later).
    let log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
    let (admin, connection) = database.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let stored: HashMap<String, (i64, String)> = admin
        .query(
            "SELECT id::text, version, external_id FROM calls WHERE tenant_id = $1",
            &[&tenant.id],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    let lost: Vec<_> = log
        .acknowledged
        .iter()
        .filter(|(id, version, external_id)| match stored.get(id) {
            None => true,
            Some((stored_version, stored_external_id)) => {
                stored_version < version
                    || (stored_version == version && stored_external_id != external_id)
            }
        })
        .collect();

    // The stream and the webhook: every acknowledged write, the stream exactly once.
    let acknowledged: HashSet<(String, i64)> = log
        .acknowledged
        .iter()
        .map(|(id, version, _)| (id.clone(), *version))
        .collect();
    let stream_complete = wait_until(Duration::from_secs(60), || {
        let streamed = streamed.lock().unwrap();
        let seen: HashSet<(String, i64)> = streamed
            .changes
            .iter()
            .map(|(id, version, _)| (id.clone(), *version))
            .collect();
        acknowledged.is_subset(&seen)
    })
    .await;
    let webhook_key = |id: &str, external_id: &str| (id.to_owned(), external_id.to_owned());
    let expected_webhooks: HashSet<(String, String)> = log
        .acknowledged
        .iter()
        .map(|(id, _, external_id)| webhook_key(id, external_id))
        .collect();
    let delivered = || -> HashSet<(String, String)> {
        receiver
            .received()
            .iter()
            .map(|request| {
                let body = request.json();
                webhook_key(
                    body["data"]["id"].as_str().unwrap_or_default(),
                    body["data"]["externalId"].as_str().unwrap_or_default(),
                )
            })
            .collect()
    };
    let webhooks_complete = wait_until(Duration::from_secs(60), || {
        expected_webhooks.is_subset(&delivered())
    })
    .await;
    stop_stream.cancel();
    stream.await.unwrap();
    let streamed = Arc::try_unwrap(streamed)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap();

    let mut seen = HashSet::new();
    let duplicates = streamed
        .changes
        .iter()
        .filter(|(id, version, _)| !seen.insert((id.clone(), *version)))
        .count();
    let gaps = acknowledged.difference(&seen).count();
    let webhooks_missing = expected_webhooks.difference(&delivered()).count();
    let client_errors: Vec<_> = log
        .failures
        .iter()
        .filter(|(_, code, _)| *code != Some(Code::Unavailable))
        .collect();
    let stream_errors: Vec<_> = streamed
        .errors
        .iter()
        .filter(|code| **code != Code::Unavailable)
        .collect();

    let switched_over = recovery(&log, switchover, crash);
    let crashed_over = recovery(&log, crash, crash_window_end);
    println!(
        "failover: {} acknowledged writes (creates and updates by {WRITERS} writers on 2 replicas), lost {}",
        log.acknowledged.len(),
        lost.len()
    );
    println!(
        "(a) switchover (pg_autoctl perform switchover, {:.1} s): {switched_over}",
        (switched - switchover).as_secs_f64()
    );
    println!("(b) crash of the primary node (kill -9): {crashed_over}");
    let mut messages: HashMap<String, usize> = HashMap::new();
    for (_, code, message) in &log.failures {
        *messages.entry(format!("{code:?}: {message}")).or_default() += 1;
    }
    println!("failures by message: {messages:?}");
    println!(
        "WatchCalls: {} changes, opened {} times (each from the last token, on alternate replicas), {gaps} gaps, {duplicates} duplicates; webhook: {} requests, {webhooks_missing} changes missing; total {:.1} s",
        streamed.changes.len(),
        streamed.opened,
        receiver.received().len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "client errors other than UNAVAILABLE: {}; stream errors other than UNAVAILABLE: {}",
        client_errors.len(),
        stream_errors.len()
    );

    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(
        client_errors.is_empty(),
        "errors other than UNAVAILABLE: {client_errors:?}"
    );
    assert!(
        stream_errors.is_empty(),
        "stream errors other than UNAVAILABLE: {stream_errors:?}"
    );
    assert!(
        stream_complete && gaps == 0,
        "{gaps} acknowledged writes never reached the stream"
    );
    assert_eq!(duplicates, 0, "the stream repeated changes");
    assert!(
        webhooks_complete && webhooks_missing == 0,
        "{webhooks_missing} changes never reached the webhook"
    );

    first.stop().await;
    second.stop().await;
}
