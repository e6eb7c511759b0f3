#!/usr/bin/env bash
# Inbound-mail benchmark: `recoverydesk import-maildir` over a generated maildir on a fresh
# SQLite database (rate and peak memory), the same import again (every message a duplicate),
# and `recoverydesk mailgate` run once per message as an MTA pipe runs it.
#
# Usage: benches/import_maildir.sh            (from anywhere; takes a few minutes)
#   COUNT=10000         messages in the maildir
#   MAILGATE_COUNT=500  mailgate invocations per scenario
#   SEED=1              generator seed (the same seed gives the same maildir)
#   KEEP=1              keep the work directory (maildir, databases, logs) for a look afterwards
#   TMPDIR=/some/disk   where the maildir and databases go (the disk matters: SQLite fsyncs)
#   RECOVERYDESK_BIN=…  measure this binary instead of building target/release/recoverydesk
# Prints a Markdown table that docs/benchmarks.md ("Inbound mail") is updated from.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-10000}"
MAILGATE_COUNT="${MAILGATE_COUNT:-500}"
SEED="${SEED:-1}"

say() { printf '==> %s\n' "$*" >&2; }

if [ -n "${RECOVERYDESK_BIN:-}" ]; then
    BIN="$RECOVERYDESK_BIN"
    say "using $BIN (RECOVERYDESK_BIN; not building)"
else
    say "building the release binary"
    cargo build --release --quiet
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    BIN="$TARGET_DIR/release/recoverydesk"
fi
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

if [ ! -x /usr/bin/time ]; then
    say "installing GNU time (for peak memory)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null) || true
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-bench.XXXXXX")"
SERVE_PID=""
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export DATABASE_URL="sqlite://$WORK/bench.db"
export RECOVERYDESK_MAIL_DIR="$WORK/outbound-mail"
# A fixed key, so no command has to generate one (mailgate never does).
export RECOVERYDESK_SECRET_KEY="$(printf 'b%.0s' $(seq 1 128))"
unset SMTP_URL RECOVERYDESK_MAX_MESSAGE_BYTES

say "generating $COUNT messages (seed $SEED) and $((2 * MAILGATE_COUNT)) more for the mailgate"
python3 benches/gen_maildir.py --count "$COUNT" --seed "$SEED" --id-prefix import "$WORK/maildir" 2>"$WORK/gen.txt"
python3 benches/gen_maildir.py --count "$((2 * MAILGATE_COUNT))" --seed "$((SEED + 1000))" --id-prefix gate \
    "$WORK/gate" 2>>"$WORK/gate-gen.txt"
MAILDIR_BYTES="$(du -sb "$WORK/maildir" | cut -f1)"

now_ns() { date +%s%N; }

# Runs "$@", printing "seconds peak_rss_kib"; its stdout goes to $WORK/out.txt, stderr to err.txt.
measure() {
    local start end rss
    start="$(now_ns)"
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" ||
            echo "exit status $? from $*" >>"$WORK/err.txt"
        end="$(now_ns)"
        rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")"
    else
        # No GNU time: read the high-water mark from /proc while the process runs.
        "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" &
        local pid=$! hwm
        rss=0
        while kill -0 "$pid" 2>/dev/null; do
            hwm="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
            [ -n "$hwm" ] && [ "$hwm" -gt "$rss" ] && rss="$hwm"
            sleep 0.05
        done
        wait "$pid" || echo "exit status $? from $*" >>"$WORK/err.txt"
        end="$(now_ns)"
    fi
    echo "$(awk -v ns="$((end - start))" 'BEGIN {printf "%.3f", ns / 1e9}') $rss"
}

rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n / s}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
# What starting any process costs here: the floor under the mailgate's figure.
TRUE_START="$(now_ns)"
for _ in $(seq 1 200); do /bin/true; done
TRUE_S="$(awk -v ns="$(($(now_ns) - TRUE_START))" 'BEGIN {printf "%.3f", ns / 1e9}')"

say "import-maildir, fresh database"
read -r FIRST_S FIRST_RSS < <(measure "$BIN" import-maildir "$WORK/maildir")
FIRST_SUMMARY="$(tail -1 "$WORK/out.txt")"
FIRST_STDERR_LINES="$(wc -l <"$WORK/err.txt")"
DB_BYTES="$(du -cb "$WORK"/bench.db* | tail -1 | cut -f1)"

say "import-maildir again (every message a duplicate)"
read -r SECOND_S SECOND_RSS < <(measure "$BIN" import-maildir "$WORK/maildir")
SECOND_SUMMARY="$(tail -1 "$WORK/out.txt")"

