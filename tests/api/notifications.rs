//! The process's one LISTEN connection: it alone wakes the feed, clears the auth cache and
//! wakes the webhook worker, and after it is lost what it missed is caught up.
//!
//! Polls and the key cache are set to a minute here, so anything that happens within seconds
//! was woken by the listener.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use callsd::{
    auth,
    config::ServeSettings,
    pb::calls::v1::{self as pb, watch_service_client::WatchServiceClient, CallEventType},
    store::{ApiKeyCreated, LISTENER_APPLICATION_NAME},
    webhooks::parse_allowed_cidrs,
};
use tonic::{Code, Streaming};

use crate::{
    feed::{next_event, watch},
    helpers::{call, spawn_app_with, test_settings, with_key, TestApp},
};

/// Longer than any wait below.
const NOT_POLLED: Duration = Duration::from_secs(120);
/// What "promptly" means: well under a poll, with room for a loaded machine.
const PROMPTLY: Duration = Duration::from_secs(30);
/// How long a (re)connecting listener may take on a loaded machine.
const CONNECTING: Duration = Duration::from_secs(30);

fn listener_only_settings() -> ServeSettings {
    let mut settings = test_settings();
    settings.feed_poll_interval = NOT_POLLED;
    settings.auth_cache_ttl = NOT_POLLED;
    settings.webhooks.webhook_poll_interval = NOT_POLLED;
    settings.webhooks.webhook_allowed_cidrs = parse_allowed_cidrs("127.0.0.0/8").unwrap();
    settings
}

