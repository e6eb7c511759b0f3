#!/usr/bin/env bash
# What one commit of the mail writer writes, by B-tree: `serve` on a fresh SQLite desk, WARM
# messages by the webhook at 4 clients (so the tables are not empty), a checkpoint, then COUNT
# messages at one client (one commit each), the WAL copied after every ten. The copies'
# frames are read (the pages of each commit), and each page is named with SQLite's `dbstat`
# on the database as `serve`, killed, left it. Prints pages per commit and, per B-tree, the
# pages it had in an average commit. A commit made and overwritten between two copies is
# missed: the count of commits seen says how many were read.
#
# Usage: benches/commit_pages.sh            (builds target/release/recoverydesk)
#   BIN=path   measure this binary
#   COUNT=100  single-message commits read
#   WARM=200   messages delivered first
# Needs Python's sqlite3 built with dbstat (Debian's and python.org's are).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-100}"
WARM="${WARM:-200}"
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/recoverydesk"
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-pages.XXXXXX")"
SERVE_PID=""
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill -9 "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
rustc --edition 2024 -C opt-level=3 benches/deliver.rs -o "$WORK/deliver"
export RECOVERYDESK_SECRET_KEY="$(printf 'b%.0s' $(seq 1 128))"
export RECOVERYDESK_INBOUND_TOKEN="bench-inbound-token-0123456789"
export RUST_LOG=warn DATABASE_URL="sqlite://$WORK/bench.db" RECOVERYDESK_MAIL_DIR="$WORK/mail"
unset SMTP_URL RECOVERYDESK_MAX_MESSAGE_BYTES RECOVERYDESK_SOCKET
"$BIN" migrate 2>/dev/null
python3 benches/gen_maildir.py --count "$((WARM + COUNT))" --seed 77 --id-prefix pages "$WORK/corpus" 2>/dev/null
mapfile -t files < <(find "$WORK/corpus/cur" "$WORK/corpus/new" -type f | sort)
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUST_LOG=info RECOVERYDESK_BIND="127.0.0.1:$PORT" "$BIN" serve >/dev/null 2>"$WORK/serve.err" &
SERVE_PID=$!
for _ in $(seq 1 200); do grep -q 'is listening' "$WORK/serve.err" && break; sleep 0.05; done
"$WORK/deliver" webhook "http://127.0.0.1:$PORT" "$RECOVERYDESK_INBOUND_TOKEN" 4 "${files[@]:0:$WARM}" >/dev/null
sleep 1
# Empty the WAL, so that it holds the measured commits only.
python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$WORK/bench.db"
# Ten at a time, the WAL copied after each ten: `serve`'s checkpoint thread lets the writer
# start the WAL again from its beginning several times a second, so one copy at the end would
# hold the last commits only.
for ((at = WARM; at < WARM + COUNT; at += 10)); do
    "$WORK/deliver" webhook "http://127.0.0.1:$PORT" "$RECOVERYDESK_INBOUND_TOKEN" 1 "${files[@]:$at:10}" >/dev/null
    cp "$WORK/bench.db-wal" "$WORK/frames-$at.wal"
done
# Stopped the hard way, the pages then named on the database as the WAL leaves it.
kill -9 "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""
cp "$WORK/bench.db" "$WORK/copy.db"
cp "$WORK/bench.db-wal" "$WORK/copy.db-wal"
python3 - "$WORK/copy.db" "$COUNT" "$WORK"/frames-*.wal <<'EOF_PY'
import collections, sqlite3, struct, sys
commits = {}  # (salts, offset of its last frame) -> its pages: a commit seen in several copies counts once
for path in sys.argv[3:]:
    wal = open(path, "rb").read()
    _, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">IIIIIIII", wal[:32])
    pages, at = [], 32
    while at + 24 + page_size <= len(wal):
        page, size_after, s1, s2, _, _ = struct.unpack(">IIIIII", wal[at:at + 24])
        if (s1, s2) != (salt1, salt2):
            break  # a frame of an earlier generation of the log
        pages.append(page)
        if size_after:  # the last frame of a commit
            commits[(salt1, salt2, at)] = set(pages)
            pages = []
        at += 24 + page_size
if not commits:
    sys.exit("no commit found in the WAL copies")
names = dict((page, name) for name, page in sqlite3.connect(sys.argv[1]).execute("SELECT name, pageno FROM dbstat"))
n = len(commits)
print(f"{n} commits seen ({sys.argv[2]} messages delivered one at a time, and the desk's own), "
      f"{sum(map(len, commits.values())) / n:.1f} pages per commit")
per_tree = collections.Counter(names.get(page, "(free)") for pages in commits.values() for page in pages)
for name, count in per_tree.most_common():
    print(f"{count / n:6.2f}  {name}")
EOF_PY
