#!/usr/bin/env bash
# Fair shares (issue 13): a quiet tenant's latency alone and while a noisy tenant offers ten
# times its share, on a server with fair shares on and on one with them effectively off,
# alternated, from a fresh database.
#
#   bench/fairness.sh            # about 5 minutes: 3 rounds of (on, off), 10 s windows
#   KEEP=1 bench/fairness.sh     # keep the database afterwards
#
# The noisy tenant must offer more than the server can serve, or fair shares have nothing to
# protect: by default its share (CALLSD_TENANT_RATE) is a fifth of the closed-loop peak of its
# request measured first, so that ten times its share is twice that peak (NOISE_OVER_PEAK=2).
#
# Settings (environment): TENANT_RATE (CALLSD_TENANT_RATE with fair shares on; measured as
# above when unset), NOISE_OVER_PEAK, TENANT_BURST, TENANT_MAX_IN_FLIGHT, QUIET_RATE (the quiet
# tenant's GetCalls a second), NOISY_RATE (the noisy tenant's ListCalls a second; 10 x
# TENANT_RATE by default), NOISY_CONCURRENCY (set it for a closed-loop noisy tenant instead),
# CALLS (the quiet tenant's seeded calls), ROUNDS, DURATION, WARMUP (seconds),
# CALLSD_WORKER_THREADS (1, as bench/run.sh), BENCH_DB, PGHOST, PGPORT, PGUSER, PORT, OUT.
#
# CPU placement: SERVER_CPUS and CLIENT_CPUS (taskset lists, e.g. SERVER_CPUS=0 CLIENT_CPUS=1)
# give the server and the load generator CPUs of their own, as a load generator on another
# machine would; by default both may run on every CPU. PostgreSQL runs wherever Linux puts it.
# NOISY_NICE (0 to 19, default 0) lowers the priority of the load generator's noisy threads, so
# that on shared CPUs the noise cannot delay the quiet tenant's client itself either.
# Needs: cargo, psql, taskset, PostgreSQL 15 at PGHOST:PGPORT (trust auth). The database and
# server handling are bench/one-server.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."

TENANT_RATE=${TENANT_RATE:-}
TENANT_BURST=${TENANT_BURST:-50}
TENANT_MAX_IN_FLIGHT=${TENANT_MAX_IN_FLIGHT:-32}
QUIET_RATE=${QUIET_RATE:-200}
NOISE_OVER_PEAK=${NOISE_OVER_PEAK:-2}
NOISY_CONCURRENCY=${NOISY_CONCURRENCY:-}
CALLS=${CALLS:-10000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
BENCH_DB=${BENCH_DB:-callsd_fair}
PORT=${PORT:-50071}
OUT=${OUT:-target/bench-fairness}
NOISY_NICE=${NOISY_NICE:-0}
source bench/one-server.sh

prepare
echo "== the noisy tenant's threads at nice $NOISY_NICE"
echo "== seeding the quiet tenant ($CALLS calls) and an empty noisy tenant"
QUIET_KEY=$("$BENCH" seed --tenant quiet --calls "$CALLS" | tee "$OUT/seed.env" | sed -n 's/^key=//p')
NOISY_KEY=$("$BENCH" tenant --name noisy | sed -n 's/^key=//p')
psql -d "$BENCH_DB" -qc 'VACUUM ANALYZE calls'

OFF=(CALLSD_TENANT_RATE=0 CALLSD_TENANT_MAX_IN_FLIGHT=1000000)
if [[ -z $TENANT_RATE ]]; then
    start_server "$OUT/server-peak.log" "${OFF[@]}"
    PEAK=$(taskset -c "$CLIENT_CPUS" "$BENCH" run --address "http://127.0.0.1:$PORT" --key "$NOISY_KEY" --workloads list-one \
        --connections 4 --concurrency 8 --warmup "${WARMUP}s" --duration "${DURATION}s" \
        --server-pid "$SERVER" 2>>"$OUT/bench-stderr.txt" | grep '^RESULT' | tee "$OUT/peak.txt")
    stop_server
    TENANT_RATE=$(awk -v peak="$(field rps "$PEAK")" -v times="$NOISE_OVER_PEAK" -v quiet="$QUIET_RATE" \
        'BEGIN { rate = int(peak * times / 10 / 10) * 10; print (rate < 2 * quiet ? 2 * quiet : rate) }')
    echo "== the noisy tenant's request (list-one), closed loop: $(field rps "$PEAK") req/s; CALLSD_TENANT_RATE=$TENANT_RATE"
fi
NOISY_RATE=${NOISY_RATE:-$((10 * TENANT_RATE))}
if [[ -n $NOISY_CONCURRENCY ]]; then
    NOISE=(--noisy-concurrency "$NOISY_CONCURRENCY")
else
    NOISE=(--noisy-rate "$NOISY_RATE")
fi
fairness() { # label, then VAR=value settings of the server
    local label=$1; shift
    start_server "$OUT/server-$label.log" "$@"
    echo "== $label: $* (load $(cut -d' ' -f1 /proc/loadavg))"
    taskset -c "$CLIENT_CPUS" "$BENCH" fairness --address "http://127.0.0.1:$PORT" --quiet-key "$QUIET_KEY" \
        --noisy-key "$NOISY_KEY" --seeded "$CALLS" --quiet-rate "$QUIET_RATE" "${NOISE[@]}" --noisy-nice "$NOISY_NICE" \
        --warmup "${WARMUP}s" --duration "${DURATION}s" --server-pid "$SERVER" \
        2>>"$OUT/bench-stderr.txt" |
        sed -e "s/^RESULT /RESULT shares=$label /" -e "s/ round=1 / round=$round tenant_rate=$TENANT_RATE server_cpus=$SERVER_CPUS client_cpus=$CLIENT_CPUS noisy_nice=$NOISY_NICE /" |
        tee -a "$OUT/fairness.txt"
    stop_server
}
: >"$OUT/fairness.txt"
for round in $(seq "$ROUNDS"); do
    echo "== round $round of $ROUNDS"
    fairness on CALLSD_TENANT_RATE="$TENANT_RATE" CALLSD_TENANT_BURST="$TENANT_BURST" \
        CALLSD_TENANT_MAX_IN_FLIGHT="$TENANT_MAX_IN_FLIGHT"
    # Off: no rate limit and an in-flight share larger than the process's CALLSD_MAX_IN_FLIGHT.
    fairness off "${OFF[@]}"
done

echo
echo "== results: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg); quiet tenant: get at $QUIET_RATE/s; noisy tenant: list-one ${NOISE[*]}; on: CALLSD_TENANT_RATE=$TENANT_RATE BURST=$TENANT_BURST MAX_IN_FLIGHT=$TENANT_MAX_IN_FLIGHT"
printf '| %-6s | %14s | %14s | %9s | %-26s | %10s | %13s | %-40s |\n' shares "alone p99 ms" "loaded p99 ms" "p99 ratio" "quiet errors, loaded" "noisy ok/s" "noisy refused" "noisy refusals by reason"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' -------- ---------------- ---------------- ----------- ---------------------------- ------------ --------------- ------------------------------------------
grep '^RESULT' "$OUT/fairness.txt" | while read -r line; do
    printf '| %-6s | %14s | %14s | %9s | %-26s | %10s | %13s | %-40s |\n' "$(field shares "$line")" \
        "$(field alone_p99_ms "$line")" "$(field loaded_p99_ms "$line")" "$(field p99_ratio "$line")" \
        "$(field loaded_errors "$line")" "$(field noisy_rps "$line")" "$(field noisy_refused "$line")" \
        "$(field noisy_reasons "$line")"
done
