//! The hostile neighbour: tenant X does everything issue 13 found harmful, at once, while
//! tenant Y's stream receives every one of Y's changes in order and Y's watch delivers them.

use std::time::Duration;

use callsd::{
    config::TenantLimitSettings,
    pb::calls::v1::{self as pb, CallEventType},
};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tonic::Code;

use super::{webhook_settings, Receiver};
use crate::{
    feed::next_change,
    helpers::{call, spawn_app_with, with_key, TestApp},
    hostile::store_an_unreadable_change,
};

const NEIGHBOUR_CALLS: usize = 20;

/// Everything tenant X tries; each attempt must be refused cleanly (or shed), never crash.
async fn attack(app: &TestApp) {
    let client = app.client().await;
    let mut watches = super::watches(app).await;

    // Connections that never finish the HTTP/2 handshake, held for the whole attack.
    let mut silent = Vec::new();
    for index in 0..100 {
        let mut connection = TcpStream::connect(app.address).await.expect("connects");
        if index % 2 == 0 {
            connection
                .write_all(b"PRI * HTTP/2.0\r\n")
                .await
                .expect("half a preface");
        }
        silent.push(connection);
    }

    // Templates that once overflowed the stack or ran for seconds.
    let deep = format!("${{$[?{}@.a{}]}}", "(".repeat(2000), ")".repeat(2000));
    let exponential = format!("${{${}{}}}", "[?@".repeat(20), "]".repeat(20));
    let huge = "${$}".repeat(9000);
    for schema in [deep, exponential, huge] {
        let refused = watches
            .preview_watch_payload(app.authed(pb::PreviewWatchPayloadRequest {
                schema,
                ..pb::PreviewWatchPayloadRequest::default()
            }))
            .await
            .expect_err("a hostile template is refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }

    // Values past every limit, NUL bytes, starts no timestamp can carry.
    let refused = watches
        .create_watch(app.authed(pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                name: "x\0".into(),
                address: "https://hooks.example.com/".repeat(1000),
                signature: Some(pb::WatchSignature {
                    enabled: true,
                    crypto_key_ids: vec!["k".into(); 100_000],
                }),
                ..pb::Watch::default()
            }),
        }))
        .await
        .expect_err("a hostile watch is refused");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    for (date_time, zone) in [
        ("0001-01-01T00:00:00", "Europe/Paris"),
        ("9999-12-31T23:00:00", "America/New_York"),
        ("2026-11-27T09:30:00", &*"Z".repeat(100_000)),
    ] {
        let refused = client
            .clone()
            .create_call(app.authed(pb::CreateCallRequest {
                call: Some(call("+33 6", "+33 1", date_time, zone)),
                request_id: String::new(),
            }))
            .await
            .expect_err("a hostile call is refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }

    // A change of X's that no reader can decode.
    let victim = app
        .create(call("+33 6 00", "+33 1 00", "2026-11-27T09:30:00", "UTC"))
        .await;
    store_an_unreadable_change(app, &victim.id).await;

    // A flood far past X's share: each request is answered or shed, none waits.
    let flood = (0..2_000).map(|_| {
        let mut client = client.clone();
        let request = app.authed(pb::ListCallsRequest {
            page_size: 1000,
            ..pb::ListCallsRequest::default()
        });
        async move { client.list_calls(request).await }
    });
    let mut shed = 0;
    for result in futures::future::join_all(flood).await {
        if let Err(status) = result {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            shed += 1;
        }
    }
    assert!(shed > 0, "the flood went past X's share");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_tenant_stops_neither_its_neighbours_feed_nor_its_watch() {
    let mut settings = webhook_settings();
    settings.tenant_limits = TenantLimitSettings {
        tenant_rate: 500.0,
        tenant_burst: 100,
        tenant_max_in_flight: 4,
        ..settings.tenant_limits
    };
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let neighbour = app.other_tenant("neighbour").await;
    let receiver = Receiver::start().await;
    super::watches(&app)
        .await
        .create_watch(with_key(
            &neighbour,
            pb::CreateWatchRequest {
                watch: Some(super::watch_to(receiver.url("/neighbour"))),
            },
        ))
        .await
        .expect("the neighbour's watch is created");
    let mut neighbour_events = app
        .client()
        .await
        .watch_calls(with_key(&neighbour, pb::WatchCallsRequest::default()))
        .await
        .expect("the neighbour's stream opens")
        .into_inner();

    let neighbour_writes = async {
        let mut client = app.client().await;
        let mut created = Vec::new();
        for index in 0..NEIGHBOUR_CALLS {
            let call = call(
                &format!("+1 555 01{index:02}"),
                "+1 555 0199",
                "2026-11-27T09:30:00",
                "UTC",
            );
            let answer = client
                .create_call(with_key(
                    &neighbour,
                    pb::CreateCallRequest {
                        call: Some(call),
                        request_id: String::new(),
                    },
                ))
                .await
                .expect("the neighbour is served throughout");
            created.push(answer.into_inner().call.expect("the call").id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        created
    };
    let (created, ()) = tokio::join!(neighbour_writes, attack(&app));

    for id in &created {
        let event = next_change(&mut neighbour_events).await;
        assert_eq!(event.r#type, CallEventType::Created as i32);
        assert_eq!(&event.call.expect("a call").id, id, "in commit order");
    }
    let delivered = receiver.wait_for(NEIGHBOUR_CALLS).await;
    let delivered_ids: Vec<String> = delivered
        .iter()
        .map(|received| received.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered_ids, created, "every change delivered, in order");

    // The process never went down: X itself is served again once its flood is over.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.list(pb::ListCallsRequest::default())
        .await
        .expect("X is served after its flood");
}

#[tokio::test]
async fn a_watch_logs_an_unreadable_change_as_failed_and_delivers_the_next_one() {
    let app = super::spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = super::create_watch(&app, super::watch_to(receiver.url("/hook"))).await;
    let first = super::new_call(&app, "+33 6 00 00 00 01").await;
    receiver.wait_for(1).await;
    store_an_unreadable_change(&app, &first.id).await;
    let next = super::new_call(&app, "+33 6 00 00 00 02").await;

    let log = super::wait_for_deliveries(&app, &watch.id, 3).await;
    let summary: Vec<(&str, i32)> = log
        .iter()
        .map(|delivery| (delivery.event_type.as_str(), delivery.outcome))
        .collect();
    assert_eq!(
        summary,
        [
            ("call.created", pb::DeliveryOutcome::Succeeded as i32),
            ("call.unreadable", pb::DeliveryOutcome::Failed as i32),
            ("call.created", pb::DeliveryOutcome::Succeeded as i32),
        ]
    );
    assert!(
        log[1].error.contains("cannot be read"),
        "{:?}",
        log[1].error
    );
    let received = receiver.wait_for(2).await;
    assert_eq!(received[1].json()["data"]["id"], next.id.as_str());
}
