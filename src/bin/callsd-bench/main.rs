//! `callsd-bench`: a load generator for a running `callsd` (loopback only), and the seeder
//! that gives it a tenant with many calls. `bench/run.sh` puts its figures next to pgbench's.
//!
//! - [`data`]: realistic calls, shared by the seeder and the `create` workload.
//! - [`seed`]: `seed`, COPY of many calls (and their change-log rows) into a new tenant.
//! - [`workloads`]: what one request of each workload sends.
//! - [`rest`]: the REST workloads' keep-alive HTTP/1.1 client and its errors as gRPC codes.
//! - [`driver`]: closed- and open-loop drivers, latency histograms, errors by gRPC code.
//! - [`watch`]: idle WatchCalls streams, and commit-to-event latency across replicas.
//! - [`fairness`]: `fairness`, one tenant's latency alone and beside a noisy tenant.
//! - [`report`]: the printed lines and the server's memory.
//! - [`export`]: `export`, one ExportCalls of the whole tenant: calls/s and the server's memory.
//! - [`floor`]: `floor`, a server of the service's own parts doing nothing else, to measure
//!   what the stack itself allows.

mod cpu;
mod data;
mod driver;
mod export;
mod fairness;
mod floor;
mod page_reader;
mod report;
mod rest;
mod seed;
mod watch;
mod workloads;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use workloads::{Target, Workload};

#[derive(Debug, Parser)]
#[command(name = "callsd-bench", about = "Load generator and seeder for callsd")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a tenant with many realistic calls (COPY); prints its id and key.
    Seed(SeedArgs),
    /// Create an empty tenant; prints its key.
    Tenant {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        #[arg(long)]
        name: String,
    },
    /// Run workloads against a server.
    Run(RunArgs),
    /// One ExportCalls of the whole tenant: calls a second and the server's memory.
    Export {
        /// The server (loopback only).
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        address: String,
        /// API key of the seeded tenant.
        #[arg(long, env = "CALLSD_BENCH_KEY", hide_env_values = true)]
        key: String,
        /// The server's pid, for its memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Idle WatchCalls streams on one replica, creates through another.
    Watch(WatchArgs),
    /// A quiet tenant's latency alone, then while a noisy tenant sends many times its share.
    Fairness(FairnessArgs),
    /// Serve GetCall and ListCalls as the stack's floor: the service's pool, statements and
    /// codec, and nothing else (no auth, no decoding); prints `listening=ADDRESS`.
    Floor {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The seeded tenant's id, which every request reads.
        #[arg(long)]
        tenant_id: callsd::domain::TenantId,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Debug, Args)]
struct SeedArgs {
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Name of the tenant to create.
    #[arg(long)]
    tenant: String,
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Calls per COPY transaction.
    #[arg(long, default_value_t = 100_000)]
    batch: u64,
    /// Skip the change-log rows (they double the seeding time).
    #[arg(long)]
    no_change_log: bool,
    /// Keep the secondary indexes of `calls` during the load (slower; by default they are
    /// dropped and rebuilt after it, so use a database no server is serving).
    #[arg(long)]
    keep_indexes: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The server, e.g. http://127.0.0.1:50051 (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    address: String,
    /// API key of the seeded tenant.
    #[arg(long, env = "CALLSD_BENCH_KEY", hide_env_values = true)]
    key: String,
    /// Comma-separated: ping (gRPC health check, no database), create, get, list, list-one
    /// (page size 1), list-deep, search, update, mixed, summarize (a year by day); get-rest and
    /// list-rest (get and list over REST/JSON, HTTP/1.1 keep-alive: one connection per request
    /// in flight).
    #[arg(long, value_delimiter = ',', default_value = "get")]
    workloads: Vec<Workload>,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// The REST door, when not on `--address`'s port.
    #[arg(long)]
    rest_address: Option<String>,
    /// Requests in flight (closed loop).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The server's pid, for its memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// How many seeded calls the tenant has (get and update pick among them).
    #[arg(long, default_value_t = 1_000_000)]
    seeded: u64,
    /// The page list-deep fetches.
    #[arg(long, default_value_t = 10_000)]
    deep_page: usize,
    /// Digits a search looks for.
    #[arg(long, default_value_t = 6)]
    search_length: usize,
    /// Open loop: requests a second, whatever the answers (for overload).
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: most requests in flight before new ones are dropped as not sent.
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
}

