#!/usr/bin/env bash
# Credential-failure diagnosis benchmark (issue 8): imports COUNT generated authentication events
# with `recoverydesk auth-log import` and reports events/s and peak memory, then the p50/p95/p99
# of a diagnosis lookup with those events stored (examples/auth_log_lookup.rs).
#
#   benches/auth_log.sh                         # 1,000,000 events on SQLite
#   COUNT=100000 benches/auth_log.sh            # a quicker run
#   PG_URL=postgres://postgres@127.0.0.1:5432 benches/auth_log.sh   # PostgreSQL too (a scratch database is created and dropped)
#   KEEP=1 benches/auth_log.sh                  # keep the files to look at afterwards
set -euo pipefail
COUNT=${COUNT:-1000000}
LOOKUPS=${LOOKUPS:-2000}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin recoverydesk --example auth_log_lookup
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d /tmp/recoverydesk-auth-bench.XXXXXX)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT

python3 benches/gen_auth_log.py "$COUNT" > "$work/events.jsonl"
echo "generated $COUNT events ($(du -h "$work/events.jsonl" | cut -f1)) in $work"

run() { # name database-url
    local name=$1 url=$2
    DATABASE_URL=$url "$target/release/recoverydesk" migrate 2>/dev/null
    DATABASE_URL=$url /usr/bin/time -v "$target/release/recoverydesk" auth-log import "$work/events.jsonl" \
        > "$work/$name.out" 2> "$work/$name.time"
    local elapsed rss seconds
    elapsed=$(grep 'Elapsed (wall clock)' "$work/$name.time" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$work/$name.time" | awk '{print $NF}')
    seconds=$(python3 -c "p='$elapsed'.split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))")
    echo "$name import: $(cat "$work/$name.out")"
    python3 -c "print('$name import: %.0f events/s (%s s), peak RSS %.0f MiB' % ($COUNT/$seconds, '$seconds', $rss/1024))"
    "$target/release/examples/auth_log_lookup" "$url" "$LOOKUPS" | sed "s/^/$name lookup: /"
}

run sqlite "sqlite://$work/bench.db"
echo "sqlite database: $(du -h "$work/bench.db" | cut -f1)"
if [ -n "${PG_URL:-}" ]; then
    db="rd_auth_bench_$$"
    psql "$PG_URL/postgres" -qc "CREATE DATABASE $db"
    trap 'psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; [ "${KEEP:-}" = 1 ] || rm -rf "$work"' EXIT
    run postgres "$PG_URL/$db"
fi
