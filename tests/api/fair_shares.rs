//! Fair shares: a tenant past its rate, its streams or its watches is refused with
//! RESOURCE_EXHAUSTED, a reason and a retry delay, while another tenant is served as usual.

use callsd::{
    config::{ServeSettings, TenantLimitSettings},
    pb::calls::v1::{self as pb, watch_service_client::WatchServiceClient},
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::{reason, spawn_app_with, test_settings, with_key, TestApp};

fn limited(limits: TenantLimitSettings) -> ServeSettings {
    ServeSettings {
        tenant_limits: limits,
        ..test_settings()
    }
}

fn defaults() -> TenantLimitSettings {
    test_settings().tenant_limits
}

async fn get_unknown_call(app: &TestApp, key: &str) -> Status {
    app.client()
        .await
        .get_call(with_key(
            key,
            pb::GetCallRequest {
                id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_tenant_past_its_rate_is_told_when_to_retry_and_another_tenant_is_not() {
    let app = spawn_app_with(
        limited(TenantLimitSettings {
            tenant_rate: 1.0,
            tenant_burst: 5,
            ..defaults()
        }),
        chrono_tz::Tz::UTC,
    )
    .await;
    let neighbour = app.other_tenant("neighbour").await;
    let mut refused = None;
    for _ in 0..20 {
        let status = get_unknown_call(&app, &app.key).await;
        if status.code() == Code::ResourceExhausted {
            refused = Some(status);
            break;
        }
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let refused = refused.expect("the sixth request within a second is refused");
    assert_eq!(reason(&refused), "TENANT_RATE_LIMITED");
    let retry = refused.get_details_retry_info().expect("a RetryInfo");
    let delay = retry.retry_delay.expect("a delay");
    assert!(delay.as_millis() > 0 && delay.as_secs() <= 1, "{delay:?}");

    let status = get_unknown_call(&app, &neighbour).await;
    assert_eq!(
        status.code(),
        Code::NotFound,
        "the neighbour is served: {status:?}"
    );
}

#[tokio::test]
async fn a_tenant_at_its_stream_limit_cannot_open_another_until_one_closes() {
    let app = spawn_app_with(
        limited(TenantLimitSettings {
            tenant_max_streams: 2,
            ..defaults()
        }),
        chrono_tz::Tz::UTC,
    )
    .await;
    let neighbour = app.other_tenant("neighbour").await;
    let open = |key: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .watch_calls(with_key(&key, pb::WatchCallsRequest::default()))
                .await
        }
    };
    let first = open(app.key.clone()).await.expect("first stream opens");
    let _second = open(app.key.clone()).await.expect("second stream opens");
    let refused = open(app.key.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "TENANT_STREAM_LIMIT");
    open(neighbour).await.expect("the neighbour's stream opens");

    drop(first);
    // The server notices the stream is gone when it next tries to send; the heartbeat or
    // the client's reset frees the slot shortly.
    let reopened = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            match open(app.key.clone()).await {
                Ok(stream) => return stream,
                Err(status) => assert_eq!(reason(&status), "TENANT_STREAM_LIMIT"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(reopened.is_ok(), "a closed stream frees its slot");
}

#[tokio::test]
async fn a_tenant_at_its_watch_limit_cannot_create_another() {
    let app = spawn_app_with(
        limited(TenantLimitSettings {
            tenant_max_watches: 1,
            ..defaults()
        }),
        chrono_tz::Tz::UTC,
    )
    .await;
    let mut watches = WatchServiceClient::connect(format!("http://{}", app.address))
        .await
        .expect("client connects");
    let watch = || pb::CreateWatchRequest {
        watch: Some(pb::Watch {
            address: "https://hooks.example.com/calls".into(),
            ..pb::Watch::default()
        }),
    };
    watches
        .create_watch(app.authed(watch()))
        .await
        .expect("the first watch is created");
    let refused = watches.create_watch(app.authed(watch())).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "TENANT_WATCH_LIMIT");
    let listed = watches
        .list_watches(app.authed(pb::ListWatchesRequest::default()))
        .await
        .expect("watches list")
        .into_inner();
    assert_eq!(listed.watches.len(), 1, "nothing more was stored");
}
