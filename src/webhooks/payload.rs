//! What a watch sends: the call as the seed's JSON (camelCase), in an event envelope
//! (`type`, `timestamp`, `data`, and `previousData` when asked for), or the watch's template.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::{
    domain::Position,
    domain::{Call, CallStatus, CallType},
    store::{ChangeKind, ChangeRecord},
};

use super::template::Template;

/// The Standard Webhooks event type of a change.
pub fn event_type(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "call.created",
        ChangeKind::Updated => "call.updated",
        ChangeKind::Deleted => "call.deleted",
    }
}

/// The receiver's idempotency key: the same for every attempt at one change.
pub fn event_id(position: Position) -> String {
    format!("msg_{}_{}", position.tx, position.seq)
}

/// The body of one event (JSON text): the template's rendering, or the default envelope.
pub fn body(
    template: Option<&Template>,
    record: &ChangeRecord,
    previous: Option<&Call>,
) -> Result<String, String> {
    let data = call_json(&record.call);
    if let Some(template) = template {
        return template.render(&data);
    }
    Ok(envelope(
        event_type(record.kind),
        record.event_time,
        data,
        previous.map(call_json),
    )
    .to_string())
}

/// What a watch with `template` would send for a call whose JSON is `data` (a creation).
pub fn preview(template: Option<&Template>, data: Value) -> Result<String, String> {
    match template {
        Some(template) => template.render(&data),
        None => Ok(envelope("call.created", Utc::now(), data, None).to_string()),
    }
}

fn envelope(
    event_type: &str,
    event_time: DateTime<Utc>,
    data: Value,
    previous: Option<Value>,
) -> Value {
    let mut envelope = json!({
        "type": event_type,
        "timestamp": time(event_time),
        "data": data,
    });
    if let Some(previous) = previous {
        envelope["previousData"] = previous;
    }
    envelope
}

/// A call as the seed's JSON.
pub fn call_json(call: &Call) -> Value {
    let fields = &call.fields;
    let mut object = Map::new();
    object.insert("id".into(), json!(call.id.to_string()));
    object.insert("buttonId".into(), json!(fields.button_id));
    object.insert("clientId".into(), json!(fields.client_id));
    object.insert("callerNumber".into(), json!(fields.caller_number.as_str()));
    object.insert("calledNumber".into(), json!(fields.called_number.as_str()));
    if let Some(tracking) = &fields.tracking_number {
        object.insert("trackingNumber".into(), json!(tracking.as_str()));
    }
    object.insert(
        "start".into(),
        json!({"dateTime": fields.start.date_time_text(), "timeZone": fields.start.zone.name()}),
    );
    object.insert("startTime".into(), json!(time(call.start_time)));
    // Whole seconds as an integer, like the seed; fractions only when there are some.
    let duration = if fields.duration.subsec_nanos() == 0 {
        json!(fields.duration.as_secs())
    } else {
        json!(fields.duration.as_secs_f64())
    };
    object.insert("duration".into(), duration);
    if let Some(status) = fields.status {
        object.insert("status".into(), json!(status_name(status)));
    }
    object.insert("externalId".into(), json!(fields.external_id));
    if let Some(call_type) = fields.call_type {
        let name = match call_type {
            CallType::ClickToCall => "clickToCall",
            CallType::CallTracking => "callTracking",
        };
        object.insert("type".into(), json!(name));
    }
    if let Some(record) = &fields.record {
        object.insert(
            "record".into(),
            json!({"mimeType": record.mime_type, "url": record.url}),
        );
    }
    object.insert("createTime".into(), json!(time(call.create_time)));
    object.insert("updateTime".into(), json!(time(call.update_time)));
    object.insert("deleted".into(), json!(call.delete_time.is_some()));
    if let Some(delete_time) = call.delete_time {
        object.insert("deleteTime".into(), json!(time(delete_time)));
    }
    Value::Object(object)
}

fn status_name(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Completed => "completed",
        CallStatus::NoAnswered => "noAnswered",
        CallStatus::Message => "message",
        CallStatus::WrongNumber => "wrongNumber",
        CallStatus::Busy => "busy",
        CallStatus::Abandoned => "abandoned",
    }
}

fn time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
