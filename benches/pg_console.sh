#!/usr/bin/env bash
# The agent console and the JSON API served from a PostgreSQL database seeded earlier (a
# million tickets take minutes to seed and copy; this times them again in about two minutes,
# e.g. before and after a change, with one binary or another).
#
# Usage: PG_DB=postgres://…/rd_bench_1m SQLITE_DB=/tmp/…/bench.db BIN=… benches/pg_console.sh
#   PG_DB       a migrated, seeded database (`migrate` runs first, applying anything pending)
#   SQLITE_DB   the SQLite file it was copied from (benches/pg_load.py): console_bench.py reads
#               ticket ids and search terms from it
#   BIN         the recoverydesk binary (release)
#   N=100 WARMUP=10 SEED=1   as for benches/console_bench.py
#   FOLD_WAIT=20  seconds to wait after start before timing, so that `serve`'s first fold of the
#               queue-count deltas (a million after a bulk copy) is not inside the timings
# Prepare the two databases once with
#   KEEP=1 TICKETS=1000000 SEEDER=bulk BACKEND=postgres benches/console_bench.sh
# (it keeps the work directory with bench.db and the database rd_bench_<pid>).
# Prints Markdown: the timings (median, p90, p95, p99, min, max), the server's memory, and the
# EXPLAIN ANALYZE of the search and list queries (benches/pg_explain.py).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PG_DB:?the seeded PostgreSQL database URL}"
: "${SQLITE_DB:?the SQLite file it was copied from}"
: "${BIN:?the recoverydesk binary}"
N="${N:-100}"
WARMUP="${WARMUP:-10}"
SEED="${SEED:-1}"
FOLD_WAIT="${FOLD_WAIT:-20}"
say() { printf '==> %s\n' "$*" >&2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-pgconsole.XXXXXX")"
SERVE_PID=""
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

export DATABASE_URL="$PG_DB"
export RECOVERYDESK_MAIL_DIR="$WORK/mail"
unset RECOVERYDESK_SECRET_KEY SMTP_URL
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export RECOVERYDESK_BIND="127.0.0.1:$PORT"

# The seeded events have no audit-chain links, and the start-up backfill that would compute
# them takes hours at two million events (docs/benchmarks.md, "Release figures, 2026-12-06
# (PostgreSQL)"): the bench marks it done; none of the timed views reads the links.
psql -X -q "$PG_DB" -c "INSERT INTO settings (key, value) VALUES ('audit_chain_backfilled', '1') ON CONFLICT DO NOTHING"
"$BIN" migrate 2>"$WORK/migrate.log"
EMAIL="bench-$$-$(date +%s)@x.test"
PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
printf '%s\n' "$PASSWORD" | "$BIN" agents add --email "$EMAIL" --name Bench --role admin --password-stdin \
    2>>"$WORK/migrate.log"
TOKEN="$("$BIN" agents token --email "$EMAIL" 2>>"$WORK/migrate.log")"

say "serving $PG_DB on 127.0.0.1:$PORT"
"$BIN" serve 2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 1 300); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then break; fi
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
done
sleep "$FOLD_WAIT"
# What autovacuum does soon after: the fold deleted the deltas, and until their dead rows are
# vacuumed every queue view's count reads them (a bulk copy's million: 150 ms per view).
psql -X -q "$PG_DB" -c "VACUUM ticket_count_deltas"
RSS_START="$(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status")"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
say "timing $N requests per scenario"
TABLE="$(python3 benches/console_bench.py --base "http://127.0.0.1:$PORT" --db "$SQLITE_DB" \
    --email "$EMAIL" --password "$PASSWORD" --token "$TOKEN" -n "$N" --warmup "$WARMUP" --seed "$SEED")"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
VMRSS="$(awk '/^VmRSS/ {print $2}' "/proc/$SERVE_PID/status")"
VMHWM="$(awk '/^VmHWM/ {print $2}' "/proc/$SERVE_PID/status")"
kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
cat <<EOF

### PostgreSQL console run of $(date -u '+%Y-%m-%d %H:%M UTC') ($(git log -1 --format=%h), binary $BIN)

- Machine: $(nproc) cores, load average $LOAD_BEFORE before, $LOAD_AFTER after
- Data: $(psql -X -At "$PG_DB" -c "SELECT (SELECT count(*) FROM tickets) || ' tickets, ' || (SELECT count(*) FROM tickets WHERE state NOT IN ('resolved', 'refused')) || ' open; ' || version() || ', database ' || pg_size_pretty(pg_database_size(current_database()))")
- Server memory: VmRSS $(mib "$RSS_START") after start, $(mib "$VMRSS") after the run; VmHWM $(mib "$VMHWM")
- $N sequential requests per row, one keep-alive connection, $WARMUP untimed first

$TABLE

\`\`\`
$(python3 benches/pg_explain.py "$PG_DB" "$SQLITE_DB")
\`\`\`
EOF
