//! SummarizeCalls: counts and durations of a tenant's calls by local day, week or month,
//! optionally by status, type or button, over a time window. The answer is bounded: a window
//! of more than [`MAX_BUCKETS`] buckets is refused before any work, and a grouping that would
//! make more than [`MAX_SUMMARIES`] rows is refused too.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{listing::ClientInstant, tool_filter, Calls};
use crate::{
    domain::{parse_time_zone, CallStatus, CallType},
    error::Violations,
    store::{SummaryGrouping, SummaryInterval, SummaryQuery, Tenant},
    Error,
};

/// Most buckets one request may cover: a little under three years of days.
pub const MAX_BUCKETS: i64 = 1_000;
/// Most rows (buckets times groups) one answer may hold.
pub const MAX_SUMMARIES: usize = 10_000;

/// A SummarizeCalls request as the front door read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SummarizeCallsInput<'a> {
    pub time_min: Option<ClientInstant>,
    pub time_max: Option<ClientInstant>,
    /// `None`: the client named no interval (or one this server does not know).
    pub interval: Option<SummaryInterval>,
    /// Empty: the tenant's zone.
    pub time_zone: &'a str,
    /// `None`: a grouping this server does not know.
    pub grouping: Option<SummaryGrouping>,
    pub tool_id: &'a str,
}

/// The calls of one bucket (and group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    /// The first local date of the bucket.
    pub start_date: NaiveDate,
    pub status: Option<CallStatus>,
    pub call_type: Option<CallType>,
    pub button_id: String,
    pub call_count: i64,
    pub total_duration: Duration,
    /// `total_duration / call_count`, to the microsecond.
    pub average_duration: Duration,
}

/// A summary and the zone its buckets were read in.
#[derive(Debug, Clone)]
pub struct Summary {
    pub summaries: Vec<CallSummary>,
    pub time_zone: Tz,
}

impl Calls {
    pub async fn summarize(
        &self,
        tenant: &Tenant,
        request: &SummarizeCallsInput<'_>,
    ) -> Result<Summary, Error> {
        let (query, time_zone) = validate(tenant, request)?;
        let rows = self.store.summarize_calls(&query).await?;
        if rows.len() > MAX_SUMMARIES {
            return Err(Error::invalid(
                "group_by",
                format!(
                    "makes more than {MAX_SUMMARIES} summaries over this window: narrow the \
                     window or group by less"
                ),
            ));
        }
        let summaries = rows
            .into_iter()
            .map(|row| {
                let total_micros = u64::try_from(row.total_duration_micros).unwrap_or(0);
                let count = u64::try_from(row.call_count).unwrap_or(0).max(1);
                CallSummary {
                    start_date: row.start_date,
                    status: row.status,
                    call_type: row.call_type,
                    button_id: row.button_id,
                    call_count: row.call_count,
                    total_duration: Duration::from_micros(total_micros),
                    average_duration: Duration::from_micros(total_micros / count),
                }
            })
            .collect();
        Ok(Summary {
            summaries,
            time_zone,
        })
    }
}

fn validate(
    tenant: &Tenant,
    request: &SummarizeCallsInput<'_>,
) -> Result<(SummaryQuery, Tz), Error> {
    let mut violations = Violations::default();
    let time_min = match request.time_min {
        Some(time) => violations.check(time.checked("time_min")),
        None => {
            violations.add("time_min", "is required: a summary covers a time window");
            None
        }
    };
    let time_max = match request.time_max {
        Some(time) => violations.check(time.checked("time_max")),
        None => {
            violations.add("time_max", "is required: a summary covers a time window");
            None
        }
    };
    if request.interval.is_none() {
        violations.add("interval", "must be SUMMARY_INTERVAL_DAY, _WEEK or _MONTH");
    }
    if request.grouping.is_none() {
        violations.add("group_by", "is not a known grouping");
    }
    let time_zone = if request.time_zone.is_empty() {
        Some(tenant.time_zone)
    } else {
        violations.check(parse_time_zone("time_zone", request.time_zone))
    };
    if let (Some(time_min), Some(time_max)) = (time_min, time_max) {
        if time_min >= time_max {
            violations.add("time_max", "must be after time_min");
        } else if let (Some(interval), Some(zone)) = (request.interval, time_zone) {
            let buckets = bucket_count(time_min, time_max, interval, zone);
            if buckets > MAX_BUCKETS {
                violations.add(
                    "time_max",
                    format!(
                        "the window covers {buckets} buckets of this interval; at most \
                         {MAX_BUCKETS}: narrow it or take a longer interval"
                    ),
                );
            }
        }
    }
    violations.finish(|| {
        let time_zone = time_zone.unwrap_or(tenant.time_zone);
        let query = SummaryQuery {
            tenant_id: tenant.id,
            time_min: time_min.unwrap_or_default(),
            time_max: time_max.unwrap_or_default(),
            interval: request.interval.unwrap_or(SummaryInterval::Day),
            time_zone: time_zone.name().to_owned(),
            grouping: request.grouping.unwrap_or(SummaryGrouping::Nothing),
            tool_id: tool_filter(request.tool_id),
            limit: MAX_SUMMARIES + 1,
        };
        (query, time_zone)
    })
}

/// How many buckets of `interval` the window touches, read in `zone` (the last instant of
/// the window is just before `time_max`).
fn bucket_count(
    time_min: DateTime<Utc>,
    time_max: DateTime<Utc>,
    interval: SummaryInterval,
    zone: Tz,
) -> i64 {
    let first = time_min.with_timezone(&zone).date_naive();
    let last = (time_max - chrono::TimeDelta::microseconds(1))
        .with_timezone(&zone)
        .date_naive();
    match interval {
        SummaryInterval::Day => (last - first).num_days() + 1,
        SummaryInterval::Week => {
            let monday = |date: NaiveDate| {
                date - chrono::TimeDelta::days(i64::from(date.weekday().num_days_from_monday()))
            };
            (monday(last) - monday(first)).num_days() / 7 + 1
        }
        SummaryInterval::Month => {
            let months = |date: NaiveDate| i64::from(date.year()) * 12 + i64::from(date.month0());
            months(last) - months(first) + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn buckets_are_counted_in_local_calendar_terms() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let (min, max) = (at("2026-03-28T23:00:00Z"), at("2026-03-31T22:00:00Z"));
        // 29, 30 and 31 March in Paris (the 29th has 23 hours).
        assert_eq!(bucket_count(min, max, SummaryInterval::Day, paris), 3);
        assert_eq!(bucket_count(min, max, SummaryInterval::Week, paris), 2);
        assert_eq!(bucket_count(min, max, SummaryInterval::Month, paris), 1);
        let year = (at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
        assert_eq!(
            bucket_count(year.0, year.1, SummaryInterval::Day, Tz::UTC),
            365
        );
    }
}
