#!/usr/bin/env bash
# ListCalls' server CPU per page against the stack's floor (issue 15), in alternating windows:
# the service and the floor run side by side, idle in turn, and each round drives DURATION
# seconds of the list workload at one then the other. Adjacent windows see the same machine, so
# their ratio holds where the machine drifts by more than the gap measured; the median of the
# rounds is the figure.
#
#   bench/list-floor.sh                            # 5 rounds of 10 s each way, about 2 minutes
#   SERVER_CPUS=0 CLIENT_CPUS=1 bench/list-floor.sh
#
# Needs a seeded database and its seed.env, and the production build (bench/seeded.sh).
# Settings (environment): ROUNDS, DURATION, WARMUP (seconds), CONCURRENCY, CONNECTIONS,
# WORKLOAD (list or get), SERVER_CPUS and CLIENT_CPUS (taskset lists; default every CPU),
# BENCH_DB, SEED_ENV, PORT, PORT_FLOOR, OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-8}
CONNECTIONS=${CONNECTIONS:-4}
WORKLOAD=${WORKLOAD:-list}
BENCH_DB=${BENCH_DB:-callsd_bench}
SEED_ENV=${SEED_ENV:-target/bench/seed.env}
PORT=${PORT:-50074}
PORT_FLOOR=${PORT_FLOOR:-50075}
OUT=${OUT:-target/bench-list-floor}
ALL_CPUS=0-$(($(nproc) - 1))
SERVER_CPUS=${SERVER_CPUS:-$ALL_CPUS}
CLIENT_CPUS=${CLIENT_CPUS:-$ALL_CPUS}
source bench/seeded.sh

SERVERS=()
cleanup() { for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

started() { wait_for_port "$1" || { echo "nothing listens on port $1; see $OUT" >&2; exit 1; }; }

echo "== $(date -u +%FT%TZ) on $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); $(git rev-parse --short HEAD); CPUs: servers $SERVER_CPUS, load generator $CLIENT_CPUS"
CALLSD_LISTEN="127.0.0.1:$PORT" CALLSD_METRICS_LISTEN=off CALLSD_WORKER_THREADS=1 \
    CALLSD_SHUTDOWN_DRAIN=0s RUST_LOG="${RUST_LOG:-warn}" \
    taskset -c "$SERVER_CPUS" "$CALLSD" serve >"$OUT/service.log" 2>&1 &
SERVICE=$!
SERVERS+=("$SERVICE")
TOKIO_WORKER_THREADS=1 taskset -c "$SERVER_CPUS" "$BENCH" floor --tenant-id "$TENANT" \
    --listen "127.0.0.1:$PORT_FLOOR" >"$OUT/floor.log" 2>&1 &
FLOOR=$!
SERVERS+=("$FLOOR")
started "$PORT"
started "$PORT_FLOOR"

drive() { # port, server pid; prints the RESULT line
    taskset -c "$CLIENT_CPUS" "$BENCH" run --address "http://127.0.0.1:$1" --key "$KEY" \
        --workloads "$WORKLOAD" --connections "$CONNECTIONS" --concurrency "$CONCURRENCY" \
        --warmup "${WARMUP}s" --duration "${DURATION}s" --server-pid "$2" --seeded "$CALLS" \
        2>>"$OUT/bench-stderr.txt" | grep '^RESULT' | tail -1
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

RATIOS=()
for round in $(seq "$ROUNDS"); do
    service=$(drive "$PORT" "$SERVICE")
    floor=$(drive "$PORT_FLOOR" "$FLOOR")
    ratio=$(awk -v s="$(field server_cpu_us "$service")" -v f="$(field server_cpu_us "$floor")" \
        'BEGIN { printf "%.3f", s / f }')
    RATIOS+=("$ratio")
    echo "RESULT round=$round workload=$WORKLOAD service_rps=$(field rps "$service") floor_rps=$(field rps "$floor") service_cpu_us=$(field server_cpu_us "$service") floor_cpu_us=$(field server_cpu_us "$floor") ratio=$ratio service_errors=$(field errors "$service") floor_errors=$(field errors "$floor")"
done
median=$(printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{ r[NR] = $1 } END { print (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')
echo "SUMMARY workload=$WORKLOAD rounds=$ROUNDS server_cpu_ratio_median=$median ratios=$(IFS=,; echo "${RATIOS[*]}")"
