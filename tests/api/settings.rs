//! Settings mistakes are the operator's: the binary says what is wrong and what it expects,
//! without echoing a password; listen addresses take host names and an empty host.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::{
    binary::{collect, free_port, scrape},
    helpers::{connection_string, fresh_database},
};

fn callsd(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callsd"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .output()
        .expect("callsd runs")
}

#[test]
fn a_database_url_that_is_not_one_says_what_it_should_look_like() {
    let output = callsd("not-a-url", &["migrate"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("DATABASE_URL is neither a PostgreSQL URL")
            && stderr.contains("postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
        "{stderr}"
    );
    assert!(!stderr.contains("internal error"), "{stderr}");
}

#[test]
fn a_refused_connection_names_host_and_port_once_and_never_the_password() {
    let port = free_port(); // nothing listens there once the probe is closed
    let output = callsd(
        &format!("postgres://callsd:hunter2@127.0.0.1:{port}/calls"),
        &["migrate"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let address = format!("127.0.0.1:{port}");
    assert_eq!(stderr.matches(&address).count(), 1, "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        stderr.matches("error connecting to server").count() <= 1,
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_listen_address_without_a_port_says_what_it_expects() {
    let output = Command::new(env!("CARGO_BIN_EXE_callsd"))
        .args(["serve", "--listen", "localhost"])
        .output()
        .expect("callsd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("HOST:PORT") && stderr.contains(":50051 for every interface"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_addresses_take_a_host_name_and_an_empty_host_for_every_interface() {
    let database = fresh_database().await;
    let (grpc_port, metrics_port) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_callsd"))
        .args(["serve", "--listen", &format!("localhost:{grpc_port}")])
        .args(["--metrics-listen", &format!(":{metrics_port}")])
        .env("DATABASE_URL", connection_string(&database))
        .env("CALLSD_SHUTDOWN_DRAIN", "0s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("callsd starts");
    let stderr = collect(child.stderr.take().unwrap());
    let grpc = format!("address=127.0.0.1:{grpc_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stderr.lock().unwrap().contains(&grpc) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("callsd exited ({status}):\n{}", stderr.lock().unwrap());
        }
        assert!(Instant::now() < deadline, "{}", stderr.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stderr
            .lock()
            .unwrap()
            .contains(&format!("address=0.0.0.0:{metrics_port}")),
        "{}",
        stderr.lock().unwrap()
    );
    scrape(&format!("127.0.0.1:{metrics_port}")).await;
    tokio::net::TcpStream::connect(("127.0.0.1", grpc_port))
        .await
        .expect("gRPC answers on localhost's IPv4 address");
    let _ = child.kill();
    let _ = child.wait();
}
