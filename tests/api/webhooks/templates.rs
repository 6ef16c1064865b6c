//! Hostile templates: what one tenant's `schema` can cost the server is bounded, and a template
//! over a limit is refused with INVALID_ARGUMENT (or fails its delivery attempt), saying which
//! limit, instead of crashing the process, burning seconds of CPU or sending megabytes.

use tonic_types::StatusExt;

use super::*;

/// The issue's first case: 2,000 nested parentheses overflowed the parser's stack.
fn two_thousand_parentheses() -> String {
    format!("${{$[?{}@.a{}]}}", "(".repeat(2000), ")".repeat(2000))
}

/// The issue's second case: 20 nested filters took 4.5 s of CPU to parse.
fn twenty_nested_filters() -> String {
    format!("${{${}{}}}", "[?@".repeat(20), "]".repeat(20))
}

/// The issue's third case: 9,000 copies of the whole call, 3.4 MB per event.
fn nine_thousand_expressions() -> String {
    format!(r#"{{"a": "{}"}}"#, "${$}".repeat(9000))
}

async fn preview(app: &TestApp, schema: &str) -> Result<String, tonic::Status> {
    watches(app)
        .await
        .preview_watch_payload(app.authed(pb::PreviewWatchPayloadRequest {
            schema: schema.into(),
            ..pb::PreviewWatchPayloadRequest::default()
        }))
        .await
        .map(|response| response.into_inner().payload)
}

/// The description of the only violation, checking it names `field` and stays short.
fn only_violation(status: &tonic::Status, field: &str) -> String {
    assert_eq!(bad_fields(status), vec![field.to_owned()], "{status:?}");
    let description = status.get_details_bad_request().unwrap().field_violations[0]
        .description
        .clone();
    assert!(description.len() < 300, "quotes too much: {description}");
    description
}

async fn refused_at_create(app: &TestApp, schema: String) -> String {
    let status = watches(app)
        .await
        .create_watch(app.authed(pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                schema,
                ..watch_to("http://127.0.0.1:9/hook".into())
            }),
        }))
        .await
        .unwrap_err();
    only_violation(&status, "watch.schema")
}

