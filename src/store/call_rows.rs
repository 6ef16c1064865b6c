//! How a call is written to and read from its row: the write parameters, the row read as
//! columns (the `calls` table) or as JSON (the change log's copy), and the stored codes of
//! the enums.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use tokio_postgres::types::{Json, ToSql};

use super::column_bytes::{
    check_call_columns, read_raw_columns, CallColumns, PgTimestamp, CALL_COLUMN_COUNT,
};
use crate::{
    domain::Position,
    domain::{
        Call, CallFields, CallId, CallRecord, CallStart, CallStatus, CallType, DateTimeText,
        PhoneNumber,
    },
    Error,
};

/// The sixteen column values a write sends, in the order of parameters `$4` to `$19`.
pub(super) struct WriteValues {
    button_id: String,
    client_id: String,
    caller_number: String,
    called_number: String,
    tracking_number: String,
    number_digits: String,
    start_local: NaiveDateTime,
    start_zone: &'static str,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
    duration_micros: i64,
    status: i16,
    external_id: String,
    call_type: i16,
    record_mime_type: String,
    record_url: String,
}

impl WriteValues {
    pub(super) fn new(fields: &CallFields) -> Result<Self, Error> {
        let start_time = fields
            .start
            .instant()
            .map_err(|description| Error::invalid("call.start.date_time", description))?;
        let duration = chrono::TimeDelta::from_std(fields.duration)
            .map_err(|_| Error::invalid("call.duration", "is too long"))?;
        let record = fields.record.clone().unwrap_or(CallRecord {
            mime_type: String::new(),
            url: String::new(),
        });
        Ok(WriteValues {
            button_id: fields.button_id.clone(),
            client_id: fields.client_id.clone(),
            caller_number: fields.caller_number.as_str().to_owned(),
            called_number: fields.called_number.as_str().to_owned(),
            tracking_number: fields
                .tracking_number
                .as_ref()
                .map(|number| number.as_str().to_owned())
                .unwrap_or_default(),
            number_digits: fields.number_digits(),
            start_local: fields.start.local,
            start_zone: fields.start.zone.name(),
            start_time,
            end_time: start_time + duration,
            duration_micros: duration.num_microseconds().unwrap_or(i64::MAX),
            status: fields.status.map_or(0, status_code),
            external_id: fields.external_id.clone(),
            call_type: fields.call_type.map_or(0, call_type_code),
            record_mime_type: record.mime_type,
            record_url: record.url,
        })
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.button_id,
            &self.client_id,
            &self.caller_number,
            &self.called_number,
            &self.tracking_number,
            &self.number_digits,
            &self.start_local,
            &self.start_zone,
            &self.start_time,
            &self.end_time,
            &self.duration_micros,
            &self.status,
            &self.external_id,
            &self.call_type,
            &self.record_mime_type,
            &self.record_url,
        ]
    }
}

/// The columns a call is read from, in the order [`CallView::decode`] reads them.
pub(super) const CALL_COLUMNS: &str = "id, button_id, client_id, caller_number, called_number, \
    tracking_number, start_local, start_zone, start_time, duration_micros, status, external_id, \
    call_type, record_mime_type, record_url, version, create_time, update_time, delete_time, \
    change_tx, change_seq";

/// As many NULLs as [`CALL_COLUMNS`]: the call columns of a row that carries no call.
pub(super) static CALL_COLUMN_NULLS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| vec!["NULL"; CALL_COLUMNS.split(',').count()].join(", "));

/// A stored call read in place: its text borrowed from the row it came in, nothing allocated.
/// A page of calls is encoded for the client straight from these; [`CallView::to_call`] makes
/// the owned [`Call`] everything else works with.
#[derive(Debug, Clone)]
pub struct CallView<'a> {
    pub id: CallId,
    pub button_id: &'a str,
    pub client_id: &'a str,
    pub caller_number: &'a str,
    pub called_number: &'a str,
    /// Empty when the call has none.
    pub tracking_number: &'a str,
    pub start_local: LocalMicros,
    /// An IANA zone name, as [`chrono_tz::Tz::name`] wrote it.
    pub start_zone: &'a str,
    pub start_time: UnixMicros,
    pub duration: std::time::Duration,
    pub status: Option<CallStatus>,
    pub external_id: &'a str,
    pub call_type: Option<CallType>,
    /// Both empty when the call has no recording.
    pub record_mime_type: &'a str,
    pub record_url: &'a str,
    pub version: i64,
    pub create_time: UnixMicros,
    pub update_time: UnixMicros,
    pub delete_time: Option<UnixMicros>,
    /// The position of the call's latest change.
    pub position: Position,
}

