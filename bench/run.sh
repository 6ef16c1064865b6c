#!/usr/bin/env bash
# One benchmark run on this machine: build, seed a tenant with 1,000,000 calls, then for each
# workload run pgbench on the service's own SQL and callsd-bench against `callsd serve` at the
# same concurrency, back to back, and print the service/pgbench ratios; then SummarizeCalls (a
# year by day, beside pgbench on its SQL) and one ExportCalls of the whole tenant (calls/s and
# the server's memory).
#
#   bench/run.sh                 # full run (about 12-15 minutes, most of it seeding)
#   QUICK=1 bench/run.sh         # 100,000 calls, 3 s per workload: checks the harness
#   REUSE=1 bench/run.sh         # keep the seeded database of an earlier run
#
# Settings (environment): DURATION, WARMUP (seconds), CONCURRENCY, CONNECTIONS, CALLS,
# DEEP_PAGE, SEARCH_DIGITS (fixed at 6 in the pgbench scripts), WATCH_STREAMS, WATCH_RATE,
# REST_ADDRESS (the REST door, when not on the gRPC port),
# IDLE_STREAMS, CALLSD_DB_POOL_SIZE, CALLSD_MAX_IN_FLIGHT, CALLSD_TENANT_MAX_STREAMS,
# CALLSD_WORKER_THREADS (1 here: on two cores shared with PostgreSQL and the client it beats
# one thread per core, BENCHMARKS.md), BENCH_DB, PGHOST, PGPORT, PGUSER.
# Needs: cargo, PostgreSQL 15 at PGHOST:PGPORT (trust auth), psql and pgbench
# (Debian: apt-get install postgresql-client-15 postgresql-15; pgbench ships with the server).
# Optional: h2load and nghttp (apt-get install nghttp2-client) for the C-client figures.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    CALLS=${CALLS:-100000}; DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}
    DEEP_PAGE=${DEEP_PAGE:-1000}; WATCH_STREAMS=${WATCH_STREAMS:-200}
    IDLE_STREAMS=${IDLE_STREAMS:-1000}; WATCH_RATE=${WATCH_RATE:-200}
fi
CALLS=${CALLS:-1000000}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-8}
CONNECTIONS=${CONNECTIONS:-4}
DEEP_PAGE=${DEEP_PAGE:-10000}
WATCH_STREAMS=${WATCH_STREAMS:-1000}
WATCH_RATE=${WATCH_RATE:-500}
WATCH_RATE_SUSTAINED=${WATCH_RATE_SUSTAINED:-200}
IDLE_STREAMS=${IDLE_STREAMS:-10000}
BENCH_DB=${BENCH_DB:-callsd_bench}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
PGBENCH=${PGBENCH:-$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)}
export CALLSD_WORKER_THREADS=${CALLSD_WORKER_THREADS:-1}
# The idle-streams run holds IDLE_STREAMS streams of one tenant: lift that tenant's stream cap.
export CALLSD_TENANT_MAX_STREAMS=${CALLSD_TENANT_MAX_STREAMS:-$((IDLE_STREAMS + 1000))}
PORT_A=${PORT_A:-50061}
PORT_B=${PORT_B:-50062}
PORT_FLOOR=${PORT_FLOOR:-50063}
OUT=${OUT:-target/bench}
mkdir -p "$OUT"

for tool in cargo psql "$PGBENCH"; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x $tool ]]; then
        echo "missing $tool: apt-get install postgresql-client-15 postgresql-15 (pgbench), rustup for cargo" >&2
        exit 1
    fi
done
psql -d postgres -Atc 'SELECT 1' >/dev/null || { echo "PostgreSQL does not answer at $PGHOST:$PGPORT" >&2; exit 1; }

echo "== $(date -u +%FT%TZ) on $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); server worker threads: $CALLSD_WORKER_THREADS"
cargo build --profile production --quiet --bin callsd --bin callsd-bench
CALLSD=target/production/callsd
BENCH=target/production/callsd-bench
export DATABASE_URL="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$BENCH_DB"