#[derive(Debug, Args)]
struct WatchArgs {
    /// The replica holding the streams.
    #[arg(long)]
    watch_address: String,
    /// The replica taking the creates.
    #[arg(long)]
    write_address: String,
    /// Key of the written (and watched, by the measuring streams) tenant.
    #[arg(long, env = "CALLSD_BENCH_KEY", hide_env_values = true)]
    key: String,
    /// Key of the tenant the idle streams watch.
    #[arg(long)]
    idle_key: String,
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    #[arg(long, default_value_t = 4)]
    measuring_streams: usize,
    /// Creates a second through the write replica.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The watch replica's pid, for its memory.
    #[arg(long)]
    watch_pid: Option<u32>,
}

#[derive(Debug, Args)]
struct FairnessArgs {
    /// The server (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    address: String,
    /// API key of the quiet tenant (seeded, for get).
    #[arg(long)]
    quiet_key: String,
    /// API key of the noisy tenant (may be empty, for list-one).
    #[arg(long)]
    noisy_key: String,
    /// What the quiet tenant sends (a workload of `run`).
    #[arg(long, default_value = "get")]
    quiet_workload: Workload,
    /// What the noisy tenant sends.
    #[arg(long, default_value = "list-one")]
    noisy_workload: Workload,
    /// How many seeded calls the quiet tenant has.
    #[arg(long, default_value_t = 10_000)]
    seeded: u64,
    /// The quiet tenant's requests a second (open loop).
    #[arg(long, default_value_t = 100.0)]
    quiet_rate: f64,
    /// The noisy tenant's requests a second (open loop), e.g. 10 x CALLSD_TENANT_RATE.
    #[arg(long, conflicts_with = "noisy_concurrency")]
    noisy_rate: Option<f64>,
    /// Or the noisy tenant's requests in flight (closed loop).
    #[arg(long, default_value_t = 64)]
    noisy_concurrency: usize,
    #[arg(long, default_value_t = 1)]
    quiet_connections: usize,
    #[arg(long, default_value_t = 4)]
    noisy_connections: usize,
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Rounds of (alone, loaded), one RESULT line each.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The server's pid, for its CPU.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The niceness of the noisy tenant's threads (0 to 19): at 19 the noise cannot take the
    /// CPU the quiet tenant's sends and reads need, as a client on another machine could not.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    noisy_nice: i32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed(args) => {
            let (tenant_id, key, elapsed) = seed::seed(&seed::SeedOptions {
                database_url: args.database_url,
                tenant: args.tenant,
                calls: args.calls,
                batch: args.batch.max(1),
                change_log: !args.no_change_log,
                rebuild_indexes: !args.keep_indexes,
            })
            .await?;
            println!("seed_seconds={:.1}", elapsed.as_secs_f64());
            println!("tenant_id={tenant_id}");
            println!("key={key}");
        }
        Command::Tenant { database_url, name } => {
            let settings = callsd::store::PoolSettings {
                max_size: 1,
                connect_timeout: Duration::from_secs(5),
                acquire_timeout: Duration::from_secs(5),
                statement_timeout: Duration::from_secs(30),
            };
            let config = callsd::store::connection_config(&database_url, &settings)?;
            let store = callsd::store::Store::new(config, &settings)?;
            let tenant = store
                .create_tenant(&name, chrono_tz::Tz::UTC)
                .await
                .with_context(|| format!("cannot create tenant {name}"))?;
            let key = callsd::auth::create_api_key(&store, tenant.id).await?.key;
            println!("key={key}");
        }
        Command::Run(args) => run(args).await?,
        Command::Export {
            address,
            key,
            server_pid,
        } => export::print(&export::run(&address, &key, server_pid).await?),
        Command::Fairness(args) => {
            let noise = match args.noisy_rate {
                Some(rate) => fairness::Noise::Rate(rate),
                None => fairness::Noise::Concurrency(args.noisy_concurrency),
            };
            let noise_text = match noise {
                fairness::Noise::Rate(rate) => {
                    format!("{}:rate:{rate}", args.noisy_workload.name())
                }
                fairness::Noise::Concurrency(concurrency) => {
                    format!("{}:concurrency:{concurrency}", args.noisy_workload.name())
                }
            };
            let options = fairness::FairnessOptions {
                address: args.address,
                quiet_key: args.quiet_key,
                noisy_key: args.noisy_key,
                quiet_workload: args.quiet_workload,
                noisy_workload: args.noisy_workload,
                seeded: args.seeded,
                quiet_rate: args.quiet_rate,
                noise,
                quiet_connections: args.quiet_connections,
                noisy_connections: args.noisy_connections,
                warmup: args.warmup,
                duration: args.duration,
                rounds: args.rounds,
                server_pid: args.server_pid,
                noisy_nice: args.noisy_nice,
            };
            fairness::run(&options, |round, result| {
                report::print_fairness(round, options.quiet_rate, &noise_text, result)
            })
            .await?;
        }
        Command::Floor {
            database_url,
            tenant_id,
            listen,
        } => floor::serve(&database_url, tenant_id, listen).await?,
        Command::Watch(args) => {
            let report = watch::run(&watch::WatchOptions {
                watch_address: args.watch_address,
                write_address: args.write_address,
                write_key: args.key,
                idle_key: args.idle_key,
                idle_streams: args.streams,
                measuring_streams: args.measuring_streams,
                creates_per_second: args.rate,
                warmup: args.warmup,
                duration: args.duration,
                watch_pid: args.watch_pid,
            })
            .await?;
            report::print_watch(&report, args.streams, args.rate);
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let clients = driver::connect(&args.address, args.connections).await?;
    let mut target = Target::new(&args.key, args.seeded, args.search_length)?;
    if args.workloads.iter().any(|workload| workload.is_rest()) {
        let address = args.rest_address.as_deref().unwrap_or(&args.address);
        target.rest = Some(rest::RestClient::new(address, &args.key, args.concurrency)?);
    }
    if args.workloads.contains(&Workload::ListDeep) {
        let started = std::time::Instant::now();
        target.deep_page_token =
            workloads::deep_page_token(&target, clients[0].clone(), args.deep_page).await?;
        eprintln!(
            "walked to page {} in {:.1}s",
            args.deep_page,
            started.elapsed().as_secs_f64()
        );
    }
    let target = Arc::new(target);
    for workload in &args.workloads {
        let workload = *workload;
        let target = target.clone();
        let request =
            move |client, sequence| workloads::send(workload, target.clone(), client, sequence);
        let cpu = tokio::spawn(cpu::measure_window(
            args.server_pid,
            args.warmup,
            args.duration,
        ));
        let stats = match args.rate {
            Some(rate) => {
                driver::open_loop(
                    &clients,
                    rate,
                    args.max_in_flight,
                    args.warmup,
                    args.duration,
                    request,
                )
                .await
            }
            None => {
                driver::closed_loop(
                    &clients,
                    args.concurrency,
                    args.warmup,
                    args.duration,
                    request,
                )
                .await
            }
        };
        let memory = args.server_pid.and_then(report::memory);
        let cpu = cpu.await.ok().flatten();
        report::print_workload(workload.name(), args.concurrency, &stats, memory, cpu);
    }
    Ok(())
}
