//! `GET /v1/calls:export`: ExportCalls as a download, in the format the `Accept` header asks for.
//!
//! - **NDJSON** (`application/x-ndjson`, the default): one `{"call": {...}}` line per call in
//!   proto3 JSON, newest start first, then one `{"nextSyncToken": "..."}` line, present exactly
//!   when the export is complete (its token empty when the filters narrowed the export). A
//!   failure after the first line is a last `{"error": {...}}` line in the REST error shape.
//! - **CSV** (`text/csv`): a header row, then a row per call. The columns are the `Call`
//!   message's fields in proto order with their JSON names (`start.dateTime`,
//!   `record.mimeType`), read from the descriptor, so a field added to the proto gets its column
//!   with no change here. CSV has no place for a token or an error: a failure after the first
//!   row aborts the response, so a cut export can never be read as complete.
//!
//! The export holds the tenant's stream slot and its snapshot as the gRPC stream does (the
//! service takes both), and is read as the client reads: memory stays one batch.

use std::io;

use bytes::Bytes;
use futures::{stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Frame;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};
use serde_json::Value;
use tonic::body::Body;

use super::{json, routes::Route, status::Refusal};
use crate::{api, pb::calls::v1 as pb, service::calls::Calls, store::Tenant, Error};

/// What the client asked to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

impl Format {
    /// CSV when `Accept` names `text/csv`; NDJSON otherwise (also for `*/*` or no header).
    fn accepted(headers: &HeaderMap) -> Format {
        let asks_csv = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|media| {
                media
                    .split(';')
                    .next()
                    .is_some_and(|name| name.trim().eq_ignore_ascii_case("text/csv"))
            });
        if asks_csv {
            Format::Csv
        } else {
            Format::Ndjson
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Starts the export the ExportCalls request `message` describes.
pub async fn open(
    calls: &Calls,
    tenant: &Tenant,
    route: &Route,
    message: DynamicMessage,
    headers: &HeaderMap,
) -> Result<Response<Body>, Refusal> {
    let request: pb::ExportCallsRequest = json::typed_request(message)?;
    let batches = api::personal_data::export_calls(calls, tenant, &request).await?;
    let format = Format::accepted(headers);
    let call_descriptor = route
        .rpc
        .output()
        .get_field_by_name("calls")
        .and_then(|field| field.kind().as_message().cloned())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("ExportCallsResponse has no calls")))?;
    let columns = csv_columns(&call_descriptor);
    let header_row = (format == Format::Csv).then(|| csv_header(&columns));

    // Each batch becomes one frame; the end of the batches is marked so the NDJSON trailer
    // line goes out only after a complete export.
    let mut next_sync_token = String::new();
    let mut ended = false;
    let frames = batches
        .map(Some)
        .chain(stream::once(async { None }))
        .filter_map(move |item| {
            let frame = if ended {
                None
            } else {
                match item {
                    Some(Ok(batch)) => {
                        if !batch.next_sync_token.is_empty() {
                            next_sync_token = batch.next_sync_token.clone();
                        }
                        Some(Ok(batch_text(format, &call_descriptor, &columns, batch)))
                    }
                    Some(Err(error)) => {
                        ended = true;
                        Some(failure(format, error))
                    }
                    None => {
                        ended = true;
                        (format == Format::Ndjson).then(|| {
                            let line = serde_json::json!({ "nextSyncToken": next_sync_token });
                            Ok(format!("{line}\n"))
                        })
                    }
                }
            };
            futures::future::ready(frame)
        });
    let frames = stream::iter(header_row.map(Ok))
        .chain(frames)
        .map(|text| text.map(|text| Frame::data(Bytes::from(text))));

