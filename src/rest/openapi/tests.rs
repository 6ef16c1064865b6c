//! The document's main shape, pinned: every annotated RPC is a route, names are proto3 JSON's,
//! the well-known types are their JSON forms, and a message that contains itself ends.

use prost_reflect::DescriptorPool;
use prost_types::{
    field_descriptor_proto::{Label, Type},
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
};
use serde_json::Value;

use super::*;

fn document() -> Value {
    serde_json::from_slice(document_json().expect("the document builds"))
        .expect("the served document is JSON")
}

fn operation<'a>(document: &'a Value, path: &str, method: &str) -> &'a Value {
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "no {method} {path}");
    operation
}

fn parameter_names(operation: &Value, location: &str) -> Vec<String> {
    operation["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|parameter| parameter["in"] == location)
        .map(|parameter| parameter["name"].as_str().expect("a name").to_owned())
        .collect()
}

#[test]
fn every_http_rule_and_additional_binding_is_an_operation() {
    let document = document();
    assert_eq!(document["openapi"], "3.0.3");
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            routes.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    routes.sort();
    let mut expected = vec![
        "DELETE /v1/calls/{id}",
        "DELETE /v1/cryptoKeys/{id}",
        "DELETE /v1/watches/{id}",
        "GET /v1/calls",
        "GET /v1/calls/{id}",
        "GET /v1/calls:export",
        "GET /v1/calls:summarize",
        "GET /v1/calls:watch",
        "GET /v1/cryptoKeys",
        "GET /v1/tenant",
        "GET /v1/watches",
        "GET /v1/watches/{id}",
        "GET /v1/watches/{watch_id}/deliveries",
        "PATCH /v1/calls/{id}",
        "PATCH /v1/watches/{id}",
        "POST /v1/calls",
        "POST /v1/calls:purge",
        "POST /v1/cryptoKeys",
        "POST /v1/watches",
        "POST /v1/watches/-/deliveries/{delivery_id}:retry",
        "POST /v1/watches/{watch_id}:preview",
        "POST /v1/watches:preview",
        "PUT /v1/calls/{id}",
    ];
    expected.sort_unstable();
    assert_eq!(routes, expected);
}

#[test]
fn operation_ids_are_the_rpc_names_and_unique() {
    let document = document();
    let mut ids: Vec<String> = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("a path item").values())
        .map(|operation| operation["operationId"].as_str().expect("an id").to_owned())
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operation ids: {ids:?}");
    assert_eq!(
        operation(&document, "/v1/calls/{id}", "patch")["operationId"],
        "UpdateCall"
    );
    assert_eq!(
        operation(&document, "/v1/calls/{id}", "put")["operationId"],
        "UpdateCall_2"
    );
    assert_eq!(
        operation(&document, "/v1/watches:preview", "post")["operationId"],
        "PreviewWatchPayload_2"
    );
}

#[test]
fn descriptions_come_from_the_proto_comments() {
    let document = document();
    let get = operation(&document, "/v1/calls/{id}", "get");
    assert_eq!(get["summary"], "Returns one call.");
    assert_eq!(get["tags"][0], "CallService");
    let update = operation(&document, "/v1/watches/{id}", "patch");
    assert_eq!(
        update["summary"],
        "Changes the fields named in the mask (\"*\": every writable field; no mask: the fields \
         set in the request)."
    );
    let call = &document["components"]["schemas"]["Call"];
    assert!(call["description"]
        .as_str()
        .expect("a description")
        .starts_with("A phone call"));
    assert!(call["properties"]["callerNumber"]["description"]
        .as_str()
        .expect("a field description")
        .contains("Caller number"));
}

#[test]
fn list_calls_takes_its_request_fields_as_camel_case_query_parameters() {
    let document = document();
    let list = operation(&document, "/v1/calls", "get");
    let mut names = parameter_names(list, "query");
    names.retain(|name| {
        !DOOR_EXTRAS
            .query_aliases
            .iter()
            .any(|(_, alias, _)| alias == name)
    });
    assert_eq!(
        names,
        [
            "pageSize",
            "pageToken",
            "timeMin",
            "timeMax",
            "search",
            "toolId",
            "syncToken"
        ]
    );
    let time_min = list["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|parameter| parameter["name"] == "timeMin")
        .expect("timeMin");
    assert_eq!(time_min["schema"]["format"], "date-time");
    assert!(time_min["description"]
        .as_str()
        .expect("on the parameter")
        .contains("end after"));
    assert!(time_min["schema"].get("description").is_none());
    assert!(list.get("requestBody").is_none());
}

#[test]
fn a_body_field_is_the_request_body_and_the_other_fields_are_query_parameters() {
    let document = document();
    let create = operation(&document, "/v1/calls", "post");
    assert_eq!(parameter_names(create, "query"), ["requestId"]);
    assert_eq!(create["requestBody"]["required"], true);
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Call"
    );
    let update = operation(&document, "/v1/calls/{id}", "patch");
    assert_eq!(parameter_names(update, "path"), ["id"]);
    let id = &update["parameters"][0];
    assert_eq!(id["required"], true);
    assert_eq!(id["schema"]["maxLength"], 64);
    assert!(id["schema"].get("readOnly").is_none());
    assert!(id["description"]
        .as_str()
        .expect("a description")
        .starts_with("`call.id` of the request."));
    assert_eq!(parameter_names(update, "query"), ["updateMask"]);
}

