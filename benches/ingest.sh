#!/usr/bin/env bash
# Mail-in benchmark, every channel, for one or two binaries in one run (a before/after table):
#   import-maildir on the benches' corpus and on the "attachments and HTML" corpus (--rich),
#   mailgate one process per message without and with `serve` (1 and 2 at a time),
#   the webhook at 1 and 4 clients (SQLite), and, with PG_URL, the webhook and mailgate on
#   PostgreSQL (in-server ingestion).
#
# Usage: benches/ingest.sh                     (builds target/release/recoverydesk)
#   BIN=path            measure this binary (no build)
#   BEFORE_BIN=path     also measure this one, first, on the same corpora (the "before" column)
#   COUNT=10000         messages per import corpus
#   GATE=500            messages per mailgate / webhook run
#   ROUNDS=1            run everything this many times, before and after in turn (before first in
#                       odd rounds, after first in even ones); each cell shows the round with the
#                       median rate and every round's rate: on a machine whose speed drifts, a single
#                       round of "before" then "after" measures the drift as much as the change
#   PG_URL=postgres://postgres@127.0.0.1:5432/postgres   a server where a scratch database may be created
#   KEEP=1              keep the work directory
# Prints one line per run (benches/deliver.rs's format) and a Markdown table at the end. The
# deliveries are driven by benches/deliver.rs, built here with rustc (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-10000}"
GATE="${GATE:-500}"
ROUNDS="${ROUNDS:-1}"
say() { printf '==> %s\n' "$*" >&2; }

if [ -z "${BIN:-}" ]; then
    say "building the release binary"
    cargo build --release --quiet
    BIN="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/recoverydesk"
fi
[ -x /usr/bin/time ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null) || true

WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-ingest.XXXXXX")"
SERVE_PID=""
PG_DBS=()
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    for db in "${PG_DBS[@]}"; do psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
    if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The driver, in Rust: the Python one spent a fifth of these two cores (docs/benchmarks.md).
DELIVER="$WORK/deliver"
rustc --edition 2024 -C opt-level=3 benches/deliver.rs -o "$DELIVER"

export RECOVERYDESK_SECRET_KEY="$(printf 'b%.0s' $(seq 1 128))"
export RECOVERYDESK_INBOUND_TOKEN="bench-inbound-token-0123456789"
export RUST_LOG=warn
unset SMTP_URL RECOVERYDESK_MAX_MESSAGE_BYTES RECOVERYDESK_SOCKET

say "generating the corpora"
python3 benches/gen_maildir.py --count "$COUNT" --seed 1 --id-prefix plain "$WORK/plain" 2>"$WORK/plain.txt"
python3 benches/gen_maildir.py --count "$COUNT" --seed 2 --id-prefix rich --rich "$WORK/rich" 2>"$WORK/rich.txt"
# Fresh messages for each delivery run (no duplicates between runs).
gate_files() { # name seed
    python3 benches/gen_maildir.py --count "$GATE" --seed "$2" --id-prefix "$1" "$WORK/gate-$1" 2>/dev/null
    find "$WORK/gate-$1/cur" "$WORK/gate-$1/new" -type f | sort
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; echo "$1 | $2 | $3" >&2; }

now_ns() { date +%s%N; }
fresh_db() { # dir → sets DATABASE_URL to a migrated SQLite file there
    mkdir -p "$1"
    export DATABASE_URL="sqlite://$1/bench.db" RECOVERYDESK_MAIL_DIR="$1/mail"
    "$BIN" migrate 2>/dev/null
}
start_serve() { # → SERVE_PID, PORT
    local log="$WORK/serve-$RANDOM.err"
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    RUST_LOG=info RECOVERYDESK_BIND="127.0.0.1:$PORT" "$BIN" serve >/dev/null 2>"$log" &
    SERVE_PID=$!
    for _ in $(seq 1 200); do grep -q 'is listening' "$log" && return 0; sleep 0.05; done
    cat "$log" >&2; exit 1
}
stop_serve() { # → SERVE_HWM (MiB)
    SERVE_HWM="$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVE_PID/status" 2>/dev/null || echo '?')"
    kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""
}
summary() { # a line of deliver → "rate msg/s, p50/p95/p99 ms"
    awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
          printf "%s msg/s, p50 %s / p95 %s / p99 %s ms", v["rate"], v["p50"], v["p95"], v["p99"]}' <<<"$1"
}

