//! Watch templates (`schema`): `${<JSONPath>}` expressions (RFC 9535) evaluated against the
//! event's call JSON.
//!
//! A template that parses as JSON has expressions in its string values, replaced as text. Any
//! other template is text in which each expression is replaced by the JSON value itself (so
//! numbers and objects keep their type); the result must parse as JSON.

use serde_json::Value;
use serde_json_path::JsonPath;

/// A parsed, validated template.
#[derive(Debug, Clone)]
pub enum Template {
    /// JSON with expressions inside its strings.
    Json(Value),
    /// Text pieces and expressions, in order.
    Text(Vec<Piece>),
}

#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Path(JsonPath),
}

impl Template {
    /// Parses `schema`, checking every expression; the error says what is wrong, for a person.
    pub fn parse(schema: &str) -> Result<Template, String> {
        if let Ok(json) = serde_json::from_str::<Value>(schema) {
            check_strings(&json)?;
            return Ok(Template::Json(json));
        }
        let template = Template::Text(pieces(schema)?);
        // A text template must produce JSON; try it on a sample call.
        template.render(&sample_call())?;
        Ok(template)
    }

    /// The body for `call` (the seed JSON of the event's call).
    pub fn render(&self, call: &Value) -> Result<Value, String> {
        match self {
            Template::Json(json) => render_strings(json, call),
            Template::Text(pieces) => {
                let mut text = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(fragment) => text.push_str(fragment),
                        Piece::Path(path) => text.push_str(&evaluate(path, call).to_string()),
                    }
                }
                serde_json::from_str(&text)
                    .map_err(|error| format!("the rendered template is not JSON: {error}"))
            }
        }
    }
}

/// The value of `path` in `call`: the single match, an array of several, or null for none.
fn evaluate(path: &JsonPath, call: &Value) -> Value {
    let matches = path.query(call).all();
    match matches.as_slice() {
        [] => Value::Null,
        [single] => (*single).clone(),
        several => Value::Array(several.iter().map(|value| (*value).clone()).collect()),
    }
}

/// Splits text into literal pieces and `${...}` expressions.
fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end =
            closing_brace(after).ok_or_else(|| "an expression has no closing }".to_owned())?;
        let expression = &after[..end];
        let path = JsonPath::parse(expression)
            .map_err(|error| format!("${{{expression}}} is not a JSONPath: {error}"))?;
        pieces.push(Piece::Path(path));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// The index of the `}` that closes an expression, skipping braces inside quotes or nested.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0_usize;
    let mut quote = None;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == open {
                quote = None;
            }
            continue;
        }
        match character {
            '\'' | '"' => quote = Some(character),
            '{' => depth += 1,
            '}' if depth == 0 => return Some(index),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn check_strings(json: &Value) -> Result<(), String> {
    match json {
        Value::String(text) => pieces(text).map(|_| ()),
        Value::Array(items) => items.iter().try_for_each(check_strings),
        Value::Object(members) => members.values().try_for_each(check_strings),
        _ => Ok(()),
    }
}

fn render_strings(json: &Value, call: &Value) -> Result<Value, String> {
    Ok(match json {
        Value::String(text) => {
            let mut rendered = String::new();
            for piece in pieces(text)? {
                match piece {
                    Piece::Text(fragment) => rendered.push_str(&fragment),
                    Piece::Path(path) => match evaluate(&path, call) {
                        Value::String(value) => rendered.push_str(&value),
                        Value::Null => {}
                        other => rendered.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(rendered)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_strings(item, call))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(key, value)| Ok((key.clone(), render_strings(value, call)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// A call with every field set, to check templates against and for previews without a call.
pub fn sample_call() -> Value {
    serde_json::json!({
        "id": "0190a8f2-0000-7000-8000-000000000000",
        "buttonId": "button-1",
        "clientId": "client-1",
        "callerNumber": "+33 6 12 34 56 78",
        "calledNumber": "+33 1 23 45 67 89",
        "trackingNumber": "+33 9 87 65 43 21",
        "start": {"dateTime": "2026-11-27T09:30:00", "timeZone": "Europe/Paris"},
        "startTime": "2026-11-27T08:30:00Z",
        "duration": 95,
        "status": "completed",
        "externalId": "external-1",
        "type": "callTracking",
        "record": {"mimeType": "audio/mpeg", "url": "https://records.example.com/1.mp3"},
        "createTime": "2026-11-27T08:31:35Z",
        "updateTime": "2026-11-27T08:31:35Z",
        "deleted": false
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_templates_replace_expressions_as_text() {
        let template =
            Template::parse(r#"{"who": "${$.callerNumber} to ${$.calledNumber}", "n": 1}"#)
                .unwrap();
        let rendered = template.render(&sample_call()).unwrap();
        assert_eq!(
            rendered,
            json!({"who": "+33 6 12 34 56 78 to +33 1 23 45 67 89", "n": 1})
        );
    }

    #[test]
    fn text_templates_keep_json_types_and_missing_paths_are_null() {
        let template =
            Template::parse(r#"{"d": ${$.duration}, "r": ${$.record}, "x": ${$.nothing}}"#)
                .unwrap();
        let rendered = template.render(&sample_call()).unwrap();
        assert_eq!(
            rendered,
            json!({"d": 95, "r": {"mimeType": "audio/mpeg", "url": "https://records.example.com/1.mp3"}, "x": null})
        );
    }

    #[test]
    fn invalid_paths_and_non_json_results_are_refused() {
        assert!(Template::parse(r#"{"a": "${$.[}"}"#).is_err());
        assert!(Template::parse(r#"{"a": ${$.callerNumber"#).is_err());
        assert!(Template::parse("not json ${$.id}").is_err());
    }
}