#[test]
fn a_star_body_carries_every_field_but_those_in_the_path() {
    let document = document();
    let preview = operation(&document, "/v1/watches/{watch_id}:preview", "post");
    assert_eq!(parameter_names(preview, "path"), ["watch_id"]);
    assert!(parameter_names(preview, "query").is_empty());
    let body = &preview["requestBody"]["content"]["application/json"]["schema"];
    let properties = body["properties"].as_object().expect("an inline body");
    assert!(properties.contains_key("schema") && properties.contains_key("call"));
    assert!(!properties.contains_key("watchId"));
    assert_eq!(preview["requestBody"]["required"], false);
    let unbound = operation(&document, "/v1/watches:preview", "post");
    assert_eq!(
        unbound["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/PreviewWatchPayloadRequest"
    );
}

#[test]
fn messages_use_proto3_json_forms() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    let call = &schemas["Call"]["properties"];
    assert_eq!(call["createTime"]["format"], "date-time");
    assert_eq!(call["createTime"]["readOnly"], true);
    assert_eq!(call["duration"]["type"], "string");
    assert_eq!(
        call["status"]["allOf"][0]["$ref"],
        "#/components/schemas/CallStatus"
    );
    assert_eq!(schemas["CallStatus"]["type"], "string");
    assert!(schemas["CallStatus"]["enum"]
        .as_array()
        .expect("values")
        .contains(&Value::from("CALL_STATUS_NO_ANSWERED")));
    let update = operation(&document, "/v1/calls/{id}", "patch");
    assert_eq!(update["parameters"][1]["name"], "updateMask");
    assert_eq!(update["parameters"][1]["schema"]["type"], "string");
    let watch = &schemas["Watch"]["properties"];
    assert_eq!(watch["httpRequestHeaders"]["type"], "array");
    assert_eq!(
        schemas["BasicAuth"]["properties"]["password"]["writeOnly"],
        true
    );
    assert_eq!(
        schemas["ListCallsResponse"]["properties"]["nextSyncToken"]["type"],
        "string"
    );
}

#[test]
fn watch_calls_is_a_server_sent_event_stream() {
    let document = document();
    let watch = operation(&document, "/v1/calls:watch", "get");
    let content = &watch["responses"]["200"]["content"];
    assert!(content["text/event-stream"].is_object());
    assert!(content.get("application/json").is_none());
    assert_eq!(
        content["text/event-stream"]["x-event-data"]["$ref"],
        "#/components/schemas/CallEvent"
    );
    assert_eq!(parameter_names(watch, "query")[0], "syncToken");
    assert_eq!(parameter_names(watch, "header"), ["Last-Event-ID"]);
}

#[test]
fn every_operation_documents_errors_in_google_shape_and_needs_a_bearer_key() {
    let document = document();
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(document["security"][0]["bearer"], serde_json::json!([]));
    let error = &document["components"]["schemas"]["Error"];
    assert_eq!(
        error["properties"]["error"]["required"],
        serde_json::json!(["code", "status", "message"])
    );
    for item in document["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            let responses = &operation["responses"];
            assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object());
            assert!(responses["429"]["headers"]["Retry-After"].is_object());
            for status in ["400", "401", "404", "412", "429", "500", "503"] {
                assert_eq!(
                    operation["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{} {status}",
                    operation["operationId"]
                );
            }
        }
    }
}

#[test]
fn every_reference_points_at_a_component() {
    let document = document();
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .expect("a component reference");
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{reference} points nowhere"
        );
    }
}

fn collect_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference.clone());
            }
            map.values()
                .for_each(|inner| collect_references(inner, found));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|inner| collect_references(inner, found)),
        _ => {}
    }
}

