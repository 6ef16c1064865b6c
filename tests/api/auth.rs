//! API keys and tenant isolation.

use callsd::pb::calls::v1 as pb;
use tonic::{Code, Request};

use crate::helpers::{call, reason, spawn_app, with_key};

#[tokio::test]
async fn missing_malformed_and_unknown_keys_are_refused_alike() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let missing = client
        .list_calls(Request::new(pb::ListCallsRequest::default()))
        .await
        .unwrap_err();
    let unknown = client
        .list_calls(with_key(
            "csk_not-a-real-key",
            pb::ListCallsRequest::default(),
        ))
        .await
        .unwrap_err();
    let mut basic = Request::new(pb::ListCallsRequest::default());
    basic
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    let wrong_scheme = client.list_calls(basic).await.unwrap_err();
    for status in [&missing, &unknown, &wrong_scheme] {
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), missing.message());
        assert_eq!(reason(status), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_despite_the_cache() {
    let app = spawn_app().await;
    app.list(pb::ListCallsRequest::default())
        .await
        .expect("the key works and is now cached");
    let key_id: uuid::Uuid = {
        let client = app.store.client().await.unwrap();
        client
            .query_one("SELECT id FROM api_keys", &[])
            .await
            .unwrap()
            .get(0)
    };
    assert!(app
        .store
        .revoke_api_key(callsd::domain::ApiKeyId::from(key_id))
        .await
        .unwrap());

    // The revocation reaches the server through NOTIFY, not through the 30 s cache expiry.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match app.list(pb::ListCallsRequest::default()).await {
            Err(status) if status.code() == Code::Unauthenticated => break,
            _ if tokio::time::Instant::now() > deadline => panic!("revoked key still accepted"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn another_tenants_calls_are_invisible_and_untouchable() {
    let app = spawn_app().await;
    let ours = app
        .create(call("111", "222", "2026-11-27T09:30:00", "UTC"))
        .await;
    let other_key = app.other_tenant("globex").await;
    let mut client = app.client().await;

    let get = client
        .get_call(with_key(
            &other_key,
            pb::GetCallRequest {
                id: ours.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let update = client
        .update_call(with_key(
            &other_key,
            pb::UpdateCallRequest {
                call: Some(pb::Call {
                    id: ours.id.clone(),
                    external_id: "hijack".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(update.code(), Code::NotFound);
    let delete = client
        .delete_call(with_key(
            &other_key,
            pb::DeleteCallRequest {
                id: ours.id.clone(),
                etag: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(delete.code(), Code::NotFound);
    let their_list = client
        .list_calls(with_key(
            &other_key,
            pb::ListCallsRequest {
                search: "111".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(their_list.calls.is_empty());

    let still_ours = app
        .client()
        .await
        .get_call(app.authed(pb::GetCallRequest {
            id: ours.id.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(still_ours.into_inner().call.unwrap(), ours);
}