    let mut response = Response::new(Body::new(http_body_util::StreamBody::new(frames)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer (nginx) would hold the whole export in memory.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The text of one batch of calls.
fn batch_text(
    format: Format,
    descriptor: &MessageDescriptor,
    columns: &[Column],
    batch: pb::ExportCallsResponse,
) -> String {
    let mut text = String::new();
    for call in batch.calls {
        let json = call_json(descriptor, &call);
        match format {
            Format::Ndjson => {
                // Compact JSON holds no line break.
                text.push_str(&serde_json::json!({ "call": json }).to_string());
                text.push('\n');
            }
            Format::Csv => csv_row(&mut text, columns, &json),
        }
    }
    text
}

/// A call in proto3 JSON, as a value.
fn call_json(descriptor: &MessageDescriptor, call: &pb::Call) -> Value {
    let mut dynamic = DynamicMessage::new(descriptor.clone());
    if dynamic.transcode_from(call).is_err() {
        return Value::Object(serde_json::Map::new());
    }
    json::message_json(&dynamic)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| Value::Object(serde_json::Map::new()))
}

/// How an export that fails after its start ends: an NDJSON error line, or an aborted CSV.
fn failure(format: Format, error: Error) -> Result<String, io::Error> {
    let refusal = Refusal::Service(error);
    if let Refusal::Service(error) = &refusal {
        error.log_cause();
    }
    match format {
        Format::Ndjson => Ok(format!("{}\n", refusal.body())),
        Format::Csv => Err(io::Error::other(format!(
            "export ended early: {}",
            refusal.body()
        ))),
    }
}

/// One CSV column: a JSON path into a call (`["start", "dateTime"]`).
type Column = Vec<String>;

/// The columns of `descriptor`'s fields in proto order, nested messages flattened. Well-known
/// types (`Timestamp`, `Duration`) are one column each, as their JSON is one string. The depth
/// is our schema's (Call → CallStart), never a client's.
fn csv_columns(descriptor: &MessageDescriptor) -> Vec<Column> {
    let mut columns = Vec::new();
    for field in descriptor.fields() {
        let name = field.json_name().to_owned();
        match field.kind() {
            Kind::Message(inner)
                if !field.is_list() && !inner.full_name().starts_with("google.protobuf.") =>
            {
                for mut column in csv_columns(&inner) {
                    column.insert(0, name.clone());
                    columns.push(column);
                }
            }
            _ => columns.push(vec![name]),
        }
    }
    columns
}

fn csv_header(columns: &[Column]) -> String {
    let names: Vec<String> = columns.iter().map(|column| column.join(".")).collect();
    let mut text = String::new();
    push_csv_record(&mut text, names.iter().map(String::as_str));
    text
}

fn csv_row(text: &mut String, columns: &[Column], call: &Value) {
    let cells: Vec<String> = columns
        .iter()
        .map(|column| {
            let value = column.iter().try_fold(call, |value, key| value.get(key));
            match value {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
            }
        })
        .collect();
    push_csv_record(text, cells.iter().map(String::as_str));
}

/// One record of RFC 4180: cells holding a comma, a quote or a line break are quoted, quotes
/// doubled; lines end with CRLF.
fn push_csv_record<'a>(text: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (index, cell) in cells.enumerate() {
        if index > 0 {
            text.push(',');
        }
        if cell.contains([',', '"', '\r', '\n']) {
            text.push('"');
            text.push_str(&cell.replace('"', "\"\""));
            text.push('"');
        } else {
            text.push_str(cell);
        }
    }
    text.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_descriptor() -> MessageDescriptor {
        crate::api::descriptors()
            .unwrap()
            .get_message_by_name("calls.v1.Call")
            .unwrap()
    }

    #[test]
    fn csv_columns_follow_the_call_message_with_nested_fields_flattened() {
        let names: Vec<String> = csv_columns(&call_descriptor())
            .iter()
            .map(|column| column.join("."))
            .collect();
        assert_eq!(names[0], "id");
        for expected in [
            "callerNumber",
            "start.dateTime",
            "start.timeZone",
            "duration",
            "record.mimeType",
            "record.url",
        ] {
            assert!(names.iter().any(|name| name == expected), "{names:?}");
        }
    }

    #[test]
    fn csv_cells_with_commas_quotes_or_line_breaks_are_quoted() {
        let mut text = String::new();
        push_csv_record(
            &mut text,
            ["plain", "a,b", "say \"hi\"", "two\nlines"].into_iter(),
        );
        assert_eq!(text, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
    }

    #[test]
    fn a_row_takes_each_column_from_the_call_json() {
        let descriptor = call_descriptor();
        let columns = csv_columns(&descriptor);
        let call = pb::Call {
            id: "c1".into(),
            caller_number: "+33 6 12 34 56 78".into(),
            start: Some(pb::CallStart {
                date_time: "2026-11-27T09:30:00".into(),
                time_zone: "Europe/Paris".into(),
            }),
            ..Default::default()
        };
        let mut text = String::new();
        csv_row(&mut text, &columns, &call_json(&descriptor, &call));
        let header = csv_header(&columns);
        let names: Vec<&str> = header.trim_end().split(',').collect();
        let cells: Vec<&str> = text.trim_end().split(',').collect();
        let cell = |name: &str| cells[names.iter().position(|n| *n == name).unwrap()];
        assert_eq!(cell("id"), "c1");
        assert_eq!(cell("callerNumber"), "+33 6 12 34 56 78");
        assert_eq!(cell("start.timeZone"), "Europe/Paris");
        assert_eq!(cell("record.url"), "");
    }

    #[test]
    fn csv_is_chosen_only_when_accept_names_it() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::accepted(&headers), Format::Ndjson);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/csv;q=0.9"),
        );
        assert_eq!(Format::accepted(&headers), Format::Csv);
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert_eq!(Format::accepted(&headers), Format::Ndjson);
    }
}
