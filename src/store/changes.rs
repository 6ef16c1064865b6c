//! The change log: reading it below the feed barrier, its horizon, and compaction.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{call_rows::decode_call_json, Store};
use crate::{
    domain::{Call, CallId, TenantId},
    domain::{Cursor, Position},
    Error,
};

/// The feed barrier: the oldest transaction still in flight. Below it the log is final.
pub(super) const BARRIER_CTE: &str =
    "barrier AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx)";
/// The tenant's (`$1`) changes above the barrier that are already visible, for [`Cursor::seen`].
pub(super) const SEEN_CTE: &str = "seen AS (
    SELECT change_tx, change_seq FROM change_log
    WHERE tenant_id = $1 AND change_tx >= (SELECT tx FROM barrier)
    ORDER BY change_tx, change_seq LIMIT 64)";
pub(super) const SEEN_COLUMNS: &str =
    "(SELECT array_agg(change_tx) FROM seen), (SELECT array_agg(change_seq) FROM seen)";

/// Reads a cursor from a row holding the barrier at `index` and [`SEEN_COLUMNS`] after it.
pub(super) fn cursor_from_row(row: &tokio_postgres::Row, index: usize) -> Cursor {
    let barrier: i64 = row.get(index);
    let txs: Option<Vec<i64>> = row.get(index + 1);
    let seqs: Option<Vec<i64>> = row.get(index + 2);
    let seen = txs
        .unwrap_or_default()
        .into_iter()
        .zip(seqs.unwrap_or_default())
        .map(|(tx, seq)| Position { tx, seq })
        .collect();
    Cursor {
        after: Position::below_barrier(barrier),
        seen,
    }
}

/// Identifies the compaction job among advisory locks, so one replica at a time runs it.
const COMPACTION_LOCK_ID: i64 = 0x63616c6c_73640002;

/// What a change did to its call. The codes are stored in `change_log.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

impl ChangeKind {
    pub fn code(self) -> i16 {
        match self {
            ChangeKind::Created => 1,
            ChangeKind::Updated => 2,
            ChangeKind::Deleted => 3,
        }
    }

    fn from_code(code: i16) -> Option<Self> {
        match code {
            1 => Some(ChangeKind::Created),
            2 => Some(ChangeKind::Updated),
            3 => Some(ChangeKind::Deleted),
            _ => None,
        }
    }
}

/// One change, with the call as it was right after it.
#[derive(Debug, Clone)]
pub struct ChangeRecord {
    pub position: Position,
    pub tenant_id: TenantId,
    pub kind: ChangeKind,
    pub call: Call,
    pub event_time: DateTime<Utc>,
}

/// A change whose stored call cannot be decoded (a row written before a check existed, or
/// damaged by hand). It stops only its own tenant: streams end at it, watches log it as a
/// failed delivery; every other tenant's changes go on.
#[derive(Debug, Clone)]
pub struct UnreadableChange {
    pub position: Position,
    pub tenant_id: TenantId,
    pub call_id: CallId,
    pub reason: String,
}

/// Changes read in one go, and how far the log is known to be complete.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    pub records: Vec<ChangeRecord>,
    /// Changes in the same range that cannot be decoded, oldest first.
    pub unreadable: Vec<UnreadableChange>,
    /// Every change at or below this position has been read (when `records` is not full) or
    /// lies below the last record.
    pub complete_through: Position,
    /// Changes exist above the barrier: read again soon, they are about to become final.
    pub in_flight: bool,
}

impl ChangeBatch {
    /// The oldest change of `tenant_id` in this batch that cannot be read and that `wanted`
    /// accepts (a stream skips the positions it already has).
    pub fn first_unreadable(
        &self,
        tenant_id: TenantId,
        wanted: impl Fn(Position) -> bool,
    ) -> Option<&UnreadableChange> {
        self.unreadable
            .iter()
            .find(|change| change.tenant_id == tenant_id && wanted(change.position))
    }
}

/// The kind and call of a change-log row, or why they cannot be read.
fn decode_change(row: &tokio_postgres::Row) -> Result<(ChangeKind, Call), String> {
    let kind_code: i16 = row.get(4);
    let kind = ChangeKind::from_code(kind_code)
        .ok_or_else(|| format!("unknown change kind {kind_code}"))?;
    let call = decode_call_json(row, 5).map_err(|error| match error {
        Error::Internal(cause) | Error::DatabaseUnavailable(cause) => format!("{cause:#}"),
        other => other.to_string(),
    })?;
    Ok((kind, call))
}

