//! Calls: single-statement writes that record their change in the change log, and reads.
//!
//! Each write is one statement (a data-modifying CTE), so the call row and its change-log row
//! commit together in one round trip. Reads and writes return the call as its
//! [`CALL_COLUMNS`]; the change log keeps a `to_jsonb` copy of the row.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::{
    call_rows::{decode_call_columns, CallView, WriteValues, CALL_COLUMNS, CALL_COLUMN_NULLS},
    changes::{cursor_from_row, ChangeKind, SEEN_COLUMNS, SEEN_CTE},
    column_bytes::check_call_columns,
    Store,
};
use crate::{
    domain::Position,
    domain::{Call, CallFields, CallId, TenantId},
    Error,
};

/// Searches shorter than a digit gram (V3__search.sql) match too many calls for an index to
/// help: they read newest first and filter.
const MIN_INDEXED_SEARCH_DIGITS: usize = 4;

/// How many times an update without etag is retried when another writer got there first.
const UPDATE_ATTEMPTS: usize = 5;

/// Filters of a full list (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilters {
    /// Calls that end after this instant.
    pub time_min: Option<DateTime<Utc>>,
    /// Calls that start before this instant.
    pub time_max: Option<DateTime<Utc>>,
    /// Calls of this button.
    pub tool_id: Option<String>,
    /// Calls whose numbers contain these digits.
    pub search_digits: Option<String>,
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListCursor {
    /// Live calls, newest start first, after this (start_time, id) key.
    Newest {
        after: Option<(DateTime<Utc>, CallId)>,
    },
    /// Calls changed after this position (tombstones included), oldest change first.
    Changes { after: Position },
}

/// One page request.
#[derive(Debug, Clone)]
pub struct CallQuery {
    pub tenant_id: TenantId,
    pub filters: CallFilters,
    pub cursor: ListCursor,
    /// The feed barrier of the first page; `None` on a first page, which takes the current one.
    pub barrier: Option<i64>,
    pub limit: usize,
}

/// A page of calls with what the next page needs. The calls stay in their rows until read:
/// ListCalls encodes them from there without building a [`Call`] each.
#[derive(Debug)]
pub struct CallPage {
    /// At most the query's limit, in the page's order.
    rows: Vec<tokio_postgres::Row>,
    pub has_more: bool,
    /// The feed barrier this listing runs under (`pg_snapshot_xmin` at its first page).
    pub barrier: i64,
    /// On a first page: the tenant's changes above the barrier that were already visible;
    /// later pages read none.
    pub seen: Vec<Position>,
}

impl CallPage {
    /// The page's calls in order, each read in place from its row as the iterator reaches it
    /// (their column types were checked once, on the statement).
    pub fn calls(&self) -> impl ExactSizeIterator<Item = Result<CallView<'_>, Error>> {
        self.rows
            .iter()
            .map(|row| CallView::read(row, LIST_CALL_FIRST_COLUMN))
    }
}

/// Where a listing row's [`CALL_COLUMNS`] start: after the barrier and the seen positions.
const LIST_CALL_FIRST_COLUMN: usize = 3;