impl<'a> CallView<'a> {
    /// Reads the call's [`CALL_COLUMNS`] from column `first` on, after checking their types.
    /// Binary columns cost PostgreSQL and us far less than rendering and parsing JSON
    /// (pgbench, GetCall's statement: 16,400-18,900 tps as `to_jsonb`, 22,300-24,400 as
    /// columns).
    pub(super) fn decode(row: &'a tokio_postgres::Row, first: usize) -> Result<Self, Error> {
        check_call_columns(row.columns(), first)?;
        Self::read(row, first)
    }

    /// Reads the call from columns whose types [`check_call_columns`] accepted.
    pub(super) fn read(row: &'a tokio_postgres::Row, first: usize) -> Result<Self, Error> {
        let mut raw = [None; CALL_COLUMN_COUNT];
        read_raw_columns(row, first, &mut raw)?;
        let columns = CallColumns::new(row, first, &raw);
        Ok(CallView {
            id: CallId::from(columns.uuid(0)?),
            button_id: columns.text(1)?,
            client_id: columns.text(2)?,
            caller_number: columns.text(3)?,
            called_number: columns.text(4)?,
            tracking_number: columns.text(5)?,
            start_local: columns.timestamp(6)?.local()?,
            start_zone: columns.text(7)?,
            start_time: columns.timestamp(8)?.instant()?,
            duration: duration_from_micros(columns.int8(9)?),
            status: status_from_code(columns.int2(10)?),
            external_id: columns.text(11)?,
            call_type: call_type_from_code(columns.int2(12)?),
            record_mime_type: columns.text(13)?,
            record_url: columns.text(14)?,
            version: columns.int8(15)?,
            create_time: columns.timestamp(16)?.instant()?,
            update_time: columns.timestamp(17)?.instant()?,
            delete_time: columns
                .nullable_timestamp(18)?
                .map(PgTimestamp::instant)
                .transpose()?,
            position: Position {
                tx: columns.int8(19)?,
                seq: columns.int8(20)?,
            },
        })
    }

    /// The owned call, its zone checked.
    pub fn to_call(&self) -> Result<Call, Error> {
        let zone = self.start_zone.parse().map_err(|_| {
            Error::Internal(anyhow::anyhow!(
                "stored call has unknown zone {}",
                self.start_zone
            ))
        })?;
        let has_record = !self.record_mime_type.is_empty() || !self.record_url.is_empty();
        let fields = CallFields {
            button_id: self.button_id.to_owned(),
            client_id: self.client_id.to_owned(),
            caller_number: PhoneNumber::from_stored(self.caller_number.to_owned()),
            called_number: PhoneNumber::from_stored(self.called_number.to_owned()),
            tracking_number: (!self.tracking_number.is_empty())
                .then(|| PhoneNumber::from_stored(self.tracking_number.to_owned())),
            start: CallStart {
                local: self.start_local.to_naive()?,
                zone,
            },
            duration: self.duration,
            status: self.status,
            external_id: self.external_id.to_owned(),
            call_type: self.call_type,
            record: has_record.then(|| CallRecord {
                mime_type: self.record_mime_type.to_owned(),
                url: self.record_url.to_owned(),
            }),
        };
        Ok(Call {
            id: self.id,
            fields,
            start_time: self.start_time.to_date_time()?,
            create_time: self.create_time.to_date_time()?,
            update_time: self.update_time.to_date_time()?,
            version: self.version,
            delete_time: self.delete_time.map(UnixMicros::to_date_time).transpose()?,
        })
    }
}

/// An instant in microseconds since the Unix epoch: what PostgreSQL stores, moved to another
/// epoch. A page is written from it without chrono's calendar arithmetic, which turned each
/// time into a date and back (with `Text`, 10% of the server's instructions on a page of
/// 50: callgrind, BENCHMARKS.md change 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixMicros(pub i64);

impl UnixMicros {
    pub fn of(time: DateTime<Utc>) -> Self {
        UnixMicros(time.timestamp_micros())
    }

    /// A google.protobuf.Timestamp's seconds and nanos (nanos always 0 to 999,999,999).
    pub fn seconds_and_nanos(self) -> (i64, i32) {
        let nanos = self.0.rem_euclid(MICROS_PER_SECOND) * 1_000;
        // Below 1e9, so it fits.
        (self.0.div_euclid(MICROS_PER_SECOND), nanos as i32)
    }

