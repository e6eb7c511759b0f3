#!/usr/bin/env bash
# The audit chain's start-up backfill (db::audit::backfill) at scale, before and after: a
# SQLite desk seeded by benches/bulk_seed.py (two events per ticket, one of them a message, no
# links: as a desk older than the chain), copied, and `recoverydesk migrate` of each binary
# timed on its copy. Then the two copies' links are compared (the same chain, hash for hash)
# and `audit verify` runs over the one the working tree linked.
#
# Usage: benches/audit_backfill.sh
#   BEFORE=795a69a      the commit of the backfill to compare with
#   TICKETS=100000      tickets seeded
#   PROFILE=debug       or `release` (a cold release build of two trees is long on a shared
#                       machine)
# Prints lines that docs/benchmarks.md ("Audit chain") is updated from.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${BEFORE:-795a69a}"
TICKETS="${TICKETS:-100000}"
PROFILE="${PROFILE:-debug}"
if [ "$PROFILE" = release ]; then FLAG=--release; else FLAG=; fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-backfill.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
say() { printf '==> %s\n' "$*" >&2; }
KEY="$(printf 'ab%.0s' $(seq 64))"

binary() { python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "recoverydesk" and "bin" in m["target"].get("kind", []) and m.get("executable"):
        print(m["executable"])'; }
say "building ($PROFILE) $BEFORE and the working tree"
mkdir -p "$WORK/before"
git archive "$BEFORE" | tar -x -C "$WORK/before"
cp "$(cd "$WORK/before" && cargo build $FLAG --quiet --bin recoverydesk --message-format=json | binary)" "$WORK/before_bin"
# The two trees are one package to cargo: their library and binary get the same file names in
# the target directory, and the working tree's build, fresh by its own record, would not write
# them again. Touching its roots makes it compile (and place) them anew.
touch src/lib.rs src/main.rs
cp "$(cargo build $FLAG --quiet --bin recoverydesk --message-format=json | binary)" "$WORK/after_bin"
cmp -s "$WORK/before_bin" "$WORK/after_bin" && { echo "before and after are the same binary" >&2; exit 1; }

say "seeding $TICKETS tickets"
env DATABASE_URL="sqlite://$WORK/seed.db" RECOVERYDESK_SECRET_KEY="$KEY" "$WORK/after_bin" migrate 2>/dev/null
python3 benches/bulk_seed.py --tickets "$TICKETS" "$WORK/seed.db" >&2
# As a desk older than the chain: no links and no record of a backfill.
sqlite3 "$WORK/seed.db" "DELETE FROM settings WHERE key LIKE 'audit_chain_backfill%'; VACUUM;"
EVENTS="$(sqlite3 "$WORK/seed.db" 'SELECT count(*) FROM events')"
LINKS="$(sqlite3 "$WORK/seed.db" 'SELECT count(*) FROM event_hashes')"
[ "$LINKS" = 0 ] || { echo "the seeded desk has $LINKS links" >&2; exit 1; }

for which in before after; do
    cp "$WORK/seed.db" "$WORK/$which.db"
    start="$(date +%s.%N)"
    env DATABASE_URL="sqlite://$WORK/$which.db" RECOVERYDESK_SECRET_KEY="$KEY" RUST_LOG=info \
        "$WORK/${which}_bin" migrate 2>"$WORK/$which.log"
    end="$(date +%s.%N)"
    linked="$(sqlite3 "$WORK/$which.db" 'SELECT count(*) FROM event_hashes')"
    progress="$(grep -c 'linking the audit chain' "$WORK/$which.log" || true)"
    python3 -c 'import sys
w, tickets, events, linked, start, end, progress = sys.argv[1:]
s = float(end) - float(start)
print(f"{w}: {tickets} tickets, {linked} of {events} events linked in {s:.1f} s = {int(linked) / s:,.0f} events/s ({progress} progress lines)")' \
        "$which" "$TICKETS" "$EVENTS" "$linked" "$start" "$end" "$progress"
    echo "  load average at the end: $(uptime | sed 's/.*load average: //')"
done

chain() { sqlite3 "$1" 'SELECT event_id, ticket_ref, prev_hash, hash FROM event_hashes ORDER BY event_id' | sha256sum | cut -c1-16; }
b="$(chain "$WORK/before.db")"; a="$(chain "$WORK/after.db")"
if [ "$a" = "$b" ]; then echo "the same links before and after ($a)"; else echo "the links differ: $b before, $a after"; exit 1; fi
echo "audit verify over the working tree's links:"
env DATABASE_URL="sqlite://$WORK/after.db" RECOVERYDESK_SECRET_KEY="$KEY" "$WORK/after_bin" audit verify
