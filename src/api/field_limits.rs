//! The one table of limits on every string and repeated field a request can carry, and the
//! check that applies it to any request before its handler runs.
//!
//! A tenant is a stranger: any field may be huge or hold bytes PostgreSQL refuses (NUL). The
//! check walks the request through its descriptor, so a field added to the proto later is
//! covered as soon as it has a row here; `every_request_field_has_a_limit` fails until it does.
//! Messages nest only as deep as our own schema (no request type contains itself), so the walk
//! follows our depth, never the client's.

use std::{collections::HashMap, sync::LazyLock};

use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, MapKey, Value};

use crate::{error::Violations, pb, Error};

/// What one field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimit {
    /// Characters of a string (or bytes of a `bytes` field), per element when repeated.
    pub max_chars: usize,
    /// Elements of a repeated or map field; 1 for a singular field.
    pub max_items: usize,
    /// Whether line breaks and tabs are allowed (templates); other control characters never are.
    pub multiline: bool,
}

/// A single-line string of at most `max_chars` characters.
const fn line(max_chars: usize) -> FieldLimit {
    FieldLimit {
        max_chars,
        max_items: 1,
        multiline: false,
    }
}

/// Text that may span lines: tabs and line breaks are allowed, other control characters not.
const fn text(max_chars: usize) -> FieldLimit {
    FieldLimit {
        multiline: true,
        ..line(max_chars)
    }
}

/// A repeated field of at most `max_items` elements, each within `each`.
const fn list(max_items: usize, each: FieldLimit) -> FieldLimit {
    FieldLimit { max_items, ..each }
}

/// An id: a UUID is 36 characters.
const ID: FieldLimit = line(64);
/// Page and sync tokens (`tokens::MAX_TOKEN_LEN`).
const TOKEN: FieldLimit = line(4096);
const URL: FieldLimit = line(2048);
const NAME: FieldLimit = line(256);
const SECRET: FieldLimit = line(4096);
/// Repeated message fields: only the count is limited here, their fields have rows of their own.
const MESSAGES: FieldLimit = line(0);

/// Every string, bytes, repeated and map field reachable from a request, by full name.
pub const FIELD_LIMITS: &[(&str, FieldLimit)] = &[
    // calls.v1.Call and its parts.
    ("calls.v1.Call.id", ID),
    ("calls.v1.Call.button_id", NAME),
    ("calls.v1.Call.client_id", NAME),
    ("calls.v1.Call.caller_number", line(64)),
    ("calls.v1.Call.called_number", line(64)),
    ("calls.v1.Call.tracking_number", line(64)),
    ("calls.v1.Call.external_id", NAME),
    ("calls.v1.Call.etag", line(32)),
    ("calls.v1.CallStart.date_time", line(64)),
    ("calls.v1.CallStart.time_zone", line(64)),
    ("calls.v1.CallRecord.mime_type", line(255)),
    ("calls.v1.CallRecord.url", URL),
    // calls.v1.CallService requests.
    ("calls.v1.CreateCallRequest.request_id", line(128)),
    ("calls.v1.GetCallRequest.id", ID),
    ("calls.v1.DeleteCallRequest.id", ID),
    ("calls.v1.DeleteCallRequest.etag", line(32)),
    ("calls.v1.ListCallsRequest.page_token", TOKEN),
    ("calls.v1.ListCallsRequest.search", line(64)),
    ("calls.v1.ListCallsRequest.tool_id", NAME),
    ("calls.v1.ListCallsRequest.sync_token", TOKEN),
    ("calls.v1.WatchCallsRequest.sync_token", TOKEN),
    ("calls.v1.WatchCallsRequest.tool_id", NAME),
    ("calls.v1.WatchCallsRequest.search", line(64)),
    ("google.protobuf.FieldMask.paths", list(32, line(64))),
    // calls.v1.Watch and its parts.
    ("calls.v1.Watch.id", ID),
    ("calls.v1.Watch.address", URL),
    ("calls.v1.Watch.name", NAME),
    ("calls.v1.Watch.http_request_headers", list(32, MESSAGES)),
    ("calls.v1.Watch.schema", text(65_536)),
    ("calls.v1.Watch.disabled_reason", line(1024)),
    ("calls.v1.BasicAuth.username", NAME),
    ("calls.v1.BasicAuth.password", SECRET),
    ("calls.v1.HttpRequestHeader.name", NAME),
    ("calls.v1.HttpRequestHeader.value", line(4096)),
    ("calls.v1.OAuth2Auth.grant_type", line(32)),
    ("calls.v1.OAuth2Auth.client_id", NAME),
    ("calls.v1.OAuth2Auth.client_secret", SECRET),
    ("calls.v1.OAuth2Auth.refresh_token", SECRET),
    ("calls.v1.OAuth2Auth.auth_url", URL),
    ("calls.v1.OAuth2Auth.access_token_url", URL),
    ("calls.v1.OAuth2Auth.scope", line(1024)),
    ("calls.v1.WatchSignature.crypto_key_ids", list(16, ID)),
    // calls.v1.WatchService requests.
    ("calls.v1.GetWatchRequest.id", ID),
    ("calls.v1.DeleteWatchRequest.id", ID),
    ("calls.v1.ListWatchesRequest.page_token", TOKEN),
    ("calls.v1.CreateCryptoKeyRequest.name", NAME),
    ("calls.v1.DeleteCryptoKeyRequest.id", ID),
    ("calls.v1.ListDeliveriesRequest.watch_id", ID),
    ("calls.v1.ListDeliveriesRequest.page_token", TOKEN),
    ("calls.v1.RetryDeliveryRequest.delivery_id", ID),
    ("calls.v1.PreviewWatchPayloadRequest.watch_id", ID),
    ("calls.v1.PreviewWatchPayloadRequest.schema", text(65_536)),
];

