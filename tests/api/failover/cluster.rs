//! The HA cluster of `scripts/ha-cluster.sh`, driven from the failover test.

use std::{collections::HashMap, path::PathBuf, process::Command};

/// The cluster of `scripts/ha-cluster.sh`, stopped and deleted on drop.
pub struct HaCluster {
    pub dir: String,
    pub database_url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/ha-cluster.sh")
}

pub fn run_script(args: &[&str]) -> String {
    let output = Command::new(script())
        .args(args)
        .output()
        .expect("scripts/ha-cluster.sh runs");
    assert!(
        output.status.success(),
        "scripts/ha-cluster.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl HaCluster {
    pub fn start() -> HaCluster {
        let printed = run_script(&["start"]);
        let values: HashMap<&str, &str> = printed
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        HaCluster {
            dir: values["HA_DIR"].to_owned(),
            database_url: values["DATABASE_URL"].to_owned(),
        }
    }

    pub fn run(&self, command: &str, extra: &[&str]) -> String {
        let mut args = vec![command, self.dir.as_str()];
        args.extend(extra);
        run_script(&args)
    }
}

impl Drop for HaCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the monitor decided, and each node's log, for whoever reads the failure.
            for command in ["state", "events"] {
                if let Ok(output) = Command::new(script()).args([command, &self.dir]).output() {
                    println!("{}", String::from_utf8_lossy(&output.stdout));
                }
            }
            let _ = Command::new(script())
                .args(["stop", &self.dir, "--keep"])
                .status();
        } else {
            let _ = Command::new(script()).args(["stop", &self.dir]).output();
        }
    }
}
