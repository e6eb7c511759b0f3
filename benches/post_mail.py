#!/usr/bin/env python3
"""POST every message of a maildir to `POST /inbound/email` with N concurrent clients.

Standard library only. Each client is a thread with one keep-alive HTTP connection; the
messages are handed out in maildir order (sorted file names), each exactly once. With several
base URLs (several `serve` instances on one database) client i talks to URL i mod len(URLs).

Usage: post_mail.py --clients N --token TOKEN MAILDIR URL [URL...]
Prints one JSON line: messages, seconds, msg_per_s, p50_ms, p95_ms, p99_ms, max_ms, statuses
(answers per HTTP status), outcomes (per ingestion outcome).
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def files_of(maildir):
    names = []
    for sub in ("cur", "new"):
        path = os.path.join(maildir, sub)
        if os.path.isdir(path):
            names.extend(os.path.join(path, n) for n in os.listdir(path))
    return sorted(names, key=os.path.basename)


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--token", required=True)
    parser.add_argument("maildir")
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()

    bodies = []
    for name in files_of(args.maildir):
        with open(name, "rb") as f:
            bodies.append(f.read())
    lock = threading.Lock()
    next_index = [0]
    latencies = []
    statuses = {}
    outcomes = {}

    def client(i):
        url = urllib.parse.urlsplit(args.urls[i % len(args.urls)])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        headers = {"Authorization": "Bearer " + args.token, "Content-Type": "message/rfc822"}
        while True:
            with lock:
                n = next_index[0]
                next_index[0] += 1
            if n >= len(bodies):
                break
            started = time.perf_counter()
            try:
                conn.request("POST", "/inbound/email", body=bodies[n], headers=headers)
                response = conn.getresponse()
                text = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
                status, text = 0, b""
            elapsed = (time.perf_counter() - started) * 1000.0
            try:
                outcome = json.loads(text).get("outcome", "?")
            except ValueError:
                outcome = "?"
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    print(
        json.dumps(
            {
                "messages": len(bodies),
                "seconds": round(seconds, 3),
                "msg_per_s": round(len(bodies) / seconds, 1) if seconds > 0 else 0,
                "p50_ms": round(percentile(latencies, 50), 1),
                "p95_ms": round(percentile(latencies, 95), 1),
                "p99_ms": round(percentile(latencies, 99), 1),
                "max_ms": round(latencies[-1], 1) if latencies else 0,
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "outcomes": outcomes,
            }
        )
    )
    return 0 if set(statuses) == {200} else 1


if __name__ == "__main__":
    sys.exit(main())
