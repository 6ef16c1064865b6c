//! Where the CPU went during the measured window, from /proc: this load generator, the server,
//! and the rest of the machine (PostgreSQL, on a bench machine that runs nothing else).
//!
//! On two cores shared by all three, a workload's throughput is bounded by their CPU per
//! request added up; pgbench's figure is bounded by PostgreSQL's plus its own. Printing the
//! split per request shows which part a ratio is made of.

use std::time::Duration;

/// /proc counts CPU time in USER_HZ ticks, which Linux fixes at 100 a second for user space.
const MICROS_PER_TICK: f64 = 10_000.0;

/// CPU time used so far, in ticks.
#[derive(Debug, Clone, Copy)]
struct Sample {
    client: u64,
    server: Option<u64>,
    machine_busy: u64,
}

/// CPU time used during a window, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    pub client_micros: f64,
    pub server_micros: Option<f64>,
    /// Busy time of the whole machine, less the client and the server.
    pub other_micros: f64,
}

impl CpuUse {
    /// The same, per request.
    pub fn per(&self, requests: u64) -> CpuUse {
        let requests = requests.max(1) as f64;
        CpuUse {
            client_micros: self.client_micros / requests,
            server_micros: self.server_micros.map(|micros| micros / requests),
            other_micros: self.other_micros / requests,
        }
    }
}

/// Waits out the warm-up, then measures the CPU used over `duration`; `None` off Linux.
pub async fn measure_window(
    server_pid: Option<u32>,
    warmup: Duration,
    duration: Duration,
) -> Option<CpuUse> {
    tokio::time::sleep(warmup).await;
    let start = sample(server_pid)?;
    tokio::time::sleep(duration).await;
    let end = sample(server_pid)?;
    let ticks = |from: u64, to: u64| to.saturating_sub(from) as f64 * MICROS_PER_TICK;
    let client_micros = ticks(start.client, end.client);
    let server_micros = start
        .server
        .zip(end.server)
        .map(|(from, to)| ticks(from, to));
    let machine_micros = ticks(start.machine_busy, end.machine_busy);
    Some(CpuUse {
        client_micros,
        server_micros,
        other_micros: (machine_micros - client_micros - server_micros.unwrap_or(0.0)).max(0.0),
    })
}

fn sample(server_pid: Option<u32>) -> Option<Sample> {
    Some(Sample {
        client: process_ticks("self")?,
        server: server_pid.and_then(|pid| process_ticks(&pid.to_string())),
        machine_busy: machine_busy_ticks()?,
    })
}

/// utime + stime of a process (fields 14 and 15 of /proc/PID/stat).
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// user + nice + system + irq + softirq of all CPUs (the first line of /proc/stat).
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let totals: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let field = |index: usize| totals.get(index).copied().unwrap_or(0);
    Some(field(0) + field(1) + field(2) + field(5) + field(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_the_machine_have_used_some_cpu() {
        // Burn a little CPU so the counters cannot both be zero.
        let mut sum = 0u64;
        for value in 0..50_000_000u64 {
            sum = sum.wrapping_add(value * value);
        }
        assert_ne!(std::hint::black_box(sum), 1);
        let now = sample(Some(std::process::id())).expect("Linux /proc");
        assert!(now.client > 0 && now.machine_busy >= now.client);
        assert!(
            now.server.is_some_and(|ticks| ticks > 0),
            "a pid is read like self"
        );
    }
}
