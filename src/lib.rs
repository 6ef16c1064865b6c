//! `callsd`: a call-history service. It stores phone-call records in PostgreSQL, serves them
//! over gRPC and streams every change to the clients that follow them.
//!
//! Data flows one way: **proto → [`grpc`] → [`domain`] → [`store`]**, and changes flow out
//! through [`feed`].
//!
//! - [`config`]: every setting, as a flag with an environment variable and a default.
//! - [`app`]: builds the server once for `main` and for the tests; health, reflection, shutdown.
//! - [`connections`]: accepting client connections: a cap, a handshake deadline, the fd limit.
//! - [`shutdown_signals`]: SIGTERM and Ctrl-C: the first drains, a second stops at once.
//! - [`cli`]: the operator commands (`migrate`, `tenant create`, `key create`, `key revoke`).
//! - [`embedded_postgres`]: the PostgreSQL that `callsd serve` starts when no database is set.
//! - [`grpc`]: one file per service; converts proto messages to domain types, no SQL.
//! - [`service`]: the rules, one type per resource; domain in and out, no transport.
//! - [`domain`]: validated call fields (phone numbers, local start times, time zones) and
//!   change-log positions and cursors, below the store and the feed alike.
//! - [`store`]: PostgreSQL access: pool, migrations, queries, SQLSTATE to [`Error`].
//! - [`feed`]: sync tokens, the per-process hub, and the `WatchCalls` fan-out.
//! - [`webhooks`]: watches: signed, at-least-once delivery of changes to HTTP receivers.
//! - [`auth`]: API keys, stored as hashes, resolved to a tenant and admitted within its share.
//! - [`fair_shares`]: per-tenant rate, in-flight and stream limits, so no tenant starves another.
//! - [`tokens`]: opaque page and sync tokens: encrypted, bound to tenant and filters.
//! - [`error`]: the one [`Error`] enum and its mapping to `tonic::Status`.
//! - [`telemetry`]: logs and metrics.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod domain;
pub mod embedded_postgres;
pub mod error;
pub mod fair_shares;
pub mod feed;
pub mod grpc;
pub mod pb;
pub mod service;
pub mod shutdown_signals;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod webhooks;

pub use error::Error;
