//! What delivery workers do in the database: lease watches (`FOR UPDATE SKIP LOCKED`, leases
//! that expire when a replica dies), and keep the delivery log, one row per attempt, written in
//! the same transaction that moves the watch's cursor, so an attempt is final exactly when its
//! row says so.

use std::time::Duration;

use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{
    call_rows::decode_call_json,
    changes::BARRIER_CTE,
    stored_body,
    watches::{decode_watch, WATCH_COLUMNS},
    Store,
};
use crate::{
    domain::{Call, Delivery, DeliveryOutcome, Position, Watch},
    Error,
};

/// How an attempt's outcome is stored in `deliveries.outcome`.
fn outcome_code(outcome: DeliveryOutcome) -> i16 {
    match outcome {
        DeliveryOutcome::Succeeded => 1,
        DeliveryOutcome::Retrying => 2,
        DeliveryOutcome::Failed => 3,
    }
}

fn outcome_from_code(code: i16) -> DeliveryOutcome {
    match code {
        1 => DeliveryOutcome::Succeeded,
        2 => DeliveryOutcome::Retrying,
        _ => DeliveryOutcome::Failed,
    }
}

/// What a worker's attempt does to its watch.
#[derive(Debug, Clone, Copy)]
pub enum AttemptEffect {
    /// The event is done (delivered, or failed after the schedule): move the cursor past it.
    Finish,
    /// Try the same event again after this delay.
    RetryAfter(Duration),
}

const DELIVERY_COLUMNS: &str = "id, watch_id, tenant_id, event_id, event_type, call_id,
    change_tx, change_seq, attempt, attempt_time, request_headers, request_body, response_status,
    response_body, error, duration_micros, outcome, manual";

fn decode_delivery(row: &tokio_postgres::Row) -> Result<Delivery, Error> {
    let headers = serde_json::from_value(row.get(10))
        .map_err(|error| Error::Internal(anyhow::anyhow!("stored delivery headers: {error}")))?;
    Ok(Delivery {
        id: row.get(0),
        watch_id: row.get(1),
        tenant_id: row.get(2),
        event_id: row.get(3),
        event_type: row.get(4),
        call_id: row.get(5),
        position: Position {
            tx: row.get(6),
            seq: row.get(7),
        },
        attempt: row.get(8),
        attempt_time: row.get(9),
        request_headers: headers,
        request_body: row.get(11),
        response_status: row.get(12),
        response_body: row.get(13),
        error: row.get(14),
        duration: Duration::from_micros(u64::try_from(row.get::<_, i64>(15)).unwrap_or(0)),
        outcome: outcome_from_code(row.get(16)),
        manual: row.get(17),
    })
}