#[test]
fn path_templates_give_their_variables_and_lose_their_patterns() {
    assert_eq!(path_variables("/v1/calls/{call.id}").unwrap(), ["call.id"]);
    assert_eq!(
        path_variables("/v1/{name=projects/*}/things/{thing}").unwrap(),
        ["name", "thing"]
    );
    assert!(path_variables("/v1/{oops").is_err());
    assert!(path_variables("/v1/{}").is_err());
    assert_eq!(
        openapi_path("/v1/{name=projects/*}/things/{thing}:do"),
        "/v1/{name}/things/{thing}:do"
    );
    assert_eq!(openapi_path("/v1/calls:watch"), "/v1/calls:watch");
    assert_eq!(openapi_path("/v1/calls/{call.id}"), "/v1/calls/{id}");
    assert_eq!(path_shape("/v1/calls/{id}:x/{y}"), "/v1/calls/{}:x/{}");
}

/// `message Node { string name = 1; Node child = 2; repeated Node children = 3; }`
fn self_referencing_pool() -> DescriptorPool {
    let field = |name: &str, number: i32, kind: Type, label: Label| FieldDescriptorProto {
        name: Some(name.to_owned()),
        json_name: Some(name.to_owned()),
        number: Some(number),
        r#type: Some(kind as i32),
        label: Some(label as i32),
        type_name: (kind == Type::Message).then(|| ".test.Node".to_owned()),
        ..FieldDescriptorProto::default()
    };
    let file = FileDescriptorProto {
        name: Some("test.proto".to_owned()),
        package: Some("test".to_owned()),
        syntax: Some("proto3".to_owned()),
        message_type: vec![DescriptorProto {
            name: Some("Node".to_owned()),
            field: vec![
                field("name", 1, Type::String, Label::Optional),
                field("child", 2, Type::Message, Label::Optional),
                field("children", 3, Type::Message, Label::Repeated),
            ],
            ..DescriptorProto::default()
        }],
        ..FileDescriptorProto::default()
    };
    DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] })
        .expect("a valid pool")
}

#[test]
fn a_message_that_contains_itself_is_one_component_and_the_walk_ends() {
    let pool = self_referencing_pool();
    let node = pool.get_message_by_name("test.Node").expect("Node");
    let comments = Comments::of_pool(&pool);
    let no_field_aliases = |_: &MessageDescriptor| Vec::new();
    let mut schemas = Schemas::new(&comments, |_| Vec::new(), &no_field_aliases, &[]);
    assert_eq!(schemas.message(&node)["$ref"], "#/components/schemas/Node");
    let mut parameters = Vec::new();
    query_parameters(&node, "", &[], "", &mut schemas, &mut parameters);
    let names: Vec<&str> = parameters
        .iter()
        .map(|parameter| parameter["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["name"]);
    let components = schemas.into_components();
    assert_eq!(components.len(), 1);
    assert_eq!(
        components["Node"]["properties"]["child"]["$ref"],
        "#/components/schemas/Node"
    );
    assert_eq!(
        components["Node"]["properties"]["children"]["items"]["$ref"],
        "#/components/schemas/Node"
    );
}

#[test]
fn the_seed_names_the_door_accepts_are_documented() {
    let document = document();
    let list = operation(&document, "/v1/calls", "get");
    let names = parameter_names(list, "query");
    assert!(names.contains(&"startDate".to_owned()) && names.contains(&"endDate".to_owned()));
    let schemas = &document["components"]["schemas"];
    let statuses = schemas["CallStatus"]["enum"].as_array().expect("values");
    for spelling in ["CALL_STATUS_NO_ANSWERED", "noAnswered", "completed"] {
        assert!(statuses.contains(&Value::from(spelling)), "{spelling}");
    }
    assert!(schemas["CallType"]["enum"]
        .as_array()
        .expect("values")
        .contains(&Value::from("clickToCall")));
    let record = &schemas["CallRecord"]["properties"];
    assert_eq!(record["mineType"]["deprecated"], true);
    assert_eq!(record["mineType"]["type"], "string");
}

#[test]
fn a_delete_answers_an_empty_body() {
    let document = document();
    let delete = operation(&document, "/v1/calls/{id}", "delete");
    assert!(delete["responses"]["200"].get("content").is_none());
    assert_eq!(parameter_names(delete, "query"), ["etag"]);
}

#[test]
fn fields_carry_the_limits_the_door_enforces() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["Call"]["properties"]["callerNumber"]["maxLength"],
        64
    );
    let keys = &schemas["WatchSignature"]["properties"]["cryptoKeyIds"];
    assert_eq!(keys["maxItems"], 16);
    assert_eq!(keys["items"]["maxLength"], 64);
    assert_eq!(
        schemas["Watch"]["properties"]["httpRequestHeaders"]["maxItems"],
        32
    );
    assert!(schemas["Call"]["properties"]["status"]
        .get("maxLength")
        .is_none());
}

