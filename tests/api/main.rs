//! Integration tests: the real server on port 0, real PostgreSQL (DATABASE_URL, or a throwaway
//! cluster the tests start), a fresh database per test, asserting on what a client sees.

mod helpers;
mod tools;

mod auth;
mod bench_smoke;
mod calls;
mod cli;
mod connections;
mod fair_shares;
mod feed;
mod first_run;
mod grpcurl;
mod hostile;
mod list;
mod operations;
mod overload;
mod resilience;
mod webhooks;
