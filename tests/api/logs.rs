//! What `callsd` writes for the people and the collectors reading its logs: no colour codes
//! off a terminal, a fatal error once, no PostgreSQL chatter on a routine start, and a first
//! start that says which printed value is the key and where it is kept.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::{
    binary::{collect, free_port},
    helpers::{connection_string, fresh_database},
};

fn callsd(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callsd"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .output()
        .expect("callsd runs")
}

#[tokio::test]
async fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let database = connection_string(&fresh_database().await);
    let output = callsd(&database, &[], &["migrate"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("applying migration"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn a_fatal_error_is_reported_once_in_text_and_in_json() {
    let output = callsd("not-a-url", &[], &["migrate"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(
        stderr.matches("DATABASE_URL is neither").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");

    let output = callsd("not-a-url", &[("CALLSD_LOG_FORMAT", "json")], &["migrate"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(
        stderr.matches("DATABASE_URL is neither").count(),
        1,
        "{stderr}"
    );
    for line in stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("{line:?} is not JSON: {error}"));
        assert_eq!(event["level"], "ERROR", "{line}");
    }
}

#[tokio::test]
async fn a_restart_logs_no_postgresql_notice_about_the_existing_schema() {
    let database = connection_string(&fresh_database().await);
    assert!(callsd(&database, &[], &["migrate"]).status.success());
    let output = callsd(&database, &[], &["migrate"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("NOTICE") && !stderr.contains("already exists"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_embedded_start_tells_the_key_id_from_the_key_and_where_the_key_is_kept() {
    let data_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("first-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_callsd"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("CALLSD_DATA_DIR", &data_dir)
        .env("CALLSD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("CALLSD_METRICS_LISTEN", "off")
        .env("CALLSD_SHUTDOWN_DRAIN", "0s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("callsd starts");
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(90);
    while !stderr.lock().unwrap().contains("serving gRPC") {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("callsd exited ({status}):\n{}", stderr.lock().unwrap());
        }
        assert!(Instant::now() < deadline, "{}", stderr.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", stderr.lock().unwrap());

    let key = stdout.lock().unwrap().trim().to_owned();
    let stderr = stderr.lock().unwrap().clone();
    let key_file = data_dir.join("default-api-key");
    assert!(key.starts_with("csk_"), "stdout holds the key: {key:?}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key);
    let announcement = stderr
        .lines()
        .find(|line| line.contains("created tenant 'default'"))
        .unwrap_or_else(|| panic!("no announcement:\n{stderr}"));
    let key_id = announcement
        .split(|c: char| c.is_whitespace() || c == ',' || c == ')')
        .find_map(|word| uuid::Uuid::parse_str(word).ok())
        .expect("the announcement names the key id");
    assert!(
        announcement.contains(&format!("key id {key_id}"))
            && announcement.contains(&key_file.display().to_string()),
        "{announcement}"
    );
    assert!(
        !stderr.contains(&key),
        "the key stays off the logs:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
