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
//! in this process's own queues, and its p99 measured the load generator. With
//! `noisy_nice` its threads also run at a lower priority, so that on a load generator sharing
//! its CPUs the noise cannot delay the quiet tenant's own sends and reads either (a client on
//! another machine could not), while PostgreSQL and the server keep theirs.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;

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
    /// The niceness (0 to 19) of the noisy tenant's threads.
    pub noisy_nice: i32,
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
            let nice = options.noisy_nice;
            let (done, result) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("noisy-tenant".into())
                .spawn(move || {
                    let window = || -> anyhow::Result<Stats> {
                        lower_this_thread(nice)?;
                        let runtime = tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(2)
                            .on_thread_start(move || {
                                if let Err(error) = lower_this_thread(nice) {
                                    eprintln!("a noisy thread keeps its priority: {error:#}");
                                }
                            })
                            .enable_all()
                            .build()?;
                        runtime.block_on(async move {
                            let clients = driver::connect(&address, connections).await?;
                            Ok(
                                noisy_window(noise, workload, clients, target, warmup, duration)
                                    .await,
                            )
                        })
                    };
                    let _ = done.send(window());
                })?;
            result
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

/// Sets the calling thread's niceness: on Linux `setpriority` with a thread id changes that
/// thread alone.
fn lower_this_thread(nice: i32) -> anyhow::Result<()> {
    if nice == 0 {
        return Ok(());
    }
    // SAFETY: plain system calls with no pointers; gettid cannot fail.
    let result =
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if result != 0 {
        return Err(std::io::Error::last_os_error()).context("setpriority");
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
