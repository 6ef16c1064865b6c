#!/usr/bin/env bash
# CI's set-up beyond the test command: `buf` (npm) for the proto lint, the PostgreSQL server
# binaries the tests start throwaway clusters from, and pg_auto_failover for the failover test
# (Debian). Skips what is already there.
# The clients the tests drive (grpcurl, Python gRPC, buf, promtool) install themselves on first
# use into target/tmp/tools (tests/api/tools.rs).
set -euo pipefail

if ! command -v buf >/dev/null; then
  echo "installing buf (npm @bufbuild/buf)"
  npm install --global --silent @bufbuild/buf@1.75.0 >/dev/null
fi

if ! command -v initdb >/dev/null && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  echo "installing PostgreSQL server binaries (Debian postgresql)"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi

if ! command -v pg_autoctl >/dev/null; then
  echo "installing pg_auto_failover (Debian pg-auto-failover-cli) for scripts/failover-test.sh"
  major="$(basename "$(dirname "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)")")"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    "postgresql-$major-auto-failover" pg-auto-failover-cli >/dev/null
fi

echo "buf: $(command -v buf) $(buf --version)"
