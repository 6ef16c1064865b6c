//! Proto messages to validated domain values and back. Each rejected field is named by its
//! path in the request (`call.start.date_time`), all of them at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{
    domain::{
        is_timestamp, Call, CallFields, CallId, CallRecord, CallStart, CallStatus, CallType,
        PhoneNumber, MAX_DURATION,
    },
    error::Violations,
    pb::calls::v1 as pb,
    service::calls::ClientInstant,
    Error,
};

/// Validates the writable fields of `call`; `default_zone` applies when the start has none.
/// Lengths and characters were checked against the field limits before (`field_limits`).
pub fn call_fields(call: &pb::Call, default_zone: Tz) -> Result<CallFields, Error> {
    let mut violations = Violations::default();
    let caller_number = violations.check(PhoneNumber::parse(
        "call.caller_number",
        &call.caller_number,
    ));
    let called_number = violations.check(PhoneNumber::parse(
        "call.called_number",
        &call.called_number,
    ));
    let tracking_number = if call.tracking_number.is_empty() {
        Some(None)
    } else {
        violations
            .check(PhoneNumber::parse(
                "call.tracking_number",
                &call.tracking_number,
            ))
            .map(Some)
    };
    let start = match &call.start {
        None => {
            violations.add("call.start.date_time", "is required");
            None
        }
        Some(start) => violations.check(CallStart::parse(
            "call.start",
            &start.date_time,
            &start.time_zone,
            default_zone,
        )),
    };
    let duration = violations.check(duration(call.duration.as_ref()));
    if let (Some(start), Some(duration)) = (&start, duration) {
        // The end is what time windows compare: it must be a timestamp too.
        let end = start.instant().ok().and_then(|instant| {
            chrono::Duration::from_std(duration)
                .ok()
                .map(|d| instant + d)
        });
        if end.is_some_and(|end| !is_timestamp(end)) {
            violations.add(
                "call.duration",
                "ends the call after 9999-12-31T23:59:59Z, past what a timestamp can carry",
            );
        }
    }
    let status = violations.check(status(call.status));
    let call_type = violations.check(call_type(call.r#type));
    let record = violations.check(record(call.record.as_ref()));
    violations.finish(|| ())?;
    // Every check passed, so every value is present.
    let (
        Some(caller_number),
        Some(called_number),
        Some(tracking_number),
        Some(start),
        Some(duration),
        Some(status),
        Some(call_type),
        Some(record),
    ) = (
        caller_number,
        called_number,
        tracking_number,
        start,
        duration,
        status,
        call_type,
        record,
    )
    else {
        return Err(Error::Internal(anyhow::anyhow!(
            "a call field passed validation without a value"
        )));
    };
    Ok(CallFields {
        button_id: call.button_id.clone(),
        client_id: call.client_id.clone(),
        caller_number,
        called_number,
        tracking_number,
        start,
        duration,
        status,
        external_id: call.external_id.clone(),
        call_type,
        record,
    })
}

fn duration(duration: Option<&prost_types::Duration>) -> Result<Duration, Error> {
    const FIELD: &str = "call.duration";
    let Some(duration) = duration else {
        return Ok(Duration::ZERO);
    };
    if duration.seconds < 0 || duration.nanos < 0 {
        return Err(Error::invalid(FIELD, "must not be negative"));
    }
    let (Ok(seconds), Ok(nanos)) = (
        u64::try_from(duration.seconds),
        u32::try_from(duration.nanos),
    ) else {
        return Err(Error::invalid(FIELD, "is not a valid duration"));
    };
    if nanos >= 1_000_000_000 {
        return Err(Error::invalid(FIELD, "nanos must be below one second"));
    }
    let duration = Duration::new(seconds, nanos);
    if duration > MAX_DURATION {
        return Err(Error::invalid(
            FIELD,
            format!("must be at most {} days", MAX_DURATION.as_secs() / 86_400),
        ));
    }
    // Stored with microsecond precision, like the start instant.
    Ok(Duration::from_micros(
        u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
    ))
}

fn status(value: i32) -> Result<Option<CallStatus>, Error> {
    match pb::CallStatus::try_from(value) {
        Ok(pb::CallStatus::Unspecified) => Ok(None),
        Ok(pb::CallStatus::Completed) => Ok(Some(CallStatus::Completed)),
        Ok(pb::CallStatus::NoAnswered) => Ok(Some(CallStatus::NoAnswered)),
        Ok(pb::CallStatus::Message) => Ok(Some(CallStatus::Message)),
        Ok(pb::CallStatus::WrongNumber) => Ok(Some(CallStatus::WrongNumber)),
        Ok(pb::CallStatus::Busy) => Ok(Some(CallStatus::Busy)),
        Ok(pb::CallStatus::Abandoned) => Ok(Some(CallStatus::Abandoned)),
        Err(_) => Err(Error::invalid(
            "call.status",
            format!("{value} is not a CallStatus"),
        )),
    }
}

fn call_type(value: i32) -> Result<Option<CallType>, Error> {
    match pb::CallType::try_from(value) {
        Ok(pb::CallType::Unspecified) => Ok(None),
        Ok(pb::CallType::ClickToCall) => Ok(Some(CallType::ClickToCall)),
        Ok(pb::CallType::CallTracking) => Ok(Some(CallType::CallTracking)),
        Err(_) => Err(Error::invalid(
            "call.type",
            format!("{value} is not a CallType"),
        )),
    }
}

fn record(record: Option<&pb::CallRecord>) -> Result<Option<CallRecord>, Error> {
    let Some(record) =
        record.filter(|record| !record.url.is_empty() || !record.mime_type.is_empty())
    else {
        return Ok(None);
    };
    let mut violations = Violations::default();
    if !record.mime_type.is_empty() && !record.mime_type.contains('/') {
        violations.add(
            "call.record.mime_type",
            "must be a MIME type such as \"audio/mpeg\"",
        );
    }
    if !record.url.is_empty() {
        match url::Url::parse(&record.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => violations.add("call.record.url", "must be an http or https URL"),
        }
    }
    violations.finish(|| {
        Some(CallRecord {
            mime_type: record.mime_type.clone(),
            url: record.url.clone(),
        })
    })
}

/// A call as clients see it; tombstones carry only their identity and deletion time.
pub fn call_to_proto(call: Call) -> pb::Call {
    if let Some(delete_time) = call.delete_time {
        return pb::Call {
            id: call.id.to_string(),
            deleted: true,
            delete_time: Some(timestamp(delete_time)),
            update_time: Some(timestamp(call.update_time)),
            etag: call.etag(),
            ..pb::Call::default()
        };
    }
    let etag = call.etag();
    let fields = call.fields;
    pb::Call {
        id: call.id.to_string(),
        button_id: fields.button_id,
        client_id: fields.client_id,
        caller_number: fields.caller_number.into_string(),
        called_number: fields.called_number.into_string(),
        tracking_number: fields
            .tracking_number
            .map(PhoneNumber::into_string)
            .unwrap_or_default(),
        start: Some(pb::CallStart {
            date_time: fields.start.date_time_text(),
            time_zone: fields.start.zone.name().to_owned(),
        }),
        duration: Some(prost_types::Duration {
            seconds: i64::try_from(fields.duration.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(fields.duration.subsec_nanos()).unwrap_or(0),
        }),
        status: status_number(fields.status),
        external_id: fields.external_id,
        r#type: call_type_number(fields.call_type),
        record: fields.record.map(|record| pb::CallRecord {
            mime_type: record.mime_type,
            url: record.url,
        }),
        create_time: Some(timestamp(call.create_time)),
        update_time: Some(timestamp(call.update_time)),
        etag,
        deleted: false,
        delete_time: None,
        start_time: Some(timestamp(call.start_time)),
    }
}

/// The proto enum number of a call status.
pub fn status_number(status: Option<CallStatus>) -> i32 {
    let status = status.map_or(pb::CallStatus::Unspecified, |status| match status {
        CallStatus::Completed => pb::CallStatus::Completed,
        CallStatus::NoAnswered => pb::CallStatus::NoAnswered,
        CallStatus::Message => pb::CallStatus::Message,
        CallStatus::WrongNumber => pb::CallStatus::WrongNumber,
        CallStatus::Busy => pb::CallStatus::Busy,
        CallStatus::Abandoned => pb::CallStatus::Abandoned,
    });
    status as i32
}

/// The proto enum number of a call type.
pub fn call_type_number(call_type: Option<CallType>) -> i32 {
    let call_type = call_type.map_or(pb::CallType::Unspecified, |call_type| match call_type {
        CallType::ClickToCall => pb::CallType::ClickToCall,
        CallType::CallTracking => pb::CallType::CallTracking,
    });
    call_type as i32
}

pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A request timestamp for the service to check (it refuses what is not an instant it keeps).
pub fn client_instant(timestamp: &prost_types::Timestamp) -> ClientInstant {
    ClientInstant {
        seconds: timestamp.seconds,
        nanos: timestamp.nanos,
    }
}

/// Parses a call id; a malformed one cannot name any call.
pub fn call_id(field: &str, id: &str) -> Result<CallId, Error> {
    parse_id(field, id, "call")
}

/// Parses an id of the kind `Id` (named `what` in the error); a malformed id cannot name
/// anything. Each kind has its own function, so the type is chosen where the field is read.
pub(super) fn parse_id<Id: std::str::FromStr>(
    field: &str,
    id: &str,
    what: &str,
) -> Result<Id, Error> {
    if id.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    id.parse()
        .map_err(|_| Error::invalid(field, format!("is not a {what} id")))
}