impl Store {
    /// Leases up to `limit` enabled watches that have a change due to deliver and no live lease,
    /// for `lease` to `owner`. Replicas skip each other's locked rows, so none waits.
    #[tracing::instrument(skip(self))]
    pub async fn lease_due_watches(
        &self,
        owner: Uuid,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Watch>, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "WITH {BARRIER_CTE}, due AS (
                     SELECT w.id FROM watches w
                     WHERE w.enabled AND w.next_attempt_time <= now()
                       AND (w.lease_expire_time IS NULL OR w.lease_expire_time < now())
                       AND EXISTS (
                           SELECT 1 FROM change_log c
                           WHERE c.tenant_id = w.tenant_id
                             AND (c.change_tx, c.change_seq) > (w.cursor_tx, w.cursor_seq)
                             AND c.change_tx < (SELECT tx FROM barrier))
                     ORDER BY w.next_attempt_time LIMIT $3
                     FOR UPDATE OF w SKIP LOCKED)
                 UPDATE watches SET lease_owner = $1,
                     lease_expire_time = now() + make_interval(secs => $2)
                 FROM due WHERE watches.id = due.id
                 RETURNING {}",
                qualified_columns("watches")
            ))
            .await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        client
            .query(&statement, &[&owner, &lease.as_secs_f64(), &limit])
            .await?
            .iter()
            .map(decode_watch)
            .collect()
    }

    /// Gives a lease back early (nothing more to send now, or shutting down).
    pub async fn release_watch(&self, owner: Uuid, watch_id: Uuid) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE watches SET lease_owner = NULL, lease_expire_time = NULL
                 WHERE id = $1 AND lease_owner = $2",
                &[&watch_id, &owner],
            )
            .await?;
        Ok(())
    }

    /// Records a worker's attempt and applies its effect, if `owner` still holds the watch's
    /// lease. Returns false when it does not (the lease expired and another replica took over,
    /// or the watch was deleted or disabled): the worker must stop.
    ///
    /// A failure after `disable_after` of failures disables the watch, saying why.
    #[tracing::instrument(skip(self, delivery), fields(watch_id = %delivery.watch_id))]
    pub async fn record_attempt(
        &self,
        owner: Uuid,
        delivery: &Delivery,
        effect: AttemptEffect,
        lease: Duration,
        disable_after: Duration,
    ) -> Result<bool, Error> {
        let client = self.client().await?;
        let succeeded = delivery.outcome == DeliveryOutcome::Succeeded;
        let lease_seconds = lease.as_secs_f64();
        let disable_seconds = disable_after.as_secs_f64();
        let (finish, retry_after) = match effect {
            AttemptEffect::Finish => (true, 0.0),
            AttemptEffect::RetryAfter(delay) => (false, delay.as_secs_f64()),
        };
        let reason = format!(
            "disabled by the server: deliveries failed for more than {}; last error: {}",
            humantime::format_duration(disable_after),
            if delivery.error.is_empty() {
                format!("HTTP {}", delivery.response_status)
            } else {
                delivery.error.clone()
            }
        );
        // One statement: the attempt is logged exactly when the watch's state moves with it.
        let statement = client
            .prepare_cached(&format!(
                "WITH updated AS (
                 UPDATE watches SET
                     cursor_tx = CASE WHEN $3 THEN $4 ELSE cursor_tx END,
                     cursor_seq = CASE WHEN $3 THEN $5 ELSE cursor_seq END,
                     attempts = CASE WHEN $3 THEN 0 ELSE attempts + 1 END,
                     next_attempt_time = now() + make_interval(secs => $6),
                     lease_expire_time = now() + make_interval(secs => $7),
                     last_success_time = CASE WHEN $8 THEN now() ELSE last_success_time END,
                     last_failure_time = CASE WHEN $8 THEN last_failure_time ELSE now() END,
                     consecutive_failures = CASE WHEN $8 THEN 0 ELSE consecutive_failures + 1 END,
                     failing_since = CASE WHEN $8 THEN NULL
                         ELSE COALESCE(failing_since, now()) END,
                     enabled = $8 OR COALESCE(failing_since, now())
                         > now() - make_interval(secs => $9),
                     disabled_reason = CASE WHEN $8 OR COALESCE(failing_since, now())
                         > now() - make_interval(secs => $9) THEN disabled_reason ELSE $10 END
                 WHERE id = $1 AND lease_owner = $2 AND enabled
                 RETURNING enabled
                 ), logged AS (
                     INSERT INTO deliveries ({DELIVERY_COLUMNS}) SELECT {} FROM updated
                 )
                 SELECT enabled FROM updated",
                placeholders(11)
            ))
            .await?;
        let values = DeliveryValues::new(delivery);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &delivery.watch_id,
            &owner,
            &finish,
            &delivery.position.tx,
            &delivery.position.seq,
            &retry_after,
            &lease_seconds,
            &succeeded,
            &disable_seconds,
            &reason,
        ];
        params.extend(values.params(delivery));
        let row = client.query_opt(&statement, &params).await?;
        Ok(row.is_some_and(|row| row.get(0)))
    }

    /// Records an attempt asked for with RetryDelivery; it does not move the watch's cursor.
    pub async fn record_manual_attempt(&self, delivery: &Delivery) -> Result<(), Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({})",
                placeholders(1)
            ))
            .await?;
        let values = DeliveryValues::new(delivery);
        client.execute(&statement, &values.params(delivery)).await?;
        Ok(())
    }

    /// A watch's attempts, newest first, before the attempt `before`.
    #[tracing::instrument(skip(self))]
    pub async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        watch_id: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries
                 WHERE tenant_id = $1 AND watch_id = $2 AND ($3::uuid IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4"
            ))
            .await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        client
            .query(&statement, &[&tenant_id, &watch_id, &before, &limit])
            .await?
            .iter()
            .map(decode_delivery)
            .collect()
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_delivery(&self, tenant_id: Uuid, id: Uuid) -> Result<Delivery, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant_id = $1 AND id = $2"
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[&tenant_id, &id])
            .await?
            .ok_or(Error::NotFound {
                resource: "delivery",
            })?;
        decode_delivery(&row)
    }

    /// Deletes attempts older than `retention`; returns how many.
    pub async fn purge_deliveries(&self, retention: Duration) -> Result<u64, Error> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM deliveries WHERE attempt_time < now() - make_interval(secs => $1)",
                &[&retention.as_secs_f64()],
            )
            .await?)
    }

    /// The call as it was before the change at `position`, if the log still has it.
    pub async fn call_before(
        &self,
        tenant_id: Uuid,
        call_id: Uuid,
        position: Position,
    ) -> Result<Option<Call>, Error> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT call FROM change_log
                 WHERE tenant_id = $1 AND call_id = $2 AND (change_tx, change_seq) < ($3, $4)
                 ORDER BY change_tx DESC, change_seq DESC LIMIT 1",
            )
            .await?;
        let row = client
            .query_opt(
                &statement,
                &[&tenant_id, &call_id, &position.tx, &position.seq],
            )
            .await?;
        row.map(|row| decode_call_json(&row, 0)).transpose()
    }
}

/// The values of a delivery row that need converting, kept alive for the parameters.
struct DeliveryValues {
    headers: serde_json::Value,
    request_body: String,
    response_body: String,
    duration_micros: i64,
    outcome: i16,
}

impl DeliveryValues {
    fn new(delivery: &Delivery) -> Self {
        DeliveryValues {
            headers: serde_json::to_value(&delivery.request_headers).unwrap_or_default(),
            request_body: stored_body::cut(&delivery.request_body),
            response_body: stored_body::cut(&delivery.response_body),
            duration_micros: i64::try_from(delivery.duration.as_micros()).unwrap_or(i64::MAX),
            outcome: outcome_code(delivery.outcome),
        }
    }

    /// The parameters for [`DELIVERY_COLUMNS`], in order.
    fn params<'a>(&'a self, delivery: &'a Delivery) -> [&'a (dyn ToSql + Sync); 18] {
        [
            &delivery.id,
            &delivery.watch_id,
            &delivery.tenant_id,
            &delivery.event_id,
            &delivery.event_type,
            &delivery.call_id,
            &delivery.position.tx,
            &delivery.position.seq,
            &delivery.attempt,
            &delivery.attempt_time,
            &self.headers,
            &self.request_body,
            &delivery.response_status,
            &self.response_body,
            &delivery.error,
            &self.duration_micros,
            &self.outcome,
            &delivery.manual,
        ]
    }
}

/// `$first, $first+1, ...` for the 18 delivery columns.
fn placeholders(first: usize) -> String {
    (first..first + 18)
        .map(|index| format!("${index}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn qualified_columns(table: &str) -> String {
    WATCH_COLUMNS
        .split(',')
        .map(|column| format!("{table}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
