#!/usr/bin/env bash
# Does the forgot-username form answer in the same time whether or not the directory knows the
# address? Serves a fresh SQLite desk, imports PAIRS+WARMUP active accounts, then posts the
# form for a known and an unknown address in random order, PAIRS times, on one keep-alive
# connection, and prints the medians, their interquartile ranges and the Mann-Whitney z
# (benches/form_timing.py). Run it twice: the figures in docs/benchmarks.md are both runs.
#
# Usage: benches/form_timing.sh
#   PAIRS=300     timed pairs (one known, one unknown post each)
#   WARMUP=20     untimed pairs first
#   SEED=1        order of each pair
#   BIN=path      use this recoverydesk binary (default: build the debug one)
#   KEEP=1        keep the work directory (database, server log)
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS="${PAIRS:-300}"
WARMUP="${WARMUP:-20}"
SEED="${SEED:-1}"
say() { printf '==> %s\n' "$*" >&2; }

if [ -z "${BIN:-}" ]; then
    say "building the debug binary"
    cargo build --quiet
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    BIN="$TARGET_DIR/debug/recoverydesk"
fi
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-form-timing.XXXXXX")"
SERVE_PID=""
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export DATABASE_URL="sqlite://$WORK/bench.db"
export RECOVERYDESK_MAIL_DIR="$WORK/mail"
export RECOVERYDESK_FORM_RATE_LIMIT=1000000
export RUST_LOG=warn
unset RECOVERYDESK_SECRET_KEY SMTP_URL
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export RECOVERYDESK_BIND="127.0.0.1:$PORT"

python3 - "$((PAIRS + WARMUP))" >"$WORK/accounts.jsonl" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": f"acc_{i}", "username": f"user-{i}", "email": f"known-{i}@bench.test",
                      "status": "active", "parent_id": None, "balance_due_cents": 0}))
PY
"$BIN" accounts import "$WORK/accounts.jsonl" 2>"$WORK/import.log"
"$BIN" serve 2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

COMMIT="$(git log -1 --format=%h)"
echo "forgot-username form, $PAIRS interleaved pairs after $WARMUP untimed, seed $SEED, $(basename "$BIN") at $COMMIT$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (uncommitted changes)'), SQLite:"
echo
echo "| address | posts | median ms | interquartile range ms | spread ms |"
echo "|---|---|---|---|---|"
python3 benches/form_timing.py "http://127.0.0.1:$PORT" "$PAIRS" "$WARMUP" "$SEED"
