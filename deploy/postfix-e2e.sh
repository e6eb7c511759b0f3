#!/usr/bin/env bash
# End-to-end check of the mail path with Debian's Postfix, set up exactly as
# docs/mail-setup.md says: a service user, a shared environment file, the mailgate wrapper, and
# an alias file of the desk's own owned by the service user. Then, over SMTP on loopback:
#   1. a message becomes a ticket, and the same message sent again (a new Received line) is a
#      duplicate: still one ticket, one acknowledgement;
#   2. while the database is locked the delivery is deferred, and it is stored after
#      `postqueue -f` once the lock is gone;
#   3. a message above RECOVERYDESK_MAX_MESSAGE_BYTES is bounced to its sender, in plain words.
#
# It changes this host: it installs Postfix (apt) if missing, rewrites Postfix's main.cf for a
# loopback-only mail system, and creates the user `recoverydesk`, /etc/recoverydesk and
# /var/lib/recoverydesk. Meant for CI containers and throwaway machines: it refuses to run
# without --modify-this-host. Run as root:
#   deploy/postfix-e2e.sh target/debug/recoverydesk --modify-this-host
# Prints a transcript; docs/postfix-e2e.txt is one such run.
set -euo pipefail

BIN_SRC=${1:?usage: $0 PATH/TO/recoverydesk --modify-this-host}
[ "${2:-}" = "--modify-this-host" ] || { echo "refusing: this rewrites the host's Postfix; pass --modify-this-host" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }

