#!/usr/bin/env python3
"""Writes COUNT authentication events (JSON Lines, as docs/reference.md describes the authentication log) spread over the 20 days up to now.

Usage: gen_auth_log.py COUNT [USERS] > events.jsonl

Standard library only and seeded, so every run writes the same events (relative to now).
20,000 usernames `app-00000`… by default; 80 % of the attempts succeed, the rest fail with
every result the reference lists; one line in five is from the API gateway; each line also carries a
field the desk ignores (`queue_id`), as real relay logs do.
"""
import datetime
import json
import random
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
users = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
random.seed(7)
now = datetime.datetime.now(datetime.timezone.utc)
span = 20 * 86400
start = now - datetime.timedelta(seconds=span)
names = [f"app-{i:05d}" for i in range(users)]
results = (["ok"] * 80 + ["bad_password"] * 8 + ["unknown_user"] * 3
           + ["user_disabled", "account_suspended", "ip_not_authorized",
              "mechanism_not_supported", "tls_required"] * 2)
mechanisms = ["PLAIN", "LOGIN", "PLAIN", "CRAM-MD5"]
out = sys.stdout
for i in range(count):
    at = start + datetime.timedelta(seconds=span * i / count, microseconds=random.randrange(1_000_000))
    user = random.choice(names)
    result = random.choice(results)
    out.write(json.dumps({
        "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "channel": "api" if i % 5 == 0 else "smtp",
        "username": user,
        "account_id": None if result == "unknown_user" else f"acc_{int(user[4:]) % 5000:04d}",
        "client_ip": f"203.0.{i % 256}.{(i * 7) % 256}",
        "mechanism": random.choice(mechanisms),
        "tls": i % 11 != 0,
        "result": result,
        "queue_id": f"{i:x}",
    }, separators=(",", ":")) + "\n")