impl Store {
    /// Inserts a call, or returns the call an earlier request with the same `request_id` made.
    #[tracing::instrument(skip(self, fields))]
    pub async fn create_call(
        &self,
        tenant_id: TenantId,
        request_id: Option<&str>,
        fields: &CallFields,
    ) -> Result<Call, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH inserted AS (
                    INSERT INTO calls (id, tenant_id, request_id, button_id, client_id,
                        caller_number, called_number, tracking_number, number_digits,
                        start_local, start_zone, start_time, end_time, duration_micros, status,
                        external_id, call_type, record_mime_type, record_url, change_tx, change_seq)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16, $17, $18, $19, {NEW_POSITION})
                    ON CONFLICT (tenant_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
                    RETURNING *
                ), logged AS ({})
                SELECT {CALL_COLUMNS} FROM inserted",
                log_change("inserted", "$20")
            ))
            .await?;
        let values = WriteValues::new(fields)?;
        let id = CallId::new_v7();
        let kind = ChangeKind::Created.code();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id, &tenant_id, &request_id];
        params.extend(values.params());
        params.push(&kind);
        if let Some(row) = client.query_opt(&statement, &params).await? {
            return decode_call_columns(&row, 0);
        }
        // The insert was skipped: this request_id was seen before. Return its call.
        let row = client
            .query_one(
                &format!(
                    "SELECT {CALL_COLUMNS} FROM calls WHERE tenant_id = $1 AND request_id = $2"
                ),
                &[&tenant_id, &request_id],
            )
            .await?;
        decode_call_columns(&row, 0)
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_call(&self, tenant_id: TenantId, id: CallId) -> Result<Call, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {CALL_COLUMNS} FROM calls
                 WHERE tenant_id = $1 AND id = $2 AND delete_time IS NULL"
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[&tenant_id, &id])
            .await?
            .ok_or(Error::NotFound { resource: "call" })?;
        decode_call_columns(&row, 0)
    }

    /// Replaces a call's fields with `change(current)`, retrying when another writer changes
    /// the call in between. With `expected_etag`, a different current version is
    /// `EtagMismatch` instead of a retry.
    #[tracing::instrument(skip(self, change))]
    pub async fn update_call(
        &self,
        tenant_id: TenantId,
        id: CallId,
        expected_etag: Option<&str>,
        change: impl Fn(&Call) -> Result<CallFields, Error>,
    ) -> Result<Call, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH updated AS (
                    UPDATE calls SET button_id = $4, client_id = $5, caller_number = $6,
                        called_number = $7, tracking_number = $8, number_digits = $9,
                        start_local = $10, start_zone = $11, start_time = $12, end_time = $13,
                        duration_micros = $14, status = $15, external_id = $16, call_type = $17,
                        record_mime_type = $18, record_url = $19, version = version + 1,
                        update_time = now(), (change_tx, change_seq) = ({NEW_POSITION})
                    WHERE tenant_id = $1 AND id = $2 AND version = $3 AND delete_time IS NULL
                    RETURNING *
                ), logged AS ({})
                SELECT {CALL_COLUMNS} FROM updated",
                log_change("updated", "$20")
            ))
            .await?;
        let kind = ChangeKind::Updated.code();
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.get_call(tenant_id, id).await?;
            if expected_etag.is_some_and(|etag| etag != current.etag()) {
                return Err(Error::EtagMismatch { resource: "call" });
            }
            let values = WriteValues::new(&change(&current)?)?;
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant_id, &id, &current.version];
            params.extend(values.params());
            params.push(&kind);
            if let Some(row) = client.query_opt(&statement, &params).await? {
                return decode_call_columns(&row, 0);
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "call {id} changed under {UPDATE_ATTEMPTS} update attempts in a row"
        )))
    }

    /// Deletes a call, leaving a tombstone for sync lists. With `expected_etag`, only if the
    /// call is still at that version.
    #[tracing::instrument(skip(self))]
    pub async fn delete_call(
        &self,
        tenant_id: TenantId,
        id: CallId,
        expected_etag: Option<&str>,
    ) -> Result<Call, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH deleted AS (
                    UPDATE calls SET delete_time = now(), update_time = now(),
                        version = version + 1, (change_tx, change_seq) = ({NEW_POSITION})
                    WHERE tenant_id = $1 AND id = $2 AND delete_time IS NULL
                        AND ($3::bigint IS NULL OR version = $3)
                    RETURNING *
                ), logged AS ({})
                SELECT {CALL_COLUMNS} FROM deleted",
                log_change("deleted", "$4")
            ))
            .await?;
        let expected_version: Option<i64> = match expected_etag {
            // An etag we never issued cannot match any version.
            Some(etag) => Some(
                etag.parse()
                    .map_err(|_| Error::EtagMismatch { resource: "call" })?,
            ),
            None => None,
        };
        let kind = ChangeKind::Deleted.code();
        if let Some(row) = client
            .query_opt(&statement, &[&tenant_id, &id, &expected_version, &kind])
            .await?
        {
            return decode_call_columns(&row, 0);
        }
        // Nothing deleted: either there is no such live call, or its etag moved on.
        self.get_call(tenant_id, id).await?;
        Err(Error::EtagMismatch { resource: "call" })
    }

    /// One page of a full list or of a sync list.
    #[tracing::instrument(skip(self))]
    pub async fn list_calls(&self, query: &CallQuery) -> Result<CallPage, Error> {
        let client = self.client().await?;
        let limit = i64::try_from(query.limit + 1).unwrap_or(i64::MAX);
        let like_pattern = query
            .filters
            .search_digits
            .as_ref()
            .map(|digits| format!("%{digits}%"));
        let listing = Listing::of(query, &limit, like_pattern.as_ref());
        let statement = client.prepare_cached(listing.sql()).await?;
        check_call_columns(statement.columns(), LIST_CALL_FIRST_COLUMN)?;
        let mut rows = client.query(&statement, &listing.params).await?;
        let feed_row = rows
            .iter()
            .position(is_feed_row)
            .map(|index| rows.remove(index))
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("a listing came without its feed row"))
            })?;
        let start = cursor_from_row(&feed_row, 0);
        let has_more = rows.len() > query.limit;
        rows.truncate(query.limit);
        Ok(CallPage {
            rows,
            has_more,
            barrier: start.after.tx + 1,
            seen: start.seen,
        })
    }
}