impl Store {
    /// Up to `limit` changes after `after`, oldest first, for one tenant or for all, reading only
    /// below the barrier (the oldest transaction still in flight), where the log is final.
    pub async fn read_changes(
        &self,
        tenant_id: Option<TenantId>,
        after: Position,
        limit: usize,
    ) -> Result<ChangeBatch, Error> {
        let client = self.client().await?;
        // Two statements rather than `$1 IS NULL OR ...`, so each keeps an index-friendly plan.
        let tenant_condition = if tenant_id.is_some() {
            "tenant_id = $4"
        } else {
            "$4::uuid IS NULL"
        };
        let statement = client
            .prepare_cached(&format!(
                "WITH {BARRIER_CTE}
                 SELECT b.tx, l.change_tx, l.change_seq, l.tenant_id, l.kind, l.call, l.event_time,
                     EXISTS (SELECT 1 FROM change_log WHERE change_tx >= b.tx), l.call_id
                 FROM barrier b LEFT JOIN LATERAL (
                     SELECT * FROM change_log
                     WHERE {tenant_condition}
                       AND (change_tx, change_seq) > ($1, $2) AND change_tx < b.tx
                     ORDER BY change_tx, change_seq LIMIT $3
                 ) l ON true
                 ORDER BY l.change_tx, l.change_seq"
            ))
            .await?;
        let limit_param = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[&after.tx, &after.seq, &limit_param, &tenant_id],
            )
            .await?;
        let in_flight = rows.first().is_some_and(|row| row.get::<_, bool>(7));
        let barrier: i64 = rows
            .first()
            .map(|row| row.get(0))
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("barrier query returned no row")))?;
        let mut records = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        let mut last_read = None;
        for row in &rows {
            let Some(tx) = row.get::<_, Option<i64>>(1) else {
                continue; // the lateral join found nothing: only the barrier row
            };
            let position = Position {
                tx,
                seq: row.get(2),
            };
            last_read = Some(position);
            let tenant_id = row.get(3);
            // One row that cannot be decoded must not stop the log for everyone.
            match decode_change(row) {
                Ok((kind, call)) => records.push(ChangeRecord {
                    position,
                    tenant_id,
                    kind,
                    call,
                    event_time: row.get(6),
                }),
                Err(reason) => unreadable.push(UnreadableChange {
                    position,
                    tenant_id,
                    call_id: row.get(8),
                    reason,
                }),
            }
        }
        let complete_through = match last_read {
            Some(last) if records.len() + unreadable.len() >= limit => last,
            _ => Position::below_barrier(barrier).max(after),
        };
        Ok(ChangeBatch {
            records,
            unreadable,
            complete_through,
            in_flight,
        })
    }

    /// The position just below the current barrier: "now" for the hub, which reads all tenants.
    pub async fn current_position(&self) -> Result<Position, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(&format!("WITH {BARRIER_CTE} SELECT tx FROM barrier"), &[])
            .await?;
        Ok(Position::below_barrier(row.get(0)))
    }

    /// "Now" for one tenant, exactly: below the barrier, plus the changes above it that have
    /// already committed.
    pub async fn current_cursor(&self, tenant_id: TenantId) -> Result<Cursor, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH {BARRIER_CTE}, {SEEN_CTE} SELECT (SELECT tx FROM barrier), {SEEN_COLUMNS}"
            ))
            .await?;
        let row = client.query_one(&statement, &[&tenant_id]).await?;
        Ok(cursor_from_row(&row, 0))
    }

    /// Positions at or below the horizon were compacted away.
    pub async fn change_log_horizon(&self) -> Result<Position, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT change_tx, change_seq FROM change_log_horizon")
            .await?;
        let row = client.query_one(&statement, &[]).await?;
        Ok(Position {
            tx: row.get(0),
            seq: row.get(1),
        })
    }

    /// Deletes changes and tombstones older than `retention` and raises the horizon past them.
    /// Returns how many changes were removed (0 when another replica holds the job).
    #[tracing::instrument(skip(self))]
    pub async fn compact_change_log(&self, retention: Duration) -> Result<u64, Error> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let locked: bool = transaction
            .query_one(
                "SELECT pg_try_advisory_xact_lock($1)",
                &[&COMPACTION_LOCK_ID],
            )
            .await?
            .get(0);
        if !locked {
            return Ok(0);
        }
        let retention_secs = retention.as_secs_f64();
        let removed = transaction
            .query_one(
                "WITH cutoff AS (SELECT now() - make_interval(secs => $1) AS time),
                 removed AS (
                     DELETE FROM change_log WHERE event_time < (SELECT time FROM cutoff)
                     RETURNING change_tx, change_seq
                 ),
                 newest AS (
                     SELECT change_tx, change_seq FROM removed
                     ORDER BY change_tx DESC, change_seq DESC LIMIT 1
                 ),
                 raised AS (
                     UPDATE change_log_horizon h SET change_tx = n.change_tx, change_seq = n.change_seq
                     FROM newest n WHERE (n.change_tx, n.change_seq) > (h.change_tx, h.change_seq)
                 ),
                 purged AS (
                     DELETE FROM calls WHERE delete_time < (SELECT time FROM cutoff)
                 )
                 SELECT count(*) FROM removed",
                &[&retention_secs],
            )
            .await?
            .get::<_, i64>(0);
        transaction.commit().await?;
        Ok(u64::try_from(removed).unwrap_or(0))
    }
}
