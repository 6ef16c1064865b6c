//! ExportCalls' read: one `REPEATABLE READ, READ ONLY` transaction, so every call exported and
//! the cursor its sync token is made of come from the same snapshot. The calls come through a
//! portal, a batch at a time, so neither side holds more than a batch whatever the tenant's
//! size; each fetch is its own statement, within the statement timeout.
//!
//! A read-only transaction takes no transaction id, so it never holds back the feed barrier
//! (`pg_snapshot_xmin`) that writers' changes wait behind; it does hold back vacuum while it
//! runs, which the service bounds by ending exports whose client stops reading.

use std::future::Future;

use tokio_postgres::types::ToSql;

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

/// Searches shorter than a digit gram match too many calls for the gram index to help.
const MIN_INDEXED_SEARCH_DIGITS: usize = 4;

/// The export's statement: the tenant's live calls that the filters keep, newest start
/// first. Only the filters given appear (no `$n IS NULL OR ...`), so the planner sees each
/// shape as it is.
fn export_sql(filters: &CallFilters) -> String {
    let mut conditions = vec![
        "c.tenant_id = $1".to_owned(),
        "c.delete_time IS NULL".to_owned(),
    ];
    let mut next = 2;
    let mut param = || {
        next += 1;
        format!("${}", next - 1)
    };
    if filters.tool_id.is_some() {
        conditions.push(format!("c.button_id = {}", param()));
    }
    if filters.time_min.is_some() {
        conditions.push(format!("c.end_time > {}", param()));
    }
    if filters.time_max.is_some() {
        conditions.push(format!("c.start_time < {}", param()));
    }
    if let Some(digits) = &filters.search_digits {
        let digits_param = param();
        if digits.len() >= MIN_INDEXED_SEARCH_DIGITS {
            conditions.push(format!(
                "digit_grams(c.number_digits) @> digit_grams({digits_param}::text)"
            ));
        }
        conditions.push(format!(
            "c.number_digits LIKE '%' || {digits_param}::text || '%'"
        ));
    }
    format!(
        "SELECT {CALL_COLUMNS} FROM calls c WHERE {} ORDER BY c.start_time DESC, c.id DESC",
        conditions.join(" AND ")
    )
}

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

        // The service's connections plan generically (see `store::apply_settings`): for a
        // statement without LIMIT that guessed a dozen rows and took a sequential scan and a
        // sort of the whole table even for a tenant of ten calls. This one is planned for the
        // tenant and filters at hand. Measured on a 200,000-call tenant (debug build, shared
        // machine, `callsd-bench export`): this portal 52,000 calls/s, first message after
        // 15-45 ms; the generic plan's scan and sort 64,000-72,000 calls/s but 200 ms before
        // the first message, growing with the whole table; keyset batches of 500 through the
        // index (one statement each) 28,000-30,000 calls/s.
        // The first fetch of a whole large tenant sorts it: more than a page's statement
        // timeout may allow (1,000,000 calls sort in seconds); later fetches are quick.
        transaction
            .batch_execute(
                "SET LOCAL plan_cache_mode = force_custom_plan;
                 SET LOCAL statement_timeout = '5min'",
            )
            .await?;
        let statement = transaction.prepare_cached(&export_sql(filters)).await?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant_id];
        if let Some(tool_id) = &filters.tool_id {
            params.push(tool_id);
        }
        if let Some(time_min) = &filters.time_min {
            params.push(time_min);
        }
        if let Some(time_max) = &filters.time_max {
            params.push(time_max);
        }
        if let Some(digits) = &filters.search_digits {
            params.push(digits);
        }
        let portal = transaction.bind(&statement, &params).await?;
        let max_rows = i32::try_from(batch_size.max(1)).unwrap_or(i32::MAX);
        loop {
            let rows = transaction.query_portal(&portal, max_rows).await?;
            let last_batch = rows.len() < batch_size;
            let calls = rows
                .iter()
                .map(|row| decode_call_columns(row, 0))
                .collect::<Result<Vec<Call>, _>>()?;
            drop(rows);
            if !calls.is_empty() {
                deliver(ExportItem::Calls(calls)).await?;
            }
            if last_batch {
                break;
            }
        }
        transaction.commit().await?;
        Ok(())
    }
}
