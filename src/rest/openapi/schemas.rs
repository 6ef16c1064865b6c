//! The component schemas of the OpenAPI document: one per proto message and enum, in proto3's
//! JSON mapping (camelCase names, enums as strings, 64-bit integers as strings, the well-known
//! types as the strings and objects their JSON forms are), described by the proto's comments.
//!
//! Each message becomes a component once, referred to by `$ref` everywhere else, so a message
//! that contains itself (directly or through others) is written once and never followed
//! again: the walk is bounded by the number of messages in the descriptor set.

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{json, Map, Value};

use crate::api::FieldLimit;

/// `components/schemas/...`, filled on demand.
pub(super) struct Schemas<'a> {
    comments: &'a Comments,
    /// Finished components, and `Value::Null` for one whose schema is being built: a reference
    /// to it from inside itself finds it here and does not build it again.
    components: BTreeMap<String, Value>,
    /// Spellings the door accepts beside an enum's proto names.
    enum_aliases: fn(&EnumDescriptor) -> Vec<String>,
    /// JSON names the door accepts beside a message's own fields, by message full name:
    /// (alias, the field's JSON name it stands for).
    field_aliases: &'a dyn Fn(&MessageDescriptor) -> Vec<(String, String)>,
    /// The request fields' limits (characters, elements), by field full name.
    limits: HashMap<&'a str, FieldLimit>,
}

impl<'a> Schemas<'a> {
    pub(super) fn new(
        comments: &'a Comments,
        enum_aliases: fn(&EnumDescriptor) -> Vec<String>,
        field_aliases: &'a dyn Fn(&MessageDescriptor) -> Vec<(String, String)>,
        limits: &'a [(&'a str, FieldLimit)],
    ) -> Self {
        Schemas {
            comments,
            components: BTreeMap::new(),
            enum_aliases,
            field_aliases,
            limits: limits.iter().copied().collect(),
        }
    }

    pub(super) fn into_components(self) -> Map<String, Value> {
        self.components.into_iter().collect()
    }

    /// Adds a component that is not a proto message (the error shape).
    pub(super) fn insert(&mut self, name: &str, schema: Value) {
        self.components.insert(name.to_owned(), schema);
    }

    /// The schema of a message as a field or a body holds it: a `$ref` to its component, or,
    /// for a well-known type, the JSON form that type has.
    pub(super) fn message(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message.full_name()) {
            return schema;
        }
        let name = component_name(message);
        if !self.components.contains_key(&name) {
            self.components.insert(name.clone(), Value::Null);
            let schema = self.object(message, &[]);
            self.components.insert(name.clone(), schema);
        }
        reference(&name)
    }

    /// A message's object schema written out, without the fields named in `without` (a body
    /// whose other fields travel in the path).
    pub(super) fn object(&mut self, message: &MessageDescriptor, without: &[&str]) -> Value {
        let mut properties = Map::new();
        for field in message.fields() {
            if without.contains(&field.name()) {
                continue;
            }
            properties.insert(field.json_name().to_owned(), self.field(&field));
        }
        for (alias, field_json_name) in (self.field_aliases)(message) {
            if let Some(schema) = properties.get(&field_json_name).cloned() {
                let mut alias_schema = described(
                    schema,
                    &format!("Accepted as an alias of `{field_json_name}`."),
                );
                alias_schema["deprecated"] = json!(true);
                alias_schema["writeOnly"] = json!(true);
                properties.insert(alias, alias_schema);
            }
        }
        let mut schema = json!({ "type": "object", "properties": properties });
        if let Some(text) = self.comments.of_message(message) {
            schema["description"] = json!(text);
        }
        schema
    }

    /// The schema of one field, with its comment, its limits (`maxLength`, `maxItems`: what
    /// the door refuses beyond), `readOnly` for "Output only." fields and `writeOnly` for
    /// "Write-only" ones.
    pub(super) fn field(&mut self, field: &FieldDescriptor) -> Value {
        let limit = self.limits.get(field.full_name()).copied();
        let limited = |mut schema: Value| {
            let is_text = matches!(field.kind(), Kind::String | Kind::Bytes);
            if let Some(limit) = limit.filter(|limit| is_text && limit.max_chars > 0) {
                schema["maxLength"] = json!(limit.max_chars);
            }
            schema
        };
        let schema = if let (true, Kind::Message(entry)) = (field.is_map(), field.kind()) {
            // A map's kind is its entry message; JSON writes it as an object.
            let value = self.kind(&entry.map_entry_value_field().kind());
            let mut schema = json!({ "type": "object", "additionalProperties": value });
            if let Some(limit) = limit {
                schema["maxProperties"] = json!(limit.max_items);
            }
            schema
        } else if field.is_list() {
            let items = limited(self.kind(&field.kind()));
            let mut schema = json!({ "type": "array", "items": items });
            if let Some(limit) = limit {
                schema["maxItems"] = json!(limit.max_items);
            }
            schema
        } else {
            limited(self.kind(&field.kind()))
        };
        let Some(text) = self.comments.of_field(field) else {
            return schema;
        };
        let mut schema = described(schema, text);
        if let Some(example) = example_in(text).filter(|_| schema["type"] == "string") {
            schema["example"] = json!(example);
        }
        if text.contains("Output only.") {
            schema["readOnly"] = json!(true);
        }
        if text.contains("Write-only") {
            schema["writeOnly"] = json!(true);
        }
        schema
    }

    /// The schema of a value of `kind`: a scalar as proto3 JSON writes it, or a `$ref`.
    pub(super) fn kind(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX })
            }
            // proto3 JSON writes 64-bit integers as strings (JavaScript's numbers lose them).
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" })
            }
            Kind::Uint64 | Kind::Fixed64 => {
                json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" })
            }
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "format": "byte" }),
            Kind::Message(message) => self.message(message),
            Kind::Enum(enumeration) => self.enumeration(enumeration),
        }
    }

    fn enumeration(&mut self, enumeration: &EnumDescriptor) -> Value {
        let name = component_name_of(enumeration.full_name(), enumeration.package_name());
        if !self.components.contains_key(&name) {
            let mut values: Vec<String> = enumeration
                .values()
                .map(|value| value.name().to_owned())
                .collect();
            for alias in (self.enum_aliases)(enumeration) {
                if !values.contains(&alias) {
                    values.push(alias);
                }
            }
            let mut text = self
                .comments
                .of_enum(enumeration)
                .unwrap_or_default()
                .to_owned();
            for value in enumeration.values() {
                if let Some(meaning) = self.comments.of_enum_value(&value) {
                    text.push_str(&format!("\n- `{}`: {meaning}", value.name()));
                }
            }
            let schema = json!({ "type": "string", "enum": values, "description": text });
            self.components.insert(name.clone(), schema);
        }
        reference(&name)
    }
}

