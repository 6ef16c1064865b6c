//! Integration tests: the real server on port 0, real PostgreSQL (DATABASE_URL, or a throwaway
//! cluster the tests start), a fresh database per test, asserting on what a client sees.

mod binary;
mod helpers;
// Installers for clients that no test drives yet stay ready (buf, the Python packages).
#[allow(dead_code)]
mod tools;

mod auth;
mod bench_smoke;
mod browsers;
mod buf_curl;
mod calls;
mod cli;
mod connections;
mod demoted_primary;
mod export;
mod export_requests;
mod failover;
mod fair_shares;
mod feed;
mod first_run;
mod grpcurl;
mod hostile;
mod layers;
mod list;
mod logs;
mod metrics;
mod notifications;
mod openapi;
mod operations;
mod overload;
mod purge;
mod purge_requests;
mod python_client;
mod readme;
mod reflection;
mod resilience;
mod rest;
mod rest_hostile;
mod rest_sse;
mod retention;
mod settings;
mod summaries;
mod webhooks;
