//! The SSRF guard at connect time, replicas sharing leases, disabling, and a throughput
//! measurement.

use super::*;

#[tokio::test]
async fn addresses_resolving_to_loopback_are_refused_at_connect_time() {
    // Written while loopback was allowed; delivered by a replica that does not allow it.
    let writer = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let port = receiver.address.port();
    let mut watch_ids = Vec::new();
    for address in [
        format!("http://localhost:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
    ] {
        watch_ids.push(create_watch(&writer, watch_to(address)).await.id);
    }
    let database = writer.database.clone();
    let key = writer.key.clone();
    writer.stop().await;
    let mut strict = test_settings();
    strict.webhooks.webhook_poll_interval = Duration::from_millis(50);
    strict.webhooks.webhook_retry_schedule = parse_retry_schedule("0s").unwrap();
    let mut replica = spawn_app_on(strict, &database).await;
    replica.key = key;
    new_call(&replica, "+33 6 12 34 56 78").await;

    for watch_id in &watch_ids {
        let log = wait_for_deliveries(&replica, watch_id, 1).await;
        assert!(log[0].error.contains("may not reach"), "{}", log[0].error);
        assert_eq!(log[0].outcome, pb::DeliveryOutcome::Failed as i32);
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_second_replica_takes_over_when_the_first_stops_mid_delivery() {
    let first = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    // The first attempt hangs long enough for the first replica to be stopped during it.
    receiver.script([Reply {
        delay: Duration::from_secs(5),
        ..reply(200)
    }]);
    let watch = create_watch(&first, watch_to(receiver.url("/hook"))).await;
    for index in 0..3 {
        new_call(&first, &format!("+33 6 00 00 00 0{index}")).await;
    }
    receiver.wait_for(1).await;
    let database = first.database.clone();
    let key = first.key.clone();
    first.stop().await;

    let mut second = spawn_app_on(webhook_settings(), &database).await;
    second.key = key;
    let received = receiver.wait_for(4).await;
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    let delivered: Vec<_> = received[1..]
        .iter()
        .map(|request| request.json()["data"]["callerNumber"].clone())
        .collect();
    assert_eq!(
        delivered,
        [
            "+33 6 00 00 00 00",
            "+33 6 00 00 00 01",
            "+33 6 00 00 00 02"
        ]
    );
    let log = wait_for_deliveries(&second, &watch.id, 3).await;
    assert!(log
        .iter()
        .all(|d| d.outcome == pb::DeliveryOutcome::Succeeded as i32));
}

#[tokio::test]
async fn a_watch_failing_for_too_long_is_disabled_and_says_why() {
    let mut settings = webhook_settings();
    settings.webhooks.webhook_disable_after = Duration::from_millis(200);
    settings.webhooks.webhook_retry_schedule =
        parse_retry_schedule("0s,100ms,100ms,100ms,100ms,100ms").unwrap();
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;
    let receiver = Receiver::start().await;
    receiver.script((0..20).map(|_| reply(500)));
    let watch = create_watch(&app, watch_to(receiver.url("/hook"))).await;
    new_call(&app, "+33 6 12 34 56 78").await;

    let mut disabled = None;
    for _ in 0..200 {
        let current = watches(&app)
            .await
            .get_watch(app.authed(pb::GetWatchRequest {
                id: watch.id.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .watch
            .unwrap();
        if current.status == pb::WatchStatus::Disabled as i32 {
            disabled = Some(current);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let disabled = disabled.expect("the watch is disabled");
    assert!(
        disabled.disabled_reason.contains("HTTP 500"),
        "{}",
        disabled.disabled_reason
    );
    let attempts = receiver.received().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        receiver.received().len(),
        attempts,
        "a disabled watch sends nothing"
    );
}

#[tokio::test]
async fn an_enabled_watch_starts_from_changes_made_after_enabling() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = create_watch(
        &app,
        pb::Watch {
            status: pb::WatchStatus::Disabled as i32,
            ..watch_to(receiver.url("/hook"))
        },
    )
    .await;
    new_call(&app, "+33 6 00 00 00 01").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
    watches(&app)
        .await
        .update_watch(app.authed(pb::UpdateWatchRequest {
            watch: Some(pb::Watch {
                id: watch.id.clone(),
                status: pb::WatchStatus::Enabled as i32,
                ..pb::Watch::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["status".into()],
            }),
        }))
        .await
        .unwrap();
    new_call(&app, "+33 6 00 00 00 02").await;
    let received = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        received[0].json()["data"]["callerNumber"],
        "+33 6 00 00 00 02"
    );
}

#[tokio::test]
async fn a_lease_left_by_a_dead_replica_expires_and_delivery_resumes() {
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    let watch = create_watch(&app, watch_to(receiver.url("/hook"))).await;
    // A replica that died holding the lease: nobody renews it.
    let client = app.store.client().await.unwrap();
    client
        .execute(
            "UPDATE watches SET lease_owner = gen_random_uuid(),
                 lease_expire_time = now() + interval '3 seconds' WHERE id = $1::text::uuid",
            &[&watch.id],
        )
        .await
        .unwrap();
    new_call(&app, "+33 6 12 34 56 78").await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.received().is_empty(), "the lease is still live");
    let received = receiver.wait_for(1).await;
    assert_eq!(
        received[0].json()["data"]["callerNumber"],
        "+33 6 12 34 56 78"
    );
}

/// Throughput and commit-to-delivery delay to a local receiver. Not a pass/fail timing test:
/// run it with `cargo test --release --test api delivery_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; prints figures"]
async fn delivery_throughput_to_a_local_receiver() {
    const CALLS: usize = 1000;
    let app = spawn_webhook_app().await;
    let receiver = Receiver::start().await;
    create_watch(&app, watch_to(receiver.url("/hook"))).await;
    let started = std::time::Instant::now();
    let mut creates = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let client = app.client().await;
        let key = app.key.clone();
        creates.spawn(async move {
            let mut client = client;
            for index in (worker..CALLS).step_by(8) {
                let sent = call(
                    &format!("+33 6 00 {index:06}"),
                    "+33 1 23 45 67 89",
                    "2026-11-27T09:30:00",
                    "UTC",
                );
                client
                    .create_call(with_key(
                        &key,
                        pb::CreateCallRequest {
                            call: Some(sent),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .unwrap();
            }
        });
    }
    creates.join_all().await;
    let created = started.elapsed();
    let received = receiver.wait_for(CALLS).await;
    let delivered = started.elapsed();
    // The call's createTime is its transaction's start, just before it commits.
    let mut delays: Vec<i64> = received
        .iter()
        .map(|request| {
            let created: chrono::DateTime<chrono::Utc> = request.json()["data"]["createTime"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            (request.at - created).num_milliseconds()
        })
        .collect();
    delays.sort_unstable();
    println!(
        "{CALLS} calls created in {created:?}; all delivered after {delivered:?} \
         ({:.0} deliveries/s end to end); commit-to-delivery p50 {} ms, p99 {} ms, max {} ms",
        CALLS as f64 / delivered.as_secs_f64(),
        delays[delays.len() / 2],
        delays[delays.len() * 99 / 100],
        delays[delays.len() - 1],
    );
    let client = app.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT avg(duration_micros)::float8,
                 extract(epoch FROM max(attempt_time) - min(attempt_time))::float8
             FROM deliveries",
            &[],
        )
        .await
        .unwrap();
    let (http_micros, span_seconds): (f64, f64) = (row.get(0), row.get(1));
    println!(
        "per delivery: HTTP request {:.2} ms on average, {:.2} ms between attempts",
        http_micros / 1000.0,
        span_seconds * 1000.0 / (CALLS - 1) as f64
    );
    // Then, on an idle watch: one call at a time.
    let mut idle_delays = Vec::new();
    for index in 0..20 {
        let created = new_call(&app, &format!("+33 7 00 00 00 {index:02}")).await;
        let received = receiver.wait_for(CALLS + index + 1).await;
        let request = received.last().unwrap();
        assert_eq!(request.json()["data"]["id"], created.id);
        let create_time = created.create_time.unwrap();
        let create_time =
            chrono::DateTime::from_timestamp(create_time.seconds, create_time.nanos as u32)
                .unwrap();
        idle_delays.push((request.at - create_time).num_microseconds().unwrap() as f64 / 1000.0);
    }
    idle_delays.sort_by(f64::total_cmp);
    println!(
        "idle watch, one call at a time: commit-to-delivery p50 {:.1} ms, max {:.1} ms",
        idle_delays[10], idle_delays[19]
    );
}
