#!/usr/bin/env python3
"""Drive deliveries at a desk and print messages/s and latency percentiles. Standard library only.

  ingest_bench.py mailgate BIN PARALLEL FILE...   one `BIN mailgate` process per file, PARALLEL at a time
  ingest_bench.py webhook URL TOKEN CLIENTS FILE... POST /inbound/email, CLIENTS keep-alive connections

Prints one line: `<label> messages=N seconds=S rate=R p50=.. p95=.. p99=.. max=.. (ms) exits/statuses={..}`.
The environment (DATABASE_URL, RECOVERYDESK_SECRET_KEY, ...) is passed to the mailgates as is.
"""

import http.client
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter


def percentile(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    k = min(len(sorted_ms) - 1, max(0, round(p / 100 * (len(sorted_ms) - 1))))
    return sorted_ms[k]


def report(label, latencies, seconds, outcomes):
    ms = sorted(x * 1000 for x in latencies)
    n = len(ms)
    print(
        f"{label} messages={n} seconds={seconds:.3f} rate={n / seconds:.0f} "
        f"p50={percentile(ms, 50):.2f} p95={percentile(ms, 95):.2f} p99={percentile(ms, 99):.2f} "
        f"max={ms[-1] if ms else float('nan'):.2f} outcomes={dict(sorted(outcomes.items()))}",
        flush=True,
    )


def run_parallel(files, workers, deliver):
    latencies, outcomes, lock = [], Counter(), threading.Lock()
    queue = list(enumerate(files))
    queue.reverse()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                _, path = queue.pop()
            with open(path, "rb") as f:
                raw = f.read()
            start = time.perf_counter()
            outcome = deliver(raw)
            took = time.perf_counter() - start
            with lock:
                latencies.append(took)
                outcomes[outcome] += 1

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start, outcomes


def mailgate(args):
    binary, parallel, files = args[0], int(args[1]), args[2:]

    def deliver(raw):
        done = subprocess.run([binary, "mailgate"], input=raw, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return done.returncode

    latencies, seconds, outcomes = run_parallel(files, parallel, deliver)
    report(f"mailgate-x{parallel}", latencies, seconds, outcomes)


def webhook(args):
    url, token, clients, files = args[0], args[1], int(args[2]), args[3:]
    parsed = urllib.parse.urlparse(url)
    local = threading.local()

    def deliver(raw):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        try:
            conn.request("POST", "/inbound/email", body=raw,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"})
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            local.conn = None
            return "error"

    latencies, seconds, outcomes = run_parallel(files, clients, deliver)
    report(f"webhook-x{clients}", latencies, seconds, outcomes)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("mailgate", "webhook"):
        sys.exit(__doc__)
    {"mailgate": mailgate, "webhook": webhook}[sys.argv[1]](sys.argv[2:])