    pub fn to_date_time(self) -> Result<DateTime<Utc>, Error> {
        DateTime::from_timestamp_micros(self.0).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("stored time {} is out of range", self.0))
        })
    }
}

const MICROS_PER_SECOND: i64 = 1_000_000;

/// A wall-clock time with no zone, in microseconds since 1970-01-01T00:00:00: a `timestamp`
/// column moved to the Unix epoch. A page writes its text straight from this
/// ([`DateTimeText::from_unix_micros`]), without chrono's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMicros(pub i64);

impl LocalMicros {
    pub fn of(local: NaiveDateTime) -> Self {
        LocalMicros(local.and_utc().timestamp_micros())
    }

    pub fn to_naive(self) -> Result<NaiveDateTime, Error> {
        Ok(UnixMicros(self.0).to_date_time()?.naive_utc())
    }

    /// The time as the seed writes it (see [`crate::domain::write_date_time_text`]).
    pub fn text(self) -> DateTimeText {
        DateTimeText::from_unix_micros(self.0)
    }
}

/// Decodes the call read as [`CALL_COLUMNS`] from column `first` on.
pub(super) fn decode_call_columns(row: &tokio_postgres::Row, first: usize) -> Result<Call, Error> {
    CallView::decode(row, first)?.to_call()
}

/// The object `to_jsonb` renders of a `calls` row, as the change log stores it.
#[derive(Debug, Deserialize)]
struct CallJson {
    id: CallId,
    button_id: String,
    client_id: String,
    caller_number: String,
    called_number: String,
    tracking_number: String,
    start_local: NaiveDateTime,
    start_zone: String,
    start_time: DateTime<Utc>,
    duration_micros: i64,
    status: i16,
    external_id: String,
    call_type: i16,
    record_mime_type: String,
    record_url: String,
    version: i64,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    change_tx: i64,
    change_seq: i64,
}

/// Decodes the call stored as JSON in column `index` (a change-log copy). The JSON goes
/// straight into [`CallJson`], without a `serde_json::Value`.
pub(super) fn decode_call_json(row: &tokio_postgres::Row, index: usize) -> Result<Call, Error> {
    let Json(json): Json<CallJson> = row.try_get(index)?;
    CallView {
        id: json.id,
        button_id: &json.button_id,
        client_id: &json.client_id,
        caller_number: &json.caller_number,
        called_number: &json.called_number,
        tracking_number: &json.tracking_number,
        start_local: LocalMicros::of(json.start_local),
        start_zone: &json.start_zone,
        start_time: UnixMicros::of(json.start_time),
        duration: duration_from_micros(json.duration_micros),
        status: status_from_code(json.status),
        external_id: &json.external_id,
        call_type: call_type_from_code(json.call_type),
        record_mime_type: &json.record_mime_type,
        record_url: &json.record_url,
        version: json.version,
        create_time: UnixMicros::of(json.create_time),
        update_time: UnixMicros::of(json.update_time),
        delete_time: json.delete_time.map(UnixMicros::of),
        position: Position {
            tx: json.change_tx,
            seq: json.change_seq,
        },
    }
    .to_call()
}

fn duration_from_micros(micros: i64) -> std::time::Duration {
    std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

// Stored codes equal the proto enum numbers, so the two can never drift apart silently.
const STATUSES: [(CallStatus, i16); 6] = [
    (CallStatus::Completed, 1),
    (CallStatus::NoAnswered, 2),
    (CallStatus::Message, 3),
    (CallStatus::WrongNumber, 4),
    (CallStatus::Busy, 5),
    (CallStatus::Abandoned, 6),
];
const CALL_TYPES: [(CallType, i16); 2] = [(CallType::ClickToCall, 1), (CallType::CallTracking, 2)];

fn status_code(status: CallStatus) -> i16 {
    STATUSES
        .iter()
        .find(|(known, _)| *known == status)
        .map_or(0, |(_, code)| *code)
}

pub(super) fn status_from_code(code: i16) -> Option<CallStatus> {
    STATUSES
        .iter()
        .find(|(_, known)| *known == code)
        .map(|(status, _)| *status)
}

fn call_type_code(call_type: CallType) -> i16 {
    CALL_TYPES
        .iter()
        .find(|(known, _)| *known == call_type)
        .map_or(0, |(_, code)| *code)
}

pub(super) fn call_type_from_code(code: i16) -> Option<CallType> {
    CALL_TYPES
        .iter()
        .find(|(_, known)| *known == code)
        .map(|(call_type, _)| *call_type)
}
