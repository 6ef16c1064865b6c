//! The PostgreSQL that `callsd` runs for itself when no `DATABASE_URL` is set (and that the
//! tests start when no server is given to them).
//!
//! It uses the system's PostgreSQL binaries, keeps its cluster in a data directory, and listens
//! only on a Unix socket inside it. PostgreSQL refuses to run as root, so under root the cluster
//! belongs to the `postgres` system user. The server runs in its own process group (a Ctrl-C
//! meant for callsd must not stop the database under the drain), dies with callsd (parent-death
//! signal), and is stopped with a fast shutdown when callsd exits.

use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use nix::{
    sys::signal::{kill, Signal},
    unistd::{chown, Gid, Pid, Uid, User},
};
use tokio::sync::oneshot;

const SUPERUSER: &str = "postgres";
const DATABASE: &str = "postgres";
const PORT: u16 = 5432;
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How durable the cluster must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Normal fsync settings: for data people keep.
    Durable,
    /// No fsync: for throwaway test clusters.
    Throwaway,
}

/// A running embedded cluster; call [`EmbeddedPostgres::stop`] to shut it down cleanly.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    socket_dir: PathBuf,
    pid: Option<Pid>,
    exited: Option<oneshot::Receiver<()>>,
}

impl EmbeddedPostgres {
    /// Initialises `data_dir` on first use and starts the server, or connects to the one
    /// already running there (another callsd process started it).
    pub async fn start(data_dir: &Path, durability: Durability) -> anyhow::Result<Self> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        let cluster_dir = data_dir.join("pgdata");
        let socket_dir = data_dir.join("run");
        let owner = cluster_owner()?;
        let binaries = find_binaries()?;

        if cluster_dir.join("postmaster.pid").exists() && answers(&socket_dir).await {
            tracing::info!(data_dir = %data_dir.display(), "using the embedded PostgreSQL already running");
            return Ok(EmbeddedPostgres {
                socket_dir,
                pid: None,
                exited: None,
            });
        }
        for dir in [&cluster_dir, &socket_dir] {
            fs::create_dir_all(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            if let Some((uid, gid)) = owner {
                chown(dir.as_path(), Some(uid), Some(gid))?;
            }
        }
        if !cluster_dir.join("PG_VERSION").exists() {
            tracing::info!(cluster = %cluster_dir.display(), "initialising the embedded PostgreSQL cluster");
            let mut initdb = Command::new(binaries.join("initdb"));
            initdb
                .arg("-D")
                .arg(&cluster_dir)
                .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"])
                .stdout(Stdio::null());
            if durability == Durability::Throwaway {
                initdb.arg("--no-sync");
            }
            run_as(&mut initdb, owner);
            let output = initdb.output().context("cannot run initdb")?;
            if !output.status.success() {
                bail!(
                    "initdb failed: {}{}",
                    String::from_utf8_lossy(&output.stderr),
                    reachability_hint(&data_dir, owner)
                );
            }
        }

        let log_path = data_dir.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut server = Command::new(binaries.join("postgres"));
        server
            .arg("-D")
            .arg(&cluster_dir)
            .arg("-k")
            .arg(&socket_dir)
            .args(["-c", "listen_addresses=", "-p", &PORT.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        if durability == Durability::Throwaway {
            server.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        run_as(&mut server, owner);
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
        unsafe {
            server.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
            });
        }
        let (pid, exited) = spawn_supervised(server)?;

        let deadline = Instant::now() + START_TIMEOUT;
        while !answers(&socket_dir).await {
            if Instant::now() > deadline {
                bail!(
                    "the embedded PostgreSQL did not start within {START_TIMEOUT:?}; see {}{}",
                    log_path.display(),
                    reachability_hint(&data_dir, owner)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!(socket_dir = %socket_dir.display(), "embedded PostgreSQL is up");
        Ok(EmbeddedPostgres {
            socket_dir,
            pid: Some(pid),
            exited: Some(exited),
        })
    }

    /// Connection settings for the cluster (Unix socket, superuser, `postgres` database).
    pub fn connection_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.socket_dir)
            .port(PORT)
            .user(SUPERUSER)
            .dbname(DATABASE);
        config
    }

    /// Fast shutdown (disconnects clients, checkpoints, exits) and waits for it. A cluster this
    /// process did not start is left running.
    pub async fn stop(mut self) {
        let (Some(pid), Some(exited)) = (self.pid.take(), self.exited.take()) else {
            return;
        };
        if kill(pid, Signal::SIGINT).is_ok()
            && tokio::time::timeout(Duration::from_secs(30), exited)
                .await
                .is_err()
        {
            tracing::warn!("embedded PostgreSQL did not stop in 30s; killing it");
            let _ = kill(pid, Signal::SIGKILL);
        }
        tracing::info!("embedded PostgreSQL stopped");
    }
}

/// Spawns `command` from a thread that lives as long as the child: the parent-death signal is
/// tied to the spawning thread, so a short-lived thread would take the server down with it.
fn spawn_supervised(mut command: Command) -> anyhow::Result<(Pid, oneshot::Receiver<()>)> {
    let (spawned_tx, spawned_rx) = std::sync::mpsc::channel();
    let (exited_tx, exited_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("embedded-postgres".into())
        .spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = spawned_tx.send(Ok(child.id()));
                let _ = child.wait();
                let _ = exited_tx.send(());
            }
            Err(error) => {
                let _ = spawned_tx.send(Err(error));
            }
        })?;
    let pid = spawned_rx
        .recv()
        .context("the embedded-postgres thread ended early")?
        .context("cannot start postgres")?;
    let pid = i32::try_from(pid).context("postgres pid out of range")?;
    Ok((Pid::from_raw(pid), exited_rx))
}

