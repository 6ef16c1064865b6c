#!/usr/bin/env bash
# A highly available PostgreSQL on loopback, for the failover test (tests/api/failover.rs) and
# for trying callsd against one by hand: a pg_auto_failover monitor, a primary and a
# synchronous standby, each on a free port, all in one directory.
#
#   scripts/ha-cluster.sh start [DIR]      start (DIR defaults to a new temp dir); prints
#                                          shell assignments: HA_DIR, DATABASE_URL, ports
#   scripts/ha-cluster.sh state DIR        pg_autoctl show state
#   scripts/ha-cluster.sh primary DIR      the current primary's port
#   scripts/ha-cluster.sh wait-healthy DIR wait until one primary and one secondary
#   scripts/ha-cluster.sh switchover DIR   planned: pg_autoctl perform switchover
#   scripts/ha-cluster.sh crash-primary DIR  kill -9 the primary's pg_autoctl and postgres
#   scripts/ha-cluster.sh revive DIR NODE  restart a crashed node (it rejoins as a standby)
#   scripts/ha-cluster.sh events DIR       the monitor's last state changes
#   scripts/ha-cluster.sh stop DIR [--keep] stop every process and delete DIR (--keep: keep
#                                          it, with each node's log, to see what happened)
#
# Why pg_auto_failover (Debian: postgresql-15-auto-failover, pg-auto-failover-cli) rather than
# Patroni: no consensus store to run beside it (Patroni needs etcd), one binary, and its monitor
# is itself a PostgreSQL, so the whole cluster is three `pg_autoctl run` processes.
#
# The timers are shortened so a crash is handled in ~20 s rather than the ~50 s of the
# defaults, and no further: the monitor marks a node unhealthy after 6 s (20 s by default)
# and promotes the standby 15 s after ordering the old primary to demote (30 s by default),
# while a primary cut off from the monitor and its standby demotes itself after 10 s (20 s).
# Tighter (3 s and 3 s) lost acknowledged writes once in eight runs on a loaded machine: a
# keeper too slow to demote its primary within the timeout, and the standby promoted beside a
# primary still taking writes (see the failover test's notes in BENCHMARKS.md).
# PostgreSQL refuses to run as root: as root everything runs as the `postgres` system user.
set -euo pipefail

PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
export PATH="$PG_BIN:$PATH"
export PG_CONFIG="$PG_BIN/pg_config"
DBNAME=callsd
FORMATION=default

die() { echo "ha-cluster: $*" >&2; exit 1; }

install_packages() {
  if command -v pg_autoctl >/dev/null && compgen -G '/usr/lib/postgresql/*/lib/pgautofailover.so' >/dev/null; then
    return
  fi
  local major
  major="$(basename "$(dirname "$PG_BIN")")"
  echo "ha-cluster: installing pg_auto_failover (Debian postgresql-$major-auto-failover)" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    "postgresql-$major-auto-failover" pg-auto-failover-cli >/dev/null
}

# Runs a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- env PATH="$PATH" PG_CONFIG="$PG_CONFIG" HOME="$HA_DIR" "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

load() {
  HA_DIR="$(cd "${1:?the cluster directory}" && pwd)"
  [ -f "$HA_DIR/env" ] || die "$HA_DIR has no cluster (no env file)"
  # shellcheck disable=SC1091
  . "$HA_DIR/env"
}

monitor_uri() { echo "postgres://autoctl_node@127.0.0.1:$HA_MONITOR_PORT/pg_auto_failover?sslmode=disable"; }

monitor_sql() {
  as_owner psql -X -qAt -h 127.0.0.1 -p "$HA_MONITOR_PORT" -U autoctl_node -d pg_auto_failover -c "$1"
}

# Starts `pg_autoctl run` for a node in the background, its output in DIR/NODE.log.
run_node() {
  local node="$1"
  as_owner bash -c "nohup pg_autoctl run --pgdata '$HA_DIR/$node' >>'$HA_DIR/$node.log' 2>&1 & echo \$! >'$HA_DIR/$node.autoctl.pid'"
}

wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${seconds}s waiting for $what"
    sleep 0.2
  done
}

node_state() { # NODE -> reported state on the monitor
  monitor_sql "SELECT reportedstate FROM pgautofailover.node WHERE nodename = '$1'"
}

healthy() {
  local states
  states="$(monitor_sql "SELECT string_agg(reportedstate::text || '/' || goalstate::text, ',' ORDER BY reportedstate) FROM pgautofailover.node WHERE formationid = '$FORMATION'")"
  [ "$states" = "primary/primary,secondary/secondary" ]
}

cmd_start() {
  install_packages
  HA_DIR="${1:-$(mktemp -d /tmp/callsd-ha.XXXXXX)}"
  mkdir -p "$HA_DIR"
  HA_DIR="$(cd "$HA_DIR" && pwd)"
  [ -f "$HA_DIR/env" ] && die "$HA_DIR already holds a cluster"
  chmod 0755 "$HA_DIR"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$HA_DIR"; fi
  HA_MONITOR_PORT="$(free_port)"
  HA_NODE1_PORT="$(free_port)"
  HA_NODE2_PORT="$(free_port)"
  while [ "$HA_NODE2_PORT" = "$HA_NODE1_PORT" ] || [ "$HA_NODE2_PORT" = "$HA_MONITOR_PORT" ] \
    || [ "$HA_NODE1_PORT" = "$HA_MONITOR_PORT" ]; do
    HA_NODE1_PORT="$(free_port)"; HA_NODE2_PORT="$(free_port)"
  done
  if [ "$(id -u)" -eq 0 ]; then
    touch "$HA_DIR"/{monitor,node1,node2,switchover}.log
    chown postgres: "$HA_DIR"/*.log
  fi
  cat >"$HA_DIR/env" <<EOF
HA_MONITOR_PORT=$HA_MONITOR_PORT
HA_NODE1_PORT=$HA_NODE1_PORT
HA_NODE2_PORT=$HA_NODE2_PORT
EOF

  as_owner pg_autoctl create monitor --pgdata "$HA_DIR/monitor" --pgport "$HA_MONITOR_PORT" \
    --hostname 127.0.0.1 --auth trust --no-ssl >>"$HA_DIR/monitor.log" 2>&1 \
    || { tail -20 "$HA_DIR/monitor.log" >&2; die "the monitor was not created"; }
  run_node monitor
  wait_for "the monitor" 60 monitor_sql "SELECT 1 FROM pgautofailover.formation"
  local setting
  for setting in health_check_period=1000 health_check_timeout=2000 health_check_max_retries=2 \
    health_check_retry_delay=1000 node_considered_unhealthy_timeout=6000 \
    primary_demote_timeout=15000; do
    as_owner psql -X -q -h 127.0.0.1 -p "$HA_MONITOR_PORT" -U postgres -d pg_auto_failover \
      -c "ALTER SYSTEM SET pgautofailover.${setting%%=*} = ${setting#*=}" >/dev/null
  done
  as_owner psql -X -q -h 127.0.0.1 -p "$HA_MONITOR_PORT" -U postgres -d pg_auto_failover \
    -c "SELECT pg_reload_conf()" >/dev/null

  local node port
  for node in node1 node2; do
    if [ "$node" = node1 ]; then port="$HA_NODE1_PORT"; else port="$HA_NODE2_PORT"; fi
    as_owner pg_autoctl create postgres --pgdata "$HA_DIR/$node" --pgport "$port" \
      --hostname 127.0.0.1 --name "$node" --dbname "$DBNAME" --monitor "$(monitor_uri)" \
      --auth trust --no-ssl >>"$HA_DIR/$node.log" 2>&1 \
      || { tail -20 "$HA_DIR/$node.log" >&2; die "$node was not created"; }
    # A primary cut off from the monitor and its standby demotes itself after 10 s, before
    # the monitor's demote timeout (15 s) lets the standby take over.
    as_owner pg_autoctl config set --pgdata "$HA_DIR/$node" timeout.network_partition_timeout 10 >/dev/null
    run_node "$node"
    if [ "$node" = node1 ]; then
      wait_for "node1 to be the primary" 120 test "$(node_state node1)" = single
    fi
  done
  wait_for "a primary and a synchronous standby" 180 healthy

  cat <<EOF
HA_DIR=$HA_DIR
HA_MONITOR_PORT=$HA_MONITOR_PORT
HA_NODE1_PORT=$HA_NODE1_PORT
HA_NODE2_PORT=$HA_NODE2_PORT
DATABASE_URL=postgres://postgres@127.0.0.1:$HA_NODE1_PORT,127.0.0.1:$HA_NODE2_PORT/$DBNAME?target_session_attrs=read-write
EOF
}

cmd_primary() {
  load "$1"
  monitor_sql "SELECT nodeport FROM pgautofailover.node WHERE reportedstate IN ('primary', 'single', 'wait_primary') AND goalstate = reportedstate"
}

cmd_switchover() {
  load "$1"
  as_owner pg_autoctl perform switchover --pgdata "$HA_DIR/monitor" --formation "$FORMATION" >>"$HA_DIR/switchover.log" 2>&1 \
    || { tail -20 "$HA_DIR/switchover.log" >&2; die "the switchover failed"; }
}

descendants() { # PID -> PID and every process below it
  local child
  echo "$1"
  for child in $(pgrep -P "$1" || true); do descendants "$child"; done
}

cmd_crash_primary() {
  load "$1"
  local node
  node="$(monitor_sql "SELECT nodename FROM pgautofailover.node WHERE reportedstate = 'primary'")"
  [ -n "$node" ] || die "no primary to crash"
  # The whole node at once: the keeper would restart a postgres that died alone. Stopped
  # first, so no process of the node sees another die and cleans up.
  local pids
  pids="$(descendants "$(cat "$HA_DIR/$node.autoctl.pid")")"
  # shellcheck disable=SC2086
  kill -STOP $pids 2>/dev/null || true
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  echo "$node"
}

cmd_revive() {
  load "$1"
  local node="${2:?the node to revive}"
  run_node "$node"
}

cmd_stop() {
  load "$1"
  local node pid postmaster
  for node in node1 node2 monitor; do
    pid="$(cat "$HA_DIR/$node.autoctl.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for node in node1 node2 monitor; do
    pid="$(cat "$HA_DIR/$node.autoctl.pid" 2>/dev/null || true)"
    for _ in $(seq 50); do
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    postmaster="$(head -1 "$HA_DIR/$node/postmaster.pid" 2>/dev/null || true)"
    [ -n "$postmaster" ] && kill -9 "$postmaster" 2>/dev/null || true
  done
  if [ "${2:-}" = --keep ]; then
    echo "ha-cluster: stopped; logs kept in $HA_DIR" >&2
  else
    rm -rf "$HA_DIR"
  fi
}

command="${1:-}"
shift || true
case "$command" in
  start) cmd_start "$@" ;;
  state) load "$1"; as_owner pg_autoctl show state --pgdata "$HA_DIR/monitor" ;;
  events) load "$1"; as_owner pg_autoctl show events --pgdata "$HA_DIR/monitor" --count 100 ;;
  primary) cmd_primary "$@" ;;
  wait-healthy) load "$1"; wait_for "a primary and a synchronous standby" "${2:-120}" healthy ;;
  switchover) cmd_switchover "$@" ;;
  crash-primary) cmd_crash_primary "$@" ;;
  revive) cmd_revive "$@" ;;
  stop) cmd_stop "$@" ;;
  *) sed -n '2,22p' "$0" >&2; exit 2 ;;
esac
