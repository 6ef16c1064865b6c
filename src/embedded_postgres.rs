//! The PostgreSQL that `callsd` runs for itself when no `DATABASE_URL` is set (and that the
//! tests start when no server is given to them).
//!
//! It uses the system's PostgreSQL binaries, keeps its cluster in a data directory, and listens
//! only on a Unix socket inside it. PostgreSQL refuses to run as root, so under root the cluster
//! belongs to the `postgres` system user, and lives elsewhere when that user cannot reach the
//! data directory ([`location`]). The server runs in its own process group (a Ctrl-C
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

use location::ClusterLocation;

pub mod location;

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
        let owner = cluster_owner()?;
        let binaries = find_binaries()?;
        let ClusterLocation {
            cluster_dir,
            socket_dir,
            relocated_to,
        } = location::choose(&data_dir, owner, &binaries.join("postgres"))?;

        if cluster_dir.join("postmaster.pid").exists() && answers(&socket_dir).await {
            tracing::info!(data_dir = %data_dir.display(), cluster = %cluster_dir.display(), "using the embedded PostgreSQL already running");
            return Ok(EmbeddedPostgres {
                socket_dir,
                pid: None,
                exited: None,
            });
        }
        if let (Some(relocated_to), Some(owner)) = (&relocated_to, owner) {
            prepare_relocated_dir(relocated_to, &data_dir, owner, &binaries.join("postgres"))?;
            tracing::info!(
                data_dir = %data_dir.display(),
                cluster = %relocated_to.display(),
                "the postgres user cannot reach the data directory: the embedded PostgreSQL keeps \
                 its cluster and socket in {} (the API key file stays in the data directory)",
                relocated_to.display()
            );
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
                    reachability_hint(&cluster_dir, owner)
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
                    reachability_hint(&cluster_dir, owner)
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

/// Creates a relocated cluster's directory, owned by the cluster's user and private to it, and
/// leaves a trail both ways: `data-dir` inside it names the data directory, and a `cluster` link
/// in the data directory points at it (so deleting the data directory is not mistaken for a
/// reset).
fn prepare_relocated_dir(
    dir: &Path,
    data_dir: &Path,
    owner: (Uid, Gid),
    postgres: &Path,
) -> anyhow::Result<()> {
    let cannot = |what: &str| format!("cannot {what} {}", dir.display());
    if let Some(root) = dir.parent().filter(|root| !root.exists()) {
        fs::create_dir_all(root).with_context(|| cannot("create the parent of"))?;
        // Whatever the umask: the cluster's user must be able to traverse it.
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
    }
    fs::create_dir_all(dir).with_context(|| cannot("create"))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    chown(dir, Some(owner.0), Some(owner.1)).with_context(|| cannot("give the postgres user"))?;
    if !location::reachable_by(dir, owner, postgres)? {
        bail!(
            "the 'postgres' user can reach neither the data directory {} nor {}: set \
             CALLSD_DATA_DIR to a directory it can reach, or DATABASE_URL",
            data_dir.display(),
            dir.display()
        );
    }
    fs::write(dir.join("data-dir"), format!("{}\n", data_dir.display()))
        .with_context(|| cannot("write into"))?;
    let link = data_dir.join("cluster");
    if fs::symlink_metadata(&link).is_ok_and(|meta| meta.file_type().is_symlink()) {
        fs::remove_file(&link)?;
    }
    if !link.exists() {
        std::os::unix::fs::symlink(dir, &link)?;
    }
    // A first start that failed before relocation left these empty; remove_dir keeps them if not.
    let _ = fs::remove_dir(data_dir.join("pgdata"));
    let _ = fs::remove_dir(data_dir.join("run"));
    Ok(())
}

fn reachability_hint(cluster_dir: &Path, owner: Option<(Uid, Gid)>) -> String {
    match owner {
        Some(_) => format!(
            "\n(the 'postgres' user must be able to reach {}: open the directories above it to \
             that user, or set CALLSD_DATA_DIR to a directory it can reach)",
            cluster_dir.display()
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
