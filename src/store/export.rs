//! ExportCalls' read: one `REPEATABLE READ, READ ONLY` transaction, so every call exported and
//! the cursor its sync token is made of come from the same snapshot. The calls come through a
//! portal, a batch at a time, so neither side holds more than a batch whatever the tenant's
//! size; each fetch is its own statement, within the statement timeout.
//!
//! A read-only transaction takes no transaction id, so it never holds back the feed barrier
//! (`pg_snapshot_xmin`) that writers' changes wait behind; it does hold back vacuum while it
//! runs, which the service bounds by ending exports whose client stops reading.

use std::future::Future;

use super::{
    call_rows::{decode_call_columns, CALL_COLUMNS},
    changes::{cursor_from_row, BARRIER_CTE, SEEN_COLUMNS, SEEN_CTE},
    CallFilters, Store,
};
use crate::{
    domain::{Call, Cursor, TenantId},
    Error,
};

/// What an export reads, in order: the snapshot's cursor once, then batches of calls.
#[derive(Debug)]
pub enum ExportItem {
    /// The change-log cursor of the export's snapshot: what a sync token after it stands for.
    Snapshot(Cursor),
    /// The next calls, newest start first.
    Calls(Vec<Call>),
}

/// The export's one statement: every live call of the tenant that the filters keep, newest
/// start first, read along `calls_newest_first_idx` (no sort, so the first batch comes at once).
/// Filters a client left out are NULL parameters.
const EXPORT_SQL: &str = "SELECT {CALL_COLUMNS} FROM calls c
    WHERE c.tenant_id = $1 AND c.delete_time IS NULL
      AND ($2::text IS NULL OR c.button_id = $2)
      AND ($3::timestamptz IS NULL OR c.end_time > $3)
      AND ($4::timestamptz IS NULL OR c.start_time < $4)
      AND ($5::text IS NULL OR c.number_digits LIKE $5)
    ORDER BY c.start_time DESC, c.id DESC";

impl Store {
    /// Reads the tenant's calls that `filters` keep from one snapshot and hands them to
    /// `deliver`: the snapshot's cursor first, then batches of at most `batch_size` calls. An
    /// error from `deliver` stops the export and is returned.
    #[tracing::instrument(skip(self, deliver))]
    pub async fn export_calls<Deliver, Delivered>(
        &self,
        tenant_id: TenantId,
        filters: &CallFilters,
        batch_size: usize,
        mut deliver: Deliver,
    ) -> Result<(), Error>
    where
        Deliver: FnMut(ExportItem) -> Delivered,
        Delivered: Future<Output = Result<(), Error>>,
    {
        let mut client = self.client().await?;
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        // The first statement takes the transaction's snapshot: the cursor is that snapshot's.
        let cursor_statement = transaction
            .prepare_cached(&format!(
                "WITH {BARRIER_CTE}, {SEEN_CTE} SELECT (SELECT tx FROM barrier), {SEEN_COLUMNS}"
            ))
            .await?;
        let row = transaction
            .query_one(&cursor_statement, &[&tenant_id])
            .await?;
        deliver(ExportItem::Snapshot(cursor_from_row(&row, 0))).await?;

        let statement = transaction
            .prepare_cached(&EXPORT_SQL.replace("{CALL_COLUMNS}", CALL_COLUMNS))
            .await?;
        let like_pattern = filters
            .search_digits
            .as_ref()
            .map(|digits| format!("%{digits}%"));
        let portal = transaction
            .bind(
                &statement,
                &[
                    &tenant_id,
                    &filters.tool_id,
                    &filters.time_min,
                    &filters.time_max,
                    &like_pattern,
                ],
            )
            .await?;
        let max_rows = i32::try_from(batch_size.max(1)).unwrap_or(i32::MAX);
        loop {
            let rows = transaction.query_portal(&portal, max_rows).await?;
            if rows.is_empty() {
                break;
            }
            let last_batch = rows.len() < batch_size;
            let calls = rows
                .iter()
                .map(|row| decode_call_columns(row, 0))
                .collect::<Result<Vec<_>, _>>()?;
            drop(rows);
            deliver(ExportItem::Calls(calls)).await?;
            if last_batch {
                break;
            }
        }
        transaction.commit().await?;
        Ok(())
    }
}
