//! `export`: one ExportCalls of the whole seeded tenant, read as fast as the client can, with
//! the server's resident memory sampled every 100 ms: calls a second, and whether memory stays
//! flat (the peak during the export against the memory before it) whatever the tenant's size.

use std::time::{Duration, Instant};

use anyhow::Context;
use callsd::pb::calls::v1::{self as pb, call_service_client::CallServiceClient};
use tonic::transport::Channel;

use crate::report;

/// What one export measured.
#[derive(Debug)]
pub struct ExportReport {
    pub calls: u64,
    pub messages: u64,
    pub seconds: f64,
    pub first_message_ms: f64,
    pub had_sync_token: bool,
    /// Server RSS before the export, the most seen during it, and after it (MiB).
    pub rss_before_mib: f64,
    pub rss_peak_during_mib: f64,
    pub rss_after_mib: f64,
}

pub async fn run(
    address: &str,
    key: &str,
    server_pid: Option<u32>,
) -> anyhow::Result<ExportReport> {
    let channel = Channel::from_shared(address.to_owned())?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {address}"))?;
    let mut client = CallServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let rss_mib = || {
        server_pid
            .and_then(report::memory)
            .map_or(0.0, |memory| memory.rss_kib as f64 / 1024.0)
    };
    let rss_before_mib = rss_mib();
    let mut request = tonic::Request::new(pb::ExportCallsRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse()?);
    let started = Instant::now();
    let mut stream = client.export_calls(request).await?.into_inner();
    let (mut calls, mut messages, mut first_message_ms, mut had_sync_token) = (0, 0, 0.0, false);
    let mut rss_peak_during_mib = rss_before_mib;
    let mut last_sample = Instant::now();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), stream.message())
            .await
            .context("no export message for 60 s")??;
        let Some(message) = message else { break };
        if messages == 0 {
            first_message_ms = started.elapsed().as_secs_f64() * 1000.0;
        }
        messages += 1;
        calls += message.calls.len() as u64;
        had_sync_token |= !message.next_sync_token.is_empty();
        if last_sample.elapsed() >= Duration::from_millis(100) {
            rss_peak_during_mib = rss_peak_during_mib.max(rss_mib());
            last_sample = Instant::now();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(ExportReport {
        calls,
        messages,
        seconds,
        first_message_ms,
        had_sync_token,
        rss_before_mib,
        rss_peak_during_mib: rss_peak_during_mib.max(rss_mib()),
        rss_after_mib: rss_mib(),
    })
}

pub fn print(report: &ExportReport) {
    let per_second = report.calls as f64 / report.seconds.max(f64::EPSILON);
    println!(
        "export     {} calls in {} messages, {:.1} s: {per_second:.0} calls/s, first message after {:.1} ms, sync token {}; server rss {:.1} MiB before, peak {:.1} MiB during, {:.1} MiB after",
        report.calls,
        report.messages,
        report.seconds,
        report.first_message_ms,
        if report.had_sync_token { "yes" } else { "NO" },
        report.rss_before_mib,
        report.rss_peak_during_mib,
        report.rss_after_mib,
    );
    println!(
        "RESULT workload=export calls={} messages={} seconds={:.3} calls_per_s={per_second:.0} first_message_ms={:.1} sync_token={} rss_before_mib={:.1} rss_peak_during_mib={:.1} rss_after_mib={:.1}",
        report.calls,
        report.messages,
        report.seconds,
        report.first_message_ms,
        report.had_sync_token,
        report.rss_before_mib,
        report.rss_peak_during_mib,
        report.rss_after_mib,
    );
}
