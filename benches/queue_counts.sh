#!/usr/bin/env bash
# The queue's counts at a million tickets, on SQLite and PostgreSQL: the query the desk runs
# (`db::console::counts`: totals plus unfolded deltas) with no delta, with about 20,000 deltas
# (what 10 s of ingestion at 700 msg/s leaves, three deltas per new ticket: five folds' worth
# at the 2 s interval), and the alternative that was
# measured against it: counting the tickets from the `(kind, state, id)` index every time.
# Also the fold itself (`db::console::fold_counts`'s SQL) of those 30,000 deltas.
#
# Usage: benches/queue_counts.sh            (a few minutes: seeding a million rows twice)
#   TICKETS=1000000     tickets to seed
#   RUNS=20             timed runs of each query (the median and the worst are printed)
#   PG_SERVER=postgres://postgres@127.0.0.1:5432/postgres   (default: TEST_DATABASE_URL)
#   RECOVERYDESK_BIN=…  the binary that migrates (default: build the debug one)
# Tickets are written with plain SQL (kind, state and the NOT NULL columns), through the
# triggers as the desk writes them, and then folded.
set -euo pipefail
cd "$(dirname "$0")/.."

TICKETS="${TICKETS:-1000000}"
RUNS="${RUNS:-20}"
PG_SERVER="${PG_SERVER:-${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
say() { printf '==> %s\n' "$*" >&2; }

if [ -n "${RECOVERYDESK_BIN:-}" ]; then
    BIN="$RECOVERYDESK_BIN"
else
    cargo build --quiet --bin recoverydesk
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    BIN="$TARGET_DIR/debug/recoverydesk"
fi
command -v psql >/dev/null && command -v sqlite3 >/dev/null || { echo "psql and sqlite3 are needed" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-counts.XXXXXX")"
DB="rd_counts_$(date +%s%N | tail -c 10)"
cleanup() {
    psql -q "$PG_SERVER" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
PG_URL="$(python3 - "$PG_SERVER" "$DB" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, u.fragment)))
EOF
)"
export RECOVERYDESK_SECRET_KEY="$(printf 'b%.0s' $(seq 1 128))" RUST_LOG=warn

COUNTS="SELECT kind, state, CAST(SUM(n) AS BIGINT) AS n FROM (SELECT kind, state, n FROM ticket_counts UNION ALL SELECT kind, state, d AS n FROM ticket_count_deltas) AS c GROUP BY kind, state HAVING SUM(n) > 0 ORDER BY kind, state"
INDEX_COUNT="SELECT kind, state, count(*) AS n FROM tickets GROUP BY kind, state ORDER BY kind, state"
PG_FOLD="WITH gone AS (DELETE FROM ticket_count_deltas RETURNING kind, state, d) INSERT INTO ticket_counts (kind, state, n) SELECT kind, state, CAST(SUM(d) AS BIGINT) FROM gone GROUP BY kind, state ORDER BY kind, state ON CONFLICT (kind, state) DO UPDATE SET n = ticket_counts.n + EXCLUDED.n"
SQLITE_FOLD="INSERT INTO ticket_counts (kind, state, n) SELECT kind, state, SUM(d) FROM ticket_count_deltas WHERE true GROUP BY kind, state ON CONFLICT (kind, state) DO UPDATE SET n = n + excluded.n; DELETE FROM ticket_count_deltas;"
# n rows from `first`: kinds and states spread as in the console seed (30 % open).
pg_seed() {
    echo "INSERT INTO tickets (kind, state, subject, requester, requester_normalized, status_token_hash,
        status_token_salt, channel, waiting_since, created_at, updated_at)
    SELECT (ARRAY['forgot_username','ip_lockout','login_help','account_terminated','general'])[1 + i % 5],
        (ARRAY['resolved','resolved','resolved','resolved','resolved','refused','refused','open','waiting','verifying'])[1 + (i / 5) % 10],
        's', 'r@x.test', 'r@x.test', 'seed:' || i, '', 'mail', now(), now(), now()
    FROM generate_series($1, $1 + $2 - 1) AS i;"
}
sqlite_seed() {
    echo "WITH RECURSIVE s(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM s WHERE i < $1 + $2 - 1)
    INSERT INTO tickets (kind, state, subject, requester, requester_normalized, status_token_hash,
        status_token_salt, channel, waiting_since, created_at, updated_at)
    SELECT json_extract('[\"forgot_username\",\"ip_lockout\",\"login_help\",\"account_terminated\",\"general\"]', '\$[' || (i % 5) || ']'),
        json_extract('[\"resolved\",\"resolved\",\"resolved\",\"resolved\",\"resolved\",\"refused\",\"refused\",\"open\",\"waiting\",\"verifying\"]', '\$[' || ((i / 5) % 10) || ']'),
        's', 'r@x.test', 'r@x.test', 'seed:' || i, '', 'mail', datetime('now'), datetime('now'), datetime('now')
    FROM s;"
}

