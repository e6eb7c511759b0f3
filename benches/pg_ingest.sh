#!/usr/bin/env bash
# PostgreSQL in-server ingestion under concurrency: generated support mail POSTed to
# `/inbound/email` of `recoverydesk serve` (release build) by 1, 4 and 8 clients on one
# instance, and by 8 clients spread over two instances sharing the database. Each scenario
# starts from a fresh database. Prints msg/s, p50/p95/p99/max latency, the CPU PostgreSQL and
# `serve` spent per message, the HTTP answers, and the deadlocks PostgreSQL broke (read after the
# instances stopped, so every backend has reported).
#
# Usage: benches/pg_ingest.sh              (from anywhere; a few minutes)
#   PG_SERVER=postgres://postgres@127.0.0.1:5432/postgres   a server we may create databases on
#                       (default: TEST_DATABASE_URL, else that URL)
#   COUNT=2000          messages per scenario
#   SCENARIOS="1x1 4x1 8x1 8x2"   clients x instances
#   SEED=7              generator seed
#   RECOVERYDESK_BIN=…  measure this binary instead of building target/release/recoverydesk
#   KEEP=1              keep the work directory and the databases
#   MAILGATE="1 2"      then `mailgate` (one process per message) with `serve` running on a fresh
#                       database, handing each message over its socket: sequential and 2 in
#                       parallel (MAILGATE="" skips it); GATE=500 messages per run
#   HOT_COUNTERS=1      "before": after migrating, put back the trigger function of migration
#                       000008 (one counter row per kind and state, updated in every ingest
#                       transaction), the rows this change removed; the binary is the same
# Prints a Markdown table that docs/benchmarks.md ("PostgreSQL under concurrency") is updated from.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-2000}"
SEED="${SEED:-7}"
SCENARIOS="${SCENARIOS:-1x1 4x1 8x1 8x2}"
PG_SERVER="${PG_SERVER:-${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
TOKEN="bench-token-0123456789abcdef"

say() { printf '==> %s\n' "$*" >&2; }

if [ -n "${RECOVERYDESK_BIN:-}" ]; then
    BIN="$RECOVERYDESK_BIN"
    say "using $BIN (RECOVERYDESK_BIN; not building)"
else
    say "building the release binary"
    cargo build --release --quiet --bin recoverydesk
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    BIN="$TARGET_DIR/release/recoverydesk"
fi
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }
command -v psql >/dev/null || { echo "psql is needed (apt-get install postgresql-client)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-pgbench.XXXXXX")"
PIDS=()
DATABASES=()
stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
cleanup() {
    stop_all
    if [ "${KEEP:-0}" = 1 ]; then
        say "kept $WORK and databases ${DATABASES[*]}"
    else
        for db in "${DATABASES[@]}"; do psql -q "$PG_SERVER" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# The driver, in Rust: the Python one spent a fifth of these two cores (docs/benchmarks.md).
DELIVER="$WORK/deliver"
rustc --edition 2024 -C opt-level=3 benches/deliver.rs -o "$DELIVER"

# The server URL with another database name (keeping any ?query).
db_url() {
    python3 - "$PG_SERVER" "$1" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, u.fragment)))
EOF
}

# CPU time (user + system, clock ticks) of these processes so far.
ticks() { for pid in "$@"; do awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'; }
TICKS_PER_S="$(getconf CLK_TCK)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

say "generating $COUNT messages (seed $SEED)"
python3 benches/gen_maildir.py --count "$COUNT" --seed "$SEED" --id-prefix pg "$WORK/maildir" 2>"$WORK/gen.txt"

export RECOVERYDESK_SECRET_KEY="$(printf 'b%.0s' $(seq 1 128))"
export RECOVERYDESK_INBOUND_TOKEN="$TOKEN"
export RUST_LOG=warn
unset SMTP_URL RECOVERYDESK_MAX_MESSAGE_BYTES

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
ROWS=""
for scenario in $SCENARIOS; do
    clients="${scenario%x*}"
    instances="${scenario#*x}"
    db="rd_bench_$(date +%s%N | tail -c 10)"
    DATABASES+=("$db")
    psql -q "$PG_SERVER" -c "CREATE DATABASE $db" >/dev/null
    url="$(db_url "$db")"
    export DATABASE_URL="$url"
    export RECOVERYDESK_MAIL_DIR="$WORK/mail-$db"
    "$BIN" migrate >/dev/null 2>"$WORK/migrate.err" || { cat "$WORK/migrate.err" >&2; exit 1; }
    if [ "${HOT_COUNTERS:-0}" = 1 ]; then
        psql -q "$url" >/dev/null <<'SQL'
CREATE OR REPLACE FUNCTION ticket_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE ticket_counts SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO ticket_counts (kind, state, n) VALUES (NEW.kind, NEW.state, 1)
            ON CONFLICT (kind, state) DO UPDATE SET n = ticket_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
SQL
    fi
    urls=()
    for i in $(seq 1 "$instances"); do
        port="$(free_port)"
        RECOVERYDESK_BIND="127.0.0.1:$port" RECOVERYDESK_BASE_URL="http://127.0.0.1:$port" \
            "$BIN" serve >"$WORK/serve-$db-$i.out" 2>"$WORK/serve-$db-$i.err" &
        PIDS+=("$!")
        for _ in $(seq 1 200); do
            python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
            sleep 0.05
        done
        urls+=("http://127.0.0.1:$port")
    done
    say "$clients client(s), $instances instance(s), database $db"
    # The CPU both sides spent, per message: on a machine whose speed drifts the rate alone
    # says little, the CPU a message costs less so. Every `postgres` process on the machine
    # counts (run nothing else on it), and one that exits during the run does not (the desk's
    # pools keep their connections, so its backends live through the run).
    pg_before="$(ticks $(pgrep -x postgres))" serve_before="$(ticks "${PIDS[@]}")"
    result="$("$DELIVER" --json webhook "$(IFS=,; echo "${urls[*]}")" "$TOKEN" "$clients" "$WORK/maildir" || true)"
    pg_cpu="$(($(ticks $(pgrep -x postgres)) - pg_before))" serve_cpu="$(($(ticks "${PIDS[@]}") - serve_before))"
    stop_all
    deadlocks="$(psql -qtA "$url" -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")"
    stored="$(psql -qtA "$url" -c "SELECT count(*) FROM inbound_messages")"
    retries="$(cat "$WORK"/serve-"$db"-*.err | grep -c 'write transaction hit' || true)"
    ROWS="$ROWS$(python3 - "$clients" "$instances" "$deadlocks" "$stored" "$retries" "$result" "$pg_cpu" "$serve_cpu" "$TICKS_PER_S" <<'EOF'
