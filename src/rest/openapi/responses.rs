//! What an operation answers: its success (JSON, no body for the seed's delete, or Server-Sent
//! Events), each error status in Google's error shape with the headers the door sends, and the
//! links from a create to the operations on what it made.

use prost_reflect::{Kind, MethodDescriptor};
use serde_json::{json, Map, Value};

use super::{
    http_rule::Binding,
    schemas::{self, Schemas},
    DoorExtras,
};

/// The error statuses the door answers every operation with (AIP-193), in Google's error shape.
const ERROR_STATUSES: &[(&str, &str)] = &[
    ("400", "The request is malformed or a field is invalid (INVALID_ARGUMENT, FAILED_PRECONDITION); `BadRequest` names each bad field."),
    ("401", "No API key, or an unknown or revoked one (UNAUTHENTICATED)."),
    ("404", "No such resource for this tenant (NOT_FOUND)."),
    ("412", "The etag sent no longer matches: the resource changed since it was read (ABORTED)."),
    ("429", "The tenant's share or the server's capacity is used up (RESOURCE_EXHAUSTED); `RetryInfo` and `Retry-After` say when to retry."),
    ("500", "An internal failure (INTERNAL, DATA_LOSS); the cause is logged, never sent."),
    ("503", "The server is draining or the database is unavailable (UNAVAILABLE)."),
];

/// And those of an operation that takes a body.
const BODY_ERROR_STATUSES: &[(&str, &str)] = &[
    (
        "408",
        "The request body did not arrive in time (DEADLINE_EXCEEDED).",
    ),
    (
        "413",
        "The request body is larger than the door reads (INVALID_ARGUMENT).",
    ),
    (
        "415",
        "The request body is not `application/json` (INVALID_ARGUMENT).",
    ),
];

pub(super) fn responses(
    method: &MethodDescriptor,
    binding: &Binding,
    extras: &DoorExtras,
    schemas: &mut Schemas,
) -> Result<Value, String> {
    let response = method.output();
    let success = if extras.downloads.contains(&method.full_name()) {
        let line = response
            .get_field_by_name("calls")
            .map(|field| schemas.kind(&field.kind()))
            .unwrap_or_else(|| schemas.message(&response));
        json!({
            "description": "A download, in the format `Accept` asks for. NDJSON (the default): \
                a `{\"call\": ...}` line per call (each call's schema in `x-line`), then one \
                `{\"nextSyncToken\": ...}` line, present only when the export is complete; a \
                failure after the first line is a last `{\"error\": ...}` line (`Error`). CSV \
                (`text/csv`): a header row of the call's fields (`start.dateTime`, ...), then \
                a row per call; a failure aborts the response.",
            "content": {
                "application/x-ndjson": { "schema": { "type": "string" }, "x-line": line },
                "text/csv": { "schema": { "type": "string" } }
            }
        })
    } else if method.is_server_streaming() {
        let (data, data_name) = match response.get_field_by_name(extras.stream_event_field) {
            Some(field) => (schemas.kind(&field.kind()), field.kind()),
            None => (schemas.message(&response), Kind::Message(response.clone())),
        };
        let data_name = match data_name {
            Kind::Message(message) => message.name().to_owned(),
            _ => extras.stream_event_field.to_owned(),
        };
        let event = data;
        json!({
            "description": format!(
                "Server-Sent Events, one per `{data_name}`: `id:` is the event's sync token \
                 (sent back as `Last-Event-ID`, the stream resumes right after it), `event:` \
                 its type in camelCase (`created`, `heartbeat`, ...), `data:` the \
                 `{data_name}` in JSON (its schema in `x-event-data`). A stream that fails \
                 ends with an `error` event whose data is the error shape (`Error`)."
            ),
            "content": { "text/event-stream": {
                "schema": { "type": "string" },
                "x-event-data": event,
            } }
        })
    } else if binding.method == "delete" && extras.empty_body_on_delete {
        json!({ "description": "Deleted; the body is empty." })
    } else {
        let schema = match binding.response_body.as_str() {
            "" => schemas.message(&response),
            field_name => {
                let field = response
                    .get_field_by_name(field_name)
                    .ok_or_else(|| format!("response_body: no field {field_name}"))?;
                schemas.kind(&field.kind())
            }
        };
        json!({
            "description": "OK",
            "content": { "application/json": { "schema": schema } }
        })
    };
    let mut success = success;
    if carries_etag(&response) {
        success["headers"] = json!({ "ETag": {
            "description": "The etag of the resource in the answer, quoted; send it back in \
                `If-Match` to change the resource only if nobody did since.",
            "schema": { "type": "string" }
        } });
    }
    let mut responses = Map::new();
    responses.insert("200".to_owned(), success);
    let statuses = match binding.body.as_str() {
        "" => ERROR_STATUSES.to_vec(),
        _ => [ERROR_STATUSES, BODY_ERROR_STATUSES].concat(),
    };
    for (status, text) in statuses {
        let mut response = json!({
            "description": text,
            "content": { "application/json": { "schema": schemas::reference("Error") } }
        });
        if let Some(headers) = error_headers(status) {
            response["headers"] = headers;
        }
        responses.insert(status.to_owned(), response);
    }
    Ok(Value::Object(responses))
}

