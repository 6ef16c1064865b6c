//! Overload: requests past the in-flight limit are refused one by one, and the connection
//! carrying them survives.

use std::collections::{BTreeMap, BTreeSet};

use callsd::pb::calls::v1 as pb;
use tonic::Code;

use crate::helpers::{reason, spawn_app_with, test_settings, TestApp};

/// A burst of unary calls on one HTTP/2 connection, far past the in-flight limit: each gets
/// an answer or RESOURCE_EXHAUSTED. With h2's defaults the server closed such a connection
/// (GOAWAY ENHANCE_YOUR_CALM, too many small DATA frames not yet read), failing thousands of
/// calls with a transport error (Unknown) in one of two runs of this test.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_past_the_in_flight_limit_is_shed_call_by_call_on_one_connection() {
    let settings = callsd::config::ServeSettings {
        max_in_flight: 2,
        ..test_settings()
    };
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;

    let (codes, refusal_reasons) = get_calls_at_once(&app, 6_000).await;

    assert!(
        codes
            .keys()
            .all(|code| code == "NotFound" || code == "ResourceExhausted"),
        "only answers and shed calls: {codes:?}"
    );
    assert!(codes.contains_key("ResourceExhausted"), "{codes:?}");
    assert_eq!(
        refusal_reasons,
        BTreeSet::from(["OVERLOADED".to_owned()]),
        "{codes:?}"
    );
}

/// The same kind of burst on a server that allows each connection fewer streams than its
/// in-flight limit (CALLSD_MAX_STREAMS_PER_CONNECTION): HTTP/2 makes the client hold back the
/// rest, so nothing is refused and every call gets its answer, in turn.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_with_fewer_streams_than_the_in_flight_limit_waits_instead_of_being_refused() {
    let settings = callsd::config::ServeSettings {
        max_in_flight: 2,
        max_streams_per_connection: 2,
        ..test_settings()
    };
    let app = spawn_app_with(settings, chrono_tz::Tz::UTC).await;

    let (codes, _) = get_calls_at_once(&app, 1_000).await;

    assert_eq!(
        codes,
        BTreeMap::from([("NotFound".to_owned(), 1_000)]),
        "every call answered, none refused"
    );
}

/// `count` GetCalls of ids that do not exist, sent at once over one connection: how many
/// ended with each code, and the ErrorInfo reasons of the RESOURCE_EXHAUSTED ones.
async fn get_calls_at_once(
    app: &TestApp,
    count: usize,
) -> (BTreeMap<String, usize>, BTreeSet<String>) {
    let client = app.client().await;
    let calls = (0..count).map(|_| {
        let mut client = client.clone();
        let request = app.authed(pb::GetCallRequest {
            id: uuid::Uuid::now_v7().to_string(),
        });
        async move { client.get_call(request).await }
    });
    let (mut codes, mut refusal_reasons) = (BTreeMap::<String, usize>::new(), BTreeSet::new());
    for result in futures::future::join_all(calls).await {
        let code = match result {
            Ok(_) => Code::Ok,
            Err(status) => {
                if status.code() == Code::ResourceExhausted {
                    refusal_reasons.insert(reason(&status));
                }
                status.code()
            }
        };
        *codes.entry(format!("{code:?}")).or_default() += 1;
    }
    (codes, refusal_reasons)
}