#[tokio::test]
async fn a_template_nested_two_thousand_levels_deep_is_refused_and_the_server_stays_up() {
    let app = spawn_webhook_app().await;
    let status = preview(&app, &two_thousand_parentheses())
        .await
        .unwrap_err();
    let description = only_violation(&status, "schema");
    assert!(description.contains("longer than"), "{description}");
    let description = refused_at_create(&app, two_thousand_parentheses()).await;
    assert!(description.contains("longer than"), "{description}");
    // Short but deep is refused for its depth.
    let deep = format!("${{$[?{}@.a{}]}}", "(".repeat(40), ")".repeat(40));
    let description = only_violation(&preview(&app, &deep).await.unwrap_err(), "schema");
    assert!(description.contains("deeper than"), "{description}");
    assert!(preview(&app, r#"{"a": "${$.id}"}"#).await.is_ok());
}

#[tokio::test]
async fn deeply_nested_filters_are_refused_before_the_parser_sees_them() {
    let app = spawn_webhook_app().await;
    let description = only_violation(
        &preview(&app, &twenty_nested_filters()).await.unwrap_err(),
        "schema",
    );
    assert!(description.contains("deeper than"), "{description}");
    let description = refused_at_create(&app, twenty_nested_filters()).await;
    assert!(description.contains("deeper than"), "{description}");
}

#[tokio::test]
async fn a_template_with_thousands_of_expressions_is_refused() {
    let app = spawn_webhook_app().await;
    let description = only_violation(
        &preview(&app, &nine_thousand_expressions())
            .await
            .unwrap_err(),
        "schema",
    );
    assert!(description.contains("expressions"), "{description}");
    let description = refused_at_create(&app, nine_thousand_expressions()).await;
    assert!(description.contains("expressions"), "{description}");
}

#[tokio::test]
async fn a_template_rendering_more_than_256_kib_is_refused_at_preview() {
    let app = spawn_webhook_app().await;
    // Every expression copies every top-level value of the call 16 times.
    let copies = format!("${{$[{}]}}", ["*"; 16].join(","));
    let schema = format!("[{}]", [copies.as_str(); 60].join(","));
    let description = only_violation(&preview(&app, &schema).await.unwrap_err(), "schema");
    assert!(
        description.contains("renders more than 262144 bytes"),
        "{description}"
    );
    // A tenth of it renders.
    let schema = format!("[{}]", [copies.as_str(); 6].join(","));
    assert!(preview(&app, &schema).await.is_ok());
}

#[tokio::test]
async fn a_stored_template_over_the_limits_fails_its_delivery_attempt_saying_why() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = create_watch(&app, watch_to(receiver.url("/hook"))).await;
    // Stored before the limits existed: create refuses it now, so write it directly.
    app.store
        .client()
        .await
        .unwrap()
        .execute(
            "UPDATE watches SET schema = $1",
            &[&nine_thousand_expressions()],
        )
        .await
        .unwrap();
    new_call(&app, "+33 6 12 34 56 78").await;
    let attempt = wait_for_deliveries(&app, &watch.id, 1).await.remove(0);
    assert!(
        attempt.error.contains("template") && attempt.error.contains("expressions"),
        "{}",
        attempt.error
    );
    assert_eq!(attempt.request_body, "");
    assert!(receiver.received().is_empty());
}

/// Every attempt in the log of `watch_id`, page by page (100 asked per page): the pages and
/// their encoded sizes.
async fn delivery_pages(app: &TestApp, watch_id: &str) -> Vec<(Vec<pb::Delivery>, usize)> {
    let mut pages = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = watches(app)
            .await
            .list_deliveries(app.authed(pb::ListDeliveriesRequest {
                watch_id: watch_id.into(),
                page_size: 100,
                page_token,
            }))
            .await
            .expect("deliveries list")
            .into_inner();
        pages.push((page.deliveries.clone(), prost::Message::encoded_len(&page)));
        if page.next_page_token.is_empty() {
            return pages;
        }
        page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn large_bodies_are_stored_cut_and_list_deliveries_pages_them_within_a_mebibyte() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    // About 75 KB per event: within the rendering limit, over the stored-body limit.
    let copies = format!("${{$[{}]}}", ["*"; 16].join(","));
    let watch = create_watch(
        &app,
        pb::Watch {
            schema: format!("[{}]", [copies.as_str(); 20].join(",")),
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    let events = 40;
    for index in 0..events {
        new_call(&app, &format!("+33 6 12 34 56 {index:02}")).await;
    }
    let received = receiver.wait_for(events).await;
    let size = received[0].body.len();
    assert!(size > 64 * 1024, "the receiver gets it all: {size} bytes");
    let mut pages = delivery_pages(&app, &watch.id).await;
    for _ in 0..250 {
        let logged: usize = pages.iter().map(|(page, _)| page.len()).sum();
        if logged >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        pages = delivery_pages(&app, &watch.id).await;
    }

    assert!(pages.len() > 1, "the byte budget splits the log");
    let mut ids = std::collections::HashSet::new();
    for (page, encoded) in &pages {
        let largest = page.iter().map(prost::Message::encoded_len).max().unwrap();
        assert!(*encoded <= 1024 * 1024 + largest + 64, "{encoded} bytes");
        for delivery in page {
            assert!(ids.insert(delivery.id.clone()), "repeated {}", delivery.id);
            assert!(delivery.request_body.len() < 64 * 1024 + 64);
            assert!(
                delivery.request_body.ends_with(" bytes]")
                    && delivery.request_body.contains("…[truncated "),
                "the stored body says it was cut"
            );
        }
    }
    assert_eq!(ids.len(), events, "no attempt lost");

    // A cut body cannot be sent again; the attempt says why instead of sending half of it.
    let retried = watches(&app)
        .await
        .retry_delivery(app.authed(pb::RetryDeliveryRequest {
            delivery_id: pages[0].0[0].id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .delivery
        .unwrap();
    assert!(
        retried.error.contains("cannot be sent again"),
        "{}",
        retried.error
    );
    assert_eq!(receiver.received().len(), events);
}