/// An HTTP receiver that counts the webhooks it gets and answers 200.
struct Receiver {
    url: String,
    received: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received = Arc::new(AtomicUsize::new(0));
        let counter = received.clone();
        let router = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver { url, received }
    }

    async fn wait_for(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + PROMPTLY;
        while self.received.load(Ordering::SeqCst) < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "webhook {count} was not delivered promptly"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The app with a watch to `receiver`, a WatchCalls stream, and a connection to its database.
async fn app_watched_by_all_three(
    receiver: &Receiver,
) -> (
    TestApp,
    Streaming<pb::WatchCallsResponse>,
    tokio_postgres::Client,
) {
    let app = spawn_app_with(listener_only_settings(), chrono_tz::Tz::UTC).await;
    WatchServiceClient::connect(format!("http://{}", app.address))
        .await
        .unwrap()
        .create_watch(app.authed(pb::CreateWatchRequest {
            watch: Some(pb::Watch {
                address: receiver.url.clone(),
                name: "listener".into(),
                ..pb::Watch::default()
            }),
        }))
        .await
        .expect("watch is created");
    let events = watch(&app, pb::WatchCallsRequest::default()).await;
    let (admin, connection) = app.database.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    (app, events, admin)
}

/// The app's backends whose statement is a LISTEN: (pid, application_name).
async fn listening_backends(admin: &tokio_postgres::Client) -> Vec<(i32, String)> {
    admin
        .query(
            "SELECT pid, application_name FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN %'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Waits for a listener other than `previous` and checks it is the only one; returns its pid.
async fn the_one_listener(admin: &tokio_postgres::Client, previous: Option<i32>) -> i32 {
    let deadline = tokio::time::Instant::now() + CONNECTING;
    loop {
        let listening = listening_backends(admin).await;
        if let [(pid, _)] = listening[..] {
            if Some(pid) != previous {
                // Give a second LISTEN loop, if there were one, the time to show up.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let listening = listening_backends(admin).await;
                assert_eq!(
                    listening,
                    [(pid, LISTENER_APPLICATION_NAME.to_owned())],
                    "one LISTEN connection per process"
                );
                return pid;
            }
        }
        assert!(
            listening.len() <= 1,
            "one LISTEN connection per process: {listening:?}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new listener: {listening:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A second key for the app's tenant, used once so the app caches it.
async fn cached_key(app: &TestApp) -> ApiKeyCreated {
    let created = auth::create_api_key(&app.store, app.tenant_id)
        .await
        .unwrap();
    app.client()
        .await
        .list_calls(with_key(&created.key, pb::ListCallsRequest::default()))
        .await
        .expect("the new key works and is now cached");
    created
}

async fn refused_promptly(app: &TestApp, key: &str) {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let listed = app
            .client()
            .await
            .list_calls(with_key(key, pb::ListCallsRequest::default()))
            .await;
        match listed {
            Err(status) if status.code() == Code::Unauthenticated => return,
            _ if tokio::time::Instant::now() > deadline => panic!("revoked key still accepted"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn created_promptly(events: &mut Streaming<pb::WatchCallsResponse>, id: &str) {
    let change = tokio::time::timeout(PROMPTLY, async {
        loop {
            let event = next_event(events).await;
            if event.r#type != CallEventType::Heartbeat as i32 {
                return event;
            }
        }
    })
    .await
    .expect("the stream hears of the change promptly");
    assert_eq!(change.r#type, CallEventType::Created as i32);
    assert_eq!(change.call.unwrap().id, id);
}

#[tokio::test]
async fn one_listen_connection_wakes_the_feed_the_auth_cache_and_webhooks() {
    let receiver = Receiver::start().await;
    let (app, mut events, admin) = app_watched_by_all_three(&receiver).await;
    the_one_listener(&admin, None).await;
    let key = cached_key(&app).await;

    let created = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    created_promptly(&mut events, &created.id).await;
    receiver.wait_for(1).await;
    assert!(app.store.revoke_api_key(key.key_id).await.unwrap());
    refused_promptly(&app, &key.key).await;
    assert_eq!(listening_backends(&admin).await.len(), 1);
}

#[tokio::test]
async fn what_a_killed_listener_missed_is_caught_up_and_it_listens_again() {
    let receiver = Receiver::start().await;
    let (app, mut events, admin) = app_watched_by_all_three(&receiver).await;
    let killed = the_one_listener(&admin, None).await;
    let key = cached_key(&app).await;
    let database = app.database.get_dbname().unwrap().to_owned();

    // Keep the listener from coming back while the changes are made, so their notifications
    // go unheard and only the catch-up after the reconnect can deliver them. Requests use
    // connections the pools already hold. (A database cannot close itself to new connections
    // from within: this is done from the server's maintenance database.)
    let (server, connection) = app
        .database
        .clone()
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    server
        .batch_execute(&format!(
            "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&killed])
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + CONNECTING;
    while !listening_backends(&admin).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener never exited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missed = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    assert!(app.store.revoke_api_key(key.key_id).await.unwrap());
    assert!(
        listening_backends(&admin).await.is_empty(),
        "nobody listened to those changes"
    );
    server
        .batch_execute(&format!(
            "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();

    the_one_listener(&admin, Some(killed)).await;
    created_promptly(&mut events, &missed.id).await;
    receiver.wait_for(1).await;
    refused_promptly(&app, &key.key).await;

    // And the new connection is heard as the old one was.
    let key = cached_key(&app).await;
    let created = app
        .create(call("3", "4", "2026-11-01T13:00:00", "UTC"))
        .await;
    created_promptly(&mut events, &created.id).await;
    receiver.wait_for(2).await;
    assert!(app.store.revoke_api_key(key.key_id).await.unwrap());
    refused_promptly(&app, &key.key).await;
    assert_eq!(listening_backends(&admin).await.len(), 1);
}

/// A change committed while an older transaction is still open (any on the server: parallel
/// tests in other databases, other tenants' writers) is not due yet when its notification
/// arrives; the webhook goes once that transaction ends, not at the next poll.
#[tokio::test]
async fn a_webhook_hidden_behind_an_older_open_transaction_goes_when_it_ends() {
    let receiver = Receiver::start().await;
    let (app, mut events, _admin) = app_watched_by_all_three(&receiver).await;
    let (older, connection) = app.database.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    older
        .batch_execute("BEGIN; SELECT pg_current_xact_id();")
        .await
        .unwrap();

    let created = app
        .create(call("1", "2", "2026-11-01T12:00:00", "UTC"))
        .await;
    // Long enough for the notification to have been heard and found nothing due.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received.load(Ordering::SeqCst), 0);
    older.batch_execute("COMMIT").await.unwrap();

    created_promptly(&mut events, &created.id).await;
    receiver.wait_for(1).await;
}
