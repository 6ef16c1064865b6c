//! The route table, read at start-up from the `google.api.http` options of the proto's RPCs
//! (written once, in the proto): each binding's method, path template, body and response body.
//!
//! Templates use the subset of `google/api/http.proto`'s syntax our protos need: literal
//! segments, `{field.path}` (or `{field.path=*}`) variables matching one segment, and a
//! trailing `:verb`. A template outside that subset fails the start-up (and its unit test).

use http::Method;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

/// Where a binding's request body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyTarget {
    /// The binding takes no body (`GET`, `DELETE`, or no `body` option).
    None,
    /// `body: "*"`: the body is the whole request message.
    Whole,
    /// `body: "call"`: the body is that field of the request.
    Field(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A field of the request, by its path (`call.id` -> `["call", "id"]`).
    Variable(Vec<String>),
}

/// One HTTP binding of an RPC.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// The template as written in the proto, for logs.
    pub template: String,
    segments: Vec<Segment>,
    verb: Option<String>,
    pub rpc: MethodDescriptor,
    pub body: BodyTarget,
    /// `response_body`: the field of the response sent as the body; `None`: the whole response.
    pub response_body: Option<String>,
}

/// A path variable's field (by path) and its decoded value.
pub type PathValues = Vec<(Vec<String>, String)>;

/// What a request's method and path found.
pub enum Lookup<'a> {
    Found(&'a Route, PathValues),
    /// The path exists with other methods only (HTTP 405 and its `Allow` header).
    WrongMethod(Vec<Method>),
    NotFound,
}

/// Every binding of every RPC that has one.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// The bindings of every service in `pool`, from their `google.api.http` options.
    pub fn from_descriptors(pool: &DescriptorPool) -> Result<Self, String> {
        let extension = pool
            .get_extension_by_name("google.api.http")
            .ok_or("the descriptor set has no google.api.http extension")?;
        let mut routes = Vec::new();
        for service in pool.services() {
            for rpc in service.methods() {
                let options = rpc.options();
                if !options.has_extension(&extension) {
                    continue;
                }
                let Value::Message(rule) = options.get_extension(&extension).into_owned() else {
                    return Err(format!(
                        "{}: google.api.http is not a message",
                        rpc.full_name()
                    ));
                };
                add_bindings(&mut routes, &rpc, &rule, true)
                    .map_err(|error| format!("{}: {error}", rpc.full_name()))?;
            }
        }
        Ok(RouteTable { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for `method` and `path` (still percent-encoded), with its path values.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(values) = route.matches(path) else {
                continue;
            };
            // HEAD is answered as GET without a body, by hyper.
            if route.method == method || (method == Method::HEAD && route.method == Method::GET) {
                return Lookup::Found(route, values);
            }
            allowed.push(route.method.clone());
        }
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            Lookup::WrongMethod(allowed)
        }
    }
}

fn add_bindings(
    routes: &mut Vec<Route>,
    rpc: &MethodDescriptor,
    rule: &DynamicMessage,
    top: bool,
) -> Result<(), String> {
    let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(text)) => text.clone(),
        _ => String::new(),
    };
    let mut pattern = None;
    for (name, method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(name) {
            pattern = Some((method, text(name)));
        }
    }
    if rule.has_field_by_name("custom") {
        return Err("custom HTTP patterns are not served".into());
    }
    let (method, template) = pattern.ok_or("a binding without a method and path")?;
    let (segments, verb) = parse_template(&template)?;
    let body = match text("body").as_str() {
        "" => BodyTarget::None,
        "*" => BodyTarget::Whole,
        field => {
            if rpc.input().get_field_by_name(field).is_none() {
                return Err(format!("body {field:?} is not a field of the request"));
            }
            BodyTarget::Field(field.to_owned())
        }
    };
    for segment in &segments {
        if let Segment::Variable(path) = segment {
            check_field_path(rpc, path)?;
        }
    }
    let response_body = Some(text("response_body")).filter(|field| !field.is_empty());
    routes.push(Route {
        method,
        template,
        segments,
        verb,
        rpc: rpc.clone(),
        body,
        response_body,
    });
    if top {
        if let Some(Value::List(bindings)) =
            rule.get_field_by_name("additional_bindings").as_deref()
        {
            for binding in bindings {
                if let Value::Message(binding) = binding {
                    add_bindings(routes, rpc, binding, false)?;
                }
            }
        }
    }
    Ok(())
}

