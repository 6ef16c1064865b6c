//! Requests and answers in proto3's JSON mapping (the seed's camelCase names), through
//! prost-reflect: the body, the query parameters and the path values become one JSON object of
//! the request type, read as a `DynamicMessage`, then checked against the one table of field
//! limits. Answers go the other way.
//!
//! The seed's spellings are accepted in requests as written: enum values by their short
//! camelCase names (`"noAnswered"`, `"clickToCall"`) or short upper-case ones (`"NO_ANSWERED"`)
//! beside the proto's (`"CALL_STATUS_NO_ANSWERED"`), `record.mineType` for `mimeType`, and
//! ListCalls' `startDate`/`endDate` for `timeMax`/`timeMin`. Answers use the proto's names only
//! (what proto3 JSON clients and the OpenAPI document expect).

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::{Map, Value};

use super::routes::{BodyTarget, PathValues, Route};
use crate::{api, Error};

/// Query parameters one request may carry.
const MAX_QUERY_PARAMETERS: usize = 64;
/// How deep the seed-spelling pass follows a body; deeper parts are left as sent (serde_json
/// already refuses bodies nested more than 128 levels, and no request message nests this deep).
const MAX_NORMALIZED_DEPTH: usize = 16;

/// Field names accepted for others in a message's JSON: (message, alias, JSON name).
pub const FIELD_ALIASES: &[(&str, &str, &str)] = &[("calls.v1.CallRecord", "mineType", "mimeType")];
/// Query parameters accepted for others: (request message, alias, JSON name). The seed's
/// `startDate` is an upper bound on a call's start (`time_max`), its `endDate` a lower bound on
/// its end (`time_min`): see call_service.proto.
pub const QUERY_ALIASES: &[(&str, &str, &str)] = &[
    ("calls.v1.ListCallsRequest", "startDate", "timeMax"),
    ("calls.v1.ListCallsRequest", "endDate", "timeMin"),
];

/// The generated request message of a reflected one that `request_message` built (the same
/// type: a failure is ours, not the client's).
pub fn typed_request<Request: prost::Message + prost::Name + Default>(
    message: DynamicMessage,
) -> Result<Request, Error> {
    message
        .transcode_to()
        .map_err(|error| Error::Internal(anyhow::anyhow!("transcoding a request: {error}")))
}

