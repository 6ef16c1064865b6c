//! Where the embedded cluster (its data and its socket) lives: in the data directory, or, when
//! callsd runs as root and the `postgres` user cannot reach the data directory (a clone in
//! root's home, mode 0700 on most systems), in a directory of its own under
//! [`RELOCATED_ROOT`], named after the data directory's path so that two clones never share one.
//!
//! The order of the checks makes a restart find the same cluster whatever changed in between
//! (a home directory opened up, a cluster relocated earlier): a cluster already in the data
//! directory wins, then one already relocated for it, then the data directory if the cluster's
//! user can reach it, else a new relocated one.

use std::{
    io,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::Context;
use nix::unistd::{Gid, Uid};
use sha2::{Digest, Sha256};

/// Parent of relocated clusters: durable (not cleared at boot like /tmp) and reachable by the
/// `postgres` user on every distribution.
pub const RELOCATED_ROOT: &str = "/var/lib/callsd";

/// The directories the cluster uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterLocation {
    /// PostgreSQL's data directory (`initdb -D`).
    pub cluster_dir: PathBuf,
    /// The directory of its Unix socket.
    pub socket_dir: PathBuf,
    /// The directory holding both when it is not the data directory.
    pub relocated_to: Option<PathBuf>,
}

impl ClusterLocation {
    fn inside(dir: &Path, relocated: bool) -> Self {
        ClusterLocation {
            cluster_dir: dir.join("pgdata"),
            socket_dir: dir.join("run"),
            relocated_to: relocated.then(|| dir.to_path_buf()),
        }
    }
}

/// Chooses the location for the canonical `data_dir`. `owner` is the user the cluster runs as
/// when it is not us (we are root); `postgres` is the server binary, run once to probe access.
pub fn choose(
    data_dir: &Path,
    owner: Option<(Uid, Gid)>,
    postgres: &Path,
) -> anyhow::Result<ClusterLocation> {
    let in_place = ClusterLocation::inside(data_dir, false);
    let Some(owner) = owner else {
        return Ok(in_place);
    };
    let relocated = ClusterLocation::inside(&relocated_dir(data_dir), true);
    if is_initialised(&in_place.cluster_dir) {
        return Ok(in_place);
    }
    if is_initialised(&relocated.cluster_dir) || !reachable_by(data_dir, owner, postgres)? {
        return Ok(relocated);
    }
    Ok(in_place)
}

/// `RELOCATED_ROOT/<name of the directory holding the data dir>-<hash of its path>`: readable,
/// and distinct for every data directory.
pub fn relocated_dir(data_dir: &Path) -> PathBuf {
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let hash: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let name: String = data_dir
        .parent()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .take(40)
        .collect();
    let name = name.trim_start_matches('.');
    let name = if name.is_empty() { "callsd" } else { name };
    Path::new(RELOCATED_ROOT).join(format!("{name}-{hash}"))
}

fn is_initialised(cluster_dir: &Path) -> bool {
    cluster_dir.join("PG_VERSION").is_file()
}

/// Whether `owner`, started the way the cluster is (its uid and gid, no supplementary groups),
/// can enter `dir`. The kernel answers, so ACLs and unusual modes count as they will for initdb.
pub fn reachable_by(dir: &Path, (uid, gid): (Uid, Gid), postgres: &Path) -> anyhow::Result<bool> {
    // The child changes to `dir` after dropping to `owner` and before exec: a refused chdir
    // comes back as the spawn error.
    let probe = Command::new(postgres)
        .arg("--version")
        .current_dir(dir)
        .uid(uid.as_raw())
        .gid(gid.as_raw())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => Ok(false),
        Err(error) => Err(error).with_context(|| {
            format!(
                "cannot check whether the 'postgres' user can reach {}",
                dir.display()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocated_dirs_are_named_after_the_clone_and_differ_per_data_dir() {
        let first = relocated_dir(Path::new("/root/callsd/.callsd"));
        let second = relocated_dir(Path::new("/root/other/callsd/.callsd"));
        assert!(first.starts_with(RELOCATED_ROOT));
        let name = first.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("callsd-") && name.len() == "callsd-".len() + 16);
        assert_ne!(first, second);
        assert_eq!(first, relocated_dir(Path::new("/root/callsd/.callsd")));
    }

    #[test]
    fn relocated_dir_names_hold_only_safe_characters() {
        let dir = relocated_dir(Path::new("/home/a b/.hidden dir/data"));
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("hidden_dir-"), "{name}");
        assert!(relocated_dir(Path::new("/data"))
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("callsd-"));
    }

    #[test]
    fn without_a_separate_owner_the_cluster_stays_in_the_data_dir() {
        let location = choose(Path::new("/x/.callsd"), None, Path::new("/nonexistent")).unwrap();
        assert_eq!(location.cluster_dir, Path::new("/x/.callsd/pgdata"));
        assert_eq!(location.socket_dir, Path::new("/x/.callsd/run"));
        assert_eq!(location.relocated_to, None);
    }
}
