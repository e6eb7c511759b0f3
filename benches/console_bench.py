#!/usr/bin/env python3
"""Time the agent console and the JSON API of a running recoverydesk, request by request.

Standard library only. One keep-alive connection, sequential requests (one agent clicking
through the console as fast as the server answers); each figure is the wall time from sending
the request to having read the whole response (time.perf_counter), on loopback.

Scenarios (N timed requests each, after a few untimed warm-up requests):
  queue            GET /agent                       open tickets, oldest waiting first
  queue kind       GET /agent?kind=ip_lockout
  queue state      GET /agent?state=awaiting_agent
  queue assignee   GET /agent?assignee=<an agent's address>  one agent's open tickets
  queue unassigned GET /agent?assignee=none
  queue waiting    GET /agent?waiting_on=customer    open tickets waiting on the customer
  queue waiting agent GET /agent?waiting_on=agent
  queue search     GET /agent?q=<a surname>         a word of many requesters' addresses
  queue search 1   GET /agent?q=<one address>       one customer's whole address (few tickets)
  queue search word GET /agent?q=locked             a subject word of many tickets
  queue search rare GET /agent?q=<an order number>  a word in one ticket's body
  queue search waiting GET /agent?q=locked&waiting_on=customer  a common word, whose turn
  queue page 50    GET /agent?cursor=...            the 50th page (--page), reached by following "Next page"
  ticket page      GET /agent/tickets/RD-<id>       a random open ticket each time
  api list         GET /api/v1/tickets?limit=50
  api ticket       GET /api/v1/tickets/RD-<id>      a random open ticket each time
  api kind         GET /api/v1/tickets?kind=ip_lockout&limit=50
  api state        GET /api/v1/tickets?state=resolved&limit=50
  api kind state   GET /api/v1/tickets?kind=login_help&state=awaiting_agent&limit=50
  api search 1     GET /api/v1/tickets?q=<one address>
  api search word  GET /api/v1/tickets?q=locked
  api search rare  GET /api/v1/tickets?q=<an order number>

Ticket ids and search terms are read from the database file (read-only) before timing starts.

Usage: console_bench.py --base http://127.0.0.1:PORT --db FILE --email E --password P --token T
                        [-n 300] [--warmup 10] [--seed 1] [--json OUT]
Prints a Markdown table (median, p90, p95, p99, min, max in milliseconds, response size).
A search (`q`) covers closed tickets too, newest first (docs/reference.md#search).
"""

import argparse
import html
import http.client
import json
import math
import random
import re
import sqlite3
import sys
import time
import urllib.parse


class Client:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.cookie = None
        self.token = None

    def request(self, method, path, body=None, headers=None, api=False):
        h = {"Host": f"{self.host}:{self.port}", "Connection": "keep-alive"}
        if api and self.token:
            h["Authorization"] = f"Bearer {self.token}"
        elif self.cookie:
            h["Cookie"] = self.cookie
        h.update(headers or {})
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def login(self, email, password):
        # The sign-in form carries a token that must come back with its cookie (login CSRF).
        resp, page = self.request("GET", "/agent/login")
        login_cookie = next((v.split(";", 1)[0] for n, v in resp.getheaders()
                             if n.lower() == "set-cookie" and v.startswith("rd_login=")), None)
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.decode("utf-8", "replace"))
        if resp.status != 200 or not login_cookie or not csrf:
            sys.exit(f"the sign-in form answered {resp.status} without its token")
        body = urllib.parse.urlencode({"email": email, "password": password, "csrf": html.unescape(csrf.group(1))})
        resp, _ = self.request(
            "POST", "/agent/login", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie},
        )
        if resp.status != 303:
            sys.exit(f"sign-in answered {resp.status}, expected 303")
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie" and value.startswith("rd_session="):
                self.cookie = value.split(";", 1)[0]
        if not self.cookie:
            sys.exit("sign-in set no rd_session cookie")


NEXT = re.compile(r'<a class="button" href="([^"]+)">Next page</a>')


def percentile(sorted_ms, q):
    """Nearest-rank percentile of an ascending list."""
    k = max(1, math.ceil(q * len(sorted_ms)))
    return sorted_ms[k - 1]


