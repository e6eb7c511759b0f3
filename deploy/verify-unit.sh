#!/usr/bin/env bash
# Checks deploy/recoverydesk.service with `systemd-analyze verify` (as CI does), without
# installing anything: the unit is copied with ExecStart pointing at BINARY, and the man page
# its Documentation= names is generated from that binary into a temporary MANPATH (verify
# looks both up). Also prints systemd's exposure score for the hardening settings.
#   deploy/verify-unit.sh target/debug/recoverydesk
set -euo pipefail
BIN=$(realpath "${1:?usage: $0 PATH/TO/recoverydesk}")
UNIT="$(dirname "$0")/recoverydesk.service"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze is missing (Debian: apt-get install systemd)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/man/man1"
"$BIN" man > "$WORK/man/man1/recoverydesk.1"
sed "s#/usr/local/bin/recoverydesk#$BIN#" "$UNIT" > "$WORK/recoverydesk.service"
# Without man(1) verify cannot look the page up; everything else is still checked.
MAN_CHECK=--man=yes
command -v man >/dev/null || { MAN_CHECK=--man=no; echo "man is not installed: Documentation= not checked"; }
# verify exits 0 on an unknown or misspelt key and only warns: any word from it is a failure.
if ! MANPATH="$WORK/man" systemd-analyze verify "$MAN_CHECK" "$WORK/recoverydesk.service" > "$WORK/verify.log" 2>&1 || [ -s "$WORK/verify.log" ]; then
    cat "$WORK/verify.log" >&2
    echo "systemd-analyze verify: FAILED" >&2
    exit 1
fi
echo "systemd-analyze verify: ok"
systemd-analyze security --offline=true "$WORK/recoverydesk.service" | tail -n 1
