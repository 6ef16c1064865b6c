//! Delivery: Standard Webhooks headers and signatures, order, retries, the delivery log,
//! templates, Basic and OAuth2 credentials.

use super::*;

#[tokio::test]
async fn deliveries_carry_standard_webhooks_headers_and_one_valid_signature_per_key() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let mut client = watches(&app).await;
    let mut keys = Vec::new();
    for name in ["old", "new"] {
        keys.push(
            client
                .create_crypto_key(app.authed(pb::CreateCryptoKeyRequest { name: name.into() }))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    create_watch(
        &app,
        pb::Watch {
            signature: Some(pb::WatchSignature {
                enabled: true,
                crypto_key_ids: keys
                    .iter()
                    .map(|key| key.crypto_key.clone().unwrap().id)
                    .collect(),
            }),
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    let created = new_call(&app, "+33 6 12 34 56 78").await;

    let received = receiver.wait_for(1).await;
    let request = &received[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/hook");
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("webhook-id").starts_with("msg_"));
    let timestamp: i64 = request.header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    let signatures: Vec<String> = request
        .header("webhook-signature")
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert_eq!(signatures.len(), 2);
    for (key, signature) in keys.iter().zip(&signatures) {
        assert!(
            signature_matches(&key.secret, request, signature),
            "{signature}"
        );
    }
    let body = request.json();
    assert_eq!(body["type"], "call.created");
    assert_eq!(body["data"]["id"], created.id);
    assert_eq!(body["data"]["callerNumber"], "+33 6 12 34 56 78");
    assert_eq!(body["data"]["start"]["timeZone"], "Europe/Paris");
}

#[tokio::test]
async fn changes_are_delivered_in_commit_order_with_their_event_types() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    create_watch(
        &app,
        pb::Watch {
            add_previous_data: true,
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    let created = new_call(&app, "+33 6 12 34 56 78").await;
    app.client()
        .await
        .update_call(app.authed(pb::UpdateCallRequest {
            call: Some(pb::Call {
                id: created.id.clone(),
                external_id: "changed".into(),
                ..pb::Call::default()
            }),
            update_mask: None,
        }))
        .await
        .unwrap();
    app.client()
        .await
        .delete_call(app.authed(pb::DeleteCallRequest {
            id: created.id.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap();

    let received = receiver.wait_for(3).await;
    let types: Vec<_> = received
        .iter()
        .map(|request| request.json()["type"].clone())
        .collect();
    assert_eq!(types, ["call.created", "call.updated", "call.deleted"]);
    let updated = received[1].json();
    assert_eq!(updated["data"]["externalId"], "changed");
    assert_eq!(updated["previousData"]["externalId"], "");
    assert_eq!(received[2].json()["data"]["deleted"], true);
    let ids: std::collections::HashSet<_> =
        received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 3);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_webhook_id_until_it_succeeds() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    receiver.script([reply(500)]);
    let watch = create_watch(&app, watch_to(receiver.url("/hook"))).await;
    new_call(&app, "+33 6 12 34 56 78").await;

    let received = receiver.wait_for(2).await;
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(received[0].body, received[1].body);
    let log = wait_for_deliveries(&app, &watch.id, 2).await;
    assert_eq!(
        log.iter()
            .map(|d| (d.attempt, d.response_status, d.outcome))
            .collect::<Vec<_>>(),
        [
            (1, 500, pb::DeliveryOutcome::Retrying as i32),
            (2, 200, pb::DeliveryOutcome::Succeeded as i32)
        ]
    );
    assert_eq!(log[0].error, "HTTP 500 Internal Server Error");
    assert_eq!(log[1].response_body, "answer");
    assert!(log[1]
        .request_headers
        .iter()
        .any(|h| h.name == "webhook-id"));
    let stats = watches(&app)
        .await
        .get_watch(app.authed(pb::GetWatchRequest {
            id: watch.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .watch
        .unwrap()
        .delivery_stats
        .unwrap();
    assert!(stats.last_success_time.is_some() && stats.last_failure_time.is_some());
    assert_eq!(stats.consecutive_failures, 0);
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_never_followed() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let redirect = Reply {
        headers: vec![("location", receiver.url("/elsewhere"))],
        ..reply(302)
    };
    receiver.script([redirect.clone(), redirect.clone(), redirect]);
    let watch = create_watch(&app, watch_to(receiver.url("/hook"))).await;
    new_call(&app, "+33 6 12 34 56 78").await;
    new_call(&app, "+33 6 99 99 99 99").await;

    // Three attempts (the whole schedule) fail, then the watch moves on to the next change.
    let received = receiver.wait_for(4).await;
    assert!(received.iter().all(|request| request.path == "/hook"));
    let log = wait_for_deliveries(&app, &watch.id, 4).await;
    assert_eq!(log[2].outcome, pb::DeliveryOutcome::Failed as i32);
    assert!(
        log[2].error.contains("redirects are not followed"),
        "{}",
        log[2].error
    );
    assert_eq!(log[3].outcome, pb::DeliveryOutcome::Succeeded as i32);
    assert_eq!(
        received[3].json()["data"]["callerNumber"],
        "+33 6 99 99 99 99"
    );
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_fails_and_is_retried() {
    let mut settings = webhook_settings();
    settings.webhooks.webhook_timeout = Duration::from_millis(300);
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply {
        delay: Duration::from_secs(2),
        ..reply(200)
    }]);
    let watch = create_watch(&app, watch_to(receiver.url("/hook"))).await;
    new_call(&app, "+33 6 12 34 56 78").await;

    let log = wait_for_deliveries(&app, &watch.id, 2).await;
    assert_eq!(log[0].outcome, pb::DeliveryOutcome::Retrying as i32);
    assert!(log[0].error.contains("timed out"), "{}", log[0].error);
    assert_eq!(log[1].outcome, pb::DeliveryOutcome::Succeeded as i32);
}

#[tokio::test]
async fn order_is_kept_across_a_failing_then_recovering_receiver() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    receiver.script([reply(503), reply(503)]);
    create_watch(&app, watch_to(receiver.url("/hook"))).await;
    let mut callers = Vec::new();
    for index in 0..5 {
        let caller = format!("+33 6 00 00 00 0{index}");
        new_call(&app, &caller).await;
        callers.push(caller);
    }

    let received = receiver.wait_for(7).await;
    let delivered: Vec<String> = received[2..]
        .iter()
        .map(|request| {
            request.json()["data"]["callerNumber"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(delivered, callers);
}

#[tokio::test]
async fn retry_delivery_sends_the_event_again_with_the_same_webhook_id() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = create_watch(&app, watch_to(receiver.url("/hook"))).await;
    new_call(&app, "+33 6 12 34 56 78").await;
    let first = wait_for_deliveries(&app, &watch.id, 1).await.remove(0);

    let again = watches(&app)
        .await
        .retry_delivery(app.authed(pb::RetryDeliveryRequest {
            delivery_id: first.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .delivery
        .unwrap();
    assert!(again.manual);
    assert_eq!(again.event_id, first.event_id);
    assert_eq!(again.outcome, pb::DeliveryOutcome::Succeeded as i32);
    let received = receiver.wait_for(2).await;
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn json_template_replaces_expressions_as_text() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    create_watch(
        &app,
        pb::Watch {
            schema: r#"{"phone": "${$.callerNumber}", "who": "${$.callerNumber} to ${$.calledNumber}", "zone": ["${$.start.timeZone}"]}"#.into(),
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    new_call(&app, "+33 6 12 34 56 78").await;
    let body = receiver.wait_for(1).await[0].json();
    assert_eq!(
        body,
        serde_json::json!({
            "phone": "+33 6 12 34 56 78",
            "who": "+33 6 12 34 56 78 to +33 1 23 45 67 89",
            "zone": ["Europe/Paris"]
        })
    );
}

#[tokio::test]
async fn text_template_keeps_the_types_of_json_values() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    create_watch(
        &app,
        pb::Watch {
            schema: r#"{"d": ${$.duration}, "start": ${$.start}, "deleted": ${$.deleted}}"#.into(),
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    new_call(&app, "+33 6 12 34 56 78").await;
    let body = receiver.wait_for(1).await[0].json();
    assert_eq!(
        body,
        serde_json::json!({
            "d": 0,
            "start": {"dateTime": "2026-11-27T09:30:00", "timeZone": "Europe/Paris"},
            "deleted": false
        })
    );
}

#[tokio::test]
async fn preview_watch_payload_renders_without_sending() {
    let app = spawn_webhook_app().await;
    let mut client = watches(&app).await;
    let preview = client
        .preview_watch_payload(app.authed(pb::PreviewWatchPayloadRequest {
            schema: r#"{"n": ${$.callerNumber}, "t": ${$.type}}"#.into(),
            call: Some(pb::Call {
                r#type: pb::CallType::ClickToCall as i32,
                ..call(
                    "+33 6 12 34 56 78",
                    "+33 1 23 45 67 89",
                    "2026-11-27T09:30:00",
                    "UTC",
                )
            }),
            ..pb::PreviewWatchPayloadRequest::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let payload: serde_json::Value = serde_json::from_str(&preview.payload).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({"n": "+33 6 12 34 56 78", "t": "clickToCall"})
    );
    let default = client
        .preview_watch_payload(app.authed(pb::PreviewWatchPayloadRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let payload: serde_json::Value = serde_json::from_str(&default.payload).unwrap();
    assert_eq!(payload["type"], "call.created");
    assert!(payload["data"]["callerNumber"].is_string());
    let invalid = client
        .preview_watch_payload(app.authed(pb::PreviewWatchPayloadRequest {
            schema: "{\"a\": ${$.callerNumber".into(),
            ..pb::PreviewWatchPayloadRequest::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&invalid), vec!["schema"]);
}

#[tokio::test]
async fn custom_headers_basic_auth_and_methods_are_sent_and_credentials_are_not_logged() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = create_watch(
        &app,
        pb::Watch {
            method: pb::WatchMethod::Delete as i32,
            basic_auth: Some(pb::BasicAuth {
                username: "user".into(),
                password: "p@ss".into(),
                password_set: false,
            }),
            http_request_headers: vec![pb::HttpRequestHeader {
                name: "X-Api-Version".into(),
                value: "7".into(),
            }],
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    new_call(&app, "+33 6 12 34 56 78").await;
    let request = receiver.wait_for(1).await.remove(0);
    assert_eq!(request.method, Method::DELETE);
    assert_eq!(request.body, "");
    assert_eq!(request.header("x-api-version"), "7");
    assert_eq!(
        request.header("authorization"),
        format!("Basic {}", STANDARD.encode("user:p@ss"))
    );
    let log = wait_for_deliveries(&app, &watch.id, 1).await;
    let logged = serde_json::to_string(
        &log[0]
            .request_headers
            .iter()
            .map(|h| (&h.name, &h.value))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!logged.contains(&STANDARD.encode("user:p@ss")), "{logged}");
    assert!(logged.contains("<redacted>"));
}

#[tokio::test]
async fn oauth2_token_is_fetched_cached_and_refreshed_once_on_401() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    receiver.script([reply(401)]);
    let watch = create_watch(
        &app,
        pb::Watch {
            oauth2_auth: Some(pb::OAuth2Auth {
                grant_type: "client_credentials".into(),
                client_id: "client-1".into(),
                client_secret: "client-secret-1".into(),
                access_token_url: receiver.url("/token"),
                scope: "calls".into(),
                ..pb::OAuth2Auth::default()
            }),
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    let oauth2 = watch.oauth2_auth.clone().unwrap();
    assert!(oauth2.client_secret.is_empty() && oauth2.client_secret_set);
    new_call(&app, "+33 6 12 34 56 78").await;
    new_call(&app, "+33 6 99 99 99 99").await;

    let received = receiver.wait_for(3).await;
    let authorizations: Vec<String> = received.iter().map(|r| r.header("authorization")).collect();
    assert_eq!(
        authorizations,
        ["Bearer token-1", "Bearer token-2", "Bearer token-2"]
    );
    let token_requests = receiver.state.tokens_issued.lock().unwrap().clone();
    assert_eq!(token_requests.len(), 2);
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(token_requests[0].as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], "client-1");
    assert_eq!(form["client_secret"], "client-secret-1");
    assert_eq!(form["scope"], "calls");
    let log = wait_for_deliveries(&app, &watch.id, 2).await;
    assert_eq!(log[0].outcome, pb::DeliveryOutcome::Succeeded as i32);
}

#[tokio::test]
async fn oauth2_refresh_token_grant_sends_the_refresh_token() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    create_watch(
        &app,
        pb::Watch {
            oauth2_auth: Some(pb::OAuth2Auth {
                client_id: "client-1".into(),
                refresh_token: "refresh-1".into(),
                access_token_url: receiver.url("/token"),
                ..pb::OAuth2Auth::default()
            }),
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    new_call(&app, "+33 6 12 34 56 78").await;
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].header("authorization"), "Bearer token-1");
    let token_request = receiver.state.tokens_issued.lock().unwrap()[0].clone();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(token_request.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "refresh-1");
}

#[tokio::test]
async fn retry_after_lengthens_the_wait_before_the_next_attempt() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply {
        headers: vec![("retry-after", "1".to_owned())],
        ..reply(503)
    }]);
    create_watch(&app, watch_to(receiver.url("/hook"))).await;
    new_call(&app, "+33 6 12 34 56 78").await;

    let received = receiver.wait_for(2).await;
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= chrono::TimeDelta::milliseconds(950),
        "the schedule says 100ms, Retry-After 1s; waited {waited}"
    );
}
