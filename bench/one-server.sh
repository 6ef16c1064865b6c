# Sourced by bench/fairness.sh and bench/goodput.sh: a fresh database BENCH_DB, the production
# build, and one callsd at a time on PORT, on the CPUs SERVER_CPUS (taskset lists; every CPU by
# default, as CLIENT_CPUS for the load generator). The caller sets BENCH_DB, PORT and OUT first,
# then calls `prepare` once; KEEP=1 keeps the database afterwards.

ALL_CPUS=0-$(($(nproc) - 1))
SERVER_CPUS=${SERVER_CPUS:-$ALL_CPUS}
CLIENT_CPUS=${CLIENT_CPUS:-$ALL_CPUS}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export CALLSD_WORKER_THREADS=${CALLSD_WORKER_THREADS:-1}
CALLSD=${CARGO_TARGET_DIR:-target}/production/callsd
BENCH=${CARGO_TARGET_DIR:-target}/production/callsd-bench
export DATABASE_URL="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$BENCH_DB"
SERVER=

# Checks PostgreSQL, prints what the machine is doing, builds, and creates the database.
prepare() {
    mkdir -p "$OUT"
    psql -d postgres -Atc 'SELECT 1' >/dev/null || { echo "PostgreSQL does not answer at $PGHOST:$PGPORT" >&2; exit 1; }
    echo "== $(date -u +%FT%TZ) on $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); server worker threads: $CALLSD_WORKER_THREADS; CPUs: server $SERVER_CPUS, load generator $CLIENT_CPUS"
    cargo build --profile production --quiet --bin callsd --bin callsd-bench
    trap cleanup EXIT
    psql -d postgres -qc "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB"
}

cleanup() {
    if [[ -n $SERVER ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} != 1 ]]; then psql -d postgres -qc "DROP DATABASE IF EXISTS $BENCH_DB"; fi
}

start_server() { # log file, then VAR=value settings; sets SERVER
    local log=$1; shift
    env "$@" CALLSD_LISTEN="127.0.0.1:$PORT" CALLSD_METRICS_LISTEN=off CALLSD_SHUTDOWN_DRAIN=0s \
        RUST_LOG="${RUST_LOG:-warn}" taskset -c "$SERVER_CPUS" "$CALLSD" serve >"$log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return; fi
        sleep 0.1
    done
    echo "callsd did not start; see $log" >&2
    exit 1
}

stop_server() {
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=
}

# The value of NAME=value in a RESULT line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