mapfile -t GATE_FILES < <(find "$WORK/gate/cur" "$WORK/gate/new" -type f | sort)
# Runs the mailgate once per file of "$@" (one process each, as Postfix's pipe does); prints
# "seconds outcomes exit_codes".
mailgate_run() {
    local start end out="$WORK/gate-$1.out" codes="$WORK/gate-$1.codes"
    shift
    : >"$out"
    : >"$codes"
    start="$(now_ns)"
    for f in "$@"; do
        set +e
        "$BIN" mailgate <"$f" >>"$out" 2>>"$WORK/gate-err.txt"
        echo "$?" >>"$codes"
        set -e
    done
    end="$(now_ns)"
    local outcomes exits
    outcomes="$(grep -o '"outcome":"[a-z]*"' "$out" | cut -d'"' -f4 | sort | uniq -c |
        awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')"
    exits="$(sort "$codes" | uniq -c | awk '{printf "%s%s×%s", sep, $1, $2; sep=", "}')"
    echo "$(awk -v ns="$((end - start))" 'BEGIN {printf "%.3f", ns / 1e9}')|$outcomes|$exits"
}

say "mailgate x $MAILGATE_COUNT, nothing else holding the database open"
IFS='|' read -r ALONE_S ALONE_OUTCOMES ALONE_EXITS < <(mailgate_run alone "${GATE_FILES[@]:0:MAILGATE_COUNT}")

say "mailgate x $MAILGATE_COUNT while \`recoverydesk serve\` runs on the same database"
RECOVERYDESK_BIND=127.0.0.1:0 "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
for _ in $(seq 1 100); do grep -q 'is listening' "$WORK/serve.err" && break; sleep 0.1; done
grep -q 'is listening' "$WORK/serve.err" || { cat "$WORK/serve.err" >&2; exit 1; }
IFS='|' read -r SERVED_S SERVED_OUTCOMES SERVED_EXITS < <(mailgate_run served "${GATE_FILES[@]:MAILGATE_COUNT:MAILGATE_COUNT}")
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=""

# The memory of one mailgate process (a fresh message, so it stores something).
GATE_RSS="-"
if [ -x /usr/bin/time ]; then
    python3 benches/gen_maildir.py --count 1 --seed "$((SEED + 2000))" --id-prefix one "$WORK/one" 2>/dev/null
    /usr/bin/time -v -o "$WORK/time.txt" "$BIN" mailgate <"$(find "$WORK/one" -type f | head -1)" >/dev/null 2>&1 || true
    GATE_RSS="$(mib "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")") MiB"
fi

ms_per() { awk -v s="$1" -v n="$2" 'BEGIN {printf "%.2f", s * 1000 / n}'; }

COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD 2>/dev/null; then COMMIT="$COMMIT (with uncommitted changes)"; fi
CPU="$(lscpu 2>/dev/null | awk -F': +' '/^Model name/ {print $2; exit}')"
FS="$(df -T "$WORK" | awk 'NR == 2 {print $2}')"

cat <<EOF

Machine: $(nproc) cores ($CPU), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr), $FS file system under $(dirname "$WORK")
Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $COMMIT; $(rustc --version); load average before the run: $LOAD_BEFORE
Process start on this machine: $(ms_per "$TRUE_S" 200) ms for /bin/true (200 runs from this shell)
Maildir: $(sed -e 's/^wrote //' -e 's/ to .*$//' "$WORK/gen.txt"); $(awk -v b="$MAILDIR_BYTES" 'BEGIN {printf "%.1f MB", b / 1e6}') on disk

| Run | Messages | Time | Rate | Peak RSS |
|---|---:|---:|---:|---:|
| \`import-maildir\`, fresh database | $COUNT | ${FIRST_S} s | **$(rate "$COUNT" "$FIRST_S") messages/s** | $(mib "$FIRST_RSS") MiB |
| \`import-maildir\` again (all duplicates) | $COUNT | ${SECOND_S} s | **$(rate "$COUNT" "$SECOND_S") messages/s** | $(mib "$SECOND_RSS") MiB |
| \`mailgate\`, one process per message, nothing else on the database | $MAILGATE_COUNT | ${ALONE_S} s | **$(ms_per "$ALONE_S" "$MAILGATE_COUNT") ms/message** | $GATE_RSS |
| \`mailgate\`, one process per message, \`serve\` running | $MAILGATE_COUNT | ${SERVED_S} s | **$(ms_per "$SERVED_S" "$MAILGATE_COUNT") ms/message** | |

- First import: $FIRST_SUMMARY ($FIRST_STDERR_LINES lines on stderr); database afterwards $(awk -v b="$DB_BYTES" 'BEGIN {printf "%.0f MB", b / 1e6}').
- Second import: $SECOND_SUMMARY
- Mailgate, alone: $ALONE_OUTCOMES; exit codes $ALONE_EXITS.
- Mailgate, with serve: $SERVED_OUTCOMES; exit codes $SERVED_EXITS.
EOF
