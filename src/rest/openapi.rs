//! The OpenAPI 3.0 document of the REST door, generated on first use from the descriptor set
//! the server is built from (`pb::FILE_DESCRIPTOR_SET`, through [`api::descriptors`]), never
//! written by hand: paths and methods from each RPC's `google.api.http` rule and its
//! `additional_bindings` (`http_rule`), path parameters from the `{field}` templates, query
//! parameters for the request's other fields when the body is not `"*"`, request bodies from
//! `body`, answers and errors (`responses`), schemas from the messages in proto3's JSON mapping
//! with the limits of `api::FIELD_LIMITS` (`schemas`), descriptions and examples from the
//! proto's comments. Served at `GET /openapi.json`.
//!
//! What the door accepts beyond the proto (the seed's query names and spellings) is listed in
//! [`DoorExtras`], next to nothing else, so the document says exactly what the door does.

mod http_rule;
mod responses;
mod schemas;

use std::sync::LazyLock;

use bytes::Bytes;
use http::{Response, StatusCode};
use tonic::body::Body;

use prost_reflect::{DescriptorPool, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::{json, Map, Value};

use super::{json, status};
use crate::api;
pub use http_rule::Binding;
use http_rule::{bindings, openapi_path, parameter_name, path_shape, path_variables, resolve};
use schemas::{Comments, Schemas};
/// What the REST door accepts beyond what the proto declares (the seed API's own names), from
/// the door's own tables, so the document cannot drift from what it does.
pub struct DoorExtras<'a> {
    /// Extra query parameters: (request message full name, alias, JSON name of the field).
    pub query_aliases: &'a [(&'a str, &'a str, &'a str)],
    /// Extra JSON names of fields: (message full name, alias, JSON name of the field).
    pub field_aliases: &'a [(&'a str, &'a str, &'a str)],
    /// Extra spellings of an enum's values the door accepts in requests.
    pub enum_spellings: fn(&prost_reflect::EnumDescriptor) -> Vec<String>,
    /// Header parameters: (method full name, header, description).
    pub headers: &'a [(&'a str, &'a str, &'a str)],
    /// The field of a streamed response that each Server-Sent Event's `data:` holds (the whole
    /// response when it has no such field).
    pub stream_event_field: &'a str,
    /// Streaming methods served as a download (NDJSON or CSV, `export.rs`), not as events.
    pub downloads: &'a [&'a str],
    /// Whether a DELETE is answered with an empty body (the seed's delete).
    pub empty_body_on_delete: bool,
    /// The limits every request field passes, by field full name: characters, elements.
    pub field_limits: &'a [(&'a str, api::FieldLimit)],
}

/// What the door of `src/rest/` accepts beyond the proto.
pub const DOOR_EXTRAS: DoorExtras<'static> = DoorExtras {
    query_aliases: json::QUERY_ALIASES,
    field_aliases: json::FIELD_ALIASES,
    enum_spellings: seed_spellings,
    headers: &[
        (
            "calls.v1.CallService.ExportCalls",
            "Accept",
            "`text/csv` for CSV (a header row, then a row per call); anything else gives \
             NDJSON (a `{\"call\": ...}` line per call, then a `{\"nextSyncToken\": ...}` line \
             when the export is complete).",
        ),
        (
            "calls.v1.CallService.WatchCalls",
            "Last-Event-ID",
            "The `id:` of the last event received: the stream resumes right after it (it is the \
         event's sync token, and wins over `syncToken`). Browsers' `EventSource` sends it when \
         it reconnects.",
        ),
    ],
    stream_event_field: "event",
    downloads: &["calls.v1.CallService.ExportCalls"],
    empty_body_on_delete: true,
    field_limits: api::FIELD_LIMITS,
};

/// Where the door serves the document.
pub const PATH: &str = "/openapi.json";

/// The document as an HTTP answer.
pub fn response() -> Response<Body> {
    match document_json() {
        Ok(json) => status::json_response(StatusCode::OK, Bytes::from_static(json)),
        // Never once the door is built: `Rest::new` refuses to start without the document.
        Err(error) => status::Refusal::Service(crate::Error::Internal(anyhow::anyhow!(
            "the OpenAPI document: {error}"
        )))
        .response(),
    }
}