# Prints "median_ms max_ms" of RUNS runs of `$2` through `$1` (a function running one SQL).
time_query() {
    local runner="$1" sql="$2" times=()
    for _ in $(seq 1 "$RUNS"); do
        local start end
        start="$(date +%s%N)"
        "$runner" "$sql" >/dev/null
        end="$(date +%s%N)"
        times+=("$(( (end - start) / 1000 ))")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {printf "%.1f %.1f", a[int((NR + 1) / 2)] / 1000, a[NR] / 1000}'
}
# The client's own cost (process start, connection), subtracted from nothing but printed.
pg_run() { psql -qtA "$PG_URL" -c "$1"; }
sqlite_run() { sqlite3 "$WORK/counts.db" "$1"; }

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A R
for backend in sqlite pg; do
    if [ "$backend" = pg ]; then
        psql -q "$PG_SERVER" -c "CREATE DATABASE $DB" >/dev/null
        DATABASE_URL="$PG_URL" "$BIN" migrate >/dev/null
        run=pg_run; seed=pg_seed; fold="$PG_FOLD"
    else
        DATABASE_URL="sqlite://$WORK/counts.db" "$BIN" migrate >/dev/null
        run=sqlite_run; seed=sqlite_seed; fold="$SQLITE_FOLD"
    fi
    say "$backend: seeding $TICKETS tickets"
    "$run" "$($seed 1 "$TICKETS")"
    "$run" "$fold"
    [ "$backend" = pg ] && pg_run "VACUUM ANALYZE"
    [ "$backend" = sqlite ] && sqlite_run "ANALYZE"
    R[$backend-empty]="$(time_query "$run" "SELECT 1")"
    R[$backend-folded]="$(time_query "$run" "$COUNTS")"
    R[$backend-index]="$(time_query "$run" "$INDEX_COUNT")"
    say "$backend: 10,000 tickets more and about 5,000 state changes"
    "$run" "$($seed $((TICKETS + 1)) 10000)"
    "$run" "UPDATE tickets SET state = 'resolved' WHERE id > $TICKETS - 10000 AND id <= $TICKETS AND state <> 'resolved'"
    "$run" "UPDATE tickets SET state = 'refused' WHERE id > $TICKETS - 20000 AND id <= $TICKETS - 10000 AND state = 'resolved'"
    DELTAS="$("$run" "SELECT count(*) FROM ticket_count_deltas")"
    R[$backend-deltas]="$DELTAS"
    R[$backend-unfolded]="$(time_query "$run" "$COUNTS")"
    same="$([ "$("$run" "$COUNTS")" = "$("$run" "$INDEX_COUNT")" ] && echo yes || echo NO)"
    R[$backend-same]="$same"
    start="$(date +%s%N)"; "$run" "$fold" >/dev/null; end="$(date +%s%N)"
    R[$backend-fold]="$(awk -v ns=$((end - start)) 'BEGIN {printf "%.1f", ns / 1e6}')"
done

cat <<EOF

Machine: $(nproc) cores, $(uname -sr); PostgreSQL $(psql -qtA "$PG_SERVER" -c 'SHOW server_version'); SQLite $(sqlite3 --version | cut -d' ' -f1)
Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $LOAD_BEFORE; $TICKETS tickets; median and worst of $RUNS runs, each through a new \`psql\`/\`sqlite3\` process

| query | SQLite median / worst ms | PostgreSQL median / worst ms |
|---|---:|---:|
| \`SELECT 1\` (the client's own cost) | ${R[sqlite-empty]/ / / } | ${R[pg-empty]/ / / } |
| counts: totals, no delta (just folded) | ${R[sqlite-folded]/ / / } | ${R[pg-folded]/ / / } |
| counts: totals + ${R[pg-deltas]} unfolded deltas | ${R[sqlite-unfolded]/ / / } | ${R[pg-unfolded]/ / / } |
| count the tickets from the \`(kind, state, id)\` index | ${R[sqlite-index]/ / / } | ${R[pg-index]/ / / } |
| fold of those deltas (once) | ${R[sqlite-fold]} | ${R[pg-fold]} |

Counts equal to the tickets' own GROUP BY with the deltas unfolded: SQLite ${R[sqlite-same]}, PostgreSQL ${R[pg-same]}.
EOF
