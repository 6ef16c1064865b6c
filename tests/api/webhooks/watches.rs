//! Watch and key CRUD, write-only secrets, tenant isolation, the SSRF guard at write time.

use super::*;

#[tokio::test]
async fn create_watch_stores_every_property_and_never_returns_secrets() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let key = watches(&app)
        .await
        .create_crypto_key(app.authed(pb::CreateCryptoKeyRequest { name: "k".into() }))
        .await
        .unwrap()
        .into_inner();
    let key_id = key.crypto_key.unwrap().id;
    let created = create_watch(
        &app,
        pb::Watch {
            basic_auth: Some(pb::BasicAuth {
                username: "user".into(),
                password: "basic-secret-1".into(),
                password_set: false,
            }),
            http_request_headers: vec![pb::HttpRequestHeader {
                name: "X-Tenant".into(),
                value: "acme".into(),
            }],
            schema: r#"{"phone": "${$.callerNumber}"}"#.into(),
            method: pb::WatchMethod::Put as i32,
            signature: Some(pb::WatchSignature {
                enabled: true,
                crypto_key_ids: vec![key_id.clone()],
            }),
            add_previous_data: true,
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;

    let fetched = watches(&app)
        .await
        .get_watch(app.authed(pb::GetWatchRequest {
            id: created.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .watch
        .unwrap();
    assert_eq!(fetched, created);
    let basic = fetched.basic_auth.unwrap();
    assert_eq!(
        (basic.username.as_str(), basic.password.as_str()),
        ("user", "")
    );
    assert!(basic.password_set);
    assert_eq!(fetched.method, pb::WatchMethod::Put as i32);
    assert_eq!(fetched.status, pb::WatchStatus::Enabled as i32);
    assert_eq!(fetched.http_request_headers[0].name, "x-tenant");
    assert_eq!(fetched.signature.unwrap().crypto_key_ids, vec![key_id]);
    assert!(fetched.add_previous_data);
    // Stored encrypted: the plaintext is nowhere in the row.
    let client = app.store.client().await.unwrap();
    let row = client
        .query_one("SELECT basic_password FROM watches", &[])
        .await
        .unwrap();
    let stored: Vec<u8> = row.get(0);
    assert!(!String::from_utf8_lossy(&stored).contains("basic-secret-1"));
    let listed = watches(&app)
        .await
        .list_watches(app.authed(pb::ListWatchesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.watches, vec![created]);
}

#[tokio::test]
async fn create_crypto_key_shows_the_secret_once() {
    let app = spawn_webhook_app().await;
    let created = watches(&app)
        .await
        .create_crypto_key(app.authed(pb::CreateCryptoKeyRequest {
            name: "primary".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let secret = STANDARD
        .decode(created.secret.strip_prefix("whsec_").expect("whsec_ form"))
        .unwrap();
    assert_eq!(secret.len(), 32);
    let listed = watches(&app)
        .await
        .list_crypto_keys(app.authed(pb::ListCryptoKeysRequest {}))
        .await
        .unwrap()
        .into_inner()
        .crypto_keys;
    assert_eq!(listed, vec![created.crypto_key.clone().unwrap()]);
    watches(&app)
        .await
        .delete_crypto_key(app.authed(pb::DeleteCryptoKeyRequest {
            id: created.crypto_key.unwrap().id,
        }))
        .await
        .unwrap();
    let listed = watches(&app)
        .await
        .list_crypto_keys(app.authed(pb::ListCryptoKeysRequest {}))
        .await
        .unwrap()
        .into_inner()
        .crypto_keys;
    assert!(listed.is_empty());
}

#[tokio::test]
async fn create_watch_names_every_bad_field() {
    let app = spawn_webhook_app().await;
    let status = watches(&app)
        .await
        .create_watch(app.authed(pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                address: String::new(),
                schema: r#"{"a": "${$.[}"}"#.into(),
                method: 42,
                http_request_headers: vec![pb::HttpRequestHeader {
                    name: "webhook-id".into(),
                    value: "x".into(),
                }],
                oauth2_auth: Some(pb::OAuth2Auth {
                    grant_type: "password".into(),
                    ..pb::OAuth2Auth::default()
                }),
                signature: Some(pb::WatchSignature {
                    enabled: true,
                    crypto_key_ids: vec![uuid::Uuid::new_v4().to_string()],
                }),
                ..pb::Watch::default()
            }),
        }))
        .await
        .unwrap_err();
    let fields = bad_fields(&status);
    for expected in [
        "watch.address",
        "watch.schema",
        "watch.method",
        "watch.http_request_headers[0].name",
        "watch.oauth2_auth.grant_type",
        "watch.oauth2_auth.client_id",
        "watch.oauth2_auth.access_token_url",
        "watch.signature.crypto_key_ids[0]",
    ] {
        assert!(
            fields.contains(&expected.to_owned()),
            "{expected} in {fields:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_signing_key_is_named_by_its_place_in_the_request() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let status = watches(&app)
        .await
        .create_watch(app.authed(pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                signature: Some(pb::WatchSignature {
                    enabled: true,
                    crypto_key_ids: vec!["not-an-id".into(), uuid::Uuid::new_v4().to_string()],
                }),
                ..watch_to(receiver.url("/hook"))
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        [
            "watch.signature.crypto_key_ids[0]",
            "watch.signature.crypto_key_ids[1]"
        ]
    );
}

#[tokio::test]
async fn create_watch_refuses_addresses_that_are_not_public() {
    let app = spawn_app_with(test_settings(), chrono_tz::Tz::UTC).await;
    for address in [
        "http://127.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://2130706433/hook",
        "http://10.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://[fd00::1]/hook",
        "http://localhost:8080/hook",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
    ] {
        let status = watches(&app)
            .await
            .create_watch(app.authed(pb::CreateWatchRequest {
                watch: Some(watch_to(address.into())),
            }))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), vec!["watch.address"], "{address}");
    }
    let status = watches(&app)
        .await
        .create_watch(app.authed(pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                oauth2_auth: Some(pb::OAuth2Auth {
                    grant_type: "client_credentials".into(),
                    client_id: "id".into(),
                    client_secret: "secret".into(),
                    access_token_url: "http://127.0.0.1/token".into(),
                    ..pb::OAuth2Auth::default()
                }),
                ..watch_to("https://93.184.215.14/hook".into())
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        vec!["watch.oauth2_auth.access_token_url"]
    );
}

#[tokio::test]
async fn another_tenants_watch_is_not_found() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = create_watch(&app, watch_to(receiver.url("/hook"))).await;
    let other = app.other_tenant("globex").await;
    let mut client = watches(&app).await;
    let get = client
        .get_watch(with_key(
            &other,
            pb::GetWatchRequest {
                id: watch.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    let update = client
        .update_watch(with_key(
            &other,
            pb::UpdateWatchRequest {
                watch: Some(pb::Watch {
                    id: watch.id.clone(),
                    name: "stolen".into(),
                    ..pb::Watch::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .unwrap_err();
    let log = client
        .list_deliveries(with_key(
            &other,
            pb::ListDeliveriesRequest {
                watch_id: watch.id.clone(),
                ..pb::ListDeliveriesRequest::default()
            },
        ))
        .await
        .unwrap_err();
    let delete = client
        .delete_watch(with_key(
            &other,
            pb::DeleteWatchRequest {
                id: watch.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    for status in [get, update, log, delete] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let listed = client
        .list_watches(with_key(&other, pb::ListWatchesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.watches.is_empty());
    // The other tenant's calls are not delivered to this tenant's watch either.
    let other_call = call(
        "+33 6 00 00 00 01",
        "+33 1 00 00 00 02",
        "2026-11-27T09:30:00",
        "UTC",
    );
    app.client()
        .await
        .create_call(with_key(
            &other,
            pb::CreateCallRequest {
                call: Some(other_call),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    new_call(&app, "+33 6 12 34 56 78").await;
    let received = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        received[0].json()["data"]["callerNumber"],
        "+33 6 12 34 56 78"
    );
}

#[tokio::test]
async fn update_watch_changes_the_masked_fields_and_keeps_stored_secrets() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = create_watch(
        &app,
        pb::Watch {
            basic_auth: Some(pb::BasicAuth {
                username: "user".into(),
                password: "secret".into(),
                password_set: false,
            }),
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    let updated = watches(&app)
        .await
        .update_watch(app.authed(pb::UpdateWatchRequest {
            watch: Some(pb::Watch {
                id: watch.id.clone(),
                name: "renamed".into(),
                address: "ignored: not in the mask".into(),
                ..pb::Watch::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .watch
        .unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.address, watch.address);
    assert!(updated.basic_auth.unwrap().password_set);
    new_call(&app, "+33 6 12 34 56 78").await;
    let received = receiver.wait_for(1).await;
    assert_eq!(
        received[0].header("authorization"),
        format!("Basic {}", STANDARD.encode("user:secret"))
    );
}

#[tokio::test]
async fn a_new_address_needs_the_stored_password_sent_again() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = create_watch(
        &app,
        pb::Watch {
            basic_auth: Some(pb::BasicAuth {
                username: "user".into(),
                password: "secret".into(),
                password_set: false,
            }),
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    let moved = |password: &str| pb::UpdateWatchRequest {
        watch: Some(pb::Watch {
            id: watch.id.clone(),
            address: receiver.url("/elsewhere"),
            basic_auth: Some(pb::BasicAuth {
                username: "user".into(),
                password: password.into(),
                password_set: false,
            }),
            ..pb::Watch::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["address".into(), "basic_auth".into()],
        }),
    };
    let refused = watches(&app)
        .await
        .update_watch(app.authed(moved("")))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&refused), vec!["watch.basic_auth.password"]);
    let updated = watches(&app)
        .await
        .update_watch(app.authed(moved("new-secret")))
        .await
        .unwrap()
        .into_inner()
        .watch
        .unwrap();
    assert_eq!(updated.address, receiver.url("/elsewhere"));
    assert!(updated.basic_auth.unwrap().password_set);
}