/// The seed's camelCase spelling of each value (`noAnswered` for `CALL_STATUS_NO_ANSWERED`),
/// which the door accepts in requests beside the proto's names (and the short upper-case one,
/// `NO_ANSWERED`, left out of the document to keep generated clients' enums small).
fn seed_spellings(enumeration: &prost_reflect::EnumDescriptor) -> Vec<String> {
    let prefix = json::enum_prefix(enumeration.name());
    enumeration
        .values()
        .filter_map(|value| value.name().strip_prefix(&prefix).map(json::camel_case))
        .collect()
}

/// The document as served, built and serialised once; the door is built only if it can be
/// (`Rest::new`), so a mistake in an annotation stops the start-up, not a request.
pub fn document_json() -> Result<&'static [u8], String> {
    static JSON: LazyLock<Result<Vec<u8>, String>> = LazyLock::new(|| {
        let pool = api::descriptors().map_err(|error| error.to_string())?;
        let document = generate(pool, &DOOR_EXTRAS).map_err(|error| error.to_string())?;
        serde_json::to_vec(&document).map_err(|error| error.to_string())
    });
    JSON.as_ref().map(Vec::as_slice).map_err(Clone::clone)
}

/// Why the proto could not be turned into a document (a mistake in an annotation).
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error("the descriptor set lacks google.api.http (proto/google/api/annotations.proto)")]
    NoHttpExtension,
    #[error("{method}: {problem}")]
    Rule { method: String, problem: String },
}

/// Builds the document for every service of `pool` whose RPCs carry `google.api.http` rules.
pub fn generate(pool: &DescriptorPool, extras: &DoorExtras) -> Result<Value, OpenApiError> {
    let http = pool
        .get_extension_by_name("google.api.http")
        .ok_or(OpenApiError::NoHttpExtension)?;
    let comments = Comments::of_pool(pool);
    let enum_aliases = extras.enum_spellings;
    let field_aliases = |message: &MessageDescriptor| {
        extras
            .field_aliases
            .iter()
            .filter(|(name, _, _)| *name == message.full_name())
            .map(|(_, alias, field)| ((*alias).to_owned(), (*field).to_owned()))
            .collect()
    };
    let mut schemas = Schemas::new(&comments, enum_aliases, &field_aliases, extras.field_limits);
    let mut paths = Map::new();
    let mut creates = Vec::new();
    let mut tags = Vec::new();
    let mut services: Vec<_> = pool.services().collect();
    services.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    for service in services {
        let mut has_routes = false;
        for method in service.methods() {
            for (index, binding) in bindings(&method, &http)?.iter().enumerate() {
                let operation = operation(&method, binding, index, extras, &comments, &mut schemas)
                    .map_err(|problem| OpenApiError::Rule {
                        method: method.full_name().to_owned(),
                        problem,
                    })?;
                let path = openapi_path(&binding.path);
                if let Some(twin) = paths
                    .keys()
                    .find(|other| **other != path && path_shape(other) == path_shape(&path))
                {
                    return Err(OpenApiError::Rule {
                        method: method.full_name().to_owned(),
                        problem: format!("{path} and {twin} differ only in their variables' names"),
                    });
                }
                let item = paths.entry(path).or_insert_with(|| json!({}));
                if item.get(binding.method).is_some() {
                    return Err(OpenApiError::Rule {
                        method: method.full_name().to_owned(),
                        problem: format!("{} {} is bound twice", binding.method, binding.path),
                    });
                }
                item[binding.method] = operation;
                if let Some(pointer) = responses::created_id_pointer(&method, binding) {
                    creates.push((openapi_path(&binding.path), pointer));
                }
                has_routes = true;
            }
        }
        if has_routes {
            let mut tag = json!({ "name": service.name() });
            if let Some(text) = comments.of_service(&service) {
                tag["description"] = json!(text);
            }
            tags.push(tag);
        }
    }
    responses::add_links(&mut paths, &creates);
    schemas.insert("Error", responses::error_schema());
    Ok(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "callsd REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The call-history service's REST/JSON door, beside gRPC on the same \
                service. Generated from the proto (`proto/calls/v1`) and its `google.api.http` \
                rules. JSON is proto3's JSON mapping: camelCase names, enums as strings, \
                timestamps as RFC 3339 strings. Errors are Google's REST error shape."
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas.into_components(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (`callsd key create`): `Authorization: Bearer <key>`."
                }
            }
        },
        "security": [{ "bearer": [] }]
    }))
}

