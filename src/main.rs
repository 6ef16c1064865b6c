//! `callsd`: parse the settings, start logging, open the database, run the command.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use callsd::{
    app::Application,
    cli,
    config::{Cli, Command, DatabaseSettings, ServeSettings},
    connections,
    embedded_postgres::{Durability, EmbeddedPostgres},
    shutdown_signals::ShutdownSignals,
    store::{self, Store},
    telemetry,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.telemetry.log_format;
    telemetry::init_logging(log_format);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if cli.worker_threads > 0 {
        builder.worker_threads(cli.worker_threads);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            telemetry::report_fatal(log_format, &error);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (store, embedded) = open_database(&cli.database).await?;
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(Box::default()));
    let result = match command {
        Command::Serve(settings) => {
            serve(*settings, &store, embedded.is_some(), &cli.database).await
        }
        Command::Migrate => cli::migrate(&store).await,
        Command::Tenant(command) => cli::tenant(&store, command).await,
        Command::Key(command) => cli::key(&store, command).await,
    };
    store.close();
    if let Some(embedded) = embedded {
        embedded.stop().await;
    }
    result
}

/// The database from DATABASE_URL, or the embedded one in the data directory.
async fn open_database(
    settings: &DatabaseSettings,
) -> anyhow::Result<(Store, Option<EmbeddedPostgres>)> {
    let pool_settings = settings.pool_settings();
    match &settings.database_url {
        Some(url) => {
            let config = store::connection_config(url, &pool_settings)?;
            Ok((Store::new(config, &pool_settings)?, None))
        }
        None => {
            tracing::info!(data_dir = %settings.data_dir.display(), "DATABASE_URL is not set: using the embedded PostgreSQL");
            let embedded = EmbeddedPostgres::start(&settings.data_dir, Durability::Durable).await?;
            let mut config = embedded.connection_config();
            store::apply_settings(&mut config, &pool_settings);
            Ok((Store::new(config, &pool_settings)?, Some(embedded)))
        }
    }
}

async fn serve(
    settings: ServeSettings,
    store: &Store,
    embedded: bool,
    database: &DatabaseSettings,
) -> anyhow::Result<()> {
    if let Some(address) = settings.metrics_listen {
        telemetry::init_metrics(address)
            .with_context(|| format!("cannot serve metrics on {address}"))?;
        tracing::info!(%address, "serving Prometheus metrics at /metrics");
    }
    // Before the app is built: its connection cap is checked against the raised limit.
    connections::raise_open_file_limit();
    let application = Application::build(settings, store.clone()).await?;
    if embedded {
        cli::bootstrap_default_tenant(store, &database.data_dir).await?;
    }
    let signals = ShutdownSignals::listen().context("cannot listen for shutdown signals")?;
    tokio::select! {
        result = application.run_until(signals.first()) => result,
        // The server's tasks end with the runtime, right after the database is closed.
        () = signals.second() => Ok(()),
    }
}