/// A field missing from the table still gets a limit; the table test makes the gap visible.
const UNLISTED: FieldLimit = line(256);

static LIMITS: LazyLock<HashMap<&'static str, FieldLimit>> =
    LazyLock::new(|| FIELD_LIMITS.iter().copied().collect());

/// The descriptors of every message the service serves, from the set reflection serves.
static DESCRIPTORS: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).map_err(|error| error.to_string())
});

/// The descriptors of every message and service (with their options, `google.api.http`
/// among them), decoded once.
pub fn descriptors() -> Result<&'static DescriptorPool, Error> {
    DESCRIPTORS
        .as_ref()
        .map_err(|error| Error::Internal(anyhow::anyhow!("descriptor set: {error}")))
}

/// Refuses `request` when any field breaks its limit, naming every such field (by its path in
/// the request, e.g. `watch.http_request_headers[3].value`) and never quoting the value.
pub fn check_request<M: prost::Message + prost::Name>(request: &M) -> Result<(), Error> {
    let pool = descriptors()?;
    let name = M::full_name();
    let descriptor = pool
        .get_message_by_name(&name)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("no descriptor for {name}")))?;
    let message = DynamicMessage::decode(descriptor, request.encode_to_vec().as_slice())
        .map_err(|error| Error::Internal(anyhow::anyhow!("re-decoding {name}: {error}")))?;
    check_message(&message)
}

/// [`check_request`] for a request already in its reflected form (the REST door's).
pub fn check_message(message: &DynamicMessage) -> Result<(), Error> {
    let mut violations = Violations::default();
    let mut pending = vec![(String::new(), message)];
    while let Some((prefix, message)) = pending.pop() {
        for (field, value) in message.fields() {
            let path = if prefix.is_empty() {
                field.name().to_owned()
            } else {
                format!("{prefix}.{}", field.name())
            };
            let limit = limit_of(&field);
            match value {
                Value::List(items) => {
                    check_count(&mut violations, &path, items.len(), limit);
                    for (index, item) in items.iter().take(limit.max_items).enumerate() {
                        let path = format!("{path}[{index}]");
                        check_value(&mut violations, &mut pending, path, item, limit);
                    }
                }
                Value::Map(entries) => {
                    check_count(&mut violations, &path, entries.len(), limit);
                    for (index, (key, item)) in entries.iter().take(limit.max_items).enumerate() {
                        let path = format!("{path}[{index}]");
                        if let MapKey::String(key) = key {
                            check_text(&mut violations, &format!("{path}.key"), key, limit);
                        }
                        check_value(&mut violations, &mut pending, path, item, limit);
                    }
                }
                single => check_value(&mut violations, &mut pending, path, single, limit),
            }
        }
    }
    violations.finish(|| ())
}