/// The first `e.g. "..."` of a comment: an example value a client (or a fuzzer) can start from.
fn example_in(text: &str) -> Option<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let start = text.find("e.g. \"")? + "e.g. \"".len();
    let length = text[start..].find('"')?;
    Some(text[start..start + length].to_owned())
}

/// The JSON forms of the well-known types the API uses (and the others, should it use them).
fn well_known(full_name: &str) -> Option<Value> {
    let schema = match full_name {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => json!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
            "description": "Seconds with up to nine decimals and an `s`, e.g. `\"1.5s\"`."
        }),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Field paths, comma-separated, in camelCase (e.g. `status,start.timeZone`)."
        }),
        "google.protobuf.Empty" => json!({ "type": "object" }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": true }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "additionalProperties": true
        }),
        "google.protobuf.StringValue" => json!({ "type": "string", "nullable": true }),
        "google.protobuf.BytesValue" => {
            json!({ "type": "string", "format": "byte", "nullable": true })
        }
        "google.protobuf.BoolValue" => json!({ "type": "boolean", "nullable": true }),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({ "type": "integer", "nullable": true })
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({ "type": "string", "format": "int64", "nullable": true })
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => {
            json!({ "type": "number", "nullable": true })
        }
        _ => return None,
    };
    Some(schema)
}

/// Whether a message travels as one JSON scalar (a query parameter can carry it).
pub(super) fn is_scalar_like(message: &MessageDescriptor) -> bool {
    well_known(message.full_name()).is_some_and(|schema| {
        schema["type"]
            .as_str()
            .is_some_and(|kind| !matches!(kind, "object" | "array"))
    })
}

/// `Call` for `calls.v1.Call`; `Outer.Inner` for a nested message.
pub(super) fn component_name(message: &MessageDescriptor) -> String {
    component_name_of(message.full_name(), message.package_name())
}

fn component_name_of(full_name: &str, package: &str) -> String {
    full_name
        .strip_prefix(package)
        .and_then(|name| name.strip_prefix('.'))
        .unwrap_or(full_name)
        .to_owned()
}

pub(super) fn reference(component: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{component}") })
}

/// `schema` with a description. OpenAPI 3.0 ignores the siblings of a `$ref`, so a reference
/// is wrapped in `allOf` to carry one.
pub(super) fn described(schema: Value, text: &str) -> Value {
    if schema.get("$ref").is_some() {
        json!({ "allOf": [schema], "description": text })
    } else {
        let mut schema = schema;
        let text = match schema.get("description").and_then(Value::as_str) {
            Some(own) => format!("{text}\n\n{own}"),
            None => text.to_owned(),
        };
        schema["description"] = json!(text);
        schema
    }
}

/// The proto's leading comments, by file and by the path of the element in its file
/// (`SourceCodeInfo`); empty when the descriptor set was built without source info.
pub(super) struct Comments(HashMap<(String, Vec<i32>), String>);

impl Comments {
    pub(super) fn of_pool(pool: &prost_reflect::DescriptorPool) -> Self {
        let mut comments = HashMap::new();
        for file in pool.files() {
            let Some(info) = &file.file_descriptor_proto().source_code_info else {
                continue;
            };
            for location in &info.location {
                let Some(text) = location.leading_comments.as_deref() else {
                    continue;
                };
                let text = text
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join("\n")
                    .trim()
                    .to_owned();
                if !text.is_empty() {
                    comments.insert((file.name().to_owned(), location.path.clone()), text);
                }
            }
        }
        Comments(comments)
    }

    fn get(&self, file: &str, path: &[i32]) -> Option<&str> {
        self.0
            .get(&(file.to_owned(), path.to_vec()))
            .map(String::as_str)
    }

    pub(super) fn of_message(&self, message: &MessageDescriptor) -> Option<&str> {
        self.get(message.parent_file().name(), message.path())
    }

    pub(super) fn of_field(&self, field: &FieldDescriptor) -> Option<&str> {
        self.get(field.parent_file().name(), field.path())
    }

    fn of_enum(&self, enumeration: &EnumDescriptor) -> Option<&str> {
        self.get(enumeration.parent_file().name(), enumeration.path())
    }

    fn of_enum_value(&self, value: &prost_reflect::EnumValueDescriptor) -> Option<&str> {
        self.get(value.parent_file().name(), value.path())
    }

    pub(super) fn of_service(&self, service: &prost_reflect::ServiceDescriptor) -> Option<&str> {
        self.get(service.parent_file().name(), service.path())
    }

    pub(super) fn of_method(&self, method: &prost_reflect::MethodDescriptor) -> Option<&str> {
        self.get(method.parent_file().name(), method.path())
    }
}
