#!/usr/bin/env bash
# Instructions per request of the service and of the stack's floor, counted by callgrind: a
# figure that does not move with what else runs on the machine (issue 15, BENCHMARKS.md).
#
#   bench/callgrind.sh              # ListCalls' first page (the list workload), service and floor
#   WORKLOAD=get bench/callgrind.sh
#   ONLY=service bench/callgrind.sh # or ONLY=floor
#
# Needs valgrind and a seeded database with its seed.env (bench/run.sh writes one to
# target/bench/seed.env; `callsd-bench seed` prints it). Each server runs under
# `valgrind --tool=callgrind` with one worker thread; callsd-bench warms it up, then the counters
# are zeroed (`callgrind_control -z`), callsd-bench runs DURATION seconds of WORKLOAD at
# CONCURRENCY in flight, and the counters are dumped (`-d`): instructions / requests answered.
# Each dump stays in OUT for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKLOAD=${WORKLOAD:-list}
ONLY=${ONLY:-service floor}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONCURRENCY=${CONCURRENCY:-2}
CONNECTIONS=${CONNECTIONS:-2}
BENCH_DB=${BENCH_DB:-callsd_bench}
SEED_ENV=${SEED_ENV:-target/bench/seed.env}
PORT=${PORT:-50071}
OUT=${OUT:-target/callgrind}
source bench/seeded.sh

PID=
cleanup() { if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

drive() { # duration, warm-up; prints the RESULT line
    "$BENCH" run --address "http://127.0.0.1:$PORT" --key "$KEY" --workloads "$WORKLOAD" \
        --connections "$CONNECTIONS" --concurrency "$CONCURRENCY" --warmup "$2" \
        --duration "$1" --seeded "$CALLS" 2>>"$OUT/bench-stderr.txt" | grep '^RESULT' | tail -1
}

measure() { # name, environment and command (env's arguments)
    local name=$1; shift
    local file="$OUT/$name-$WORKLOAD.callgrind"
    rm -f "$file" "$file".*
    # env runs valgrind, not the reverse: valgrind follows no exec unless told to.
    local environment=()
    while [[ $1 == *=* ]]; do environment+=("$1"); shift; done
    env "${environment[@]}" valgrind --tool=callgrind --callgrind-out-file="$file" "$@" \
        >"$OUT/$name.log" 2>&1 &
    PID=$!
    # Under valgrind a server takes seconds to start.
    TRIES=600 wait_for_port "$PORT" || true
    drive "${WARMUP}s" 0s >/dev/null
    callgrind_control -z "$PID" >/dev/null 2>&1
    local result; result=$(drive "${DURATION}s" 0s)
    callgrind_control -d "$PID" >/dev/null 2>&1
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
    local dump; dump=$(ls -t "$file".* | grep -v '\.0$' | head -1 || true)
    [[ -n $dump ]] || dump=$(ls -t "$file"* | head -1)
    local ok; ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$result")
    local instructions
    instructions=$(callgrind_annotate "$dump" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
    awk -v n="$name" -v w="$WORKLOAD" -v i="$instructions" -v ok="$ok" -v d="$dump" \
        'BEGIN { printf "RESULT server=%s workload=%s requests=%d instructions=%d per_request=%.0f dump=%s\n", n, w, ok, i, i / (ok > 0 ? ok : 1), d }'
}

for server in $ONLY; do
    case $server in
    service)
        measure service CALLSD_LISTEN="127.0.0.1:$PORT" CALLSD_METRICS_LISTEN=off \
            CALLSD_WORKER_THREADS=1 CALLSD_SHUTDOWN_DRAIN=0s RUST_LOG="${RUST_LOG:-warn}" \
            "$CALLSD" serve
        ;;
    floor)
        measure floor TOKIO_WORKER_THREADS=1 \
            "$BENCH" floor --tenant-id "$TENANT" --listen "127.0.0.1:$PORT"
        ;;
    esac
done