async fn answers(socket_dir: &Path) -> bool {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(socket_dir)
        .port(PORT)
        .user(SUPERUSER)
        .dbname(DATABASE)
        .connect_timeout(Duration::from_secs(1));
    match config.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            drop(client);
            let _ = connection.await;
            true
        }
        Err(_) => false,
    }
}

/// The user the cluster runs as: `postgres` when we are root (PostgreSQL refuses root), else us.
fn cluster_owner() -> anyhow::Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name(SUPERUSER)? {
        Some(user) => Ok(Some((user.uid, user.gid))),
        None => bail!(
            "running as root, the embedded PostgreSQL needs a system user named 'postgres' \
             (Debian's postgresql package creates it; or: useradd --system postgres), \
             or set DATABASE_URL to an existing server"
        ),
    }
}

fn run_as(command: &mut Command, owner: Option<(Uid, Gid)>) {
    if let Some((uid, gid)) = owner {
        command.uid(uid.as_raw()).gid(gid.as_raw());
    }
}

fn reachability_hint(data_dir: &Path, owner: Option<(Uid, Gid)>) -> String {
    match owner {
        Some(_) => format!(
            "\n(the 'postgres' user must be able to reach {}; if it is under a private home \
             directory, set CALLSD_DATA_DIR to a directory such as /var/lib/callsd)",
            data_dir.display()
        ),
        None => String::new(),
    }
}

/// The directory holding `initdb` and `postgres`: from PATH, else the newest
/// /usr/lib/postgresql/<version>/bin.
pub fn find_binaries() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
    for dir in on_path {
        let initdb = dir.join("initdb");
        if initdb.is_file() {
            // A symlink farm (e.g. /usr/local/bin) points into the real bin directory.
            let real = fs::canonicalize(&initdb).unwrap_or(initdb);
            if let Some(bin) = real.parent().filter(|bin| bin.join("postgres").is_file()) {
                return Ok(bin.to_path_buf());
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server binaries (initdb, postgres) on PATH or in \
             /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: apt-get install postgresql) \
             or set DATABASE_URL to an existing PostgreSQL server"
        ),
    }
}