/// The row of a listing that holds the feed's barrier (column 0), not a call.
fn is_feed_row(row: &tokio_postgres::Row) -> bool {
    matches!(row.try_get::<_, Option<i64>>(0), Ok(Some(_)))
}

/// One condition a listing's WHERE clause may hold. Its values go in as parameters; the text
/// depends only on which conditions a listing has, never on their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    ToolId,
    Live,
    EndsAfter,
    StartsBefore,
    /// The digit-gram index (V3) finds the candidates, LIKE keeps true substrings.
    DigitGrams,
    DigitsLike,
    BeforeKey,
    ChangedAfter,
    BelowBarrier,
}

impl Condition {
    /// The condition's SQL, its parameters numbered from `$first`.
    fn sql(self, first: usize) -> String {
        let (a, b) = (first, first + 1);
        match self {
            Condition::ToolId => format!("c.button_id = ${a}"),
            Condition::Live => "c.delete_time IS NULL".to_owned(),
            Condition::EndsAfter => format!("c.end_time > ${a}"),
            Condition::StartsBefore => format!("c.start_time < ${a}"),
            Condition::DigitGrams => format!("digit_grams(c.number_digits) @> digit_grams(${a})"),
            Condition::DigitsLike => format!("c.number_digits LIKE ${a}"),
            Condition::BeforeKey => format!("(c.start_time, c.id) < (${a}, ${b})"),
            Condition::ChangedAfter => format!("(c.change_tx, c.change_seq) > (${a}, ${b})"),
            Condition::BelowBarrier => "c.change_tx < (SELECT tx FROM barrier)".to_owned(),
        }
    }

    fn bit(self) -> usize {
        1 << self as usize
    }
}

/// Shapes: one bit per [`Condition`], one for "the barrier is known" (a later page).
const SHAPE_BITS: u32 = 10;
const LATER_PAGE: usize = 1 << (SHAPE_BITS - 1);

/// Each shape's SQL text, built by its first listing. Formatting the ~1.5 KB statement for
/// every page was a share of the list path's cost above the floor (issue 15); the floor
/// (callsd-bench) prepares one fixed text.
static LISTING_SQL: [OnceLock<Box<str>>; 1 << SHAPE_BITS] =
    [const { OnceLock::new() }; 1 << SHAPE_BITS];

/// A listing's conditions, in the order the code adds them, and their parameters. The SQL text
/// is a function of `shape` alone: the same conditions always come in the same order.
struct Listing<'a> {
    shape: usize,
    conditions: Vec<(Condition, usize)>,
    params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Listing<'a> {
    fn of(query: &'a CallQuery, limit: &'a i64, like_pattern: Option<&'a String>) -> Self {
        let mut listing = Listing {
            shape: if query.barrier.is_some() {
                LATER_PAGE
            } else {
                0
            },
            conditions: Vec::with_capacity(6),
            params: vec![&query.tenant_id, &query.barrier, limit],
        };
        if let Some(tool_id) = &query.filters.tool_id {
            listing.add(Condition::ToolId, &[tool_id]);
        }
        match &query.cursor {
            ListCursor::Newest { after } => {
                listing.add(Condition::Live, &[]);
                if let Some(time_min) = &query.filters.time_min {
                    listing.add(Condition::EndsAfter, &[time_min]);
                }
                if let Some(time_max) = &query.filters.time_max {
                    listing.add(Condition::StartsBefore, &[time_max]);
                }
                if let (Some(pattern), Some(digits)) = (like_pattern, &query.filters.search_digits)
                {
                    if digits.len() >= MIN_INDEXED_SEARCH_DIGITS {
                        listing.add(Condition::DigitGrams, &[digits]);
                    }
                    listing.add(Condition::DigitsLike, &[pattern]);
                }
                if let Some((start_time, id)) = after {
                    listing.add(Condition::BeforeKey, &[start_time, id]);
                }
            }
            ListCursor::Changes { after } => {
                listing.add(Condition::ChangedAfter, &[&after.tx, &after.seq]);
                listing.add(Condition::BelowBarrier, &[]);
            }
        }
        listing
    }

    fn add(&mut self, condition: Condition, values: &[&'a (dyn ToSql + Sync)]) {
        self.shape |= condition.bit();
        self.conditions.push((condition, self.params.len() + 1));
        self.params.extend_from_slice(values);
    }

    fn sql(&self) -> &'static str {
        LISTING_SQL[self.shape].get_or_init(|| self.build_sql().into_boxed_str())
    }

    fn build_sql(&self) -> String {
        let mut conditions = vec!["c.tenant_id = $1".to_owned()];
        conditions.extend(
            self.conditions
                .iter()
                .map(|&(condition, first)| condition.sql(first)),
        );
        let order = if self.shape & Condition::ChangedAfter.bit() != 0 {
            "change_tx, change_seq"
        } else {
            "start_time DESC, id DESC"
        };
        // The feed's barrier and seen positions come once, in a row of their own whose call
        // columns are NULL, from the same snapshot as the calls. Repeated on every row, the
        // seen positions (up to 64) made a page up to six times larger whenever some old
        // transaction was open and writes went on: pgbench list fell from ~11,000 to ~3,000
        // tps (BENCHMARKS.md). The outer ORDER BY keeps the page's order a guarantee.
        // Only a first page reads the seen positions: later ones carry the first page's in
        // their token. With an old transaction open, the seen CTE reads up to 64 change-log
        // rows (pgbench: 9,636 tps with it, 11,300 without).
        let (seen_cte, seen_columns) = if self.shape & LATER_PAGE == 0 {
            (format!(", {SEEN_CTE}"), SEEN_COLUMNS)
        } else {
            (String::new(), "NULL::bigint[], NULL::bigint[]")
        };
        format!(
            "WITH barrier AS (SELECT COALESCE($2::bigint,
                 pg_snapshot_xmin(pg_current_snapshot())::text::bigint) AS tx){seen_cte}
             (SELECT NULL::bigint, NULL::bigint[], NULL::bigint[], {CALL_COLUMNS} FROM calls c
              WHERE {} ORDER BY {order} LIMIT $3)
             UNION ALL
             SELECT (SELECT tx FROM barrier), {seen_columns}, {nulls}
             ORDER BY {order}",
            conditions.join(" AND "),
            nulls = *CALL_COLUMN_NULLS,
        )
    }
}