fn limit_of(field: &FieldDescriptor) -> FieldLimit {
    LIMITS.get(field.full_name()).copied().unwrap_or(UNLISTED)
}

fn check_count(violations: &mut Violations, path: &str, count: usize, limit: FieldLimit) {
    if count > limit.max_items {
        violations.add(
            path,
            format!(
                "must have at most {} elements (has {count})",
                limit.max_items
            ),
        );
    }
}

fn check_value<'a>(
    violations: &mut Violations,
    pending: &mut Vec<(String, &'a DynamicMessage)>,
    path: String,
    value: &'a Value,
    limit: FieldLimit,
) {
    match value {
        Value::String(value) => check_text(violations, &path, value, limit),
        Value::Bytes(value) if value.len() > limit.max_chars => violations.add(
            path,
            format!(
                "must be at most {} bytes (has {})",
                limit.max_chars,
                value.len()
            ),
        ),
        Value::Message(message) => pending.push((path, message)),
        _ => {}
    }
}

fn check_text(violations: &mut Violations, path: &str, value: &str, limit: FieldLimit) {
    // Bytes bound characters from above: most values never need counting.
    if value.len() > limit.max_chars {
        let chars = value.chars().count();
        if chars > limit.max_chars {
            violations.add(
                path,
                format!(
                    "must be at most {} characters (has {chars})",
                    limit.max_chars
                ),
            );
            return;
        }
    }
    let allowed = |character: char| limit.multiline && matches!(character, '\n' | '\r' | '\t');
    if let Some((position, character)) = value
        .chars()
        .enumerate()
        .find(|(_, character)| character.is_control() && !allowed(*character))
    {
        violations.add(
            path,
            format!(
                "must not contain control characters (U+{:04X} at character {position})",
                u32::from(character)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use prost_reflect::{Kind, MessageDescriptor};

    use super::*;
    use crate::pb::calls::v1 as pb;

    fn pool() -> &'static DescriptorPool {
        DESCRIPTORS.as_ref().expect("the descriptor set decodes")
    }

    /// Every message reachable from the input of an RPC of ours.
    fn request_messages() -> Vec<MessageDescriptor> {
        let mut seen = HashSet::new();
        let mut pending: Vec<MessageDescriptor> = pool()
            .services()
            .filter(|service| service.package_name() == "calls.v1")
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| method.input())
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut messages = Vec::new();
        while let Some(message) = pending.pop() {
            if !seen.insert(message.full_name().to_owned()) {
                continue;
            }
            for field in message.fields() {
                if let Kind::Message(inner) = field.kind() {
                    pending.push(inner);
                }
            }
            messages.push(message);
        }
        messages
    }

    #[test]
    fn every_request_field_has_a_limit() {
        let mut missing = Vec::new();
        for message in request_messages() {
            for field in message.fields() {
                let bounded_kind = matches!(field.kind(), Kind::String | Kind::Bytes);
                if (bounded_kind || field.is_list() || field.is_map())
                    && !LIMITS.contains_key(field.full_name())
                {
                    missing.push(field.full_name().to_owned());
                }
            }
        }
        assert!(
            missing.is_empty(),
            "request fields without a row in FIELD_LIMITS: {missing:?}"
        );
    }

    #[test]
    fn every_row_names_a_field_that_exists() {
        let known: HashSet<String> = request_messages()
            .iter()
            .flat_map(|message| message.fields().map(|field| field.full_name().to_owned()))
            .collect();
        for (name, _) in FIELD_LIMITS {
            assert!(known.contains(*name), "{name} is not a request field");
        }
    }

    fn violations_of(result: Result<(), Error>) -> Vec<(String, String)> {
        match result {
            Ok(()) => Vec::new(),
            Err(Error::InvalidArgument(violations)) => violations
                .into_iter()
                .map(|violation| (violation.field, violation.description))
                .collect(),
            Err(other) => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn an_over_long_nested_string_is_named_by_its_path_without_its_value() {
        let request = pb::CreateCallRequest {
            call: Some(pb::Call {
                start: Some(pb::CallStart {
                    date_time: "2026-11-27T09:30:00".into(),
                    time_zone: "Z".repeat(100_000),
                }),
                ..pb::Call::default()
            }),
            request_id: String::new(),
        };
        let violations = violations_of(check_request(&request));
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].0, "call.start.time_zone");
        assert_eq!(
            violations[0].1,
            "must be at most 64 characters (has 100000)"
        );
    }

    #[test]
    fn a_nul_is_refused_and_line_breaks_only_in_text_fields() {
        let watch = pb::Watch {
            name: "a\0b".into(),
            schema: "{\n\t\"a\": 1\r\n}".into(),
            http_request_headers: vec![pb::HttpRequestHeader {
                name: "x-a".into(),
                value: "line\nbreak".into(),
            }],
            ..pb::Watch::default()
        };
        let request = pb::CreateWatchRequest { watch: Some(watch) };
        let mut fields: Vec<String> = violations_of(check_request(&request))
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            ["watch.http_request_headers[0].value", "watch.name"]
        );
    }

    #[test]
    fn a_repeated_field_over_its_count_is_refused_once() {
        let request = pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                signature: Some(pb::WatchSignature {
                    enabled: true,
                    crypto_key_ids: vec!["k".into(); 100_000],
                }),
                ..pb::Watch::default()
            }),
        };
        let violations = violations_of(check_request(&request));
        assert_eq!(
            violations,
            [(
                "watch.signature.crypto_key_ids".to_owned(),
                "must have at most 16 elements (has 100000)".to_owned()
            )]
        );
    }

    #[test]
    fn a_request_within_every_limit_passes() {
        let request = pb::ListCallsRequest {
            page_size: 10,
            search: "612345".into(),
            tool_id: "contact-page".into(),
            ..pb::ListCallsRequest::default()
        };
        assert_eq!(violations_of(check_request(&request)), []);
    }

    /// Hostile text: any characters, controls and NUL included, from empty to far past limits.
    fn hostile_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "\\PC{0,80}",
            ".{0,300}",
            (any::<char>(), 0_usize..100_000)
                .prop_map(|(character, count)| { std::iter::repeat_n(character, count).collect() }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_call_request_is_accepted_within_limits_or_refused_by_name(
            caller in hostile_text(),
            zone in hostile_text(),
            url in hostile_text(),
            request_id in hostile_text(),
        ) {
            let request = pb::CreateCallRequest {
                call: Some(pb::Call {
                    caller_number: caller.clone(),
                    start: Some(pb::CallStart { date_time: String::new(), time_zone: zone.clone() }),
                    record: Some(pb::CallRecord { mime_type: String::new(), url: url.clone() }),
                    ..pb::Call::default()
                }),
                request_id: request_id.clone(),
            };
            let violations = violations_of(check_request(&request));
            let fields: HashSet<&str> = violations.iter().map(|(field, _)| field.as_str()).collect();
            for (field, value, max) in [
                ("call.caller_number", &caller, 64),
                ("call.start.time_zone", &zone, 64),
                ("call.record.url", &url, 2048),
                ("request_id", &request_id, 128),
            ] {
                let bad = value.chars().count() > max || value.chars().any(char::is_control);
                proptest::prop_assert_eq!(bad, fields.contains(field), "{}", field);
            }
            for (_, description) in &violations {
                proptest::prop_assert!(description.len() < 100, "{}", description);
            }
        }
    }
}