def timed(client, paths, n, warmup, api, expect="text/html"):
    """paths: a function i -> path. Returns (sorted list of ms, mean response bytes)."""
    for i in range(warmup):
        resp, _ = client.request("GET", paths(-1 - i), api=api)
    out, sizes = [], 0
    for i in range(n):
        path = paths(i)
        t0 = time.perf_counter()
        resp, data = client.request("GET", path, api=api)
        elapsed = (time.perf_counter() - t0) * 1000.0
        if resp.status != 200 or expect not in (resp.getheader("Content-Type") or ""):
            sys.exit(f"GET {path} answered {resp.status} {resp.getheader('Content-Type')}: {data[:300]!r}")
        out.append(elapsed)
        sizes += len(data)
    out.sort()
    return out, sizes // max(1, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--db", required=True, help="the SQLite file the server uses (read only, for ids)")
    ap.add_argument("--email", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--page", type=int, default=50, help="which queue page the cursor scenario times")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--only", help="comma-separated scenario names to run, e.g. 'queue,ticket page'")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    open_ids = [r[0] for r in db.execute(
        "SELECT id FROM tickets WHERE state NOT IN ('resolved', 'refused') ORDER BY id")]
    # A surname shared by many requesters, and one customer's whole address.
    surname = "garcia"
    one_address = db.execute(
        "SELECT requester_normalized FROM tickets WHERE state NOT IN ('resolved', 'refused')"
        " ORDER BY id LIMIT 1 OFFSET ?", (len(open_ids) // 2,)).fetchone()[0]
    word = "locked"
    # An agent with tickets assigned (the seeders' agents cannot sign in; the bench's own
    # agent has none).
    assignee = (db.execute("SELECT a.email FROM agents a WHERE EXISTS (SELECT 1 FROM tickets t"
                           " WHERE t.assignee_id = a.id) ORDER BY a.id LIMIT 1").fetchone() or ("none",))[0]
    bodies = db.execute("SELECT body FROM messages WHERE id % 97 = 0 AND body LIKE '%Order number %' LIMIT 1"
                        ).fetchone()
    rare = bodies[0].rsplit("Order number ", 1)[1].split(".")[0] if bodies else "12345678"
    matches = {
        "surname": db.execute("SELECT COUNT(*) FROM tickets WHERE requester_normalized LIKE ?",
                              (f"%{surname}%",)).fetchone()[0],
        "address": db.execute("SELECT COUNT(*) FROM tickets WHERE requester_normalized = ?",
                              (one_address,)).fetchone()[0],
        "word": db.execute("SELECT COUNT(*) FROM tickets WHERE lower(subject) LIKE ?", (f"%{word}%",)).fetchone()[0],
        "rare": db.execute("SELECT COUNT(DISTINCT ticket_id) FROM messages WHERE body LIKE ?",
                           (f"%{rare}%",)).fetchone()[0],
    }
    db.close()
    if not open_ids:
        sys.exit("no open tickets in the database")

    client = Client(args.base)
    client.login(args.email, args.password)
    client.token = args.token

    # Follow "Next page" from the queue to the wanted page (untimed), or to the last one when
    # there are fewer pages (small databases).
    href, page = "/agent", 1
    while page < args.page:
        resp, data = client.request("GET", href)
        if resp.status != 200:
            sys.exit(f"GET {href} answered {resp.status}")
        m = NEXT.search(data.decode("utf-8", "replace"))
        if not m:
            break
        href, page = html.unescape(m.group(1)), page + 1
    page_href = href

    ticket_ids = [rng.choice(open_ids) for _ in range(args.n + args.warmup)]
    api_ids = [rng.choice(open_ids) for _ in range(args.n + args.warmup)]
    q_surname = urllib.parse.quote(surname)
    q_address = urllib.parse.quote(one_address)
    scenarios = [
        ("queue", "GET /agent", lambda i: "/agent", False, "text/html"),
        ("queue kind", "GET /agent?kind=ip_lockout", lambda i: "/agent?kind=ip_lockout", False, "text/html"),
        ("queue state", "GET /agent?state=awaiting_agent", lambda i: "/agent?state=awaiting_agent", False,
         "text/html"),
        ("queue assignee", "GET /agent?assignee=<an agent>",
         lambda i: f"/agent?assignee={urllib.parse.quote(assignee)}", False, "text/html"),
        ("queue unassigned", "GET /agent?assignee=none", lambda i: "/agent?assignee=none", False, "text/html"),
        ("queue waiting", "GET /agent?waiting_on=customer", lambda i: "/agent?waiting_on=customer", False,
         "text/html"),
        ("queue waiting agent", "GET /agent?waiting_on=agent", lambda i: "/agent?waiting_on=agent", False,
         "text/html"),
        ("queue search", f"GET /agent?q={surname} (~{matches['surname']} matches)",
         lambda i: f"/agent?q={q_surname}", False, "text/html"),
        ("queue search 1", f"GET /agent?q=<one address> ({matches['address']} matches)",
         lambda i: f"/agent?q={q_address}", False, "text/html"),
        ("queue search word", f"GET /agent?q={word} (~{matches['word']} matches)",
         lambda i: f"/agent?q={word}", False, "text/html"),
        ("queue search rare", f"GET /agent?q=<an order number> ({matches['rare']} match)",
         lambda i: f"/agent?q={rare}", False, "text/html"),
        ("queue search waiting", f"GET /agent?q={word}&waiting_on=customer",
         lambda i: f"/agent?q={word}&waiting_on=customer", False, "text/html"),
        (f"queue page {page}", f"GET /agent?cursor=… (page {page})" if page > 1 else "GET /agent (page 1: no other)",
         lambda i: page_href, False, "text/html"),
        ("ticket page", "GET /agent/tickets/RD-<random open id>",
         lambda i: f"/agent/tickets/RD-{ticket_ids[i]}", False, "text/html"),
        ("api list", "GET /api/v1/tickets?limit=50", lambda i: "/api/v1/tickets?limit=50", True,
         "application/json"),
        ("api ticket", "GET /api/v1/tickets/RD-<random open id>",
         lambda i: f"/api/v1/tickets/RD-{api_ids[i]}", True, "application/json"),
        ("api kind", "GET /api/v1/tickets?kind=ip_lockout&limit=50",
         lambda i: "/api/v1/tickets?kind=ip_lockout&limit=50", True, "application/json"),
        ("api state", "GET /api/v1/tickets?state=resolved&limit=50",
         lambda i: "/api/v1/tickets?state=resolved&limit=50", True, "application/json"),
        ("api kind state", "GET /api/v1/tickets?kind=login_help&state=awaiting_agent&limit=50",
         lambda i: "/api/v1/tickets?kind=login_help&state=awaiting_agent&limit=50", True, "application/json"),
        ("api search 1", "GET /api/v1/tickets?q=<one address>",
         lambda i: f"/api/v1/tickets?q={q_address}", True, "application/json"),
        ("api search word", f"GET /api/v1/tickets?q={word}",
         lambda i: f"/api/v1/tickets?q={word}", True, "application/json"),
        ("api search rare", "GET /api/v1/tickets?q=<an order number>",
         lambda i: f"/api/v1/tickets?q={rare}", True, "application/json"),
    ]
    only = set(args.only.split(",")) if args.only else None
    results = []
    for name, label, paths, api, expect in scenarios:
        if only and name not in only:
            continue
        ms, size = timed(client, paths, args.n, args.warmup, api, expect)
        row = {
            "name": name, "request": label, "n": len(ms),
            "median": percentile(ms, 0.5), "p90": percentile(ms, 0.9), "p95": percentile(ms, 0.95),
            "p99": percentile(ms, 0.99),
            "min": ms[0], "max": ms[-1], "bytes": size,
        }
        results.append(row)
        print(f"  {name:<16} median {row['median']:7.2f} ms  p90 {row['p90']:7.2f}  p99 {row['p99']:7.2f}",
              file=sys.stderr)

    print(f"| Request | n | median ms | p90 ms | p95 ms | p99 ms | min ms | max ms | response bytes |")
    print(f"|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| `{r['request']}` | {r['n']} | {r['median']:.2f} | {r['p90']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} |"
              f" {r['min']:.2f} | {r['max']:.2f} | {r['bytes']:,} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "open_tickets": len(open_ids), "page_href": page_href,
                       "search": {"surname": surname, "address": one_address, "word": word, "rare": rare,
                                  "matches": matches}}, f,
                      indent=1)


if __name__ == "__main__":
    main()
