#!/usr/bin/env bash
# The failover test (tests/api/failover.rs): a real pg_auto_failover cluster on loopback
# (scripts/ha-cluster.sh), two callsd replicas under steady writes, a WatchCalls stream and a
# webhook watch, through a planned switchover and a crash of the primary node. About a minute;
# installs pg_auto_failover from Debian when missing (as root, or with sudo). `.ci/run` runs it.
# Its report (times from each fault to the first successful write) is printed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo test --locked --test api failover:: -- --ignored --nocapture "$@"