SERVERS=()
cleanup() {
    for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVERS[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    done
}
trap cleanup EXIT

# Seed (or reuse) the bench database.
if [[ ${REUSE:-0} == 1 ]] && [[ -s $OUT/seed.env ]] &&
    psql -d "$BENCH_DB" -Atc 'SELECT 1' >/dev/null 2>&1; then
    echo "== reusing $BENCH_DB"
else
    psql -d postgres -qc "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB"
    echo "== seeding $CALLS calls"
    "$BENCH" seed --tenant bench --calls "$CALLS" | tee "$OUT/seed.env"
    "$BENCH" tenant --name idle | sed 's/^key=/idle_key=/' >>"$OUT/seed.env"
fi
TENANT=$(sed -n 's/^tenant_id=//p' "$OUT/seed.env")
KEY=$(sed -n 's/^key=//p' "$OUT/seed.env")
IDLE_KEY=$(sed -n 's/^idle_key=//p' "$OUT/seed.env")
SEED_SECONDS=$(sed -n 's/^seed_seconds=//p' "$OUT/seed.env")
# The trigram index exists only for its own comparison; one an interrupted run left behind would
# slow every write and search before it.
psql -d "$BENCH_DB" -v ON_ERROR_STOP=1 -qc 'DROP INDEX IF EXISTS bench_trgm_idx' \
    -c 'VACUUM ANALYZE calls' -c 'VACUUM ANALYZE change_log'

start_server() { # port, log file; prints the pid
    CALLSD_LISTEN=127.0.0.1:$1 CALLSD_METRICS_LISTEN=off CALLSD_SHUTDOWN_DRAIN=0s \
        RUST_LOG=${RUST_LOG:-warn} \
        "$CALLSD" serve >"$2" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then echo "$pid"; return; fi
        sleep 0.1
    done
    echo "callsd on port $1 did not start; see $2" >&2
    exit 1
}
PID_A=$(start_server "$PORT_A" "$OUT/server-a.log")
SERVERS+=("$PID_A")

# CPU busy time of the whole machine, in /proc/stat ticks (1/100 s): user nice system irq softirq.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
pgbench_run() { # name, scripts...; prints tps, and keeps the machine's CPU per transaction
    local name=$1; shift
    local files=()
    for script in "$@"; do files+=(-f "bench/pgbench/$script"); done
    local busy_before; busy_before=$(busy_ticks)
    "$PGBENCH" -n -M prepared -c "$CONCURRENCY" -j 2 -T "$DURATION" \
        -D tenant="$TENANT" -D seeded="$CALLS" "${files[@]}" "$BENCH_DB" \
        >"$OUT/pgbench-$name.txt" 2>&1 || { cat "$OUT/pgbench-$name.txt" >&2; exit 1; }
    local transactions
    transactions=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$OUT/pgbench-$name.txt")
    awk -v ticks=$(($(busy_ticks) - busy_before)) -v n="$transactions" \
        'BEGIN { printf "%.1f\n", ticks * 10000 / (n > 0 ? n : 1) }' >"$OUT/pgbench-$name.cpu"
    sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/pgbench-$name.txt" | head -1
}
service_run() { # workload, extra args...; prints the RESULT line
    local workload=$1; shift
    "$BENCH" run --address "http://127.0.0.1:$PORT_A" --key "$KEY" --workloads "$workload" \
        --connections "$CONNECTIONS" --concurrency "$CONCURRENCY" --warmup "${WARMUP}s" \
        --duration "${DURATION}s" --server-pid "$PID_A" --seeded "$CALLS" \
        --deep-page "$DEEP_PAGE" "$@" 2>>"$OUT/bench-stderr.txt" | tee -a "$OUT/service.txt" |
        grep '^RESULT' | tail -1
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

declare -A PG SVC
: >"$OUT/service.txt"
echo "== ping: grpc.health.v1.Health/Check, no database work (gRPC's own ceiling here)"
SVC[ping]=$(service_run ping)
echo "   service $(field rps "${SVC[ping]}") req/s"
H2LOAD_PING=- H2LOAD_PING_PAGE=- H2LOAD_GET=- H2LOAD_LIST=-
if command -v h2load >/dev/null 2>&1; then
    # h2load is a C client, as light as pgbench's: the same calls without our client's CPU.
    printf '\0\0\0\0\0' >"$OUT/ping.grpc"
    python3 -c 'import struct, sys
id = b"01900000-0000-7000-8000-000000012345"
message = b"\x0a" + bytes([len(id)]) + id
sys.stdout.buffer.write(b"\x00" + struct.pack(">I", len(message)) + message)' >"$OUT/get.grpc"
    h2load_rps() { # path, body file
        h2load -D "$DURATION" --warm-up-time "$WARMUP" -c "$CONNECTIONS" \
            -m $((CONCURRENCY / CONNECTIONS)) -H 'content-type: application/grpc' \
            -H 'te: trailers' -H "authorization: Bearer $KEY" -d "$2" \
            "http://127.0.0.1:$PORT_A$1" >"$OUT/h2load-$(basename "$2" .grpc).txt" 2>&1
        sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$OUT/h2load-$(basename "$2" .grpc).txt"
    }
    # ListCallsRequest{page_size: 50}: the first page, as the list workload asks for it.
    printf '\0\0\0\0\2\x08\x32' >"$OUT/list.grpc"
    grpc_ok() { # path, body file: true when the answer's grpc-status is 0
        nghttp -H 'content-type: application/grpc' -H 'te: trailers' \
            -H "authorization: Bearer $KEY" -d "$2" -v "http://127.0.0.1:$PORT_A$1" 2>&1 |
            grep -aq 'grpc-status: 0'
    }
    H2LOAD_PING=$(h2load_rps /grpc.health.v1.Health/Check "$OUT/ping.grpc")
    # The same empty check carrying as many bytes as a first page of calls (in an unknown
    # field, which the server skips): gRPC's ceiling for moving a page, with no database.
    PAGE_BYTES=$(nghttp -H 'content-type: application/grpc' -H 'te: trailers' \
        -H "authorization: Bearer $KEY" -d "$OUT/list.grpc" -v \
        "http://127.0.0.1:$PORT_A/calls.v1.CallService/ListCalls" 2>&1 |
        grep -ao 'recv DATA frame <length=[0-9]*' | awk -F= '{ sum += $2 } END { print sum + 0 }')
    python3 -c 'import struct, sys
size = int(sys.argv[1])
padding = b"\0" * max(size - 10, 0)
length, varint = len(padding), b""
while True:
    varint += bytes([(length & 0x7F) | (0x80 if length > 0x7F else 0)])
    length >>= 7
    if not length:
        break
message = b"\x7a" + varint + padding  # field 15, length-delimited: unknown to the server
sys.stdout.buffer.write(b"\x00" + struct.pack(">I", len(message)) + message)' "$PAGE_BYTES" \
        >"$OUT/ping-page.grpc"
    H2LOAD_PING_PAGE=$(h2load_rps /grpc.health.v1.Health/Check "$OUT/ping-page.grpc")
    # h2load counts HTTP statuses; a gRPC error is HTTP 200 too, so check one answer first.
    declare -A RPC_PATH=([get]=/calls.v1.CallService/GetCall [list]=/calls.v1.CallService/ListCalls)
    for call in get list; do
        path=${RPC_PATH[$call]}
        if grpc_ok "$path" "$OUT/$call.grpc"; then
            printf -v "H2LOAD_${call^^}" '%s' "$(h2load_rps "$path" "$OUT/$call.grpc")"
        else
            echo "   h2load's $call does not succeed (see nghttp); its figure is dropped" >&2
        fi
    done
    echo "   h2load: ping $H2LOAD_PING req/s, ping carrying a page ($PAGE_BYTES bytes) $H2LOAD_PING_PAGE req/s, get (one id) $H2LOAD_GET req/s, list $H2LOAD_LIST req/s"
else
    echo "   (h2load not installed: apt-get install nghttp2-client for the C-client figures)"
fi
for workload in get list search create update; do
    echo "== $workload (load $(cut -d' ' -f1 /proc/loadavg))"
    PG[$workload]=$(pgbench_run "$workload" "$workload.sql")
    SVC[$workload]=$(service_run "$workload")
    echo "   pgbench ${PG[$workload]} tps; service $(field rps "${SVC[$workload]}") req/s"
done
echo "== get-rest, list-rest: get and list over REST/JSON (HTTP/1.1 keep-alive), each right after its gRPC twin"
# Adjacent windows of one client, as for list-deep: REST's cost next to gRPC's at the same moment.
REST_RESULTS=$("$BENCH" run --address "http://127.0.0.1:$PORT_A" \
    --rest-address "${REST_ADDRESS:-http://127.0.0.1:$PORT_A}" --key "$KEY" \
    --workloads get,get-rest,list,list-rest --connections "$CONNECTIONS" \
    --concurrency "$CONCURRENCY" --warmup "${WARMUP}s" --duration "${DURATION}s" \
    --server-pid "$PID_A" --seeded "$CALLS" 2>>"$OUT/bench-stderr.txt" |
    tee -a "$OUT/service.txt" | grep '^RESULT')
for workload in get list; do
    SVC[$workload-grpc-twin]=$(grep "workload=$workload " <<<"$REST_RESULTS")
    SVC[$workload-rest]=$(grep "workload=$workload-rest " <<<"$REST_RESULTS")
    PG[$workload-rest]=${PG[$workload]}
    echo "   gRPC $workload $(field rps "${SVC[$workload-grpc-twin]}") req/s; REST $(field rps "${SVC[$workload-rest]}") req/s"
done
echo "== mixed"
PG[mixed]=$(pgbench_run mixed get.sql@70 list.sql@20 create.sql@8 update.sql@2)
SVC[mixed]=$(service_run mixed)
echo "== list-deep (page $DEEP_PAGE), right after the first page again"
# The two p50s compared come from adjacent windows of one client: minutes apart, this machine's
# drift alone moved the ratio by 0.2.
DEEP_RESULTS=$("$BENCH" run --address "http://127.0.0.1:$PORT_A" --key "$KEY" \
    --workloads list,list-deep --connections "$CONNECTIONS" --concurrency "$CONCURRENCY" \
    --warmup "${WARMUP}s" --duration "${DURATION}s" --server-pid "$PID_A" --seeded "$CALLS" \
    --deep-page "$DEEP_PAGE" 2>>"$OUT/bench-stderr.txt" | tee -a "$OUT/service.txt" | grep '^RESULT')
SVC[list-first]=$(grep 'workload=list ' <<<"$DEEP_RESULTS")
SVC[list-deep]=$(grep 'workload=list-deep ' <<<"$DEEP_RESULTS")

echo "== floor: get and list from a server of the service's own parts doing nothing else"
# callsd-bench floor: tonic, the service's pool and codec, its statements; no auth, no
# decoding, each row's columns copied raw. With as many worker threads as the service.
TOKIO_WORKER_THREADS=$CALLSD_WORKER_THREADS "$BENCH" floor --tenant-id "$TENANT" \
    --listen "127.0.0.1:$PORT_FLOOR" >"$OUT/floor.log" 2>&1 &
PID_FLOOR=$!
SERVERS+=("$PID_FLOOR")
for _ in $(seq 100); do
    grep -q '^listening=' "$OUT/floor.log" 2>/dev/null && break
    sleep 0.1
done
declare -A FLOOR
for workload in get list; do
    FLOOR[$workload]=$("$BENCH" run --address "http://127.0.0.1:$PORT_FLOOR" --key "$KEY" \
        --workloads "$workload" --connections "$CONNECTIONS" --concurrency "$CONCURRENCY" \
        --warmup "${WARMUP}s" --duration "${DURATION}s" --server-pid "$PID_FLOOR" \
        --seeded "$CALLS" 2>>"$OUT/bench-stderr.txt" | tee -a "$OUT/floor.txt" | grep '^RESULT' | tail -1)
    echo "   floor $workload $(field rps "${FLOOR[$workload]}") req/s"
done
kill "$PID_FLOOR"

echo "== plain pg_trgm search, for comparison (builds and drops a trigram index)"
TRGM_START=$(date +%s)
psql -d "$BENCH_DB" -v ON_ERROR_STOP=1 -qc "CREATE INDEX bench_trgm_idx ON calls USING gin (number_digits gin_trgm_ops) WHERE delete_time IS NULL" \
    -c "ANALYZE calls"
echo "   trigram index built in $(($(date +%s) - TRGM_START)) s"
# Alternated with the service's search SQL, so that both see the same indexes, cache and
# moment of the machine (the service's statement never uses the trigram index: EXPLAIN).
PG[search-trgm]=$(pgbench_run search-trgm search-trgm.sql)
PG[search-grams]=$(pgbench_run search-grams search.sql)
PG[search-trgm-2]=$(pgbench_run search-trgm-2 search-trgm.sql)
PG[search-grams-2]=$(pgbench_run search-grams-2 search.sql)
psql -d "$BENCH_DB" -qc "DROP INDEX bench_trgm_idx"

echo "== summarize: a year of the tenant by Paris day (SummarizeCalls), pgbench on the same SQL"
PG[summarize]=$(pgbench_run summarize summarize.sql)
SVC[summarize]=$(service_run summarize)
echo "   pgbench ${PG[summarize]} tps; service $(field rps "${SVC[summarize]}") req/s"

echo "== export: the whole tenant in one ExportCalls"
EXPORT=$("$BENCH" export --address "http://127.0.0.1:$PORT_A" --key "$KEY" --server-pid "$PID_A" \
    2>>"$OUT/bench-stderr.txt" | tee -a "$OUT/service.txt" | grep '^RESULT' | tail -1)
echo "   $(field calls "$EXPORT") calls, $(field calls_per_s "$EXPORT") calls/s"

GET_RPS=$(field rps "${SVC[get]}")
OVERLOAD_RATE=$(awk -v r="$GET_RPS" 'BEGIN { printf "%d", 2 * r }')
echo "== overload: get at $OVERLOAD_RATE req/s (2x the closed-loop peak), open loop"
SVC[overload]=$(service_run get --rate "$OVERLOAD_RATE" --max-in-flight 4096)

echo "== watch: $WATCH_STREAMS idle streams on replica A, $WATCH_RATE creates/s through replica B"
PID_B=$(start_server "$PORT_B" "$OUT/server-b.log")
SERVERS+=("$PID_B")
watch_run() { # idle streams, rate
    "$BENCH" watch --watch-address "http://127.0.0.1:$PORT_A" \
        --write-address "http://127.0.0.1:$PORT_B" --key "$KEY" --idle-key "$IDLE_KEY" \
        --streams "$1" --rate "$2" --warmup "${WARMUP}s" --duration "${DURATION}s" \
        --watch-pid "$PID_A" 2>>"$OUT/bench-stderr.txt" | tee -a "$OUT/service.txt" |
        grep '^RESULT' | tail -1
}
WATCH=$(watch_run "$WATCH_STREAMS" "$WATCH_RATE")
echo "== watch: $WATCH_STREAMS idle streams, $WATCH_RATE_SUSTAINED creates/s (below this disk's commit rate)"
WATCH_SUSTAINED=$(watch_run "$WATCH_STREAMS" "$WATCH_RATE_SUSTAINED")
echo "== watch: $IDLE_STREAMS idle streams (memory)"
# A fresh replica, so the figure is the streams' alone.
# (started in a command substitution, so not this shell's child: poll until it is gone)
kill "$PID_A"
while kill -0 "$PID_A" 2>/dev/null; do sleep 0.1; done
PID_A=$(start_server "$PORT_A" "$OUT/server-a2.log")
SERVERS+=("$PID_A")
IDLE=$(watch_run "$IDLE_STREAMS" 50)

echo
echo "== results: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $CALLS calls seeded in ${SEED_SECONDS}s"
echo "   concurrency $CONCURRENCY (pgbench -c $CONCURRENCY -j 2 -M prepared; callsd-bench $CONNECTIONS connections), ${DURATION}s each after ${WARMUP}s warm-up"
printf '| %-10s | %12s | %12s | %6s | %8s | %8s | %-14s |\n' workload "service/s" "pgbench/s" ratio "p50 ms" "p99 ms" errors
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------ -------------- -------------- -------- ---------- ---------- ----------------
for workload in create get list search update mixed list-deep summarize get-rest list-rest; do
    line=${SVC[$workload]}
    rps=$(field rps "$line")
    pg=${PG[$workload]:-}
    ratio=$([[ -n $pg ]] && awk -v s="$rps" -v p="$pg" 'BEGIN { printf "%.2f", s / p }' || echo "-")
    printf '| %-10s | %12s | %12s | %6s | %8s | %8s | %-14s |\n' "$workload" "$rps" "${pg:--}" "$ratio" \
        "$(field p50_ms "$line")" "$(field p99_ms "$line")" "$(field error_codes "$line")"
done
echo
PING_RPS=$(field rps "${SVC[ping]}")
echo "gRPC ceiling (Health/Check, no database): callsd-bench $PING_RPS req/s, h2load $H2LOAD_PING req/s"
echo "get bound if gRPC's CPU and PostgreSQL's add up, 1 / (1/ping + 1/pgbench get): $(awk -v a="$PING_RPS" -v b="${PG[get]}" 'BEGIN { printf "%.0f req/s = %.2f of pgbench", 1 / (1 / a + 1 / b), 1 / (1 / a + 1 / b) / b }')"
if [[ $H2LOAD_GET != - ]]; then
    echo "get through h2load (a C client like pgbench's; one id): $H2LOAD_GET req/s = $(awk -v s="$H2LOAD_GET" -v p="${PG[get]}" 'BEGIN { printf "%.2f", s / p }') of pgbench"
fi
if [[ $H2LOAD_LIST != - ]]; then
    echo "list through h2load (receives the page without decoding it, as pgbench does): $H2LOAD_LIST req/s = $(awk -v s="$H2LOAD_LIST" -v p="${PG[list]}" 'BEGIN { printf "%.2f", s / p }') of pgbench"
fi
if [[ $H2LOAD_PING_PAGE != - ]]; then
    echo "list bound if moving a page through gRPC and PostgreSQL's page add up, 1 / (1/ping carrying a page + 1/pgbench list), both from C clients: $(awk -v a="$H2LOAD_PING_PAGE" -v b="${PG[list]}" 'BEGIN { printf "%.0f req/s = %.2f of pgbench", 1 / (1 / a + 1 / b), 1 / (1 / a + 1 / b) / b }')"
fi
echo
echo "CPU per request in microseconds, over each measured window. pgbench's is the machine's busy"
echo "time (PostgreSQL and pgbench); the service's is our client, the server and the rest of the"
echo "machine (PostgreSQL). Where the cores are the limit (not the disk: create, update), a ratio"
echo "cannot pass pgbench total / service total, the last column."
printf '| %-10s | %14s | %12s | %12s | %16s | %13s | %12s |\n' workload "pgbench total" "our client" "server" "PostgreSQL, rest" "service total" "CPU bound"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------ ---------------- -------------- -------------- ------------------ --------------- --------------
for workload in create get list search update mixed; do
    line=${SVC[$workload]}
    pg_cpu=$(cat "$OUT/pgbench-$workload.cpu" 2>/dev/null || echo -)
    client=$(field client_cpu_us "$line") server=$(field server_cpu_us "$line") other=$(field other_cpu_us "$line")
    total=$(awk -v a="$client" -v b="$server" -v c="$other" 'BEGIN { if (a b c ~ /-/) print "-"; else printf "%.1f", a + b + c }')
    bound=$(awk -v p="$pg_cpu" -v s="$total" 'BEGIN { if (p == "-" || s == "-" || s == 0) print "-"; else printf "%.2f", p / s }')
    printf '| %-10s | %14s | %12s | %12s | %16s | %13s | %12s |\n' "$workload" "$pg_cpu" "$client" "$server" "$other" "$total" "$bound"
done
echo
echo "REST/JSON beside gRPC (adjacent windows of one client, $CONCURRENCY requests in flight; REST on"
echo "$CONCURRENCY keep-alive HTTP/1.1 connections, gRPC on $CONNECTIONS HTTP/2 ones):"
for workload in get list; do
    grpc=${SVC[$workload-grpc-twin]} rest=${SVC[$workload-rest]}
    target=$([[ $workload == get ]] && echo " (issue 16's target: 0.70)" || true)
    echo "   $workload: REST $(field rps "$rest") req/s = $(awk -v r="$(field rps "$rest")" -v g="$(field rps "$grpc")" 'BEGIN { printf "%.2f", r / g }') of gRPC's $(field rps "$grpc") req/s$target; p50 $(field p50_ms "$rest") vs $(field p50_ms "$grpc") ms; server CPU per request $(field server_cpu_us "$rest") vs $(field server_cpu_us "$grpc") us, client $(field client_cpu_us "$rest") vs $(field client_cpu_us "$grpc") us"
done
echo
echo "The stack's floor (callsd-bench floor: the service's pool, statements and codec, no auth, no"
echo "decoding), from callsd-bench, same run; against it, the service's own code:"
for workload in get list; do
    line=${FLOOR[$workload]}
    echo "   $workload: floor $(field rps "$line") req/s = $(awk -v s="$(field rps "$line")" -v p="${PG[$workload]}" 'BEGIN { printf "%.2f", s / p }') of pgbench; the service reaches $(awk -v s="$(field rps "${SVC[$workload]}")" -v f="$(field rps "$line")" 'BEGIN { printf "%.2f", s / f }') of the floor; server CPU per request: floor $(field server_cpu_us "$line") us, service $(field server_cpu_us "${SVC[$workload]}") us"
done
echo
echo "search: digit grams ${PG[search-grams]}, ${PG[search-grams-2]} tps vs plain pg_trgm ${PG[search-trgm]}, ${PG[search-trgm-2]} tps (pgbench, same 6-digit searches, alternated): $(awk -v a="${PG[search-grams]}" -v b="${PG[search-grams-2]}" -v c="${PG[search-trgm]}" -v d="${PG[search-trgm-2]}" 'BEGIN { printf "%.1fx", (a + b) / (c + d) }')"
echo "list-deep p50 / list p50: $(awk -v a="$(field p50_ms "${SVC[list-deep]}")" -v b="$(field p50_ms "${SVC[list-first]}")" 'BEGIN { printf "%.2f", a / b }') ($(field p50_ms "${SVC[list-deep]}") / $(field p50_ms "${SVC[list-first]}") ms, adjacent windows)"
echo "overload (get at ${OVERLOAD_RATE}/s): served $(field rps "${SVC[overload]}")/s, p50 $(field p50_ms "${SVC[overload]}") ms, p99 $(field p99_ms "${SVC[overload]}") ms, errors $(field error_codes "${SVC[overload]}"), not sent $(field not_sent "${SVC[overload]}"), server peak rss $(field peak_rss_mib "${SVC[overload]}") MiB"
for line in "$WATCH" "$WATCH_SUSTAINED"; do
    echo "watch ($(field idle_streams "$line") idle streams, $(field rate "$line") creates/s offered to the other replica, $(field creates "$line") created, $(field create_errors "$line") shed): $(field events "$line") events; from event_time (transaction start) p50 $(field p50_ms "$line") ms, p99 $(field p99_ms "$line") ms; from the CreateCall answer p50 $(field answer_p50_ms "$line") ms, p99 $(field answer_p99_ms "$line") ms ($(field before_answer "$line") events beat their answer)"
done
echo "export (the whole tenant, one stream): $(field calls "$EXPORT") calls in $(field seconds "$EXPORT") s = $(field calls_per_s "$EXPORT") calls/s, first message after $(field first_message_ms "$EXPORT") ms, sync token $(field sync_token "$EXPORT"); server rss $(field rss_before_mib "$EXPORT") MiB before, peak $(field rss_peak_during_mib "$EXPORT") MiB during, $(field rss_after_mib "$EXPORT") MiB after"
echo "idle streams: $(field idle_streams "$IDLE") held, rss $(field rss_before_mib "$IDLE") -> $(field rss_streams_mib "$IDLE") MiB ($(field kib_per_stream "$IDLE") KiB per stream)"