measure_binary() { # label round
    local label="$1" tag="$1-r$2" line s rss
    for corpus in plain rich; do
        fresh_db "$WORK/$tag-import-$corpus"
        local start; start="$(now_ns)"
        /usr/bin/time -v -o "$WORK/time.txt" "$BIN" import-maildir "$WORK/$corpus" >"$WORK/import.out" 2>"$WORK/import.err"
        s="$(awk -v ns="$(($(now_ns) - start))" 'BEGIN {printf "%.3f", ns / 1e9}')"
        rss="$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$WORK/time.txt")"
        say "$label import $corpus: $(tail -1 "$WORK/import.out")"
        row "\`import-maildir\`, $COUNT messages, $corpus corpus" "$label" \
            "$(awk -v n="$COUNT" -v s="$s" 'BEGIN {printf "%.0f", n / s}') msg/s, peak RSS $rss MiB"
    done

    fresh_db "$WORK/$tag-gate-alone"
    mapfile -t files < <(gate_files "$tag-alone" 11)
    line="$("$DELIVER" mailgate "$BIN" 1 "${files[@]}")"; say "$line"
    row "\`mailgate\`, sequential, no \`serve\`" "$label" "$(summary "$line")"

    fresh_db "$WORK/$tag-gate-served"
    start_serve
    mapfile -t files < <(gate_files "$tag-served" 12)
    line="$("$DELIVER" mailgate "$BIN" 1 "${files[@]}")"; say "$line"
    row "\`mailgate\`, sequential, \`serve\` running" "$label" "$(summary "$line")"
    mapfile -t files < <(gate_files "$tag-direct" 19)
    line="$(RECOVERYDESK_SOCKET=none "$DELIVER" mailgate "$BIN" 1 "${files[@]}")"; say "$line"
    row "\`mailgate\`, sequential, \`serve\` running, socket off (each mailgate writes itself)" "$label" "$(summary "$line")"
    mapfile -t files < <(gate_files "$tag-served2" 13)
    line="$("$DELIVER" mailgate "$BIN" 2 "${files[@]}")"; say "$line"
    row "\`mailgate\`, 2 in parallel, \`serve\` running" "$label" "$(summary "$line")"
    mapfile -t files < <(gate_files "$tag-direct2" 20)
    line="$(RECOVERYDESK_SOCKET=none "$DELIVER" mailgate "$BIN" 2 "${files[@]}")"; say "$line"
    row "\`mailgate\`, 2 in parallel, \`serve\` running, socket off" "$label" "$(summary "$line")"
    mapfile -t files < <(gate_files "$tag-hook1" 14)
    line="$("$DELIVER" webhook "http://127.0.0.1:$PORT" "$RECOVERYDESK_INBOUND_TOKEN" 1 "${files[@]}")"; say "$line"
    row "webhook, 1 client (SQLite)" "$label" "$(summary "$line")"
    mapfile -t files < <(gate_files "$tag-hook4" 15)
    line="$("$DELIVER" webhook "http://127.0.0.1:$PORT" "$RECOVERYDESK_INBOUND_TOKEN" 4 "${files[@]}")"; say "$line"
    stop_serve
    row "webhook, 4 clients (SQLite)" "$label" "$(summary "$line"); serve peak RSS $SERVE_HWM MiB"

    if [ -n "${PG_URL:-}" ]; then
        local db="rd_bench_${label}_r${2}_$$"
        psql -q "$PG_URL" -c "CREATE DATABASE $db" >/dev/null
        PG_DBS+=("$db")
        export DATABASE_URL="${PG_URL%/*}/$db" RECOVERYDESK_SOCKET="$WORK/$tag-pg.sock" RECOVERYDESK_MAIL_DIR="$WORK/$tag-pg-mail"
        "$BIN" migrate 2>/dev/null
        start_serve
        mapfile -t files < <(gate_files "$tag-pg1" 16)
        line="$("$DELIVER" webhook "http://127.0.0.1:$PORT" "$RECOVERYDESK_INBOUND_TOKEN" 1 "${files[@]}")"; say "$line"
        row "PostgreSQL in-server (webhook), 1 client" "$label" "$(summary "$line")"
        mapfile -t files < <(gate_files "$tag-pg4" 17)
        line="$("$DELIVER" webhook "http://127.0.0.1:$PORT" "$RECOVERYDESK_INBOUND_TOKEN" 4 "${files[@]}")"; say "$line"
        row "PostgreSQL in-server (webhook), 4 clients" "$label" "$(summary "$line")"
        mapfile -t files < <(gate_files "$tag-pgm" 18)
        line="$("$DELIVER" mailgate "$BIN" 2 "${files[@]}")"; say "$line"
        stop_serve
        row "PostgreSQL, \`mailgate\` 2 in parallel, \`serve\` running" "$label" "$(summary "$line")"
        unset RECOVERYDESK_SOCKET
    fi
}

