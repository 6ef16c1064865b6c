# Sourced by bench/callgrind.sh and bench/list-floor.sh: the production binaries and an existing
# seeded database. The caller sets BENCH_DB, SEED_ENV and OUT first; this reads the tenant, its
# key and the number of calls from SEED_ENV (bench/run.sh writes one to target/bench/seed.env;
# `callsd-bench seed` prints it; without `calls=`, the database is counted).

CALLSD=${CALLSD:-target/production/callsd}
BENCH=${BENCH:-target/production/callsd-bench}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export DATABASE_URL="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$BENCH_DB"
mkdir -p "$OUT"

TENANT=$(sed -n 's/^tenant_id=//p' "$SEED_ENV")
KEY=$(sed -n 's/^key=//p' "$SEED_ENV")
CALLS=$(sed -n 's/^calls=//p' "$SEED_ENV")
CALLS=${CALLS:-$(psql -d "$BENCH_DB" -Atc "SELECT count(*) FROM calls WHERE tenant_id = '$TENANT'")}

# Waits up to TRIES tenths of a second for something to listen on port $1; false if nothing does.
wait_for_port() {
    for _ in $(seq "${TRIES:-100}"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}
