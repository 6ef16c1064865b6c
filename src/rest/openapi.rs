//! The OpenAPI 3.0 document of the REST door, generated at start-up from the descriptor set the
//! server is built from (`pb::FILE_DESCRIPTOR_SET`), never written by hand: paths and methods
//! from each RPC's `google.api.http` rule (and its `additional_bindings`), path parameters from
//! the `{field}` templates, query parameters for the request's other fields when the body is
//! not `"*"`, request bodies from `body`, schemas from the messages in proto3's JSON mapping
//! (`schemas`), descriptions from the proto's comments. Served at `GET /openapi.json`.
//!
//! What the door accepts beyond the proto (the seed's query names and spellings) is listed in
//! [`DoorExtras`], next to nothing else, so the document says exactly what the door does.

mod schemas;

use std::sync::LazyLock;

use bytes::Bytes;
use http::{Response, StatusCode};
use tonic::body::Body;

use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value as ProtoValue,
};
use serde_json::{json, Map, Value};

use super::{json, status};
use crate::api;
use schemas::{Comments, Schemas};

/// The HTTP methods of `google.api.HttpRule`'s `pattern`, as OpenAPI spells them.
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

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
    headers: &[(
        "calls.v1.CallService.WatchCalls",
        "Last-Event-ID",
        "The `id:` of the last event received: the stream resumes right after it (it is the \
         event's sync token, and wins over `syncToken`). Browsers' `EventSource` sends it when \
         it reconnects.",
    )],
    stream_event_field: "event",
    empty_body_on_delete: true,
    field_limits: api::FIELD_LIMITS,
};

/// Where the door serves the document.
pub const PATH: &str = "/openapi.json";

/// The document as an HTTP answer.
pub fn response() -> Response<Body> {
    status::json_response(StatusCode::OK, Bytes::from_static(document_json()))
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

/// The document as served, serialised once.
pub fn document_json() -> &'static [u8] {
    static JSON: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let pool = api::descriptors().expect("the descriptor set compiled into the binary decodes");
        let document = generate(pool, &DOOR_EXTRAS)
            .expect("the compiled-in proto yields an OpenAPI document (a unit test builds it)");
        serde_json::to_vec(&document).expect("a JSON value serialises")
    });
    &JSON
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
                if let Some(pointer) = created_id_pointer(&method, binding) {
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
    add_links(&mut paths, &creates);
    schemas.insert("Error", error_schema());
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

/// One HTTP binding of an RPC: `GET /v1/calls/{id}`, with the request field its body fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// `get`, `put`, `post`, `delete` or `patch`.
    pub method: &'static str,
    /// The path template as the rule writes it, e.g. `/v1/calls/{call.id}`.
    pub path: String,
    /// `""` (no body), `"*"` (the whole request) or a top-level request field.
    pub body: String,
    /// `""` (the whole response) or the response field that is the body.
    pub response_body: String,
}

/// The rule of `method` and its additional bindings, in the order the proto writes them.
pub fn bindings(
    method: &MethodDescriptor,
    http: &ExtensionDescriptor,
) -> Result<Vec<Binding>, OpenApiError> {
    let options = method.options();
    if !options.has_extension(http) {
        return Ok(Vec::new());
    }
    let ProtoValue::Message(rule) = options.get_extension(http).into_owned() else {
        return Err(OpenApiError::NoHttpExtension);
    };
    let mut found = vec![binding(method, &rule)?];
    let more = rule.get_field_by_name("additional_bindings");
    if let Some(ProtoValue::List(more)) = more.as_deref() {
        for extra in more {
            if let ProtoValue::Message(extra) = extra {
                found.push(binding(method, extra)?);
            }
        }
    }
    Ok(found)
}