# The floor under every durable commit on this disk at this moment: a 4 KiB append and its
# fdatasync (what SQLite's WAL commit does), 50 times, in the work directory.
sync_probe() {
    python3 - "$WORK/sync-probe" <<'EOF_PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
ms = []
for _ in range(50):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter()
    os.fdatasync(fd)
    ms.append((time.perf_counter() - t) * 1000)
os.close(fd)
os.unlink(sys.argv[1])
ms.sort()
print(f"p50 {ms[25]:.2f} ms, p90 {ms[45]:.2f} ms")
EOF_PY
}
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
SYNC_BEFORE="$(sync_probe)"
AFTER_BIN="$BIN"
for round in $(seq 1 "$ROUNDS"); do
    # Before first in odd rounds, after first in even ones: a machine that speeds up or slows
    # down during the run favours neither column.
    order="before after"
    if [ $((round % 2)) = 0 ]; then order="after before"; fi
    for label in $order; do
        if [ "$label" = before ]; then
            [ -n "${BEFORE_BIN:-}" ] || continue
            BIN="$BEFORE_BIN"
        else
            BIN="$AFTER_BIN"
        fi
        measure_binary "$label" "$round"
    done
done
BIN="$AFTER_BIN"

echo
echo "Machine: $(nproc) cores, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC'); load before: $LOAD, after: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD)"
echo "fdatasync of a 4 KiB append in $WORK: before the runs $SYNC_BEFORE; after $(sync_probe)"
echo "Corpora: plain $(sed -e 's/^wrote //' -e 's/ to .*$//' "$WORK/plain.txt"); rich $(sed -e 's/^wrote //' -e 's/ to .*$//' "$WORK/rich.txt")"
echo
python3 - "$RESULTS" <<'EOF'
import sys
rows, labels = {}, []
for line in open(sys.argv[1]):
    what, label, value = line.rstrip("\n").split("\t")
    rows.setdefault(what, {}).setdefault(label, []).append(value)
    if label not in labels:
        labels.append(label)
labels.sort(key=lambda l: l != "before")


def cell(values):
    """The round with the median rate, and every round's rate when there were several."""
    if not values:
        return "–"
    rate = lambda v: float(v.split(" msg/s")[0])
    ranked = sorted(values, key=rate)
    median = ranked[(len(ranked) - 1) // 2]
    if len(values) == 1:
        return median
    return f"{median} (rounds: {', '.join(v.split(' msg/s')[0] for v in values)} msg/s)"


print("| run | " + " | ".join(labels) + " |")
print("|---|" + "---|" * len(labels))
for what, values in rows.items():
    print(f"| {what} | " + " | ".join(cell(values.get(l, [])) for l in labels) + " |")
EOF
