//! SummarizeCalls' query: calls counted and their durations added up by local date bucket
//! (`date_trunc` on the start read `AT TIME ZONE`, so a DST day of 23 or 25 hours is one
//! bucket), optionally by status, type or button, from `calls_summary_idx` (V4).

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::error::SqlState;

use super::{
    call_rows::{call_type_from_code, status_from_code},
    Store,
};
use crate::{
    domain::{CallStatus, CallType, TenantId},
    Error,
};

/// The length of a bucket, as `date_trunc` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryInterval {
    Day,
    Week,
    Month,
}

impl SummaryInterval {
    fn field(self) -> &'static str {
        match self {
            SummaryInterval::Day => "day",
            SummaryInterval::Week => "week",
            SummaryInterval::Month => "month",
        }
    }
}

/// What, besides the bucket, the calls are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryGrouping {
    Nothing,
    Status,
    Type,
    Button,
}

/// One summary request, checked by the service.
#[derive(Debug, Clone)]
pub struct SummaryQuery {
    pub tenant_id: TenantId,
    /// Calls that start at or after this instant...
    pub time_min: DateTime<Utc>,
    /// ... and before this one.
    pub time_max: DateTime<Utc>,
    pub interval: SummaryInterval,
    /// An IANA zone name.
    pub time_zone: String,
    pub grouping: SummaryGrouping,
    pub tool_id: Option<String>,
    /// Most rows read; one more tells the service there were too many.
    pub limit: usize,
}

/// The calls of one bucket and group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    pub start_date: NaiveDate,
    pub status: Option<CallStatus>,
    pub call_type: Option<CallType>,
    /// The group's button (grouping by button), else empty.
    pub button_id: String,
    pub call_count: i64,
    pub total_duration_micros: i64,
}

impl Store {
    /// The summary's rows, oldest bucket first, at most `query.limit` of them.
    #[tracing::instrument(skip(self))]
    pub async fn summarize_calls(&self, query: &SummaryQuery) -> Result<Vec<SummaryRow>, Error> {
        let client = self.client().await?;
        // The grouping picks fixed SQL; nothing of the request is spliced in.
        let (status, call_type, button) = match query.grouping {
            SummaryGrouping::Nothing => ("0::smallint", "0::smallint", "''::text"),
            SummaryGrouping::Status => ("c.status", "0::smallint", "''::text"),
            SummaryGrouping::Type => ("0::smallint", "c.call_type", "''::text"),
            SummaryGrouping::Button => ("0::smallint", "0::smallint", "c.button_id"),
        };
        let statement = client
            .prepare_cached(&format!(
                "SELECT date_trunc($4::text, c.start_time AT TIME ZONE $5::text)::date,
                     {status}, {call_type}, {button}, count(*), sum(c.duration_micros)::bigint
                 FROM calls c
                 WHERE c.tenant_id = $1 AND c.delete_time IS NULL
                   AND c.start_time >= $2 AND c.start_time < $3
                   AND ($6::text IS NULL OR c.button_id = $6)
                 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 LIMIT $7"
            ))
            .await?;
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[
                    &query.tenant_id,
                    &query.time_min,
                    &query.time_max,
                    &query.interval.field(),
                    &query.time_zone,
                    &query.tool_id,
                    &limit,
                ],
            )
            .await
            .map_err(|error| {
                // A zone chrono-tz knows but this server's tz database does not.
                if error.code() == Some(&SqlState::INVALID_PARAMETER_VALUE) {
                    Error::invalid("time_zone", "is not a time zone the database knows")
                } else {
                    error.into()
                }
            })?;
        Ok(rows
            .iter()
            .map(|row| SummaryRow {
                start_date: row.get(0),
                status: status_from_code(row.get(1)),
                call_type: call_type_from_code(row.get(2)),
                button_id: row.get(3),
                call_count: row.get(4),
                total_duration_micros: row.get::<_, Option<i64>>(5).unwrap_or(0),
            })
            .collect())
    }
}
