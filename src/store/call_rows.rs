//! How a call is written to and read from its row: the write parameters, the row read as
//! columns (the `calls` table) or as JSON (the change log's copy), and the stored codes of
//! the enums.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use crate::{
    domain::{Call, CallFields, CallRecord, CallStart, CallStatus, CallType, PhoneNumber},
    feed::Position,
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

/// The columns a call is read from, in the order [`decode_call_columns`] reads them.
pub(super) const CALL_COLUMNS: &str = "id, button_id, client_id, caller_number, called_number, \
    tracking_number, start_local, start_zone, start_time, duration_micros, status, external_id, \
    call_type, record_mime_type, record_url, version, create_time, update_time, delete_time, \
    change_tx, change_seq";

/// A `calls` row: its [`CALL_COLUMNS`], or the object `to_jsonb` renders of it (the change
/// log stores that shape).
#[derive(Debug, Deserialize)]
struct CallRow {
    id: Uuid,
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

/// Decodes the call read as [`CALL_COLUMNS`] from column `first` on, with the position of its
/// latest change. Binary columns cost PostgreSQL and us far less than rendering and parsing
/// JSON (pgbench, GetCall's statement: 16,400-18,900 tps as `to_jsonb`, 22,300-24,400 as
/// columns).
pub(super) fn decode_call_columns(
    row: &tokio_postgres::Row,
    first: usize,
) -> Result<(Call, Position), Error> {
    let column = |offset: usize| first + offset;
    CallRow {
        id: row.try_get(column(0))?,
        button_id: row.try_get(column(1))?,
        client_id: row.try_get(column(2))?,
        caller_number: row.try_get(column(3))?,
        called_number: row.try_get(column(4))?,
        tracking_number: row.try_get(column(5))?,
        start_local: row.try_get(column(6))?,
        start_zone: row.try_get(column(7))?,
        start_time: row.try_get(column(8))?,
        duration_micros: row.try_get(column(9))?,
        status: row.try_get(column(10))?,
        external_id: row.try_get(column(11))?,
        call_type: row.try_get(column(12))?,
        record_mime_type: row.try_get(column(13))?,
        record_url: row.try_get(column(14))?,
        version: row.try_get(column(15))?,
        create_time: row.try_get(column(16))?,
        update_time: row.try_get(column(17))?,
        delete_time: row.try_get(column(18))?,
        change_tx: row.try_get(column(19))?,
        change_seq: row.try_get(column(20))?,
    }
    .into_call()
}

/// Decodes the call stored as JSON in column `index` (a change-log copy), with the position
/// of its latest change. The JSON goes straight into [`CallRow`], without a
/// `serde_json::Value`.
pub(super) fn decode_call_json(
    row: &tokio_postgres::Row,
    index: usize,
) -> Result<(Call, Position), Error> {
    let Json(row): Json<CallRow> = row.try_get(index)?;
    row.into_call()
}

impl CallRow {
    fn into_call(self) -> Result<(Call, Position), Error> {
        let zone = self.start_zone.parse().map_err(|_| {
            Error::Internal(anyhow::anyhow!(
                "stored call has unknown zone {}",
                self.start_zone
            ))
        })?;
        let fields = CallFields {
            button_id: self.button_id,
            client_id: self.client_id,
            caller_number: PhoneNumber::from_stored(self.caller_number),
            called_number: PhoneNumber::from_stored(self.called_number),
            tracking_number: (!self.tracking_number.is_empty())
                .then(|| PhoneNumber::from_stored(self.tracking_number)),
            start: CallStart {
                local: self.start_local,
                zone,
            },
            duration: std::time::Duration::from_micros(
                u64::try_from(self.duration_micros).unwrap_or(0),
            ),
            status: status_from_code(self.status),
            external_id: self.external_id,
            call_type: call_type_from_code(self.call_type),
            record: (!self.record_mime_type.is_empty() || !self.record_url.is_empty()).then_some(
                CallRecord {
                    mime_type: self.record_mime_type,
                    url: self.record_url,
                },
            ),
        };
        let call = Call {
            id: self.id,
            fields,
            start_time: self.start_time,
            create_time: self.create_time,
            update_time: self.update_time,
            version: self.version,
            delete_time: self.delete_time,
        };
        let position = Position {
            tx: self.change_tx,
            seq: self.change_seq,
        };
        Ok((call, position))
    }
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

fn status_from_code(code: i16) -> Option<CallStatus> {
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

fn call_type_from_code(code: i16) -> Option<CallType> {
    CALL_TYPES
        .iter()
        .find(|(_, known)| *known == code)
        .map(|(call_type, _)| *call_type)
}