fn operation(
    method: &MethodDescriptor,
    binding: &Binding,
    index: usize,
    extras: &DoorExtras,
    comments: &Comments,
    schemas: &mut Schemas,
) -> Result<Value, String> {
    let request = method.input();
    let path_fields = path_variables(&binding.path)?;
    let mut parameters = Vec::new();
    for field_path in &path_fields {
        let field = resolve(&request, field_path)?;
        let name = parameter_name(field_path);
        if field_path.contains('.') && request.get_field_by_name(&name).is_some() {
            return Err(format!(
                "path variable {field_path} would be named {name}, as another field"
            ));
        }
        let mut parameter = parameter(&name, "path", schemas.field(&field));
        parameter["required"] = json!(true);
        if field_path.contains('.') {
            let text = parameter["description"].as_str().unwrap_or_default();
            parameter["description"] = json!(format!("`{field_path}` of the request. {text}"));
        }
        parameters.push(parameter);
    }
    if binding.body != "*" {
        let bound: Vec<&str> = path_fields.iter().map(String::as_str).collect();
        query_parameters(
            &request,
            "",
            &bound,
            &binding.body,
            schemas,
            &mut parameters,
        );
        for (message, alias, field) in extras.query_aliases {
            if *message == request.full_name() {
                let target = request
                    .get_field_by_json_name(field)
                    .ok_or_else(|| format!("query alias {alias}: no field {field}"))?;
                parameters.push(json!({
                    "name": alias,
                    "in": "query",
                    "schema": schemas.kind(&target.kind()),
                    "description": format!(
                        "The seed API's name for `{}` (one or the other, not both).",
                        target.json_name()
                    ),
                }));
            }
        }
    }
    for (rpc, header, text) in extras.headers {
        if *rpc == method.full_name() {
            parameters.push(json!({
                "name": header,
                "in": "header",
                "schema": { "type": "string" },
                "description": text,
            }));
        }
    }
    if matches!(binding.method, "patch" | "put" | "delete") && takes_etag(&request, binding) {
        parameters.push(json!({
            "name": "If-Match",
            "in": "header",
            "schema": { "type": "string" },
            "description": "The resource's etag, quoted (`\"3\"`, as its `ETag` header gave it): \
                the change is made only if it still matches, else 412. The same as the \
                request's `etag`.",
        }));
    }
    let text = comments.of_method(method).unwrap_or_default();
    let mut operation = json!({
        "operationId": operation_id(method, index),
        "tags": [method.parent_service().name()],
        "summary": first_sentence(text),
        "description": text,
        "parameters": parameters,
        "responses": responses::responses(method, binding, extras, schemas)?,
    });
    if let Some(body) = request_body(&request, binding, &path_fields, schemas)? {
        operation["requestBody"] = body;
    }
    Ok(operation)
}

/// The comment's first sentence, on one line: an operation's summary.
fn first_sentence(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.find(". ") {
        Some(end) => line[..=end].to_owned(),
        None => line,
    }
}

/// A parameter whose schema is a field's: the field's description lifted out of the schema onto
/// it, where documentation tools show it (and its `readOnly`, `writeOnly` dropped: a path's
/// `call.id` is output-only in the body, not in the path).
fn parameter(name: &str, location: &str, mut schema: Value) -> Value {
    let mut parameter = json!({ "name": name, "in": location });
    if let Some(object) = schema.as_object_mut() {
        if let Some(text) = object.remove("description") {
            parameter["description"] = text;
        }
        object.remove("readOnly");
        object.remove("writeOnly");
    }
    parameter["schema"] = schema;
    parameter
}

