//! `watch`: M idle WatchCalls streams held open on one replica (on a tenant nobody writes to),
//! a few measuring streams on the written tenant, and K creates a second through another
//! replica; reports commit-to-event latency and the watching replica's memory per stream.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::{transport::Channel, Request};

use callsd::pb::calls::v1::{self as pb, call_service_client::CallServiceClient};

use crate::{
    data::CallGenerator,
    driver::{self, connect},
    report::{memory, Memory},
    workloads::Target,
};

/// Streams a single HTTP/2 connection carries (hyper's server allows 200 by default).
const STREAMS_PER_CONNECTION: usize = 100;
/// Streams being opened at once.
const OPENING_AT_ONCE: usize = 32;
/// Tries to open each stream (a shed or failed open is retried after a short pause).
const OPEN_ATTEMPTS: usize = 20;

pub struct WatchOptions {
    pub watch_address: String,
    pub write_address: String,
    /// Key of the tenant the creates go to (the measuring streams watch it).
    pub write_key: String,
    /// Key of the tenant the idle streams watch.
    pub idle_key: String,
    pub idle_streams: usize,
    pub measuring_streams: usize,
    pub creates_per_second: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub watch_pid: Option<u32>,
}

pub struct WatchReport {
    pub idle_streams_open: u64,
    pub memory_before: Option<Memory>,
    pub memory_with_streams: Option<Memory>,
    pub memory_after: Option<Memory>,
    pub creates: driver::Stats,
    /// From the change's event_time (its transaction's start) to delivery, in microseconds.
    pub delivery: Histogram<u64>,
    /// From the CreateCall answer to delivery (first measuring stream), in microseconds.
    pub after_answer: Histogram<u64>,
    /// Events that arrived before their CreateCall answer did (not in `after_answer`).
    pub event_before_answer: u64,
    pub events: u64,
}

pub async fn run(options: &WatchOptions) -> anyhow::Result<WatchReport> {
    let stop = CancellationToken::new();
    let memory_before = options.watch_pid.and_then(memory);

    let connections = options.idle_streams.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let idle_clients = connect(&options.watch_address, connections).await?;
    let opened = Arc::new(AtomicU64::new(0));
    // Open a few at a time: the server sheds RPCs past its in-flight limit.
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut tasks = Vec::new();
    for index in 0..options.idle_streams {
        let client = idle_clients[index % idle_clients.len()].clone();
        let key = options.idle_key.clone();
        let opened = opened.clone();
        let opening = opening.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(permit) = opening.acquire().await else {
                return;
            };
            let mut stream = None;
            for _ in 0..OPEN_ATTEMPTS {
                match open_stream(client.clone(), &key).await {
                    Ok(opened) => {
                        stream = Some(opened);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            drop(permit);
            let Some(mut stream) = stream else {
                return;
            };
            opened.fetch_add(1, Ordering::Relaxed);
            // Idle: only heartbeats arrive. Bounded by the stop token.
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    message = stream.message() => if !matches!(message, Ok(Some(_))) { return },
                }
            }
        }));
    }
    let opening_deadline = Instant::now() + Duration::from_secs(120);
    while opened.load(Ordering::Relaxed) < options.idle_streams as u64
        && Instant::now() < opening_deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let allocations settle before reading the memory the streams hold.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let memory_with_streams = options.watch_pid.and_then(memory);

    let measure_clients = connect(&options.watch_address, 1).await?;
    let delivered = Arc::new(std::sync::Mutex::new(driver::latency_histogram()));
    let events = Arc::new(AtomicU64::new(0));
    let measure_from = SystemTime::now() + options.warmup;
    // When the first measuring stream received each call, by id.
    let received_at: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    for index in 0..options.measuring_streams {
        let mut stream = open_stream(measure_clients[0].clone(), &options.write_key).await?;
        let delivered = delivered.clone();
        let events = events.clone();
        let received_at = (index == 0).then(|| received_at.clone());
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => return,
                    message = stream.message() => message,
                };
                let Ok(Some(message)) = message else { return };
                let received = SystemTime::now();
                let Some(event) = message.event else { continue };
                if event.r#type != pb::CallEventType::Created as i32 {
                    continue;
                }
                let Some(event_time) = event.event_time else {
                    continue;
                };
                let committed = SystemTime::UNIX_EPOCH
                    + Duration::new(
                        u64::try_from(event_time.seconds).unwrap_or(0),
                        u32::try_from(event_time.nanos).unwrap_or(0),
                    );
                if committed < measure_from {
                    continue;
                }
                if let (Some(received_at), Some(call)) = (&received_at, &event.call) {
                    if let Ok(mut received_at) = received_at.lock() {
                        received_at.insert(call.id.clone(), received);
                    }
                }
                let micros = received
                    .duration_since(committed)
                    .map_or(1, |latency| latency.as_micros() as u64);
                events.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut histogram) = delivered.lock() {
                    histogram.saturating_record(micros.max(1));
                }
            }
        }));
    }

    let writers = connect(&options.write_address, 2).await?;
    let target = Arc::new(Target::new(&options.write_key, 0, 0)?);
    // When each create's answer came back: the change is committed by then.
    let answered_at: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let answers = answered_at.clone();
    let creates = driver::open_loop(
        &writers,
        options.creates_per_second,
        1024,
        options.warmup,
        options.duration,
        move |channel, sequence| {
            let mut client = CallServiceClient::new(channel);
            let target = target.clone();
            let answers = answers.clone();
            async move {
                let call = CallGenerator::new(sequence ^ 0x5EED)
                    .next_call(2_000_000_000 + sequence)
                    .to_proto();
                let response = client
                    .create_call(target.request(pb::CreateCallRequest {
                        call: Some(call),
                        request_id: String::new(),
                    }))
                    .await?;
                let answered = SystemTime::now();
                if let (Some(call), Ok(mut answers)) = (response.into_inner().call, answers.lock())
                {
                    answers.insert(call.id, answered);
                }
                Ok(())
            }
        },
    )
    .await;
    // The last changes still travel: give them a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let memory_after = options.watch_pid.and_then(memory);
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let delivery = delivered
        .lock()
        .map(|histogram| histogram.clone())
        .unwrap_or_else(|_| driver::latency_histogram());
    // From the create's answer to the event: a lower bound of commit-to-event (the answer
    // leaves after the commit), where event_time (the transaction's start) gives the upper.
    let mut after_answer = driver::latency_histogram();
    let mut event_before_answer = 0;
    if let (Ok(answered_at), Ok(received_at)) = (answered_at.lock(), received_at.lock()) {
        for (id, received) in received_at.iter() {
            if let Some(answered) = answered_at.get(id) {
                match received.duration_since(*answered) {
                    Ok(latency) => {
                        after_answer.saturating_record((latency.as_micros() as u64).max(1))
                    }
                    Err(_) => event_before_answer += 1,
                }
            }
        }
    }
    Ok(WatchReport {
        idle_streams_open: opened.load(Ordering::Relaxed),
        memory_before,
        memory_with_streams,
        memory_after,
        creates,
        delivery,
        after_answer,
        event_before_answer,
        events: events.load(Ordering::Relaxed),
    })
}

async fn open_stream(
    channel: Channel,
    key: &str,
) -> anyhow::Result<tonic::Streaming<pb::WatchCallsResponse>> {
    let mut request = Request::new(pb::WatchCallsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse()?);
    let mut client = CallServiceClient::new(channel);
    Ok(client.watch_calls(request).await?.into_inner())
}
