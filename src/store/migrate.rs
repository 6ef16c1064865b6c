//! Embedded schema migrations, applied in order under a PostgreSQL advisory lock so that
//! several replicas starting together apply each one exactly once.

use tokio_postgres::Client;

use crate::Error;

/// `hashtext('callsd.migrations')`-style constant: any fixed number unique to this service.
const MIGRATION_LOCK_ID: i64 = 0x63616c6c_73640001;

/// The migrations, in the order they apply. Never edit one that has shipped: add a new one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "calls", include_str!("../../migrations/V1__calls.sql")),
    (
        2,
        "watches",
        include_str!("../../migrations/V2__watches.sql"),
    ),
    (3, "search", include_str!("../../migrations/V3__search.sql")),
    (
        4,
        "personal_data",
        include_str!("../../migrations/V4__personal_data.sql"),
    ),
];

/// Applies every migration not yet applied; returns how many it applied.
#[tracing::instrument(skip_all)]
pub async fn migrate(client: &mut Client) -> Result<usize, Error> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_ID])
        .await?;
    // Created only when missing: `CREATE TABLE IF NOT EXISTS` on every start made PostgreSQL
    // send a NOTICE ("already exists, skipping") that the driver logs. The advisory lock
    // keeps two replicas from both finding it missing.
    let exists: bool = transaction
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        transaction
            .batch_execute(
                "CREATE TABLE schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )",
            )
            .await?;
    }
    let applied: Vec<i32> = transaction
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut count = 0;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, name, "applying migration");
        transaction.batch_execute(sql).await?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        count += 1;
    }
    transaction.commit().await?;
    Ok(count)
}
