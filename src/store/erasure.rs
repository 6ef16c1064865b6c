//! Erasing calls (PurgeCalls and the retention sweep): each batch is one statement, so one
//! short transaction, that deletes the calls through the change log like DeleteCall (a
//! DELETED change every stream, sync list and watch sees) and, in the same transaction,
//! scrubs their numbers from every copy the service keeps:
//!
//! - the `calls` row, which stays as a tombstone for sync lists: its id, times and button
//!   remain, its numbers, digits and idempotency key (`request_id`, which a client may have
//!   built from the number) are emptied;
//! - the change log: the DELETED change is written from the scrubbed row, and every earlier
//!   change of the call has its numbers emptied in place (positions stay, so no cursor moves);
//! - the delivery log: the request and response bodies and the error of every webhook attempt
//!   made for the call are emptied (the attempt itself, its status and timing, stay).
//!
//! A purge by number also sweeps the history of calls that no longer carry it (an update
//! changed it, or DeleteCall left a tombstone): see [`Store::scrub_number_history`].

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::{
    calls::{log_change, NEW_POSITION},
    changes::ChangeKind,
    Store,
};
use crate::{
    domain::{CallId, TenantId},
    Error,
};

/// What the scrubbed copies of a call keep of its numbers: nothing. Applied to the change
/// log's JSON copies (`jsonb || this` replaces the keys).
const SCRUBBED_JSON: &str = r#"'{"caller_number": "", "called_number": "", "tracking_number": "", "number_digits": "", "request_id": null}'::jsonb"#;

/// Which calls to erase.
#[derive(Debug, Clone)]
pub enum EraseScope {
    /// PurgeCalls' filter: calls whose numbers contain `digits` (at least 4: the gram index
    /// finds them), that overlap the time window; at least one is set.
    Purge {
        digits: Option<String>,
        time_min: Option<DateTime<Utc>>,
        time_max: Option<DateTime<Utc>>,
    },
    /// The retention sweep: calls that ended longer ago than this many seconds.
    EndedLongerAgoThan { seconds: f64 },
}

/// The conditions of a scope on a live call `c`, their parameters numbered from `first`.
struct ScopeConditions {
    sql: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl ScopeConditions {
    fn of(scope: &EraseScope, first: usize) -> Self {
        let mut conditions = ScopeConditions {
            sql: Vec::new(),
            params: Vec::new(),
        };
        let mut next = first;
        let mut param = |conditions: &mut ScopeConditions, value: Box<dyn ToSql + Sync + Send>| {
            conditions.params.push(value);
            let placeholder = format!("${next}");
            next += 1;
            placeholder
        };
        match scope {
            EraseScope::Purge {
                digits,
                time_min,
                time_max,
            } => {
                if let Some(digits) = digits {
                    let grams = param(&mut conditions, Box::new(digits.clone()));
                    conditions.sql.push(format!(
                        "digit_grams(c.number_digits) @> digit_grams({grams})"
                    ));
                    let pattern = param(&mut conditions, Box::new(format!("%{digits}%")));
                    conditions
                        .sql
                        .push(format!("c.number_digits LIKE {pattern}"));
                }
                if let Some(time_min) = time_min {
                    let time_min = param(&mut conditions, Box::new(*time_min));
                    conditions.sql.push(format!("c.end_time > {time_min}"));
                }
                if let Some(time_max) = time_max {
                    let time_max = param(&mut conditions, Box::new(*time_max));
                    conditions.sql.push(format!("c.start_time < {time_max}"));
                }
            }
            EraseScope::EndedLongerAgoThan { seconds } => {
                let seconds = param(&mut conditions, Box::new(*seconds));
                conditions.sql.push(format!(
                    "c.end_time < now() - make_interval(secs => {seconds})"
                ));
            }
        }
        conditions
    }

    fn where_clause(&self) -> String {
        let mut clause = String::from("c.tenant_id = $1 AND c.delete_time IS NULL");
        for condition in &self.sql {
            clause.push_str(" AND ");
            clause.push_str(condition);
        }
        clause
    }
}

impl Store {
    /// How many live calls of the tenant `scope` matches (counting stops at `count_cap`), and
    /// the ids of up to `sample` of them, newest start first. Changes nothing.
    #[tracing::instrument(skip(self))]
    pub async fn count_erasable(
        &self,
        tenant_id: TenantId,
        scope: &EraseScope,
        count_cap: usize,
        sample: usize,
    ) -> Result<(i64, Vec<CallId>), Error> {
        let client = self.client().await?;
        let conditions = ScopeConditions::of(scope, 3);
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let cap = i64::try_from(count_cap).unwrap_or(i64::MAX);
        let sample = i64::try_from(sample).unwrap_or(i64::MAX);
        params.push(&tenant_id);
        params.push(&cap);
        params.extend(
            conditions
                .params
                .iter()
                .map(|param| -> &(dyn ToSql + Sync) { param.as_ref() }),
        );
        let where_clause = conditions.where_clause();
        let count_statement = client
            .prepare_cached(&format!(
                "SELECT count(*) FROM (SELECT 1 FROM calls c WHERE {where_clause} LIMIT $2) t"
            ))
            .await?;
        let count: i64 = client.query_one(&count_statement, &params).await?.get(0);
        params[1] = &sample;
        let sample_statement = client
            .prepare_cached(&format!(
                "SELECT c.id FROM calls c WHERE {where_clause}
                 ORDER BY c.start_time DESC, c.id DESC LIMIT $2"
            ))
            .await?;
        let ids = client
            .query(&sample_statement, &params)
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        Ok((count, ids))
    }