fn binding(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Binding, OpenApiError> {
    let text = |name: &str| {
        rule.get_field_by_name(name)
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let verb = METHODS
        .iter()
        .find(|verb| rule.has_field_by_name(verb))
        .ok_or_else(|| OpenApiError::Rule {
            method: method.full_name().to_owned(),
            problem: "the rule names no HTTP method (custom patterns are not served)".to_owned(),
        })?;
    Ok(Binding {
        method: verb,
        path: text(verb),
        body: text("body"),
        response_body: text("response_body"),
    })
}

/// The field paths of a template's variables: `["call.id"]` for `/v1/calls/{call.id}`.
pub fn path_variables(template: &str) -> Result<Vec<String>, String> {
    let mut variables = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in {template}"))?;
        let inside = &rest[open + 1..open + close];
        let field = inside.split('=').next().unwrap_or_default().trim();
        if field.is_empty() {
            return Err(format!("an empty variable in {template}"));
        }
        variables.push(field.to_owned());
        rest = &rest[open + close + 1..];
    }
    Ok(variables)
}

/// The template as an OpenAPI path: each variable named by [`parameter_name`]; a pattern
/// (`{name=projects/*}`) is dropped.
fn openapi_path(template: &str) -> String {
    let mut path = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break; // path_variables refuses such a template first
        };
        let inside = &rest[open + 1..open + close];
        path.push_str(&rest[..=open]);
        path.push_str(&parameter_name(
            inside.split('=').next().unwrap_or_default(),
        ));
        path.push('}');
        rest = &rest[open + close + 1..];
    }
    path.push_str(rest);
    path
}

/// The OpenAPI name of a path variable: its last field, `id` for `call.id`. So `PATCH
/// /v1/calls/{call.id}` and `GET /v1/calls/{id}` are one path, as OpenAPI wants (two templated
/// paths that differ only in their variables' names are the same path to it), and tools that
/// fill a path by name never meet a dot.
fn parameter_name(field_path: &str) -> String {
    field_path
        .rsplit('.')
        .next()
        .unwrap_or(field_path)
        .trim()
        .to_owned()
}

/// `/v1/calls/{}` for `/v1/calls/{id}`: what makes two OpenAPI paths the same one.
fn path_shape(path: &str) -> String {
    let mut shape = String::with_capacity(path.len());
    let mut inside = false;
    for character in path.chars() {
        match character {
            '{' => {
                inside = true;
                shape.push('{');
            }
            '}' => {
                inside = false;
                shape.push('}');
            }
            _ if inside => {}
            _ => shape.push(character),
        }
    }
    shape
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
    let text = comments.of_method(method).unwrap_or_default();
    let mut operation = json!({
        "operationId": operation_id(method, index),
        "tags": [method.parent_service().name()],
        "summary": first_sentence(text),
        "description": text,
        "parameters": parameters,
        "responses": responses(method, binding, extras, schemas)?,
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

/// `GetCall` for the rule itself, `UpdateCall_2` for its first additional binding.
fn operation_id(method: &MethodDescriptor, index: usize) -> String {
    match index {
        0 => method.name().to_owned(),
        _ => format!("{}_{}", method.name(), index + 1),
    }
}

/// The field a template variable names (`call.id`: `id` of the `call` field's message).
fn resolve(
    request: &MessageDescriptor,
    field_path: &str,
) -> Result<prost_reflect::FieldDescriptor, String> {
    let mut message = request.clone();
    let mut parts = field_path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = message
            .get_field_by_name(part)
            .ok_or_else(|| format!("{} has no field {part}", message.full_name()))?;
        if parts.peek().is_none() {
            return Ok(field);
        }
        match field.kind() {
            Kind::Message(inner) if !field.is_list() && !field.is_map() => message = inner,
            _ => return Err(format!("{field_path}: {part} is not a message field")),
        }
    }
    Err(format!("an empty field path in {}", request.full_name()))
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

fn responses(
    method: &MethodDescriptor,
    binding: &Binding,
    extras: &DoorExtras,
    schemas: &mut Schemas,
) -> Result<Value, String> {
    let response = method.output();
    let success = if method.is_server_streaming() {
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

/// OpenAPI links from each create to the operations on what it created: `POST /v1/calls`
/// answers `{"call": {"id": ...}}`, which is the `{id}` of `GET /v1/calls/{id}`, `PATCH` and
/// `DELETE` on it (and `{watch_id}` of `/v1/watches/{watch_id}/deliveries`, ...). A client (or a
/// fuzzer) follows them from a create to the resource it made. Derived from the document
/// itself: a `post` on a path without variables, whose answer has a message field with an `id`,
/// links to every operation whose path is that path and one variable, then `/`, `:` or its end.
fn add_links(paths: &mut Map<String, Value>, creates: &[(String, String)]) {
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
fn created_id_pointer(method: &MethodDescriptor, binding: &Binding) -> Option<String> {
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
fn error_schema() -> Value {
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

#[cfg(test)]
mod tests;