import json, sys
clients, instances, deadlocks, stored, retries, result, pg_cpu, serve_cpu, hz = sys.argv[1:10]
r = json.loads(result)
answers = ", ".join(f"{n}×{s}" for s, n in r["statuses"].items())
per_message = lambda ticks: f"{int(ticks) * 1e6 / int(hz) / max(r['messages'], 1):.0f}"
print(f"| {clients} | {instances} | {r['messages']} | **{r['msg_per_s']:.0f}** | {r['p50_ms']} | {r['p95_ms']} | "
      f"{r['p99_ms']} | {r['max_ms']} | {per_message(pg_cpu)} | {per_message(serve_cpu)} | {r['driver_cpu_us_per_msg']} | {answers} | {stored} | {deadlocks} | {retries} |")
EOF
)
"
done

GATE_ROWS=""
MAILGATE="${MAILGATE-1 2}"
if [ -n "$MAILGATE" ]; then
    db="rd_bench_$(date +%s%N | tail -c 10)"
    DATABASES+=("$db")
    psql -q "$PG_SERVER" -c "CREATE DATABASE $db" >/dev/null
    export DATABASE_URL="$(db_url "$db")" RECOVERYDESK_MAIL_DIR="$WORK/mail-$db" RECOVERYDESK_SOCKET="$WORK/gate.sock"
    "$BIN" migrate >/dev/null 2>"$WORK/migrate.err" || { cat "$WORK/migrate.err" >&2; exit 1; }
    port="$(free_port)"
    RUST_LOG=info RECOVERYDESK_BIND="127.0.0.1:$port" RECOVERYDESK_BASE_URL="http://127.0.0.1:$port" \
        "$BIN" serve >"$WORK/serve-gate.out" 2>"$WORK/serve-gate.err" &
    PIDS+=("$!")
    for _ in $(seq 1 200); do grep -q 'is listening' "$WORK/serve-gate.err" && [ -S "$RECOVERYDESK_SOCKET" ] && break; sleep 0.05; done
    for parallel in $MAILGATE; do
        python3 benches/gen_maildir.py --count "${GATE:-500}" --seed "$((SEED + 100 + parallel))" --id-prefix "gate$parallel" \
            "$WORK/gate-$parallel" 2>/dev/null
        mapfile -t files < <(find "$WORK/gate-$parallel/cur" "$WORK/gate-$parallel/new" -type f | sort)
        say "mailgate, $parallel at a time, serve running, database $db"
        line="$("$DELIVER" mailgate "$BIN" "$parallel" "${files[@]}")"
        GATE_ROWS="$GATE_ROWS$(awk -v p="$parallel" '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
            printf "| %s | %s | **%s** | %s | %s | %s | %s | %s |", p, v["messages"], v["rate"], v["p50"], v["p95"], v["p99"], v["max"], substr($0, index($0, "outcomes=") + 9)}' <<<"$line")
"
    done
    stop_all
    unset RECOVERYDESK_SOCKET
    GATE_STORED="$(psql -qtA "$DATABASE_URL" -c "SELECT count(*) FROM inbound_messages")"
fi

COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD 2>/dev/null; then COMMIT="$COMMIT (with uncommitted changes)"; fi
cat <<EOF

Machine: $(nproc) cores ($(lscpu 2>/dev/null | awk -F': +' '/^Model name/ {print $2; exit}')), $(uname -sr); PostgreSQL $(psql -qtA "$PG_SERVER" -c 'SHOW server_version')
Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $COMMIT; binary $BIN; load average before: $LOAD_BEFORE
Mail: $(sed -e 's/^wrote //' -e 's/ to .*$//' "$WORK/gen.txt"); each scenario on a fresh database, the mail sender running in every instance$([ "${HOT_COUNTERS:-0}" = 1 ] && echo "; HOT_COUNTERS=1 (the old counter rows put back)")

| clients | instances | messages | msg/s | p50 ms | p95 ms | p99 ms | max ms | PostgreSQL CPU µs/msg | serve CPU µs/msg | driver CPU µs/msg | answers | stored | deadlocks | retries logged |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|
$ROWS
EOF
if [ -n "$GATE_ROWS" ]; then
    cat <<EOF

\`mailgate\` with \`serve\` running on PostgreSQL (each process hands its message over the socket; one fresh database, $GATE_STORED messages stored in it):

| in parallel | messages | msg/s | p50 ms | p95 ms | p99 ms | max ms | exit codes / outcomes |
|---:|---:|---:|---:|---:|---:|---:|---|
$GATE_ROWS
EOF
fi
