//! The README's walkthroughs pasted in order, as a reader would: the grpcurl walkthrough, the
//! live feed, their curl twins over REST/JSON, the restart that lets webhooks reach loopback, then the webhooks walkthrough,
//! against one server at a time started the README's way (no `DATABASE_URL`). The README's
//! fixed ports become free ones; every other character runs as written, under `set -e`.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

use crate::{
    binary::{collect, free_port},
    tools,
};

const README: &str = include_str!("../../README.md");
/// What the README tells a reader to start the server with.
const SERVER_COMMAND: &str = "cargo run --release";

#[tokio::test]
async fn the_walkthroughs_pasted_in_order_work_against_one_server_at_a_time() {
    let blocks = shell_blocks(README);
    // A walkthrough block that starts a server would collide with the one already running
    // (its ports, its data dir): servers start only in blocks of their own.
    for block in &blocks {
        let starts = block.text.matches(SERVER_COMMAND).count();
        let alone = block.text.lines().count() == 1;
        let two_commands = block.text.contains("cargo test");
        assert!(
            starts == 0 || alone || two_commands,
            "README line {}: a walkthrough block starts a server:\n{}",
            block.line,
            block.text
        );
    }
    let walkthrough = block_under(&blocks, "## A grpcurl walkthrough", 0);
    let live_feed = block_under(&blocks, "## A grpcurl walkthrough", 1);
    let curl_walkthrough = block_under(&blocks, "## The same with curl (REST/JSON)", 0);
    let curl_live_feed = block_under(&blocks, "## The same with curl (REST/JSON)", 1);
    let restart = block_under(&blocks, "## Webhooks (watches)", 0);
    let webhooks = block_under(&blocks, "## Webhooks (watches)", 1);
    let restart_env = server_environment(restart);

    let dir = tempfile::tempdir().unwrap();
    // A clone anyone may enter, so the embedded cluster stays in ./.callsd whoever runs this.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ports = Ports {
        grpc: free_port(),
        metrics: free_port(),
        receiver: free_port(),
    };

    let first = Server::start(dir.path(), &ports, &[]).await;
    let output = paste(dir.path(), &ports, walkthrough, None);
    assert!(output.contains("\"nextSyncToken\""), "{output}");
    assert!(output.contains("\"deleted\": true"), "{output}");
    // The live feed runs until stopped: three seconds show its initial state.
    let output = paste(dir.path(), &ports, live_feed, Some(Duration::from_secs(3)));
    assert!(
        output.contains("CALL_EVENT_TYPE_INITIAL_STATE_COMPLETE"),
        "{output}"
    );
    // Its curl twin, over REST/JSON.
    let output = paste(dir.path(), &ports, curl_walkthrough, None);
    assert!(output.contains("\"CALL_STATUS_COMPLETED\""), "{output}");
    assert!(output.contains("\"code\":412"), "{output}");
    assert!(output.contains("\"nextSyncToken\""), "{output}");
    assert!(output.contains("\"deleted\":true"), "{output}");
    let output = paste(
        dir.path(),
        &ports,
        curl_live_feed,
        Some(Duration::from_secs(3)),
    );
    assert!(output.contains("event: initialStateComplete"), "{output}");

    // "In the server's terminal, stop the server (Ctrl-C) and start it again".
    first.interrupt();
    let second = Server::start(dir.path(), &ports, &restart_env).await;
    let output = paste(dir.path(), &ports, webhooks, None);
    // The receiver printed the signed delivery of the call made in the block: "<webhook-id>
    // v1,<signature> <body rendered from the template>".
    let delivered = output.lines().any(|line| {
        line.starts_with("msg_")
            && line.contains(" v1,")
            && line.ends_with(r#"{"phone":"+33 6 12 34 56 78","seconds":0}"#)
    });
    assert!(delivered, "no signed delivery printed:\n{output}");
    assert!(output.contains("WATCH_STATUS_DISABLED"), "{output}");
    second.interrupt();
}

struct Block {
    /// Line of the opening fence, for messages.
    line: usize,
    heading: String,
    text: String,
}