/// The position a writing statement gives its change: its transaction id and a fresh number.
pub(super) const NEW_POSITION: &str = "pg_current_xact_id()::text::bigint, nextval('change_seq')";

/// The statement that logs a change of kind `kind_param` for each row of the CTE `source`.
pub(super) fn log_change(source: &str, kind_param: &str) -> String {
    format!(
        "INSERT INTO change_log (change_tx, change_seq, tenant_id, call_id, kind, call)
         SELECT change_tx, change_seq, tenant_id, id, {kind_param}::smallint, to_jsonb({source})
         FROM {source}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of filters and cursor a listing can have.
    fn every_query() -> Vec<CallQuery> {
        let instant = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let mut queries = Vec::new();
        for bits in 0..128u32 {
            let has = |bit: u32| bits & (1 << bit) != 0;
            let search_digits = match (has(3), has(4)) {
                (false, _) => None,
                (true, false) => Some("12".to_owned()),
                (true, true) => Some("123456".to_owned()),
            };
            let cursor = match (has(5), has(6)) {
                (false, false) => ListCursor::Newest { after: None },
                (false, true) => ListCursor::Newest {
                    after: Some((instant, CallId::new_v7())),
                },
                (true, _) => ListCursor::Changes {
                    after: Position { tx: 7, seq: 9 },
                },
            };
            for barrier in [None, Some(42)] {
                queries.push(CallQuery {
                    tenant_id: TenantId::new_v7(),
                    filters: CallFilters {
                        time_min: has(0).then_some(instant),
                        time_max: has(1).then_some(instant),
                        tool_id: has(2).then(|| "button".to_owned()),
                        search_digits: search_digits.clone(),
                    },
                    cursor: cursor.clone(),
                    barrier,
                    limit: 50,
                });
            }
        }
        queries
    }

    fn highest_placeholder(sql: &str) -> usize {
        sql.split('$')
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_shape_s_cached_sql_numbers_exactly_the_parameters_of_every_query_of_that_shape() {
        let limit = 51;
        for query in every_query() {
            let pattern = query
                .filters
                .search_digits
                .as_ref()
                .map(|d| format!("%{d}%"));
            let listing = Listing::of(&query, &limit, pattern.as_ref());
            assert_eq!(listing.sql(), listing.build_sql(), "{query:?}");
            assert_eq!(
                highest_placeholder(listing.sql()),
                listing.params.len(),
                "{query:?}"
            );
        }
    }

    #[test]
    fn the_conditions_and_the_later_page_bit_fit_the_shape_table() {
        assert!(Condition::BelowBarrier.bit() < LATER_PAGE);
        assert_eq!(LISTING_SQL.len(), LATER_PAGE * 2);
    }
}