/// A variable must name a singular string field of the request, through singular messages.
fn check_field_path(rpc: &MethodDescriptor, path: &[String]) -> Result<(), String> {
    let mut message = rpc.input();
    for (index, name) in path.iter().enumerate() {
        let field = message
            .get_field_by_name(name)
            .ok_or_else(|| format!("path variable {} names no field", path.join(".")))?;
        if field.is_list() || field.is_map() {
            return Err(format!("path variable {} is repeated", path.join(".")));
        }
        match field.kind() {
            prost_reflect::Kind::Message(inner) if index + 1 < path.len() => message = inner,
            prost_reflect::Kind::String if index + 1 == path.len() => {}
            _ => return Err(format!("path variable {} is not a string", path.join("."))),
        }
    }
    Ok(())
}

fn parse_template(template: &str) -> Result<(Vec<Segment>, Option<String>), String> {
    let path = template
        .strip_prefix('/')
        .ok_or_else(|| format!("template {template:?} does not start with /"))?;
    // The verb follows the last ':' outside a variable.
    let (path, verb) = match path.rfind(':') {
        Some(at) if !path[at..].contains('}') && !path[at..].contains('/') => {
            (&path[..at], Some(path[at + 1..].to_owned()))
        }
        _ => (path, None),
    };
    let mut segments = Vec::new();
    for segment in path.split('/') {
        if let Some(variable) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let field = match variable.split_once('=') {
                None => variable,
                Some((field, "*")) => field,
                Some(_) => return Err(format!("template {template:?}: only {{field}} variables")),
            };
            segments.push(Segment::Variable(
                field.split('.').map(str::to_owned).collect(),
            ));
        } else if segment.is_empty() || segment.contains(['{', '}', '*']) {
            return Err(format!(
                "template {template:?}: unsupported segment {segment:?}"
            ));
        } else {
            segments.push(Segment::Literal(segment.to_owned()));
        }
    }
    Ok((segments, verb))
}

impl Route {
    fn matches(&self, path: &str) -> Option<PathValues> {
        let path = path.strip_prefix('/')?;
        let path = match &self.verb {
            Some(verb) => path.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => path,
        };
        let mut values = Vec::new();
        let mut parts = path.split('/');
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Variable(field) => {
                    if part.is_empty() {
                        return None;
                    }
                    let value = percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .ok()?
                        .into_owned();
                    values.push((field.clone(), value));
                }
            }
        }
        parts.next().is_none().then_some(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::from_descriptors(crate::api::descriptors().unwrap()).unwrap()
    }

    #[test]
    fn every_rpc_of_both_services_has_a_route() {
        let table = table();
        let pool = crate::api::descriptors().unwrap();
        for service in pool.services().filter(|s| s.package_name() == "calls.v1") {
            for rpc in service.methods() {
                assert!(
                    table.routes().iter().any(|route| route.rpc == rpc),
                    "{} has no route",
                    rpc.full_name()
                );
            }
        }
    }

    #[test]
    fn paths_find_their_rpc_and_path_values() {
        let table = table();
        let Lookup::Found(route, values) = table.lookup(&Method::PATCH, "/v1/calls/abc%2Fd") else {
            panic!("no route");
        };
        assert_eq!(route.rpc.name(), "UpdateCall");
        assert_eq!(route.body, BodyTarget::Field("call".into()));
        assert_eq!(
            values,
            vec![(vec!["call".into(), "id".into()], "abc/d".into())]
        );
        let Lookup::Found(route, _) = table.lookup(&Method::GET, "/v1/calls:watch") else {
            panic!("no route");
        };
        assert_eq!(route.rpc.name(), "WatchCalls");
        let Lookup::Found(route, values) = table.lookup(&Method::POST, "/v1/watches/w1:preview")
        else {
            panic!("no route");
        };
        assert_eq!(route.rpc.name(), "PreviewWatchPayload");
        assert_eq!(values.len(), 1);
        let Lookup::Found(route, _) =
            table.lookup(&Method::POST, "/v1/watches/-/deliveries/d1:retry")
        else {
            panic!("no route");
        };
        assert_eq!(route.rpc.name(), "RetryDelivery");
        assert!(matches!(
            table.lookup(&Method::POST, "/v1/calls/abc"),
            Lookup::WrongMethod(_)
        ));
        assert!(matches!(
            table.lookup(&Method::GET, "/v1/nothing"),
            Lookup::NotFound
        ));
        assert!(matches!(
            table.lookup(&Method::GET, "/v1/calls/"),
            Lookup::NotFound
        ));
        assert!(matches!(
            table.lookup(&Method::GET, "/v1/calls/a/b"),
            Lookup::NotFound
        ));
    }
}
