//! The real `callsd` binary as a child process: started on free ports against its own
//! database, its stderr collected for the tests to read, stopped with real signals.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use callsd::{auth, pb::calls::v1 as pb};
use nix::{sys::signal::Signal, unistd::Pid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

use crate::helpers::{connection_string, fresh_database, store_for};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `callsd serve` on its own database, ready to answer, with a tenant and its key.
pub struct Server {
    pub child: Child,
    pub database: tokio_postgres::Config,
    pub grpc: String,
    pub metrics: String,
    pub key: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub async fn start(drain: &str) -> Server {
        Server::start_with(drain, &[]).await
    }

    /// With more environment variables (or replacements for the defaults set here).
    pub async fn start_with(drain: &str, env: &[(&str, &str)]) -> Server {
        let database = fresh_database().await;
        let grpc = format!("127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_callsd"));
        command
            .arg("serve")
            .env("DATABASE_URL", connection_string(&database))
            .env("CALLSD_LISTEN", &grpc)
            .env("CALLSD_METRICS_LISTEN", &metrics)
            .env("CALLSD_SHUTDOWN_DRAIN", drain)
            .env("CALLSD_HEALTH_CHECK_INTERVAL", "100ms")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("callsd starts");
        let stderr = collect(child.stderr.take().expect("stderr is piped"));
        let mut server = Server {
            child,
            database: database.clone(),
            grpc,
            metrics,
            key: String::new(),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.health("").await != Some(ServingStatus::Serving) {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("callsd exited ({status}):\n{}", server.stderr());
            }
            assert!(Instant::now() < deadline, "callsd did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let store = store_for(&database);
        let tenant = store
            .create_tenant("acme", chrono_tz::Tz::UTC)
            .await
            .unwrap();
        server.key = auth::create_api_key(&store, tenant.id).await.unwrap().key;
        server
    }

    pub async fn client(
        &self,
    ) -> pb::call_service_client::CallServiceClient<tonic::transport::Channel> {
        pb::call_service_client::CallServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
    }

    pub async fn health(&self, service: &str) -> Option<ServingStatus> {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .ok()?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .ok()?;
        ServingStatus::try_from(response.into_inner().status).ok()
    }

    pub fn terminate(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// Ctrl-C.
    pub fn interrupt(&self) {
        self.signal(Signal::SIGINT);
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// What callsd wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `text`.
    pub async fn wait_for_log(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stderr().contains(text) {
            assert!(
                Instant::now() < deadline,
                "callsd never logged {text:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit status, or None if callsd still runs after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stream` on a thread of its own, so the child never blocks on a full pipe.
pub fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// The body of `GET /metrics`.
pub async fn scrape(address: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}