/// Whether the request carries an etag the door's `If-Match` header can stand for: the body's
/// resource has one (`call.etag`), or the request itself (`DeleteCallRequest.etag`). The rule
/// of the door's `json::etag_field`; a test holds the two together.
fn takes_etag(request: &MessageDescriptor, binding: &Binding) -> bool {
    let body_resource_has_etag = request
        .get_field_by_name(&binding.body)
        .and_then(|field| field.kind().as_message().cloned())
        .is_some_and(|resource| resource.get_field_by_name("etag").is_some());
    body_resource_has_etag || request.get_field_by_name("etag").is_some()
}

/// `GetCall` for the rule itself, `UpdateCall_2` for its first additional binding.
fn operation_id(method: &MethodDescriptor, index: usize) -> String {
    match index {
        0 => method.name().to_owned(),
        _ => format!("{}_{}", method.name(), index + 1),
    }
}

/// The request's fields that are neither in the path nor the body, as query parameters
/// (proto3 JSON names, `a.b` for a field of a message field). Repeated and map fields of
/// messages cannot travel in a query and are left out; the walk goes down each message once.
fn query_parameters(
    message: &MessageDescriptor,
    prefix: &str,
    bound: &[&str],
    body: &str,
    schemas: &mut Schemas,
    parameters: &mut Vec<Value>,
) {
    let mut visiting = vec![message.full_name().to_owned()];
    query_parameters_of(
        message,
        prefix,
        "",
        bound,
        body,
        schemas,
        parameters,
        &mut visiting,
    );
}

#[allow(clippy::too_many_arguments)]
fn query_parameters_of(
    message: &MessageDescriptor,
    json_prefix: &str,
    proto_prefix: &str,
    bound: &[&str],
    body: &str,
    schemas: &mut Schemas,
    parameters: &mut Vec<Value>,
    visiting: &mut Vec<String>,
) {
    for field in message.fields() {
        let proto_path = format!("{proto_prefix}{}", field.name());
        if bound.contains(&proto_path.as_str()) || (proto_prefix.is_empty() && field.name() == body)
        {
            continue;
        }
        let name = format!("{json_prefix}{}", field.json_name());
        let schema = match field.kind() {
            Kind::Message(inner) if field.is_map() || !schemas::is_scalar_like(&inner) => {
                let nested = !field.is_list()
                    && !field.is_map()
                    && !visiting.iter().any(|seen| seen == inner.full_name());
                if nested {
                    visiting.push(inner.full_name().to_owned());
                    query_parameters_of(
                        &inner,
                        &format!("{name}."),
                        &format!("{proto_path}."),
                        bound,
                        body,
                        schemas,
                        parameters,
                        visiting,
                    );
                    visiting.pop();
                }
                continue;
            }
            _ => schemas.field(&field),
        };
        let mut parameter = parameter(&name, "query", schema);
        if field.is_list() {
            parameter["explode"] = json!(true);
        }
        parameters.push(parameter);
    }
}

fn request_body(
    request: &MessageDescriptor,
    binding: &Binding,
    path_fields: &[String],
    schemas: &mut Schemas,
) -> Result<Option<Value>, String> {
    let schema = match binding.body.as_str() {
        "" => return Ok(None),
        "*" => {
            let top_level: Vec<&str> = path_fields
                .iter()
                .filter(|path| !path.contains('.'))
                .map(String::as_str)
                .collect();
            if top_level.is_empty() {
                schemas.message(request)
            } else {
                schemas.object(request, &top_level)
            }
        }
        field_name => {
            let field = request
                .get_field_by_name(field_name)
                .ok_or_else(|| format!("body: no field {field_name}"))?;
            schemas.kind(&field.kind())
        }
    };
    // The whole request as the body may be left out (every field takes its default); a body
    // field must be sent.
    Ok(Some(json!({
        "required": binding.body != "*",
        "content": { "application/json": { "schema": schema } }
    })))
}

#[cfg(test)]
mod tests;