#[test]
fn a_create_links_to_the_operations_on_what_it_made() {
    let document = document();
    let links = &operation(&document, "/v1/calls", "post")["responses"]["200"]["links"];
    for operation_id in ["GetCall", "UpdateCall", "UpdateCall_2", "DeleteCall"] {
        assert_eq!(
            links[operation_id]["parameters"]["id"],
            "$response.body#/call/id"
        );
    }
    let links = &operation(&document, "/v1/watches", "post")["responses"]["200"]["links"];
    assert_eq!(
        links["ListDeliveries"]["parameters"]["watch_id"],
        "$response.body#/watch/id"
    );
    assert_eq!(
        links["PreviewWatchPayload"]["parameters"]["watch_id"],
        "$response.body#/watch/id"
    );
    let links = &operation(&document, "/v1/cryptoKeys", "post")["responses"]["200"]["links"];
    assert_eq!(
        links["DeleteCryptoKey"]["parameters"]["id"],
        "$response.body#/cryptoKey/id"
    );
    assert!(
        operation(&document, "/v1/watches:preview", "post")["responses"]["200"]
            .get("links")
            .is_none()
    );
}

#[test]
fn a_comment_example_is_the_field_example() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["CallStart"]["properties"]["dateTime"]["example"],
        "2026-11-27T09:30:00"
    );
    assert_eq!(
        schemas["Call"]["properties"]["callerNumber"]["example"],
        "+33 1 23 45 67 89"
    );
    assert_eq!(
        schemas["Watch"]["properties"]["address"]["example"],
        "https://hooks.example.invalid/calls"
    );
    assert!(schemas["Call"]["properties"]["id"].get("example").is_none());
}

#[test]
fn etags_travel_as_headers_where_the_door_reads_and_writes_them() {
    let document = document();
    let get = operation(&document, "/v1/calls/{id}", "get");
    assert!(get["responses"]["200"]["headers"]["ETag"].is_object());
    assert!(parameter_names(get, "header").is_empty());
    for method in ["patch", "put", "delete"] {
        let operation = operation(&document, "/v1/calls/{id}", method);
        assert_eq!(
            parameter_names(operation, "header"),
            ["If-Match"],
            "{method}"
        );
    }
    let watch = operation(&document, "/v1/watches/{id}", "get");
    assert!(watch["responses"]["200"].get("headers").is_none());
}

/// The document's If-Match is the door's: every PATCH, PUT or DELETE route whose request the
/// door can put an `If-Match` etag in documents the header, and no other.
#[test]
fn if_match_is_documented_exactly_where_the_door_takes_it() {
    let document = document();
    let pool = api::descriptors().expect("descriptors");
    let table = super::super::routes::RouteTable::from_descriptors(pool).expect("routes");
    for route in table.routes() {
        let method = route.method.as_str().to_lowercase();
        if !matches!(method.as_str(), "patch" | "put" | "delete") {
            continue;
        }
        let takes = super::super::json::etag_field(route).is_some();
        let documented = document["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|item| item.get(&method))
            .filter(|operation| {
                operation["operationId"]
                    .as_str()
                    .is_some_and(|id| id.split('_').next() == Some(route.rpc.name()))
            })
            .any(|operation| parameter_names(operation, "header").contains(&"If-Match".to_owned()));
        assert_eq!(takes, documented, "{} {method}", route.rpc.name());
    }
}

/// The router and the document read the same rules: each route the door serves is an operation
/// of the document, with the same body, and the document has no other.
#[test]
fn the_document_has_exactly_the_routes_the_door_serves() {
    let document = document();
    let pool = api::descriptors().expect("descriptors");
    let table = super::super::routes::RouteTable::from_descriptors(pool).expect("routes");
    let mut served: Vec<String> = table
        .routes()
        .iter()
        .map(|route| {
            let has_body = route.body != super::super::routes::BodyTarget::None;
            format!(
                "{} {} body={has_body}",
                route.method.as_str().to_lowercase(),
                openapi_path(&route.template)
            )
        })
        .collect();
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let has_body = operation.get("requestBody").is_some();
            documented.push(format!("{method} {path} body={has_body}"));
        }
    }
    served.sort();
    documented.sort();
    assert_eq!(served, documented);
}
