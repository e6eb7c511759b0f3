#!/usr/bin/env python3
"""Interleaved timing of one customer form for addresses the directory knows and addresses it
does not: prints the two medians, their spread (interquartile range) and the Mann-Whitney z.

Usage: form_timing.py BASE_URL PAIRS [WARMUP] [SEED]
The directory must hold the accounts known-<i>@bench.test (i from 0 to PAIRS+WARMUP), active.
Each pair posts /help/forgot-username once for known-<i> and once for unknown-<i>, in a random
order, on one keep-alive connection; only the round trip of the POST is timed.
"""
import http.client
import math
import random
import statistics
import sys
import time
import urllib.parse


def post(conn, path, email):
    body = urllib.parse.urlencode({"email": email, "details": "I forgot my username."})
    started = time.perf_counter_ns()
    conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter_ns() - started
    if response.status != 303:
        raise SystemExit(f"{email}: HTTP {response.status}")
    return elapsed / 1e6


def mann_whitney_z(a, b):
    """z of the Mann-Whitney U statistic (normal approximation, tie-corrected)."""
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(pooled)
    i = 0
    ties = 0.0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = rank
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    n1, n2 = len(a), len(b)
    r1 = sum(r for r, (_, group) in zip(ranks, pooled) if group == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    return (u1 - mean) / sigma if sigma else 0.0


def quartiles(xs):
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def main():
    base = urllib.parse.urlsplit(sys.argv[1])
    pairs = int(sys.argv[2])
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    path = "/help/forgot-username"
    known, unknown = [], []
    for i in range(warmup + pairs):
        order = [("known", f"known-{i}@bench.test"), ("unknown", f"unknown-{i}@bench.test")]
        rng.shuffle(order)
        for which, email in order:
            ms = post(conn, path, email)
            if i >= warmup:
                (known if which == "known" else unknown).append(ms)
    z = mann_whitney_z(known, unknown)
    for name, xs in (("known address", known), ("unknown address", unknown)):
        lo, hi = quartiles(xs)
        print(f"| {name} | {len(xs)} | {statistics.median(xs):.3f} | {lo:.3f} – {hi:.3f} | {hi - lo:.3f} |")
    diff = statistics.median(known) - statistics.median(unknown)
    print(f"| known − unknown (medians) | | {diff:+.3f} | | |")
    print(f"\nMann-Whitney z = {z:+.2f} (|z| > 1.96: the two differ at the 5 % level)")


if __name__ == "__main__":
    main()
