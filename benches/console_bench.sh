#!/usr/bin/env bash
# Agent console and API benchmark: seeds a fresh SQLite database with many tickets, serves it,
# signs in, and times the queue page (plain, filtered, searched, deep page), the ticket page and
# the JSON API list and ticket endpoints; then the server's memory, the database size and the
# query plans of the queue's queries.
#
# Usage: benches/console_bench.sh            (from anywhere; a few minutes for 100,000 tickets)
#   TICKETS=100000   tickets to seed
#   N=300            timed requests per scenario (sequential, one keep-alive connection)
#   WARMUP=10        untimed requests before each scenario
#   SEED=1           seed of the data and of the random ticket ids
#   ANALYZE=1        run ANALYZE after seeding (the desk itself never does; default 0)
#   BIN=path         use this recoverydesk binary instead of building the release one
#   FROM_DB=file     start from a copy of this seeded database (KEEP=1 leaves one in the work
#                    directory) instead of seeding; `migrate` applies any pending migration to it
#   KEEP=1           keep the work directory (database, server log, JSON figures)
#   TMPDIR=/dir      where the database goes
#   SEEDER=bulk      seed with benches/bulk_seed.py (set-based SQL inside SQLite, one message per
#                    ticket; several times faster) instead of benches/console_seed.py
#   SEED_ONLY=1      stop after seeding and migrating, keep the work directory and print the
#                    database's path (for FROM_DB=, so the seeding need not hold the bench lock)
#   BACKEND=postgres serve from PostgreSQL instead: the seeded SQLite file is copied in bulk
#                    (benches/pg_load.py) into a fresh database rd_bench_<pid> on PG_URL
#                    (default postgres://postgres@127.0.0.1:5432/postgres), dropped afterwards
#                    unless KEEP=1
# The search migration (2026-12-07-000013_ticket_search, on SQLite with 2026-12-10-000034_search_by_message)
# is reverted before seeding and applied after it, so its backfill of the seeded tickets is timed
# as an upgrade would run it.
# Prints Markdown that docs/benchmarks.md ("Agent console and API at 100,000 tickets") is
# updated from.
set -euo pipefail
cd "$(dirname "$0")/.."

TICKETS="${TICKETS:-100000}"
N="${N:-300}"
WARMUP="${WARMUP:-10}"
SEED="${SEED:-1}"

say() { printf '==> %s\n' "$*" >&2; }

COMMIT="$(git log -1 --format=%h)"
BUILT="release build of this work tree at $COMMIT$(git diff --quiet HEAD -- src migrations templates Cargo.toml Cargo.lock 2>/dev/null || echo ' with uncommitted changes')"
if [ -n "${BIN:-}" ]; then
    BUILT="the binary $BIN (BIN=), work tree at $COMMIT"
else
    say "building the release binary"
    cargo build --release --quiet
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    BIN="$TARGET_DIR/release/recoverydesk"
fi
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-console-bench.XXXXXX")"
SERVE_PID=""
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    if [ -n "$PG_DB" ] && [ "${KEEP:-0}" != 1 ]; then psql -X -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB" || true; fi
    if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

DB="$WORK/bench.db"
BACKEND="${BACKEND:-sqlite}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_DB=""
SEARCH_MIGRATION="2026-12-07-000013_ticket_search"
SEARCH_VERSION="20261207000013"
export DATABASE_URL="sqlite://$DB"
export RECOVERYDESK_MAIL_DIR="$WORK/mail"
unset RECOVERYDESK_SECRET_KEY SMTP_URL
# The API scenarios send a few thousand requests a minute with one token: above the default
# per-token limit, which is not what is measured here.
export RECOVERYDESK_API_RATE_LIMIT="${RECOVERYDESK_API_RATE_LIMIT:-100000}"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export RECOVERYDESK_BIND="127.0.0.1:$PORT"

if [ -n "${FROM_DB:-}" ]; then
    say "copying $FROM_DB (seeded earlier) and migrating it"
    cp "$FROM_DB" "$DB"
    if [ -f "$FROM_DB-wal" ]; then cp "$FROM_DB-wal" "$DB-wal"; fi
    MIGRATE_START="$(date +%s.%N)"
    # (PostgreSQL gets the data unmigrated below; its own migrate runs there.)
    if [ "$BACKEND" != postgres ]; then "$BIN" migrate 2>"$WORK/migrate.log"; fi
    MIGRATE_SECONDS="$(python3 -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))' "$MIGRATE_START" "$(date +%s.%N)")"
    COUNTED="$(python3 - "$DB" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
total = c.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
open_ = c.execute("SELECT COUNT(*) FROM tickets WHERE state NOT IN ('resolved', 'refused')").fetchone()[0]
print(f"{total} tickets, {open_} open")
PY
)"
    SEEDED="copy of $FROM_DB ($COUNTED); migrate took $MIGRATE_SECONDS s"
else
    say "migrating $DATABASE_URL"
    "$BIN" migrate 2>"$WORK/migrate.log"
    # (000034's down.sql rebuilds the old index, which this Python's SQLite may not know how
    # to: its table is dropped instead, and 000013's down.sql drops the index.)
    python3 - "$DB" "migrations/sqlite/$SEARCH_MIGRATION/down.sql" "$SEARCH_VERSION" 20261210000034 <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript("DROP TABLE IF EXISTS ticket_search_extent;")
c.executescript(open(sys.argv[2]).read())
for version in sys.argv[3:]:
    c.execute("DELETE FROM __diesel_schema_migrations WHERE version = ?", (version,))