say() { printf '\n## %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*"; echo "--- mail log:"; tail -n 40 /var/log/postfix.log 2>/dev/null || true; exit 1; }
LOG=/var/log/postfix.log
DB=/var/lib/recoverydesk/recoverydesk.db

say "Postfix"
if ! command -v postfix >/dev/null; then
    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
    echo "postfix postfix/mailname string desk.test" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
postconf -h mail_version | sed 's/^/Postfix /'

say "The desk, as docs/mail-setup.md installs it"
install -m 0755 "$BIN_SRC" /usr/local/bin/recoverydesk
id recoverydesk >/dev/null 2>&1 ||
    useradd --system --home-dir /var/lib/recoverydesk --shell /usr/sbin/nologin recoverydesk
id alice >/dev/null 2>&1 || useradd --create-home alice     # a local sender, to receive bounces
install -d -o recoverydesk -g recoverydesk -m 0750 /var/lib/recoverydesk
install -d -o root -g recoverydesk -m 0750 /etc/recoverydesk
cat > /etc/recoverydesk/recoverydesk.env <<'ENV'
DATABASE_URL=sqlite:///var/lib/recoverydesk/recoverydesk.db
RECOVERYDESK_BASE_URL=https://help.desk.test
RECOVERYDESK_SUPPORT_ADDRESS=support@desk.test
RECOVERYDESK_MAIL_DIR=/var/lib/recoverydesk/mail
RECOVERYDESK_MAX_MESSAGE_BYTES=200000
RUST_LOG=warn
ENV
chown root:recoverydesk /etc/recoverydesk/recoverydesk.env
chmod 0640 /etc/recoverydesk/recoverydesk.env
# The wrapper, verbatim from docs/mail-setup.md.
sed -n '/^#!\/bin\/sh$/,/^exec "\$BIN" mailgate$/p' "$(dirname "$0")/../docs/mail-setup.md" > /usr/local/bin/recoverydesk-mailgate
grep -q 'exec "$BIN" mailgate' /usr/local/bin/recoverydesk-mailgate || fail "the wrapper was not found in docs/mail-setup.md"
chmod 0755 /usr/local/bin/recoverydesk-mailgate
install -d -o recoverydesk -g recoverydesk -m 0755 /etc/recoverydesk/mail
echo 'support: "|/usr/local/bin/recoverydesk-mailgate"' > /etc/recoverydesk/mail/aliases
chown recoverydesk:recoverydesk /etc/recoverydesk/mail/aliases
postalias /etc/recoverydesk/mail/aliases
rm -f "$DB" "$DB-wal" "$DB-shm"
runuser -u recoverydesk -- sh -c 'set -a; . /etc/recoverydesk/recoverydesk.env; exec recoverydesk migrate'
ls -l /var/lib/recoverydesk

say "Postfix on loopback only, logging to a file (no syslog in a container)"
postconf -e \
    "myhostname = desk.test" \
    "mydestination = desk.test, localhost" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "alias_maps = hash:/etc/aliases, hash:/etc/recoverydesk/mail/aliases" \
    "alias_database = hash:/etc/aliases, hash:/etc/recoverydesk/mail/aliases" \
    "maillog_file = $LOG" \
    "mailbox_size_limit = 0" \
    "smtputf8_enable = no" \
    "queue_run_delay = 3600s" \
    "minimal_backoff_time = 3600s"
newaliases
postfix stop >/dev/null 2>&1 || true
: > "$LOG"
postfix start
for _ in $(seq 50); do python3 -c 'import socket; socket.create_connection(("127.0.0.1", 25), 1)' 2>/dev/null && break; sleep 0.2; done

# send FROM FILE: one message over SMTP to support@desk.test, as a remote sender would.
send() {
    python3 - "$1" "$2" <<'PY'
import smtplib, sys
with open(sys.argv[2], "rb") as f:
    data = f.read()
with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
    s.sendmail(sys.argv[1], ["support@desk.test"], data)
PY
}
# wait_log PATTERN COUNT: until the mail log has COUNT lines matching PATTERN.
wait_log() {
    for _ in $(seq 150); do
        [ "$(grep -c -- "$1" "$LOG" || true)" -ge "$2" ] && return 0
        sleep 0.2
    done
    fail "no $2 line(s) matching '$1' in the mail log"
}
sql() { runuser -u recoverydesk -- python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print("\n".join("|".join(map(str, r)) for r in c.execute(sys.argv[2])))' "$DB" "$1"; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 0755 "$WORK"
install -d -o recoverydesk -m 0700 "$WORK/locker"
cat > "$WORK/first.eml" <<'EML'
From: Alice <alice@desk.test>
To: support@desk.test
Subject: I forgot my username
Message-ID: <e2e-first@desk.test>
Date: Sun, 06 Dec 2026 04:00:00 +0000

Hello, I forgot my username. My email is alice@desk.test.
EML

say "1. A message becomes a ticket; sent again over SMTP, it is a duplicate"
send alice@desk.test "$WORK/first.eml"
wait_log 'status=sent (delivered to command: /usr/local/bin/recoverydesk-mailgate)' 1
send alice@desk.test "$WORK/first.eml"
wait_log 'status=sent (delivered to command: /usr/local/bin/recoverydesk-mailgate)' 2
grep 'relay=local' "$LOG" | sed 's/^.*postfix/postfix/'
echo "tickets (id|kind|subject):"
sql "SELECT id, kind, subject FROM tickets"
echo "events on RD-1 (type|count):"
sql "SELECT event_type, COUNT(*) FROM events WHERE ticket_id = 1 GROUP BY event_type ORDER BY event_type"
[ "$(sql 'SELECT COUNT(*) FROM tickets')" = 1 ] || fail "the retry opened a second ticket"
[ "$(sql "SELECT COUNT(*) FROM events WHERE event_type = 'duplicate'")" = 1 ] || fail "the retry was not recorded as a duplicate"
[ "$(sql "SELECT COUNT(*) FROM outbox WHERE template = 'acknowledgement'")" = 1 ] || fail "not exactly one acknowledgement"
echo "one ticket, one acknowledgement: ok"

say "2. The database is locked: Postfix defers, then delivers after postqueue -f"
sed -e 's/e2e-first/e2e-locked/' -e 's/forgot my username/am locked out by IP/' "$WORK/first.eml" > "$WORK/locked.eml"
runuser -u recoverydesk -- python3 -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()  # tells the script the lock is held
time.sleep(13)
c.execute("ROLLBACK")' "$DB" "$WORK/locker/held" &
LOCKER=$!
for _ in $(seq 50); do [ -e "$WORK/locker/held" ] && break; sleep 0.1; done
[ -e "$WORK/locker/held" ] || fail "could not lock the database"
send alice@desk.test "$WORK/locked.eml"
wait_log 'status=deferred' 1
grep 'status=deferred' "$LOG" | sed 's/^.*postfix/postfix/'
postqueue -p | tail -n +2
wait "$LOCKER"
postqueue -f
wait_log 'status=sent (delivered to command: /usr/local/bin/recoverydesk-mailgate)' 3
[ "$(sql 'SELECT COUNT(*) FROM tickets')" = 2 ] || fail "the deferred message was not stored after the retry"
echo "tickets (id|kind|subject):"
sql "SELECT id, kind, subject FROM tickets"

say "3. Too large for the desk: Postfix bounces it to the sender, in plain words"
{
    sed -e 's/e2e-first/e2e-big/' -e 's/^Subject: .*/Subject: Screenshots of the error/' "$WORK/first.eml"
    head -c 400000 /dev/zero | tr '\0' 'x' | fold -w 76
} > "$WORK/big.eml"
rm -f /var/mail/alice      # local(8) creates it for alice
send alice@desk.test "$WORK/big.eml"
wait_log 'status=bounced' 1
grep 'status=bounced' "$LOG" | sed 's/^.*postfix/postfix/'
for _ in $(seq 100); do grep -q 'Undelivered Mail Returned to Sender' /var/mail/alice 2>/dev/null && break; sleep 0.2; done
echo "--- what alice reads in the bounce:"
sed -n '/^This is the mail system/,/^--/p' /var/mail/alice | sed '$d'
grep -q 'too large for the support desk' /var/mail/alice || fail "the bounce does not say why in plain words"
if grep -q 'RECOVERYDESK_' /var/mail/alice; then fail "the bounce shows a setting name to the sender"; fi
[ "$(sql 'SELECT COUNT(*) FROM tickets')" = 2 ] || fail "the oversize message was stored"

say "Files of the desk (no access for others)"
ls -l /var/lib/recoverydesk
if find /var/lib/recoverydesk -perm /o=rwx | grep -q .; then fail "a file is open to other users"; fi

postfix stop >/dev/null 2>&1 || true
say "All checks passed"
