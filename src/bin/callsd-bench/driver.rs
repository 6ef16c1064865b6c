//! Drives a workload: closed loop (C workers, each sending its next request when the last one
//! answered) or open loop (a fixed arrival rate, to overload the server on purpose), over N
//! channels, for a warm-up and then a measured, fixed duration.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tonic::{transport::Channel, Code, Status};
use tonic_types::StatusExt;

/// What one measured window saw.
#[derive(Debug)]
pub struct Stats {
    /// Latencies of successful requests, in microseconds.
    pub latencies: Histogram<u64>,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Errors by the `google.rpc.ErrorInfo` reason they carry (`OVERLOADED`,
    /// `TENANT_RATE_LIMITED`, ...), for those that carry one.
    pub reasons: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Requests the open loop could not even start (its in-flight cap was reached).
    pub not_sent: u64,
}

/// A latency histogram in microseconds: 1 µs to 2 minutes, three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (low ≥ 1, high ≥ 2 × low, sigfig ≤ 5).
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

impl Stats {
    fn new() -> Self {
        Stats {
            latencies: latency_histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            reasons: BTreeMap::new(),
            elapsed: Duration::ZERO,
            not_sent: 0,
        }
    }

    fn record(&mut self, started: Instant, result: &Result<(), Status>) {
        match result {
            Ok(()) => {
                self.ok += 1;
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.latencies.saturating_record(micros.max(1));
            }
            Err(status) => {
                let count = self.errors.entry(code_name(status.code())).or_default();
                *count += 1;
                // A few samples per code say what the counts mean.
                if *count <= 3 {
                    eprintln!("error {:?}: {}", status.code(), status.message());
                }
                if let Some(info) = status.get_details_error_info() {
                    *self.reasons.entry(info.reason).or_default() += 1;
                }
            }
        }
    }

    fn merge(&mut self, other: &Stats) {
        self.latencies.add(&other.latencies).expect("same bounds");
        self.ok += other.ok;
        self.not_sent += other.not_sent;
        for (code, count) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
        for (reason, count) in &other.reasons {
            *self.reasons.entry(reason.clone()).or_default() += count;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

pub fn code_name(code: Code) -> String {
    format!("{code:?}")
}

/// Opens `count` HTTP/2 connections to `address`.
pub async fn connect(address: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let channel = Channel::from_shared(address.to_owned())?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await?;
        clients.push(channel);
    }
    Ok(clients)
}

/// Runs `request` from `concurrency` workers until the warm-up and the measured window are
/// over; only requests that start inside the window count.
pub async fn closed_loop<F, Fut>(
    clients: &[Channel],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    request: F,
) -> Stats
where
    F: Fn(Channel, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Status>> + Send,
{
    let begin = Instant::now();
    let measure_from = begin + warmup;
    let end = measure_from + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let client = clients[worker % clients.len()].clone();
        let request = request.clone();
        workers.push(tokio::spawn(async move {
            let mut stats = Stats::new();
            let mut sequence = worker as u64;
            // Bounded: every iteration ends by the deadline check, each request has a timeout.
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let result = request(client.clone(), sequence).await;
                sequence += concurrency as u64;
                if started >= measure_from {
                    stats.record(started, &result);
                }
            }
            stats
        }));
    }
    let mut total = Stats::new();
    for worker in workers {
        if let Ok(stats) = worker.await {
            total.merge(&stats);
        }
    }
    total.elapsed = duration;
    total
}

/// Sends `rate` requests a second whatever the answers, at most `max_in_flight` at once, for
/// the warm-up and the measured window.
pub async fn open_loop<F, Fut>(
    clients: &[Channel],
    rate: f64,
    max_in_flight: usize,
    warmup: Duration,
    duration: Duration,
    request: F,
) -> Stats
where
    F: Fn(Channel, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let begin = Instant::now();
    let measure_from = begin + warmup;
    let end = measure_from + duration;
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let (results, mut received) =
        tokio::sync::mpsc::unbounded_channel::<(Instant, Result<(), Status>)>();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut not_sent = 0;
    let mut sequence = 0_u64;
    let collector = tokio::spawn(async move {
        let mut stats = Stats::new();
        while let Some((started, result)) = received.recv().await {
            if started >= measure_from {
                stats.record(started, &result);
            }
        }
        stats
    });
    loop {
        let now = ticker.tick().await.into_std();
        if now >= end {
            break;
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            if now >= measure_from {
                not_sent += 1;
            }
            continue;
        };
        let client = clients[(sequence as usize) % clients.len()].clone();
        let results = results.clone();
        let future = request(client, sequence);
        sequence += 1;
        tokio::spawn(async move {
            let started = Instant::now();
            let result = future.await;
            let _ = results.send((started, result));
            drop(permit);
        });
    }
    // Wait for the stragglers (each has a timeout) so their answers count.
    let _ = in_flight.acquire_many(max_in_flight as u32).await;
    drop(results);
    let mut stats = collector.await.unwrap_or_else(|_| Stats::new());
    stats.not_sent = not_sent;
    stats.elapsed = duration;
    stats
}