    /// Erases up to `limit` live calls of the tenant that `scope` matches, in one transaction
    /// (see the module's header), and returns their ids. Calls another transaction holds are
    /// skipped (`SKIP LOCKED`), so replicas sweeping at once never wait on each other.
    #[tracing::instrument(skip(self))]
    pub async fn erase_calls(
        &self,
        tenant_id: TenantId,
        scope: &EraseScope,
        limit: usize,
    ) -> Result<Vec<CallId>, Error> {
        let client = self.client().await?;
        let conditions = ScopeConditions::of(scope, 4);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let kind = ChangeKind::Deleted.code();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant_id, &limit, &kind];
        params.extend(
            conditions
                .params
                .iter()
                .map(|param| -> &(dyn ToSql + Sync) { param.as_ref() }),
        );
        let statement = client
            .prepare_cached(&format!(
                "WITH doomed AS (
                    SELECT c.id FROM calls c WHERE {where_clause}
                    ORDER BY c.end_time, c.id LIMIT $2 FOR UPDATE SKIP LOCKED
                ), erased AS (
                    UPDATE calls c SET delete_time = now(), update_time = now(),
                        version = c.version + 1, caller_number = '', called_number = '',
                        tracking_number = '', number_digits = '', request_id = NULL,
                        (change_tx, change_seq) = ({NEW_POSITION})
                    FROM doomed d WHERE c.id = d.id
                    RETURNING c.*
                ), logged AS ({log}
                ), history AS (
                    UPDATE change_log l SET call = l.call || {SCRUBBED_JSON}
                    WHERE l.call_id IN (SELECT id FROM doomed) AND l.tenant_id = $1
                ), attempts AS (
                    UPDATE deliveries SET request_body = '', response_body = '', error = ''
                    WHERE tenant_id = $1 AND call_id IN (SELECT id FROM doomed)
                )
                SELECT id FROM erased",
                where_clause = conditions.where_clause(),
                log = log_change("erased", "$3"),
            ))
            .await?;
        let rows = client.query(&statement, &params).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Scrubs `digits` from the copies that no live call's current numbers lead to: change-log
    /// copies of earlier versions (an update changed the number) and of deleted calls,
    /// DeleteCall's tombstones, and the delivery-log bodies of every call touched. Limited to
    /// the time window when one is given. Returns how many copies were scrubbed.
    #[tracing::instrument(skip(self, digits))]
    pub async fn scrub_number_history(
        &self,
        tenant_id: TenantId,
        digits: &str,
        time_min: Option<DateTime<Utc>>,
        time_max: Option<DateTime<Utc>>,
    ) -> Result<i64, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH history AS (
                    UPDATE change_log l SET call = l.call || {SCRUBBED_JSON}
                    WHERE l.tenant_id = $1 AND (l.call->>'number_digits') LIKE $2
                      AND ($3::timestamptz IS NULL OR (l.call->>'end_time')::timestamptz > $3)
                      AND ($4::timestamptz IS NULL OR (l.call->>'start_time')::timestamptz < $4)
                    RETURNING l.call_id
                ), tombstones AS (
                    UPDATE calls c SET caller_number = '', called_number = '',
                        tracking_number = '', number_digits = '', request_id = NULL
                    WHERE c.tenant_id = $1 AND c.delete_time IS NOT NULL
                      AND c.number_digits LIKE $2
                      AND ($3::timestamptz IS NULL OR c.end_time > $3)
                      AND ($4::timestamptz IS NULL OR c.start_time < $4)
                    RETURNING c.id
                ), attempts AS (
                    UPDATE deliveries SET request_body = '', response_body = '', error = ''
                    WHERE tenant_id = $1 AND call_id IN (
                        SELECT call_id FROM history UNION SELECT id FROM tombstones)
                )
                SELECT (SELECT count(*) FROM history) + (SELECT count(*) FROM tombstones)"
            ))
            .await?;
        let pattern = format!("%{digits}%");
        let scrubbed: i64 = client
            .query_one(&statement, &[&tenant_id, &pattern, &time_min, &time_max])
            .await?
            .get(0);
        Ok(scrubbed)
    }
}
