//! Watch templates (`schema`): `${<JSONPath>}` expressions (RFC 9535) evaluated against the
//! event's call JSON.
//!
//! A template that parses as JSON has expressions in its string values, replaced as text. Any
//! other template is text in which each expression is replaced by the JSON value itself (so
//! numbers and objects keep their type); the result must parse as JSON.
//!
//! A template is one tenant's input run at every event, so what it can cost is bounded
//! ([`limits`]): its length, the number of expressions, each expression's length and nesting
//! depth (checked before parsing), and the rendered size (checked while rendering). The JSON
//! form nests at most 128 levels, because serde_json refuses deeper documents, so the
//! recursion over a template's JSON has a fixed bound too.

mod limits;

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::error::excerpt;

pub use limits::{
    MAX_EXPRESSIONS, MAX_EXPRESSION_BYTES, MAX_EXPRESSION_DEPTH, MAX_RENDERED_BYTES,
    MAX_TEMPLATE_CHARS,
};

/// A parsed, validated template.
#[derive(Debug, Clone)]
pub enum Template {
    /// JSON with expressions inside its strings.
    Json(Node),
    /// Text pieces and expressions, in order.
    Text(Vec<Piece>),
}

/// A JSON template's value, its strings already split into pieces.
#[derive(Debug, Clone)]
pub enum Node {
    String(Vec<Piece>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
    /// Numbers, booleans and null, sent as they are.
    Scalar(Value),
}

#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Path(JsonPath),
}

impl Template {
    /// Parses `schema`, checking every expression and the limits, and renders it once on the
    /// sample call; the error says what is wrong, for a person.
    pub fn parse(schema: &str) -> Result<Template, String> {
        if schema.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(format!(
                "the template is longer than {MAX_TEMPLATE_CHARS} characters"
            ));
        }
        let mut expressions = 0;
        let template = match serde_json::from_str::<Value>(schema) {
            Ok(json) => Template::Json(node(&json, &mut expressions)?),
            Err(_) => Template::Text(pieces(schema, &mut expressions)?),
        };
        // A text template must produce JSON, and no template may render too much.
        template.render(&sample_call())?;
        Ok(template)
    }

    /// The body for `call` (the seed JSON of the event's call), as JSON text of at most
    /// [`MAX_RENDERED_BYTES`].
    pub fn render(&self, call: &Value) -> Result<String, String> {
        let mut budget = Budget::default();
        let body = match self {
            Template::Json(node) => render_node(node, call, &mut budget)?.to_string(),
            Template::Text(pieces) => {
                let mut text = String::new();
                for piece in pieces {
                    let before = text.len();
                    match piece {
                        Piece::Text(fragment) => text.push_str(fragment),
                        Piece::Path(path) => text.push_str(&evaluate(path, call).to_string()),
                    }
                    budget.spend(text.len() - before)?;
                }
                serde_json::from_str::<Value>(&text)
                    .map_err(|error| format!("the rendered template is not JSON: {error}"))?
                    .to_string()
            }
        };
        // Re-encoding can lengthen numbers (1e5 is sent as 100000.0): check what is sent.
        if body.len() > MAX_RENDERED_BYTES {
            return Err(too_large());
        }
        Ok(body)
    }
}

/// Bytes rendered so far, to stop as soon as a template renders more than the limit rather
/// than after building all of it.
#[derive(Default)]
struct Budget {
    spent: usize,
}

impl Budget {
    fn spend(&mut self, bytes: usize) -> Result<(), String> {
        self.spent = self.spent.saturating_add(bytes);
        if self.spent > MAX_RENDERED_BYTES {
            return Err(too_large());
        }
        Ok(())
    }
}

fn too_large() -> String {
    format!("the template renders more than {MAX_RENDERED_BYTES} bytes")
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

/// Splits text into literal pieces and `${...}` expressions, counting them in `expressions`.
fn pieces(text: &str, expressions: &mut usize) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        *expressions += 1;
        if *expressions > MAX_EXPRESSIONS {
            return Err(format!(
                "the template has more than {MAX_EXPRESSIONS} expressions"
            ));
        }
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = limits::closing_brace(after)
            .ok_or_else(|| format!("the expression ${{{} has no closing }}", excerpt(after)))?;
        let expression = &after[..end];
        limits::check_expression(expression)?;
        let path = JsonPath::parse(expression)
            .map_err(|error| format!("${{{}}} is not a JSONPath: {error}", excerpt(expression)))?;
        pieces.push(Piece::Path(path));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// A JSON template's value with its strings parsed. The recursion follows the JSON's depth,
/// which serde_json caps at 128.
fn node(json: &Value, expressions: &mut usize) -> Result<Node, String> {
    Ok(match json {
        Value::String(text) => Node::String(pieces(text, expressions)?),
        Value::Array(items) => Node::Array(
            items
                .iter()
                .map(|item| node(item, expressions))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => Node::Object(
            members
                .iter()
                .map(|(key, value)| Ok((key.clone(), node(value, expressions)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => Node::Scalar(other.clone()),
    })
}

fn render_node(node: &Node, call: &Value, budget: &mut Budget) -> Result<Value, String> {
    Ok(match node {
        Node::String(pieces) => {
            let mut rendered = String::new();
            for piece in pieces {
                let before = rendered.len();
                match piece {
                    Piece::Text(fragment) => rendered.push_str(fragment),
                    Piece::Path(path) => match evaluate(path, call) {
                        Value::String(value) => rendered.push_str(&value),
                        Value::Null => {}
                        other => rendered.push_str(&other.to_string()),
                    },
                }
                budget.spend(rendered.len() - before)?;
            }
            Value::String(rendered)
        }
        Node::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render_node(item, call, budget))
                .collect::<Result<_, _>>()?,
        ),
        Node::Object(members) => Value::Object(
            members
                .iter()
                .map(|(key, value)| Ok((key.clone(), render_node(value, call, budget)?)))
                .collect::<Result<_, String>>()?,
        ),
        Node::Scalar(value) => value.clone(),
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
mod tests;
