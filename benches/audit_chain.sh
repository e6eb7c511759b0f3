#!/usr/bin/env bash
# The audit chain's cost: examples/audit_bench.rs (ingestion and action throughput) built in
# release mode against the code before the chain (BEFORE, a commit) and the working tree, on
# a fresh SQLite file and, when TEST_DATABASE_URL is set, a fresh PostgreSQL database; then
# `recoverydesk audit verify` over the SQLite database the working tree filled.
#
# Usage: benches/audit_chain.sh
#   BEFORE=6d2577d      the commit without the chain
#   MESSAGES=2000       mails ingested (then 2 actions per ticket)
#   ROUNDS=3            runs of each (the best is reported: the machine is shared)
#   PROFILE=release     or `debug` (a warm debug build is minutes, a cold release one much more)
# Prints lines that docs/benchmarks.md ("Audit chain") is updated from.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${BEFORE:-6d2577d}"
MESSAGES="${MESSAGES:-2000}"
ROUNDS="${ROUNDS:-3}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then FLAG=--release; DIR=release; else FLAG=; DIR=debug; fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-audit.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
say() { printf '==> %s\n' "$*" >&2; }

say "the tree of $BEFORE, with this benchmark copied in"
mkdir -p "$WORK/before"
git archive "$BEFORE" | tar -x -C "$WORK/before"
cp examples/audit_bench.rs "$WORK/before/examples/"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$TARGET_DIR"
say "building ($PROFILE) before and after"
# The path cargo reports, never target/…/examples/audit_bench: both trees build an example of
# that name, and a build that is already fresh does not copy its binary there again.
executable() { python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "audit_bench" and m.get("executable"):
        print(m["executable"])'; }
cp "$(cd "$WORK/before" && cargo build $FLAG --quiet --example audit_bench --message-format=json | executable)" "$WORK/before_bench"
cp "$(cargo build $FLAG --quiet --example audit_bench --message-format=json | executable)" "$WORK/after_bench"
cargo build $FLAG --quiet --bin recoverydesk
cmp -s "$WORK/before_bench" "$WORK/after_bench" && { echo "before and after are the same binary" >&2; exit 1; }

run() { # label url
    # Rounds alternate before and after, so a machine that gets busier hurts both alike.
    for round in $(seq "$ROUNDS"); do
        for which in before after; do
            url="$2"
            if [ "$1" = sqlite ]; then
                url="sqlite://$WORK/$which-$round.db"
            else
                name="rd_audit_${which}_${round}_$$"
                createdb -h 127.0.0.1 -U postgres "$name"
                url="${2%/*}/$name"
            fi
            printf '%s %s round %s: ' "$1" "$which" "$round"
            "$WORK/${which}_bench" "$url" "$MESSAGES" | tr '\n' ' '
            echo
            [ "$1" = sqlite ] || dropdb -h 127.0.0.1 -U postgres "$name"
        done
    done
}
run sqlite ""
if [ -n "${TEST_DATABASE_URL:-}" ]; then run postgres "$TEST_DATABASE_URL"; fi

say "audit verify over the SQLite database the working tree filled"
events=$(sqlite3 "$WORK/after-1.db" 'SELECT count(*) FROM events' 2>/dev/null || echo '?')
echo "audit verify over $events events:"
time env DATABASE_URL="sqlite://$WORK/after-1.db" RECOVERYDESK_SECRET_KEY="$(printf 'ab%.0s' $(seq 64))" \
    "$TARGET_DIR/$DIR/recoverydesk" audit verify
