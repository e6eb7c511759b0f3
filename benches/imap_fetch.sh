#!/usr/bin/env bash
# IMAP benchmark (docs/reference.md#imap): a dovecot mailbox of COUNT generated messages on this
# machine (loopback, plain text), fetched by `recoverydesk fetch-imap --once` into a fresh SQLite
# database: messages/s and peak memory; then the same messages put back (every one a
# duplicate) and fetched again.
#
# Usage: benches/imap_fetch.sh          (needs dovecot-imapd; run as root: the mailbox is nobody's)
#   COUNT=10000         messages in the mailbox
#   SEED=1              generator seed
#   KEEP=1              keep the work directory
#   RECOVERYDESK_BIN=…  measure this binary instead of building target/release/recoverydesk
# Prints a Markdown table that docs/benchmarks.md ("IMAP") is updated from.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-10000}"
SEED="${SEED:-1}"
say() { printf '==> %s\n' "$*" >&2; }

if [ -n "${RECOVERYDESK_BIN:-}" ]; then
    BIN="$RECOVERYDESK_BIN"
else
    say "building the release binary"
    cargo build --release --quiet
    BIN="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/recoverydesk"
fi
[ -x /usr/sbin/dovecot ] || { echo "dovecot is not installed (apt-get install dovecot-imapd)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (dovecot gives the mailbox to nobody)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/recoverydesk-imap-bench.XXXXXX")"
chmod 755 "$WORK"
cleanup() {
    [ -f "$WORK/dovecot.conf" ] && doveadm -c "$WORK/dovecot.conf" stop 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$WORK/run" "$WORK/state" "$WORK/home/desk/Maildir"/{new,cur,tmp}
echo 'desk:{PLAIN}bench-pass' > "$WORK/passwd"
cat > "$WORK/dovecot.conf" <<EOF
base_dir = $WORK/run
state_dir = $WORK/state
log_path = $WORK/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $WORK/passwd
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=$WORK/home/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
EOF

say "generating $COUNT messages (seed $SEED)"
python3 benches/gen_maildir.py --count "$COUNT" --seed "$SEED" --id-prefix imap "$WORK/gen" 2>"$WORK/gen.txt"
fill() { # put the generated messages in the INBOX (as a delivery agent would: files in new/)
    python3 - "$WORK" <<'PY'
import os, shutil, sys
work = sys.argv[1]
dest = os.path.join(work, "home/desk/Maildir/new")
for sub in ("cur", "new"):
    folder = os.path.join(work, "gen", sub)
    for name in sorted(os.listdir(folder)):
        shutil.copyfile(os.path.join(folder, name), os.path.join(dest, name.split(":")[0]))
PY
    chown -R nobody:nogroup "$WORK/home"
}
fill
BYTES="$(du -sb "$WORK/home/desk/Maildir/new" | cut -f1)"
/usr/sbin/dovecot -c "$WORK/dovecot.conf"
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

export DATABASE_URL="sqlite://$WORK/bench.db"
export RECOVERYDESK_MAIL_DIR="$WORK/outbound-mail"
export RECOVERYDESK_SECRET_KEY="$(printf 'b%.0s' $(seq 1 128))"
export RECOVERYDESK_IMAP_URL="imap://desk@127.0.0.1:$PORT/INBOX"
export RECOVERYDESK_IMAP_PASSWORD=bench-pass
export RUST_LOG=error
"$BIN" migrate >/dev/null 2>&1

run() { # label
    local start end
    start=$(date +%s%N)
    /usr/bin/time -v "$BIN" fetch-imap --once > "$WORK/$1.out" 2> "$WORK/$1.time"
    end=$(date +%s%N)
    local seconds rss
    seconds=$(python3 -c "print(($end - $start) / 1e9)")
    rss=$(grep 'Maximum resident set size' "$WORK/$1.time" | awk '{print $NF}')
    printf '| %s | %s | %.2f s | **%.0f messages/s** | %.1f MiB |\n' "$1" "$COUNT" "$seconds" \
        "$(python3 -c "print($COUNT / $seconds)")" "$(python3 -c "print($rss / 1024)")"
    say "$(cat "$WORK/$1.out")"
}

echo
echo "Mailbox: $COUNT messages, $(python3 -c "print(round($BYTES / 1e6, 1))") MB, dovecot on loopback (plain IMAP), SQLite database."
echo
echo '| run | messages | wall time | rate | peak RSS |'
echo '|---|---:|---:|---:|---:|'
run "fetch-imap --once, fresh database"
fill
run "fetch-imap --once, the same messages again (all duplicates)"