/// The request of `route` out of the request's parts, within the field limits.
pub fn request_message(
    route: &Route,
    path_values: PathValues,
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, Error> {
    let descriptor = route.rpc.input();
    let mut request = Map::new();
    let body_field = match &route.body {
        BodyTarget::None => {
            if !body.is_empty() {
                return Err(Error::invalid("body", "this method takes no request body"));
            }
            None
        }
        BodyTarget::Whole => {
            if !body.is_empty() {
                match parse_body(body, "body")? {
                    Value::Object(object) => request = object,
                    _ => return Err(Error::invalid("body", "must be a JSON object")),
                }
            }
            None
        }
        BodyTarget::Field(field) => {
            let name = json_name_of(&descriptor, field);
            let value = if body.is_empty() {
                Value::Object(Map::new())
            } else {
                parse_body(body, field)?
            };
            request.insert(name.clone(), value);
            Some(name)
        }
    };
    if let Some(query) = query {
        add_query(
            &mut request,
            &descriptor,
            &route.body,
            body_field.as_deref(),
            query,
        )?;
    }
    for (path, value) in path_values {
        set_path_value(&mut request, &descriptor, &path, value);
    }
    let mut request = Value::Object(request);
    normalize(&mut request, &descriptor, 0);
    let message = DynamicMessage::deserialize_with_options(
        descriptor,
        request,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .map_err(|error| {
        Error::invalid(
            body_field.as_deref().unwrap_or("request"),
            format!(
                "does not match the request's JSON: {}",
                cut_error(&error.to_string())
            ),
        )
    })?;
    api::check_message(&message)?;
    Ok(message)
}

fn parse_body(body: &[u8], field: &str) -> Result<Value, Error> {
    // serde_json refuses more than 128 levels of nesting: no recursion deeper than that.
    serde_json::from_slice(body).map_err(|error| {
        Error::invalid(
            field,
            format!("is not valid JSON: {}", cut_error(&error.to_string())),
        )
    })
}

/// An error text from a parser, which may quote the input: quoted parts cut to size.
fn cut_error(text: &str) -> String {
    let mut out = String::new();
    for (index, part) in text.split('"').enumerate() {
        if index > 0 {
            out.push('"');
        }
        if index % 2 == 1 && part.chars().count() > 32 {
            out.extend(part.chars().take(32));
            out.push('…');
        } else {
            out.push_str(part);
        }
    }
    out.chars().take(200).collect()
}

fn json_name_of(message: &MessageDescriptor, field: &str) -> String {
    message
        .get_field_by_name(field)
        .map_or_else(|| field.to_owned(), |field| field.json_name().to_owned())
}

/// A field of `message` by its JSON name or its proto name.
fn field_named(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_json_name(name)
        .or_else(|| message.get_field_by_name(name))
}

fn add_query(
    request: &mut Map<String, Value>,
    descriptor: &MessageDescriptor,
    body: &BodyTarget,
    body_field: Option<&str>,
    query: &str,
) -> Result<(), Error> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .take(MAX_QUERY_PARAMETERS + 1)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if pairs.len() > MAX_QUERY_PARAMETERS {
        return Err(Error::invalid(
            "query",
            format!("has more than {MAX_QUERY_PARAMETERS} parameters"),
        ));
    }
    for (name, value) in pairs {
        let name = QUERY_ALIASES
            .iter()
            .find(|(message, alias, _)| *message == descriptor.full_name() && *alias == name)
            .map_or(name, |(_, _, json_name)| (*json_name).to_owned());
        let unknown = || Error::invalid(cut_name(&name), "is not a query parameter of this method");
        if *body == BodyTarget::Whole {
            return Err(unknown());
        }
        // Walk the dotted path to its field, creating objects on the way.
        let mut message = descriptor.clone();
        let mut object = &mut *request;
        let parts: Vec<&str> = name.split('.').collect();
        for (index, part) in parts.iter().enumerate() {
            let field = field_named(&message, part).ok_or_else(unknown)?;
            if index == 0 && Some(field.json_name()) == body_field {
                return Err(unknown());
            }
            let key = field.json_name().to_owned();
            if index + 1 < parts.len() {
                let Kind::Message(inner) = field.kind() else {
                    return Err(unknown());
                };
                if field.is_list() || field.is_map() {
                    return Err(unknown());
                }
                let entry = object
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(inner_object) = entry else {
                    return Err(unknown());
                };
                object = inner_object;
                message = inner;
                continue;
            }
            let value = query_value(&field, &name, value.clone())?;
            if field.is_list() {
                match object
                    .entry(key)
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(items) => items.push(value),
                    _ => return Err(unknown()),
                }
            } else if field.is_map() {
                return Err(unknown());
            } else if object.insert(key, value).is_some() {
                return Err(Error::invalid(cut_name(&name), "is given more than once"));
            }
            break;
        }
    }
    Ok(())
}

/// A query parameter's text as the JSON value of its field.
fn query_value(field: &FieldDescriptor, name: &str, value: String) -> Result<Value, Error> {
    Ok(match field.kind() {
        Kind::Bool => match value.as_str() {
            "true" | "1" | "" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(Error::invalid(cut_name(name), "must be true or false")),
        },
        Kind::Message(message)
            if !matches!(
                message.full_name(),
                "google.protobuf.Timestamp"
                    | "google.protobuf.Duration"
                    | "google.protobuf.FieldMask"
            ) =>
        {
            return Err(Error::invalid(
                cut_name(name),
                "cannot be given in the query",
            ));
        }
        // Strings, enums, numbers (proto3 JSON reads them from strings) and the well-known
        // types written as strings.
        _ => Value::String(value),
    })
}

fn cut_name(name: &str) -> String {
    name.chars().take(64).collect()
}

fn set_path_value(
    request: &mut Map<String, Value>,
    descriptor: &MessageDescriptor,
    path: &[String],
    value: String,
) {
    let mut message = descriptor.clone();
    let mut object = request;
    for (index, name) in path.iter().enumerate() {
        // The route table checked the path at start-up.
        let Some(field) = message.get_field_by_name(name) else {
            return;
        };
        let key = field.json_name().to_owned();
        if index + 1 == path.len() {
            object.insert(key, Value::String(value));
            return;
        }
        let Kind::Message(inner) = field.kind() else {
            return;
        };
        let entry = object
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(inner_object) = entry else {
            return;
        };
        object = inner_object;
        message = inner;
    }
}

