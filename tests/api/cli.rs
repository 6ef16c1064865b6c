//! The operator commands of the `callsd` binary.

use callsd::pb::calls::v1 as pb;
use tonic::Code;

use crate::helpers::{fresh_database, run_callsd, spawn_app_on, test_settings, with_key};

#[tokio::test]
async fn tenant_and_key_commands_print_only_the_key_on_stdout_and_keys_work_until_revoked() {
    let database = fresh_database().await;
    let (migrated, _, stderr) = run_callsd(&database, &["migrate"]);
    assert!(migrated, "{stderr}");

    let (created, stdout, stderr) = run_callsd(
        &database,
        &["tenant", "create", "acme", "--time-zone", "Europe/Paris"],
    );
    assert!(created, "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout holds the key alone: {stdout:?}"
    );
    let first_key = stdout.trim().to_owned();
    assert!(first_key.starts_with("csk_"));
    assert!(stderr.contains("acme") && !stderr.contains(&first_key));

    let (created, stdout, stderr) = run_callsd(&database, &["key", "create", "acme"]);
    assert!(created, "{stderr}");
    let second_key = stdout.lines().last().unwrap().trim().to_owned();
    let key_id = stderr
        .split_whitespace()
        .find_map(|word| uuid::Uuid::parse_str(word).ok())
        .expect("stderr names the key id");

    let app = spawn_app_on(test_settings(), &database).await;
    let mut client = app.client().await;
    for key in [&first_key, &second_key] {
        client
            .list_calls(with_key(key, pb::ListCallsRequest::default()))
            .await
            .expect("key works");
    }
    let created = client
        .create_call(with_key(
            &first_key,
            pb::CreateCallRequest {
                call: Some(crate::helpers::call("1", "2", "2026-07-01T12:00:00", "")),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .call
        .unwrap();
    assert_eq!(
        created.start.unwrap().time_zone,
        "Europe/Paris",
        "the tenant's zone applies"
    );

    let (revoked, _, stderr) = run_callsd(&database, &["key", "revoke", &key_id.to_string()]);
    assert!(revoked, "{stderr}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match client
            .list_calls(with_key(&second_key, pb::ListCallsRequest::default()))
            .await
        {
            Err(status) if status.code() == Code::Unauthenticated => break,
            _ if tokio::time::Instant::now() > deadline => panic!("revoked key still works"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    client
        .list_calls(with_key(&first_key, pb::ListCallsRequest::default()))
        .await
        .expect("other key still works");

    let (duplicate, _, stderr) = run_callsd(&database, &["tenant", "create", "acme"]);
    assert!(!duplicate && stderr.contains("already exists"), "{stderr}");
    let (bad_zone, _, stderr) = run_callsd(
        &database,
        &["tenant", "create", "x", "--time-zone", "Nowhere/Land"],
    );
    assert!(!bad_zone && stderr.contains("IANA"), "{stderr}");
    app.stop().await;
}

#[test]
fn help_documents_every_setting_with_its_environment_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_callsd"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "DATABASE_URL",
        "CALLSD_DATA_DIR",
        "CALLSD_LISTEN",
        "CALLSD_METRICS_LISTEN",
        "CALLSD_CORS_ALLOWED_ORIGINS",
        "CALLSD_DB_POOL_SIZE",
        "CALLSD_WORKER_THREADS",
        "CALLSD_SHUTDOWN_DRAIN",
        "CALLSD_HEARTBEAT_INTERVAL",
        "CALLSD_CHANGE_RETENTION",
        "CALLSD_LOG_FORMAT",
        "CALLSD_HANDSHAKE_TIMEOUT",
        "CALLSD_MAX_CONNECTIONS",
        "CALLSD_MAX_STREAMS_PER_CONNECTION",
        "CALLSD_HTTP2_KEEPALIVE_INTERVAL",
        "CALLSD_HTTP2_KEEPALIVE_TIMEOUT",
        "CALLSD_TENANT_RATE",
        "CALLSD_TENANT_BURST",
        "CALLSD_TENANT_MAX_IN_FLIGHT",
        "CALLSD_TENANT_MAX_STREAMS",
        "CALLSD_TENANT_MAX_WATCHES",
    ] {
        assert!(help.contains(variable), "--help lacks {variable}:\n{help}");
    }
}

#[test]
fn help_shows_the_multi_host_database_url_of_a_highly_available_postgresql() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_callsd"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("@HOST1:PORT1,HOST2:PORT2/DATABASE?target_session_attrs=read-write"),
        "{help}"
    );
}
