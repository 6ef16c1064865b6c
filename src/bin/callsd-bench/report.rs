//! Output: one human line and one `RESULT key=value ...` line per workload (bench/run.sh reads
//! the latter), and the server's memory from /proc.

use crate::{cpu::CpuUse, driver::Stats, fairness::Round, watch::WatchReport};

/// A process's resident memory, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

/// Reads VmRSS and VmHWM of `pid`; `None` when the process is gone or not readable.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_rss_kib: field("VmHWM:")?,
    })
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn errors_text(stats: &Stats) -> String {
    counts_text(&stats.errors)
}

/// `KEY:COUNT,KEY:COUNT`, or `none`.
fn counts_text(counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(key, count)| format!("{key}:{count}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn print_workload(
    name: &str,
    concurrency: usize,
    stats: &Stats,
    memory: Option<Memory>,
    cpu: Option<CpuUse>,
) {
    let seconds = stats.elapsed.as_secs_f64().max(f64::EPSILON);
    let rps = stats.ok as f64 / seconds;
    let latencies = &stats.latencies;
    let peak_mib = memory.map_or(0.0, |memory| memory.peak_rss_kib as f64 / 1024.0);
    let server_cpu_total = cpu
        .and_then(|cpu| cpu.server_micros)
        .map_or_else(|| "-".to_owned(), |micros| format!("{:.3}", micros / 1e6));
    let cpu = cpu.map(|cpu| cpu.per(stats.ok));
    let micros = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"));
    let client_cpu = micros(cpu.map(|cpu| cpu.client_micros));
    let server_cpu = micros(cpu.and_then(|cpu| cpu.server_micros));
    let other_cpu = micros(cpu.map(|cpu| cpu.other_micros));
    let rss_mib = memory.map_or(0.0, |memory| memory.rss_kib as f64 / 1024.0);
    println!(
        "{name:<10} c={concurrency:<4} {rps:>9.1} req/s  p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms  max {:>9.2} ms  errors {}  server rss {rss_mib:.1} MiB (peak {peak_mib:.1} MiB)",
        millis(latencies.value_at_quantile(0.50)),
        millis(latencies.value_at_quantile(0.95)),
        millis(latencies.value_at_quantile(0.99)),
        millis(latencies.max()),
        errors_text(stats),
    );
    println!(
        "{:<10} CPU per request: client {client_cpu} us, server {server_cpu} us, rest of the machine (PostgreSQL) {other_cpu} us",
        "",
    );
    println!(
        "RESULT workload={name} concurrency={concurrency} rps={rps:.1} ok={} p50_ms={:.3} p95_ms={:.3} p99_ms={:.3} max_ms={:.3} errors={} error_codes={} not_sent={} rss_mib={rss_mib:.1} peak_rss_mib={peak_mib:.1} client_cpu_us={client_cpu} server_cpu_us={server_cpu} other_cpu_us={other_cpu} server_cpu_s={server_cpu_total} reasons={}",
        stats.ok,
        millis(latencies.value_at_quantile(0.50)),
        millis(latencies.value_at_quantile(0.95)),
        millis(latencies.value_at_quantile(0.99)),
        millis(latencies.max()),
        stats.error_count(),
        errors_text(stats),
        stats.not_sent,
        counts_text(&stats.reasons),
    );
}

pub fn print_watch(report: &WatchReport, idle_streams: usize, rate: f64) {
    let mib = |memory: Option<Memory>| memory.map_or(0.0, |memory| memory.rss_kib as f64 / 1024.0);
    let before = mib(report.memory_before);
    let with_streams = mib(report.memory_with_streams);
    let per_stream_kib = if report.idle_streams_open > 0 {
        (with_streams - before) * 1024.0 / report.idle_streams_open as f64
    } else {
        0.0
    };
    let delivery = &report.delivery;
    let creates = &report.creates;
    println!(
        "watch      {} of {idle_streams} idle streams open: rss {before:.1} -> {with_streams:.1} MiB ({per_stream_kib:.1} KiB/stream), {:.1} MiB after the writes",
        report.idle_streams_open,
        mib(report.memory_after),
    );
    println!(
        "watch      {} creates at {rate}/s (errors {}), {} events: commit-to-event p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        creates.ok,
        errors_text(creates),
        report.events,
        millis(delivery.value_at_quantile(0.50)),
        millis(delivery.value_at_quantile(0.99)),
        millis(delivery.max()),
    );
    let answer = &report.after_answer;
    println!(
        "watch      from the CreateCall answer to the event: p50 {:.2} ms  p99 {:.2} ms ({} of {} events arrived before their answer)",
        millis(answer.value_at_quantile(0.50)),
        millis(answer.value_at_quantile(0.99)),
        report.event_before_answer,
        answer.len() + report.event_before_answer,
    );
    println!(
        "RESULT workload=watch idle_streams={} rss_before_mib={before:.1} rss_streams_mib={with_streams:.1} kib_per_stream={per_stream_kib:.1} creates={} create_errors={} events={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} answer_p50_ms={:.3} answer_p99_ms={:.3} before_answer={} rate={rate}",
        report.idle_streams_open,
        creates.ok,
        creates.error_count(),
        report.events,
        millis(delivery.value_at_quantile(0.50)),
        millis(delivery.value_at_quantile(0.99)),
        millis(delivery.max()),
        millis(answer.value_at_quantile(0.50)),
        millis(answer.value_at_quantile(0.99)),
        report.event_before_answer,
    );
}

/// One round of `fairness`: a line for each window, then the `RESULT` line.
pub fn print_fairness(round: usize, quiet_rate: f64, noise: &str, result: &Round) {
    let p = |stats: &Stats, quantile: f64| millis(stats.latencies.value_at_quantile(quantile));
    let (alone, loaded, noisy) = (&result.alone, &result.loaded, &result.noisy);
    let ratio = p(loaded, 0.99) / p(alone, 0.99).max(f64::EPSILON);
    // The server's CPU a second of the window, in cores (1.0 = one core busy).
    let server_cores = |cpu: Option<CpuUse>, stats: &Stats| {
        cpu.and_then(|cpu| cpu.server_micros).map_or_else(
            || "-".to_owned(),
            |micros| {
                format!(
                    "{:.2}",
                    micros / 1e6 / stats.elapsed.as_secs_f64().max(f64::EPSILON)
                )
            },
        )
    };
    let seconds = loaded.elapsed.as_secs_f64().max(f64::EPSILON);
    let refused = noisy.errors.get("ResourceExhausted").copied().unwrap_or(0);
    println!(
        "fairness   round {round}: quiet at {quiet_rate}/s alone p50 {:.2} ms p99 {:.2} ms (errors {}); with noise ({noise}) p50 {:.2} ms p99 {:.2} ms (errors {}): p99 x{ratio:.2}",
        p(alone, 0.50),
        p(alone, 0.99),
        errors_text(alone),
        p(loaded, 0.50),
        p(loaded, 0.99),
        errors_text(loaded),
    );
    println!(
        "{:<10} noisy: {:.1} ok/s, {:.1} refused/s ({}), not sent {}",
        "",
        noisy.ok as f64 / seconds,
        refused as f64 / seconds,
        counts_text(&noisy.reasons),
        noisy.not_sent,
    );
    println!(
        "RESULT workload=fairness round={round} quiet_rate={quiet_rate} noise={noise} alone_ok={} alone_p50_ms={:.3} alone_p99_ms={:.3} alone_errors={} loaded_ok={} loaded_p50_ms={:.3} loaded_p99_ms={:.3} loaded_errors={} loaded_reasons={} p99_ratio={ratio:.2} noisy_ok={} noisy_rps={:.1} noisy_refused={} noisy_reasons={} noisy_errors={} noisy_not_sent={} server_cores_alone={} server_cores_loaded={}",
        alone.ok,
        p(alone, 0.50),
        p(alone, 0.99),
        errors_text(alone),
        loaded.ok,
        p(loaded, 0.50),
        p(loaded, 0.99),
        errors_text(loaded),
        counts_text(&loaded.reasons),
        noisy.ok,
        noisy.ok as f64 / seconds,
        refused,
        counts_text(&noisy.reasons),
        errors_text(noisy),
        noisy.not_sent,
        server_cores(result.alone_cpu, alone),
        server_cores(result.loaded_cpu, loaded),
    );
}