/// Rewrites the seed's spellings (enum values, field aliases) in `value`, a JSON object of
/// `message`, into the proto's.
fn normalize(value: &mut Value, message: &MessageDescriptor, depth: usize) {
    let Value::Object(object) = value else {
        return;
    };
    if depth > MAX_NORMALIZED_DEPTH {
        return;
    }
    for (alias_of, alias, json_name) in FIELD_ALIASES {
        if *alias_of == message.full_name() && !object.contains_key(*json_name) {
            if let Some(aliased) = object.remove(*alias) {
                object.insert((*json_name).to_owned(), aliased);
            }
        }
    }
    for (key, item) in object.iter_mut() {
        let Some(field) = field_named(message, key) else {
            continue;
        };
        match field.kind() {
            Kind::Enum(enumeration) => {
                let values: Vec<&mut Value> = match item {
                    Value::Array(items) => items.iter_mut().collect(),
                    single => vec![single],
                };
                for value in values {
                    if let Value::String(name) = value {
                        if let Some(proto_name) = enum_value_named(&enumeration, name) {
                            *name = proto_name;
                        }
                    }
                }
            }
            Kind::Message(inner) if !field.is_map() => match item {
                Value::Array(items) => {
                    for item in items {
                        normalize(item, &inner, depth + 1);
                    }
                }
                single => normalize(single, &inner, depth + 1),
            },
            _ => {}
        }
    }
}

/// The proto name of the enum value `name` spells in the seed's way, if it is one.
fn enum_value_named(enumeration: &prost_reflect::EnumDescriptor, name: &str) -> Option<String> {
    if enumeration.get_value_by_name(name).is_some() {
        return None;
    }
    let prefix = enum_prefix(enumeration.name());
    enumeration.values().find_map(|value| {
        let short = value.name().strip_prefix(&prefix)?;
        (short == name || camel_case(short) == name).then(|| value.name().to_owned())
    })
}

/// `CallStatus` -> `CALL_STATUS_`: the prefix of the enum's value names (buf's rule).
pub(super) fn enum_prefix(enum_name: &str) -> String {
    let mut prefix = String::new();
    for (index, character) in enum_name.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            prefix.push('_');
        }
        prefix.push(character.to_ascii_uppercase());
    }
    prefix.push('_');
    prefix
}

/// `NO_ANSWERED` -> `noAnswered`.
pub(super) fn camel_case(name: &str) -> String {
    let mut out = String::new();
    for (index, word) in name.split('_').enumerate() {
        let lower = word.to_ascii_lowercase();
        if index == 0 {
            out.push_str(&lower);
        } else {
            let mut characters = lower.chars();
            if let Some(first) = characters.next() {
                out.push(first.to_ascii_uppercase());
                out.extend(characters);
            }
        }
    }
    out
}

/// An answer in proto3 JSON, and the etag of the resource it carries, if any (for the HTTP
/// `ETag` header).
pub struct JsonAnswer {
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

/// `message` (a response of `route`) in proto3 JSON: its `response_body` field alone when the
/// binding names one.
pub fn response_json<M: prost::Message + prost::Name>(
    route: &Route,
    message: &M,
) -> Result<JsonAnswer, Error> {
    let descriptor = route.rpc.output();
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|error| Error::Internal(anyhow::anyhow!("re-decoding {}: {error}", M::NAME)))?;
    let etag = resource_etag(&dynamic);
    let body = match &route.response_body {
        None => message_json(&dynamic)?,
        Some(field) => match dynamic.get_field_by_name(field).as_deref() {
            Some(prost_reflect::Value::Message(inner)) => message_json(inner)?,
            _ => b"{}".to_vec(),
        },
    };
    Ok(JsonAnswer { body, etag })
}

/// The `etag` of the one resource a response carries (`GetCallResponse.call.etag`).
fn resource_etag(response: &DynamicMessage) -> Option<String> {
    response.fields().find_map(|(field, value)| {
        let prost_reflect::Value::Message(resource) = value else {
            return None;
        };
        if field.is_list() {
            return None;
        }
        match resource.get_field_by_name("etag").as_deref() {
            Some(prost_reflect::Value::String(etag)) if !etag.is_empty() => Some(etag.clone()),
            _ => None,
        }
    })
}

