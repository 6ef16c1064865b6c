//! The first run of the embedded default as root: the README's first command from a clone in a
//! private (0700) directory such as root's home, which the `postgres` user cannot enter.

use std::{
    io::{BufRead, BufReader, Read},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use callsd::{
    embedded_postgres::{location, Durability, EmbeddedPostgres},
    pb::calls::v1::{self as pb, call_service_client::CallServiceClient},
};
use nix::{
    sys::signal::{kill, Signal},
    unistd::{Pid, Uid},
};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::helpers::{call, with_key};

#[tokio::test]
async fn as_root_a_data_dir_postgres_cannot_reach_keeps_its_cluster_elsewhere_across_restarts() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: only root runs the cluster as another user (postgres)");
        return;
    }
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let clone = private.path().join("callsd");
    std::fs::create_dir(&clone).unwrap();
    let data_dir = clone.join(".callsd");
    let relocated = location::relocated_dir(&clone.canonicalize().unwrap().join(".callsd"));
    let _cleanup = RemoveOnDrop(relocated.clone());

    let first = Server::start(&data_dir).await;
    assert_eq!(
        first.cluster.as_deref(),
        Some(relocated.as_path()),
        "the log says where the cluster is:\n{}",
        first.log.join("\n")
    );
    let key = std::fs::read_to_string(data_dir.join("default-api-key")).expect("key file");
    let key = key.trim().to_owned();
    assert!(key.starts_with("csk_"));
    assert!(relocated.join("pgdata/PG_VERSION").is_file());
    assert!(
        !data_dir.join("pgdata").exists(),
        "no cluster in the data dir"
    );
    assert_eq!(
        std::fs::read_link(data_dir.join("cluster")).unwrap(),
        relocated
    );
    assert_eq!(
        std::fs::metadata(&relocated).unwrap().permissions().mode() & 0o777,
        0o700
    );

    assert_eq!(first.health().await, ServingStatus::Serving);
    let created = first
        .client()
        .await
        .create_call(with_key(
            &key,
            pb::CreateCallRequest {
                call: Some(call("+33 6 12 34 56 78", "2", "2026-11-27T09:30:00", "")),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the key from the key file works")
        .into_inner()
        .call
        .unwrap();
    let first_stdout = first.stop();
    assert_eq!(first_stdout.trim(), key, "the first start prints the key");

    let second = Server::start(&data_dir).await;
    assert_eq!(second.cluster.as_deref(), Some(relocated.as_path()));
    let listed = second
        .client()
        .await
        .list_calls(with_key(&key, pb::ListCallsRequest::default()))
        .await
        .expect("the same key works after a restart")
        .into_inner();
    assert_eq!(
        listed.calls.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&created.id],
        "the restart found the same cluster"
    );
    assert_eq!(second.stop(), "", "no new key on a restart");
}

#[tokio::test]
async fn a_data_dir_the_cluster_user_can_reach_keeps_its_cluster_inside() {
    let dir = tempfile::tempdir().unwrap();
    // World-traversable, as /tmp or a shared checkout: the postgres user can enter it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = dir.path().join(".callsd");
    let cluster = EmbeddedPostgres::start(&data_dir, Durability::Throwaway)
        .await
        .unwrap();
    assert!(data_dir.join("pgdata/PG_VERSION").is_file());
    assert!(!data_dir.join("cluster").exists());
    assert!(!location::relocated_dir(&data_dir.canonicalize().unwrap()).exists());
    cluster.stop().await;
}

/// `callsd` started as the README says (no DATABASE_URL), on a free port.
struct Server {
    child: Child,
    address: String,
    /// Where the log says the cluster was relocated to.
    cluster: Option<PathBuf>,
    log: Vec<String>,
}

impl Server {
    async fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callsd"))
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "off", "--shutdown-drain", "0s"])
            .env_remove("DATABASE_URL")
            .env("CALLSD_DATA_DIR", data_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("callsd starts");
        let (lines_tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut server = Server {
            child,
            address: String::new(),
            cluster: None,
            log: Vec::new(),
        };
        // The first start runs initdb with fsync on: slow on a busy machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while server.address.is_empty() {
            let timeout = deadline.saturating_duration_since(std::time::Instant::now());
            let line = lines.recv_timeout(timeout).unwrap_or_else(|_| {
                panic!(
                    "callsd did not serve within 120s:\n{}",
                    server.log.join("\n")
                )
            });
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(cluster) = event["cluster"].as_str() {
                if event["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("cannot reach"))
                {
                    server.cluster = Some(PathBuf::from(cluster));
                }
            }
            if event["message"] == "serving gRPC" {
                server.address = format!("http://{}", event["address"].as_str().unwrap());
            }
            server.log.push(line);
        }
        server
    }

    async fn client(&self) -> CallServiceClient<tonic::transport::Channel> {
        CallServiceClient::connect(self.address.clone())
            .await
            .unwrap()
    }

    async fn health(&self) -> ServingStatus {
        let channel = tonic::transport::Channel::from_shared(self.address.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        let status = health
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner()
            .status;
        ServingStatus::try_from(status).unwrap()
    }

    /// SIGTERM, as an operator would; returns stdout once it exited cleanly.
    fn stop(mut self) -> String {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "callsd exited with {status}");
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed assertion must not leave callsd (and its PostgreSQL) running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes the relocated cluster the test created, pass or fail.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
