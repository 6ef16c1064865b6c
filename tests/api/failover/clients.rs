//! The failover test's clients: steady writers, a WatchCalls follower, and what they saw.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use callsd::pb::calls::v1::{self as pb, call_service_client::CallServiceClient, CallEventType};
use tonic::{transport::Channel, Code};

use crate::helpers::{call, with_key};

/// A request that takes longer than this counts as a failure of its own kind (a hang).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Writers: each creates a call, then updates it, then pauses.
pub const WRITERS: usize = 4;
pub const PAUSE_BETWEEN_WRITES: Duration = Duration::from_millis(60);
/// Steady load before, between and after the faults.
pub const STEADY: Duration = Duration::from_secs(3);
/// The stream is reopened on the other replica this often, from its last token.
pub const STREAM_REOPEN_EVERY: Duration = Duration::from_millis(1500);

/// What the clients saw, with when.
#[derive(Default)]
pub struct Log {
    /// Acknowledged writes: (call id, version, external_id).
    pub acknowledged: Vec<(String, i64, String)>,
    /// When each successful write started.
    pub successes: Vec<Instant>,
    /// Every failure: when, and its code (None: the request hung past REQUEST_TIMEOUT).
    pub failures: Vec<(Instant, Option<Code>, String)>,
}

pub type SharedLog = Arc<Mutex<Log>>;

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
pub async fn write_steadily(
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
pub struct Streamed {
    pub changes: Vec<(String, i64, String)>,
    pub errors: Vec<Code>,
    /// Times a stream was opened (the first from the start token, the rest from the last).
    pub opened: usize,
}

/// Follows WatchCalls from `token` until `stop`, reopening from the last token received after
/// any error, and every `STREAM_REOPEN_EVERY` on the other replica (as a client moved by a load
/// balancer would), so resumption is exercised through both faults.
pub async fn follow(
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
pub struct Recovery {
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

pub fn recovery(log: &Log, fault: Instant, window_end: Instant) -> Recovery {
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
pub async fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done()
}
