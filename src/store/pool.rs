//! The connection pool: deadpool-postgres's manager, verifying only connections that sat idle,
//! and never handing out again a connection to a server that turned read-only.
//!
//! deadpool's `RecyclingMethod::Verified` sends an empty query on *every* checkout, which
//! doubles the round trips of a point read (pgbench: 18,091 → 9,860 tps with that query added).
//! A connection that served a request a moment ago has just proved itself, and one whose
//! socket closed since is caught without a round trip (`is_closed`). What needs the query is a
//! connection that sat unused, where a restarted server or a NAT/firewall timeout may have
//! dropped it silently: the same trade as HikariCP's `aliveBypassWindowMs`.
//!
//! A failover can leave the old primary up but read-only (a network partition, a manual
//! `pg_promote` elsewhere, a standby restarted in its place): its connections stay open and
//! answer, but every write fails with SQLSTATE 25006 `read_only_sql_transaction`. Checking each
//! checkout for that would cost the hot path a round trip, so the pool learns it from the
//! errors instead: the first 25006 any query sees marks the moment ([`ReadOnlySeen`]), and every
//! connection opened before it is dropped at its next checkout, not reused. New connections go
//! through `target_session_attrs=read-write`, which skips servers that refuse writes. The
//! health check (`Store::is_healthy`) marks it too, so reads move as well, and the LISTEN
//! connection follows the mark (`notifications.rs`).

use std::{
    ops::{Deref, DerefMut},
    sync::Arc,
    time::{Duration, Instant},
};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_postgres::{ClientWrapper, Manager};
use tokio::sync::watch;
use tokio_postgres::{
    error::SqlState, types::ToSql, Row, SimpleQueryMessage, Statement, ToStatement,
};

/// Connections checked out more recently than this are handed out again without a query.
const VERIFY_WHEN_IDLE_FOR: Duration = Duration::from_millis(500);

pub type Pool = managed::Pool<VerifyingManager>;

/// When a server of this pool was last found read-only: connections opened before that moment
/// are not handed out again. Cheap to clone; clones share the mark.
#[derive(Debug, Clone)]
pub struct ReadOnlySeen {
    last: Arc<watch::Sender<Option<Instant>>>,
}

impl Default for ReadOnlySeen {
    fn default() -> Self {
        ReadOnlySeen {
            last: Arc::new(watch::channel(None).0),
        }
    }
}

impl ReadOnlySeen {
    /// Records that a server refused a write (or reported itself read-only) just now.
    pub fn record(&self) {
        self.last.send_replace(Some(Instant::now()));
    }

    /// True when a connection opened at `opened` may be on a server since found read-only.
    pub fn outdates(&self, opened: Instant) -> bool {
        self.last.borrow().is_some_and(|seen| opened <= seen)
    }

    /// Wakes whenever a new mark is recorded.
    pub fn subscribe(&self) -> watch::Receiver<Option<Instant>> {
        self.last.subscribe()
    }
}

/// deadpool-postgres's manager (built with `RecyclingMethod::Fast`), plus the idle check and
/// the read-only mark.
#[derive(Debug)]
pub struct VerifyingManager {
    inner: Manager,
    read_only: ReadOnlySeen,
}

impl VerifyingManager {
    pub fn new(inner: Manager, read_only: ReadOnlySeen) -> Self {
        VerifyingManager { inner, read_only }
    }
}

impl managed::Manager for VerifyingManager {
    type Type = ClientWrapper;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<ClientWrapper, tokio_postgres::Error> {
        self.inner.create().await
    }

    async fn recycle(
        &self,
        client: &mut ClientWrapper,
        metrics: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        // A read lock that is only ever written when a server is found read-only: no round
        // trip, nothing a checkout would notice.
        if self.read_only.outdates(metrics.created) {
            return Err(RecycleError::message(
                "opened before a server was found read-only",
            ));
        }
        // Fast recycling: refuses a connection whose socket has closed.
        self.inner.recycle(client, metrics).await?;
        // `last_used` counts from the connection's previous checkout.
        if metrics.last_used() >= VERIFY_WHEN_IDLE_FOR {
            client
                .simple_query("")
                .await
                .map_err(RecycleError::Backend)?;
        }
        Ok(())
    }

    fn detach(&self, client: &mut ClientWrapper) {
        self.inner.detach(client);
    }
}

/// A pooled connection. The queries the store runs go through the methods below, which watch
/// for 25006; anything else reaches the driver's client through `Deref` (transactions, whose
/// writes are migrations and compaction: the health check notices a read-only server for them).
pub struct PooledClient {
    client: managed::Object<VerifyingManager>,
    read_only: ReadOnlySeen,
}

impl PooledClient {
    pub(super) fn new(client: managed::Object<VerifyingManager>, read_only: ReadOnlySeen) -> Self {
        PooledClient { client, read_only }
    }

    /// Passes `result` on, recording a read-only refusal first.
    fn watched<T>(
        &self,
        result: Result<T, tokio_postgres::Error>,
    ) -> Result<T, tokio_postgres::Error> {
        if let Err(error) = &result {
            if error.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION) {
                tracing::warn!(
                    "the database refused a write as read-only: reconnecting to find the primary"
                );
                self.read_only.record();
            }
        }
        result
    }

    pub async fn prepare_cached(&self, query: &str) -> Result<Statement, tokio_postgres::Error> {
        self.watched(self.client.prepare_cached(query).await)
    }

    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error>
    where
        T: ?Sized + ToStatement,
    {
        self.watched(self.client.query(statement, params).await)
    }

    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error>
    where
        T: ?Sized + ToStatement,
    {
        self.watched(self.client.query_one(statement, params).await)
    }

    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error>
    where
        T: ?Sized + ToStatement,
    {
        self.watched(self.client.query_opt(statement, params).await)
    }

    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error>
    where
        T: ?Sized + ToStatement,
    {
        self.watched(self.client.execute(statement, params).await)
    }

    pub async fn batch_execute(&self, query: &str) -> Result<(), tokio_postgres::Error> {
        self.watched(self.client.batch_execute(query).await)
    }

    pub async fn simple_query(
        &self,
        query: &str,
    ) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        self.watched(self.client.simple_query(query).await)
    }
}

impl Deref for PooledClient {
    type Target = ClientWrapper;

    fn deref(&self) -> &ClientWrapper {
        &self.client
    }
}

impl DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut ClientWrapper {
        &mut self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_mark_outdates_connections_opened_before_it_only() {
        let read_only = ReadOnlySeen::default();
        let before = Instant::now();
        assert!(!read_only.outdates(before), "nothing marked yet");
        read_only.record();
        assert!(read_only.outdates(before));
        let after = Instant::now() + Duration::from_millis(1);
        assert!(!read_only.outdates(after));
    }
}