/// Where an `If-Match` header's etag goes in the request of `route`: the `etag` of the body's
/// resource (`call.etag`), or the request's own (`DeleteCallRequest.etag`).
pub fn etag_field(route: &Route) -> Option<Vec<String>> {
    let input = route.rpc.input();
    if let BodyTarget::Field(body) = &route.body {
        let field = input.get_field_by_name(body)?;
        if let Kind::Message(resource) = field.kind() {
            if resource.get_field_by_name("etag").is_some() {
                return Some(vec![body.clone(), "etag".to_owned()]);
            }
        }
    }
    input
        .get_field_by_name("etag")
        .map(|_| vec!["etag".to_owned()])
}

/// A message in proto3 JSON, default values left out.
pub fn message_json(message: &DynamicMessage) -> Result<Vec<u8>, Error> {
    let mut serializer = serde_json::Serializer::new(Vec::with_capacity(512));
    message
        .serialize_with_options(&mut serializer, &SerializeOptions::new())
        .map_err(|error| Error::Internal(anyhow::anyhow!("writing JSON: {error}")))?;
    Ok(serializer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_enum_spellings_name_the_proto_values() {
        let pool = crate::api::descriptors().unwrap();
        let status = pool.get_enum_by_name("calls.v1.CallStatus").unwrap();
        assert_eq!(
            enum_value_named(&status, "noAnswered").as_deref(),
            Some("CALL_STATUS_NO_ANSWERED")
        );
        assert_eq!(
            enum_value_named(&status, "WRONG_NUMBER").as_deref(),
            Some("CALL_STATUS_WRONG_NUMBER")
        );
        assert_eq!(enum_value_named(&status, "CALL_STATUS_BUSY"), None);
        let call_type = pool.get_enum_by_name("calls.v1.CallType").unwrap();
        assert_eq!(
            enum_value_named(&call_type, "clickToCall").as_deref(),
            Some("CALL_TYPE_CLICK_TO_CALL")
        );
        assert_eq!(
            enum_value_named(&call_type, "callTracking").as_deref(),
            Some("CALL_TYPE_CALL_TRACKING")
        );
        assert_eq!(enum_value_named(&call_type, "nonsense"), None);
    }

    use crate::rest::routes::{Lookup, RouteTable};
    use http::Method;

    /// The request `method` and `path_and_query` make, with `body`.
    fn request(method: Method, path_and_query: &str, body: &str) -> Result<DynamicMessage, Error> {
        let table = RouteTable::from_descriptors(crate::api::descriptors().unwrap()).unwrap();
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let Lookup::Found(route, values) = table.lookup(&method, path) else {
            panic!("no route for {path}");
        };
        request_message(route, values, query, body.as_bytes())
    }

    fn text(message: &DynamicMessage, path: &str) -> String {
        let mut value = prost_reflect::Value::Message(message.clone());
        for name in path.split('.') {
            let prost_reflect::Value::Message(inner) = value else {
                panic!("{path} is not a message path");
            };
            value = inner.get_field_by_name(name).unwrap().into_owned();
        }
        match value {
            prost_reflect::Value::String(text) => text,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_seeds_start_date_and_end_date_are_time_max_and_time_min() {
        let message = request(
            Method::GET,
            "/v1/calls?startDate=2026-11-28T00:00:00Z&endDate=2026-11-27T00:00:00Z",
            "",
        )
        .unwrap();
        assert_eq!(text(&message, "time_max.seconds"), "I64(1795824000)");
        assert_eq!(text(&message, "time_min.seconds"), "I64(1795737600)");
    }

    #[test]
    fn the_path_value_wins_over_the_bodys_and_mine_type_is_mime_type() {
        let message = request(
            Method::PATCH,
            "/v1/calls/from-path?updateMask=record",
            r#"{"id": "from-body", "record": {"mineType": "audio/mpeg"}}"#,
        )
        .unwrap();
        assert_eq!(text(&message, "call.id"), "from-path");
        assert_eq!(text(&message, "call.record.mime_type"), "audio/mpeg");
    }

    #[test]
    fn the_query_cannot_set_the_body_or_a_whole_body_request() {
        assert!(request(Method::POST, "/v1/calls?call.id=x", "{}").is_err());
        assert!(request(Method::POST, "/v1/cryptoKeys?name=x", "{}").is_err());
        assert!(request(Method::POST, "/v1/cryptoKeys", r#"{"name": "x"}"#).is_ok());
    }

    #[test]
    fn a_parser_error_quotes_at_most_32_characters_of_the_input() {
        let text = format!(
            "invalid value: string \"{}\", expected i32",
            "x".repeat(10_000)
        );
        let cut = cut_error(&text);
        assert!(cut.len() < 100, "{cut}");
    }
}