c.commit()
PY
    say "seeding $TICKETS tickets"
    if [ "${SEEDER:-console}" = bulk ]; then
        SEEDED="$(python3 benches/bulk_seed.py --tickets "$TICKETS" "$DB") (benches/bulk_seed.py)"
    else
        SEEDED="$(python3 benches/console_seed.py --tickets "$TICKETS" --seed "$SEED" "$DB")"
    fi
    if [ "$BACKEND" != postgres ]; then
        say "applying the search migration (its backfill)"
        MIGRATE_START="$(date +%s.%N)"
        "$BIN" migrate 2>>"$WORK/migrate.log"
        SEEDED="$SEEDED; search migration (backfill) took $(python3 -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))' "$MIGRATE_START" "$(date +%s.%N)") s"
    fi
fi
if [ "$BACKEND" = postgres ]; then
    PG_DB="rd_bench_$$"
    psql -X -q "$PG_URL" -c "CREATE DATABASE $PG_DB"
    export DATABASE_URL="${PG_URL%/*}/$PG_DB"
    say "migrating $DATABASE_URL without the search migration, copying the data in"
    "$BIN" migrate 2>>"$WORK/migrate.log"
    psql -X -q "$DATABASE_URL" -f "migrations/postgres/$SEARCH_MIGRATION/down.sql" \
        -c "DELETE FROM __diesel_schema_migrations WHERE version = '$SEARCH_VERSION'"
    LOADED="$(python3 benches/pg_load.py "$DB" "$DATABASE_URL")"
    say "applying the search migration (its backfill)"
    MIGRATE_START="$(date +%s.%N)"
    "$BIN" migrate 2>>"$WORK/migrate.log"
    SEEDED="$SEEDED; copied into PostgreSQL: $LOADED; search migration (backfill) took $(python3 -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))' "$MIGRATE_START" "$(date +%s.%N)") s"
    psql -X -q "$DATABASE_URL" -c "ANALYZE"
fi
say "data: $SEEDED"
if [ "${SEED_ONLY:-0}" = 1 ]; then
    KEEP=1
    echo "$DB"
    exit 0
fi
if [ "${ANALYZE:-0}" = 1 ]; then
    say "ANALYZE"
    python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("ANALYZE"); c.commit()' "$DB"
fi

# A copied database may already have bench@x.test from an earlier run.
EMAIL="bench@x.test"
if [ -n "${FROM_DB:-}" ]; then EMAIL="bench-$$@x.test"; fi
PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
printf '%s\n' "$PASSWORD" | "$BIN" agents add --email "$EMAIL" --name Bench --role admin --password-stdin \
    2>>"$WORK/migrate.log"
TOKEN="$("$BIN" agents token --email "$EMAIL" 2>>"$WORK/migrate.log")"

say "serving on 127.0.0.1:$PORT"
"$BIN" serve 2>"$WORK/serve.log" &
SERVE_PID=$!
HEALTHY=0
for _ in $(seq 1 300); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then HEALTHY=1; break; fi
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done
[ "$HEALTHY" = 1 ] || { echo "the server did not answer /healthz within 30 s" >&2; cat "$WORK/serve.log" >&2; exit 1; }
RSS_START="$(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status")"

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
say "timing $N requests per scenario"
TABLE="$(python3 benches/console_bench.py --base "http://127.0.0.1:$PORT" --db "$DB" \
    --email "$EMAIL" --password "$PASSWORD" --token "$TOKEN" \
    -n "$N" --warmup "$WARMUP" --seed "$SEED" --json "$WORK/figures.json")"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
VMRSS="$(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status")"
VMHWM="$(awk '/^VmHWM/ {print $2}' "/proc/$SERVE_PID/status")"
kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
DB_BYTES="$(stat -c %s "$DB")"
WAL_BYTES="$( [ -f "$DB-wal" ] && stat -c %s "$DB-wal" || echo 0)"

cat <<EOF

### Run of $(date -u '+%Y-%m-%d %H:%M UTC') on $COMMIT

- Binary: $BUILT
- Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; load average $LOAD_BEFORE before, $LOAD_AFTER after
- Data: $SEEDED
- Backend: $BACKEND$( [ "$BACKEND" = postgres ] && psql -X -At "$DATABASE_URL" -c "SELECT ', ' || version() || ', database ' || pg_size_pretty(pg_database_size(current_database())) || ', ticket_search ' || pg_size_pretty(pg_total_relation_size('ticket_search'))")
- Database: $(mib $((DB_BYTES / 1024))) (+ $(mib $((WAL_BYTES / 1024))) WAL after the run)$( [ "${ANALYZE:-0}" = 1 ] && echo ', ANALYZEd' || echo ', never ANALYZEd (as the desk leaves it)')
- Server memory: VmRSS $(mib "$RSS_START") after start, $(mib "$VMRSS") after the run; VmHWM $(mib "$VMHWM")
- $N sequential requests per row, one keep-alive connection, $WARMUP untimed first

$TABLE

Query plans ($( [ "$BACKEND" = postgres ] && echo "PostgreSQL, EXPLAIN ANALYZE" || echo "SQLite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') of Python's sqlite3; the desk links its own bundled SQLite")):

\`\`\`
$(if [ "$BACKEND" = postgres ]; then python3 benches/pg_explain.py "$DATABASE_URL" "$DB"; else python3 benches/console_explain.py "$DB"; fi)
\`\`\`
EOF
