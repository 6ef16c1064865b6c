#!/usr/bin/env bash
# Goodput under overload (issue 13): GetCall's closed-loop peak, then an open loop at twice that
# rate, on a fresh server for each setting of CALLSD_MAX_STREAMS_PER_CONNECTION, alternated.
#
#   bench/goodput.sh                             # about 3 minutes: 2 rounds of 2 settings
#   SERVER_CPUS=0 CLIENT_CPUS=1 bench/goodput.sh # the server on a CPU of its own
#
# The load generator opens CONNECTIONS connections; with STREAMS x CONNECTIONS at most the
# tenant's in-flight share (CALLSD_TENANT_MAX_IN_FLIGHT, 64 by default), the excess waits in the
# client instead of being refused. Goodput is served/s at 2x over the peak of the same round.
#
# Settings (environment): STREAMS (the settings compared, default "2000 16"), CONNECTIONS (4),
# CONCURRENCY (the closed loop's, 8), CALLS (seeded), ROUNDS, DURATION, WARMUP (seconds),
# SERVER_CPUS and CLIENT_CPUS (taskset lists; default every CPU), CALLSD_WORKER_THREADS (1, as
# bench/run.sh), BENCH_DB, PGHOST, PGPORT, PGUSER, PORT, OUT.
# Needs: cargo, psql, taskset, PostgreSQL 15 at PGHOST:PGPORT (trust auth). The database and
# server handling are bench/one-server.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."

STREAMS=${STREAMS:-2000 16}
CONNECTIONS=${CONNECTIONS:-4}
CONCURRENCY=${CONCURRENCY:-8}
CALLS=${CALLS:-10000}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
BENCH_DB=${BENCH_DB:-callsd_goodput}
PORT=${PORT:-50071}
OUT=${OUT:-target/bench-goodput}
source bench/one-server.sh

prepare
echo "== seeding $CALLS calls"
KEY=$("$BENCH" seed --tenant goodput --calls "$CALLS" | tee "$OUT/seed.env" | sed -n 's/^key=//p')
psql -d "$BENCH_DB" -qc 'VACUUM ANALYZE calls'

get() { # then the load's own arguments; prints the RESULT line
    taskset -c "$CLIENT_CPUS" "$BENCH" run --address "http://127.0.0.1:$PORT" --key "$KEY" \
        --workloads get --seeded "$CALLS" --connections "$CONNECTIONS" --warmup "${WARMUP}s" \
        --duration "${DURATION}s" --server-pid "$SERVER" "$@" 2>>"$OUT/bench-stderr.txt" |
        grep '^RESULT' | tail -1
}

: >"$OUT/goodput.txt"
for round in $(seq "$ROUNDS"); do
    for streams in $STREAMS; do
        start_server "$OUT/server-$streams.log" CALLSD_MAX_STREAMS_PER_CONNECTION="$streams"
        peak=$(get --concurrency "$CONCURRENCY")
        over=$(get --rate "$(awk -v rps="$(field rps "$peak")" 'BEGIN { printf "%d", 2 * rps }')" \
            --max-in-flight 4096)
        stop_server
        line="RESULT round=$round streams_per_connection=$streams connections=$CONNECTIONS server_cpus=$SERVER_CPUS client_cpus=$CLIENT_CPUS peak_rps=$(field rps "$peak") over_rps=$(field rps "$over") goodput=$(awk -v o="$(field rps "$over")" -v p="$(field rps "$peak")" 'BEGIN { printf "%.2f", o / p }') over_p50_ms=$(field p50_ms "$over") over_p99_ms=$(field p99_ms "$over") over_errors=$(field error_codes "$over") over_reasons=$(field reasons "$over") over_not_sent=$(field not_sent "$over") server_us_per_served_peak=$(field server_cpu_us "$peak") server_us_per_served_over=$(field server_cpu_us "$over")"
        echo "$line" | tee -a "$OUT/goodput.txt"
    done
done

echo
echo "== results: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg); CPUs: server $SERVER_CPUS, load generator $CLIENT_CPUS; $CONNECTIONS connections"
printf '| %7s | %8s | %10s | %10s | %7s | %13s | %-40s |\n' round streams "peak req/s" "2x served/s" goodput "2x p50 ms" "2x refused"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' --------- ---------- ------------ ------------ --------- --------------- ------------------------------------------
while read -r line; do
    printf '| %7s | %8s | %10s | %10s | %7s | %13s | %-40s |\n' "$(field round "$line")" \
        "$(field streams_per_connection "$line")" "$(field peak_rps "$line")" "$(field over_rps "$line")" \
        "$(field goodput "$line")" "$(field over_p50_ms "$line")" "$(field over_reasons "$line")"
done <"$OUT/goodput.txt"
