//! The `google.api.http` rules of the descriptors: each RPC's bindings (its rule and the
//! rule's `additional_bindings`) and their path templates, as OpenAPI paths and parameters.

use prost_reflect::{
    DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, Value as ProtoValue,
};

use super::OpenApiError;

/// The HTTP methods of `google.api.HttpRule`'s `pattern`, as OpenAPI spells them.
const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

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
pub(super) fn openapi_path(template: &str) -> String {
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
pub(super) fn parameter_name(field_path: &str) -> String {
    field_path
        .rsplit('.')
        .next()
        .unwrap_or(field_path)
        .trim()
        .to_owned()
}

/// `/v1/calls/{}` for `/v1/calls/{id}`: what makes two OpenAPI paths the same one.
pub(super) fn path_shape(path: &str) -> String {
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

/// The field a template variable names (`call.id`: `id` of the `call` field's message).
pub(super) fn resolve(
    request: &MessageDescriptor,
    field_path: &str,
) -> Result<FieldDescriptor, String> {
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
