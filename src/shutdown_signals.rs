//! The signals that stop `callsd`. The first SIGTERM or Ctrl-C starts the graceful shutdown
//! (the drain, then in-flight requests finish); a second one, during that wait, stops at once
//! for an operator who does not want to wait.
//!
//! Once a handler is installed the default action (die) is gone for good, so without this a
//! second Ctrl-C would be swallowed until the drain ended.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Fires on the first and on the second shutdown signal.
#[derive(Debug, Clone)]
pub struct ShutdownSignals {
    first: CancellationToken,
    second: CancellationToken,
}

impl ShutdownSignals {
    /// Takes over SIGINT and SIGTERM. Call it within the runtime; the listening task ends
    /// after the second signal (or with the runtime).
    pub fn listen() -> std::io::Result<Self> {
        let mut interrupts = signal(SignalKind::interrupt())?;
        let mut terminations = signal(SignalKind::terminate())?;
        let signals = ShutdownSignals {
            first: CancellationToken::new(),
            second: CancellationToken::new(),
        };
        let fired = signals.clone();
        tokio::spawn(async move {
            let name = next_signal(&mut interrupts, &mut terminations).await;
            tracing::info!("received {name}");
            fired.first.cancel();
            let name = next_signal(&mut interrupts, &mut terminations).await;
            tracing::warn!("received a second {name}: skipping the drain and stopping now");
            fired.second.cancel();
        });
        Ok(signals)
    }

    /// Resolves on the first signal: time to shut down gracefully.
    pub async fn first(&self) {
        self.first.cancelled().await;
    }

    /// Resolves on the second signal: stop now.
    pub async fn second(&self) {
        self.second.cancelled().await;
    }
}

/// The name of the next SIGINT or SIGTERM, as the logs say it.
async fn next_signal(interrupts: &mut Signal, terminations: &mut Signal) -> &'static str {
    tokio::select! {
        _ = interrupts.recv() => "Ctrl-C",
        _ = terminations.recv() => "SIGTERM",
    }
}
