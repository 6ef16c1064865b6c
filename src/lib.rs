//! `callsd`: a call-history service. It stores phone-call records in PostgreSQL, serves them
//! over gRPC and REST/JSON and streams every change to the clients that follow them.
//!
//! Layers depend one way: **proto → [`grpc`] | [`rest`] → [`api`] → [`service`] → [`store`]**,
//! with [`domain`] beneath them all; [`feed`] and [`webhooks`] sit on the store and carry
//! changes out. No module below [`app`] imports a front door, and neither door the other.
//!
//! - [`config`]: every setting, as a flag with an environment variable and a default.
//! - [`app`]: builds the server once for `main` and for the tests; health, reflection, shutdown.
//! - [`connections`]: accepting client connections: a cap, a handshake deadline, the fd limit.
//! - [`shutdown_signals`]: SIGTERM and Ctrl-C: the first drains, a second stops at once.
//! - [`cli`]: the operator commands (`migrate`, `tenant create`, `key create`, `key revoke`).
//! - [`embedded_postgres`]: the PostgreSQL that `callsd serve` starts when no database is set.
//! - [`grpc`]: the gRPC front door: authenticates from metadata, runs each RPC's [`api`]
//!   function, maps [`Error`] to `Status`; no SQL, no rules.
//! - [`rest`]: the REST/JSON front door on the same port: routes read from the proto's
//!   `google.api.http` options, proto3 JSON, [`Error`] to HTTP in Google's error shape,
//!   WatchCalls as Server-Sent Events; it runs the same [`api`] functions.
//! - [`api`]: what both doors share: proto messages converted to the service's inputs and back,
//!   one transport-free function per RPC, the field limits table, the in-flight limit.
//! - [`service`]: the rules, transport-free, one type per resource: [`service::calls::Calls`]
//!   holds ListCalls' paging and page and sync tokens bound to tenant and filters
//!   (`calls/listing.rs`), and WatchCalls' start and stream tokens
//!   (`calls/watching.rs`); [`service::watches::Watches`] the watch rules: address (SSRF) and
//!   secret policy, signing keys, the delivery log and previews; [`service::page_budget`] the
//!   byte budget every list answer keeps.
//! - [`domain`]: validated call fields (phone numbers, local start times, time zones), watches
//!   as written and as shown, one id type per kind of id, and change-log positions and
//!   cursors, below the store and the feed alike.
//! - [`store`]: PostgreSQL access: pool, migrations, queries, SQLSTATE to [`Error`], and the
//!   process's one LISTEN connection, whose signals wake the feed, the auth cache and webhooks.
//! - [`feed`]: sync tokens, the per-process hub, and the `WatchCalls` fan-out.
//! - [`webhooks`]: watches: signed, at-least-once delivery of changes to HTTP receivers.
//! - [`auth`]: API keys, stored as hashes, resolved to a tenant and admitted within its share.
//! - [`fair_shares`]: per-tenant rate, in-flight and stream limits, so no tenant starves another.
//! - [`tokens`]: opaque page and sync tokens: encrypted, bound to tenant and filters.
//! - [`error`]: the one [`Error`] enum and its transport-free [`error::ErrorKind`]; each front
//!   door maps it in one place (gRPC: `grpc/status.rs`, REST: `rest/status.rs`).
//! - [`telemetry`]: logs and metrics.

pub mod api;
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
pub mod rest;
pub mod service;
pub mod shutdown_signals;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod webhooks;

pub use error::Error;
