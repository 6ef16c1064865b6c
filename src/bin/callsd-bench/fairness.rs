//! `fairness`: does one tenant offering many times its share hurt another? (issue 13)
//!
//! A quiet tenant sends a modest, fixed rate (open loop, so its latency is not hidden by it
//! slowing down); its latency is measured first alone, then while a noisy tenant sends as
//! much as it is told to (open loop at a rate, or closed loop at a concurrency), over
//! connections of its own. Rounds alternate the two windows, so each loaded p99 has an
//! unloaded one minutes apart on the same machine to be compared with.
//!
//! The noisy tenant runs on a runtime (and threads) of its own, as a separate client would:
//! on one runtime, the quiet tenant's answers waited behind thousands of noisy tasks a second
//! in this process's own queues, and its p99 measured the load generator.

use std::{sync::Arc, time::Duration};

use tonic::transport::Channel;

use crate::{
    cpu::{self, CpuUse},
    driver::{self, Stats},
    workloads::{self, Target, Workload},
};

/// What the noisy tenant does.
#[derive(Debug, Clone, Copy)]
pub enum Noise {
    /// Open loop: this many requests a second, whatever the answers.
    Rate(f64),
    /// Closed loop: this many requests in flight; a refusal comes back at once and is sent
    /// again at once, so this offers as much as the client can send.
    Concurrency(usize),
}

pub struct FairnessOptions {
    pub address: String,
    pub quiet_key: String,
    pub noisy_key: String,
    pub quiet_workload: Workload,
    pub noisy_workload: Workload,
    /// Seeded calls of the quiet tenant (get picks among them).
    pub seeded: u64,
    pub quiet_rate: f64,
    pub noise: Noise,
    pub quiet_connections: usize,
    pub noisy_connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: usize,
    pub server_pid: Option<u32>,
}

/// One round: the quiet tenant alone, then with the noisy one.
pub struct Round {
    pub alone: Stats,
    pub alone_cpu: Option<CpuUse>,
    pub loaded: Stats,
    pub loaded_cpu: Option<CpuUse>,
    /// The noisy tenant over the quiet tenant's loaded window.
    pub noisy: Stats,
}

/// Runs `rounds` rounds, reporting each as it ends.
pub async fn run(
    options: &FairnessOptions,
    mut report: impl FnMut(usize, &Round),
) -> anyhow::Result<()> {
    let quiet_clients = driver::connect(&options.address, options.quiet_connections).await?;
    let quiet = Arc::new(Target::new(&options.quiet_key, options.seeded, 6)?);
    let noisy = Arc::new(Target::new(&options.noisy_key, options.seeded, 6)?);
    for round in 1..=options.rounds.max(1) {
        let (alone, alone_cpu) = quiet_window(options, &quiet_clients, quiet.clone()).await;
        // The noise warms up for one warm-up, then runs through the quiet tenant's warm-up
        // and measured window; its own measured window is the quiet tenant's.
        let noise = {
            let (noise, workload, target) = (options.noise, options.noisy_workload, noisy.clone());
            let (address, connections) = (options.address.clone(), options.noisy_connections);
            let (warmup, duration) = (options.warmup * 2, options.duration);
            tokio::task::spawn_blocking(move || -> anyhow::Result<Stats> {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let clients = driver::connect(&address, connections).await?;
                    Ok(noisy_window(noise, workload, clients, target, warmup, duration).await)
                })
            })
        };
        tokio::time::sleep(options.warmup).await;
        let (loaded, loaded_cpu) = quiet_window(options, &quiet_clients, quiet.clone()).await;
        let noisy = noise.await??;
        report(
            round,
            &Round {
                alone,
                alone_cpu,
                loaded,
                loaded_cpu,
                noisy,
            },
        );
    }
    Ok(())
}

async fn quiet_window(
    options: &FairnessOptions,
    clients: &[Channel],
    target: Arc<Target>,
) -> (Stats, Option<CpuUse>) {
    let workload = options.quiet_workload;
    let cpu = tokio::spawn(cpu::measure_window(
        options.server_pid,
        options.warmup,
        options.duration,
    ));
    let stats = driver::open_loop(
        clients,
        options.quiet_rate,
        4096,
        options.warmup,
        options.duration,
        move |client, sequence| workloads::send(workload, target.clone(), client, sequence),
    )
    .await;
    (stats, cpu.await.ok().flatten())
}

async fn noisy_window(
    noise: Noise,
    workload: Workload,
    clients: Vec<Channel>,
    target: Arc<Target>,
    warmup: Duration,
    duration: Duration,
) -> Stats {
    let request =
        move |client, sequence| workloads::send(workload, target.clone(), client, sequence);
    match noise {
        Noise::Rate(rate) => {
            driver::open_loop(&clients, rate, 4096, warmup, duration, request).await
        }
        Noise::Concurrency(concurrency) => {
            driver::closed_loop(&clients, concurrency, warmup, duration, request).await
        }
    }
}