/// Whether an answer holds one resource with an etag (`GetCallResponse.call`), which the door
/// sends as the `ETag` header too.
fn carries_etag(response: &prost_reflect::MessageDescriptor) -> bool {
    response.fields().any(|field| {
        !field.is_list()
            && field
                .kind()
                .as_message()
                .is_some_and(|resource| resource.get_field_by_name("etag").is_some())
    })
}

/// The headers an error answer carries beside its body (`status.rs`).
fn error_headers(status: &str) -> Option<Value> {
    match status {
        "401" => Some(json!({ "WWW-Authenticate": {
            "description": "`Bearer`: the scheme the key is sent with.",
            "schema": { "type": "string" }
        } })),
        "429" | "503" => Some(json!({ "Retry-After": {
            "description": "Seconds to wait before retrying, when waiting helps.",
            "schema": { "type": "integer", "minimum": 1 }
        } })),
        _ => None,
    }
}

/// Google's REST error shape: `{"error": {"code", "status", "message", "details"}}`.
pub(super) fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Google's REST error shape (AIP-193): the gRPC status, its HTTP code, \
            and the `google.rpc` details (`BadRequest` naming each bad field, `ErrorInfo` with \
            a reason to switch on, `RetryInfo`) with their `@type`.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "status", "message"],
                "properties": {
                    "code": { "type": "integer", "format": "int32", "description": "The HTTP status." },
                    "status": { "type": "string", "description": "The gRPC status name, e.g. `INVALID_ARGUMENT`." },
                    "message": { "type": "string", "description": "What went wrong, for a person." },
                    "details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["@type"],
                            "properties": { "@type": { "type": "string" } },
                            "additionalProperties": true
                        }
                    }
                }
            }
        }
    })
}

/// OpenAPI links from each create to the operations on what it created: `POST /v1/calls`
/// answers `{"call": {"id": ...}}`, which is the `{id}` of `GET /v1/calls/{id}`, `PATCH` and
/// `DELETE` on it (and `{watch_id}` of `/v1/watches/{watch_id}/deliveries`, ...). A client (or a
/// fuzzer) follows them from a create to the resource it made. Derived from the document
/// itself: a `post` on a path without variables, whose answer has a message field with an `id`,
/// links to every operation whose path is that path and one variable, then `/`, `:` or its end.
pub(super) fn add_links(paths: &mut Map<String, Value>, creates: &[(String, String)]) {
    let mut found = Vec::new();
    for (collection, id_pointer) in creates {
        let mut links = Map::new();
        for (path, item) in paths.iter() {
            let Some(rest) = path.strip_prefix(collection.as_str()) else {
                continue;
            };
            let Some(variable) = rest.strip_prefix("/{").and_then(|rest| {
                let (variable, after) = rest.split_once('}')?;
                (after.is_empty() || after.starts_with('/') || after.starts_with(':'))
                    .then_some(variable)
            }) else {
                continue;
            };
            for operation in item.as_object().into_iter().flat_map(|item| item.values()) {
                let Some(operation_id) = operation["operationId"].as_str() else {
                    continue;
                };
                links.insert(
                    operation_id.to_owned(),
                    json!({
                        "operationId": operation_id,
                        "parameters": { variable: format!("$response.body#{id_pointer}") },
                        "description": format!("The `{variable}` of what the create made."),
                    }),
                );
            }
        }
        if !links.is_empty() {
            found.push((collection.clone(), links));
        }
    }
    for (collection, links) in found {
        paths[&collection]["post"]["responses"]["200"]["links"] = Value::Object(links);
    }
}

/// `/call/id` when `binding` creates (a `post` on a path without variables) and its answer is
/// `{"call": {"id": ...}}`: the answer's first message field whose message has an `id`.
pub(super) fn created_id_pointer(method: &MethodDescriptor, binding: &Binding) -> Option<String> {
    if binding.method != "post" || binding.path.contains('{') || !binding.response_body.is_empty() {
        return None;
    }
    method
        .output()
        .fields()
        .find_map(|field| match field.kind() {
            Kind::Message(message)
                if !field.is_list() && message.get_field_by_name("id").is_some() =>
            {
                let id = message.get_field_by_name("id")?;
                Some(format!("/{}/{}", field.json_name(), id.json_name()))
            }
            _ => None,
        })
}