/// Every ```sh block, with the `##` heading it sits under.
fn shell_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        match &mut open {
            Some(_) if line.starts_with("```") => blocks.extend(open.take()),
            Some(block) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            None if line == "```sh" => {
                open = Some(Block {
                    line: index + 1,
                    heading: heading.clone(),
                    text: String::new(),
                })
            }
            None if line.starts_with("## ") => heading = line.to_owned(),
            None => {}
        }
    }
    blocks
}

/// The `index`th shell block under `heading`.
fn block_under<'a>(blocks: &'a [Block], heading: &str, index: usize) -> &'a str {
    &blocks
        .iter()
        .filter(|block| block.heading == heading)
        .nth(index)
        .unwrap_or_else(|| panic!("the README has no shell block {index} under {heading:?}"))
        .text
}

/// `NAME=value ... cargo run --release`: the variables the block starts the server with.
fn server_environment(block: &str) -> Vec<(String, String)> {
    let line = block.trim();
    let assignments = line
        .strip_suffix(SERVER_COMMAND)
        .unwrap_or_else(|| panic!("not a server start: {line:?}"));
    assignments
        .split_whitespace()
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("NAME=value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

struct Ports {
    grpc: u16,
    metrics: u16,
    receiver: u16,
}

impl Ports {
    /// The block with the README's fixed ports replaced by this test's.
    fn applied_to(&self, block: &str) -> String {
        let grpc = format!("localhost:{}", self.grpc);
        let receiver = self.receiver.to_string();
        block
            .replace("localhost:50051", &grpc)
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{receiver}"))
            .replace("('127.0.0.1', 8080)", &format!("('127.0.0.1', {receiver})"))
    }
}

/// Runs a block in bash from the clone, as pasted into a terminal there, and returns its
/// stdout and stderr. With `stop_after`, the block is a command that runs until stopped.
fn paste(clone: &Path, ports: &Ports, block: &str, stop_after: Option<Duration>) -> String {
    let grpcurl = tools::grpcurl();
    let path = format!(
        "{}:{}",
        grpcurl.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("set -euo pipefail\n{}", ports.applied_to(block));
    let mut command = match stop_after {
        Some(limit) => {
            let mut command = Command::new("timeout");
            command.arg(format!("{}s", limit.as_secs())).arg("bash");
            command
        }
        None => Command::new("bash"),
    };
    let output = command
        .args(["-c", &script])
        .current_dir(clone)
        .env("PATH", path)
        .output()
        .expect("bash runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // timeout(1) exits 124 when it stopped the command, as a reader's Ctrl-C would.
    let stopped = stop_after.is_some() && output.status.code() == Some(124);
    assert!(
        output.status.success() || stopped,
        "the block failed ({}):\n{script}\n--- output:\n{text}",
        output.status
    );
    text
}

/// `callsd` started from the clone with the embedded default, as `cargo run --release` does.
struct Server {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    async fn start(clone: &Path, ports: &Ports, env: &[(String, String)]) -> Server {
        let grpc = format!("127.0.0.1:{}", ports.grpc);
        let mut child = Command::new(env!("CARGO_BIN_EXE_callsd"))
            .current_dir(clone)
            .env_remove("DATABASE_URL")
            .env("CALLSD_LISTEN", &grpc)
            .env(
                "CALLSD_METRICS_LISTEN",
                format!("127.0.0.1:{}", ports.metrics),
            )
            .env("CALLSD_SHUTDOWN_DRAIN", "0s")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("callsd starts");
        let stderr = collect(child.stderr.take().expect("stderr is piped"));
        let mut server = Server { child, stderr };
        // The first start runs initdb: slow on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(120);
        while tokio::net::TcpStream::connect(&grpc).await.is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("callsd exited ({status}):\n{}", server.stderr());
            }
            assert!(Instant::now() < deadline, "callsd did not serve in 120 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// Ctrl-C, and the wait for a clean exit that frees the ports and the data dir.
    fn interrupt(mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        kill(pid, Signal::SIGINT).unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "callsd exited with {status}:\n{}",
            self.stderr()
        );
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed assertion must not leave callsd (and its PostgreSQL) running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
