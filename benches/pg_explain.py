#!/usr/bin/env python3
"""EXPLAIN ANALYZE, on PostgreSQL, of the search and list queries the desk runs (as
src/db/search.rs and src/db/tickets.rs write them), with terms read from the seeded SQLite file.

Usage: pg_explain.py POSTGRES_URL SQLITE_FILE
"""

import sqlite3
import subprocess
import sys


def main():
    url, db_file = sys.argv[1], sys.argv[2]
    db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    body = db.execute("SELECT body FROM messages WHERE id % 97 = 0 AND body LIKE '%Order number %' LIMIT 1").fetchone()
    rare = body[0].rsplit("Order number ", 1)[1].split(".")[0] if body else "12345678"
    address = db.execute("SELECT requester_normalized FROM tickets ORDER BY id LIMIT 1 OFFSET 500").fetchone()[0]
    top = int(subprocess.run(["psql", "-X", "-At", url, "-c", "SELECT max(ticket_id) + 1 FROM ticket_search"],
                             capture_output=True, text=True).stdout.strip() or 1)
    match = "document @@ plainto_tsquery('simple', regexp_replace('{q}', '[^[:alnum:]]+', ' ', 'g'))"
    # The first window of the newest-first walk (src/db/search.rs, WINDOWS), then the GIN
    # index below it for what the walk left open.
    walk = ("SELECT s.ticket_id AS id FROM (SELECT ticket_id, document FROM ticket_search WHERE ticket_id >= {lo} "
            "AND ticket_id < {hi} ORDER BY ticket_id DESC LIMIT 2000) s JOIN tickets ON tickets.id = s.ticket_id "
            "WHERE s." + match + "{extra} ORDER BY s.ticket_id DESC LIMIT 51")
    index = "SELECT ticket_id AS id FROM ticket_search WHERE " + match + " AND ticket_id < {lo} LIMIT 5001"
    queries = [
        ("word search, common word: the first window", walk.format(q="locked", extra="", lo=top - 2000, hi=top)),
        ("word search, common word, state: the first window",
         walk.format(q="locked", extra=" AND tickets.state = 'awaiting_agent'", lo=top - 2000, hi=top)),
        ("word search, rare word: the first window (nothing found)", walk.format(q=rare, extra="", lo=top - 2000, hi=top)),
        ("word search, rare word: the GIN index below it", index.format(q=rare, lo=top - 2000)),
        ("word search, two common words never together: the GIN index", index.format(q="ben omar", lo=top - 2000)),
        # Each exact lookup is its own query (one OR of them walked the primary key: 5 s).
        ("exact search: accounts with that id, username or address",
         f"SELECT id FROM accounts WHERE id = '{address}' OR username = '{address}' OR email_normalized = '{address}' "
         "LIMIT 100"),
        ("exact search: the tickets of a requester's address",
         f"SELECT id FROM tickets WHERE requester_normalized = '{address}' ORDER BY id DESC LIMIT 51"),
        ("API list by kind", "SELECT id FROM tickets WHERE kind = 'ip_lockout' ORDER BY id DESC LIMIT 51"),
        ("API list by state", "SELECT id FROM tickets WHERE state = 'resolved' ORDER BY id DESC LIMIT 51"),
        ("API list by kind and state",
         "SELECT id FROM tickets WHERE kind = 'login_help' AND state = 'awaiting_agent' ORDER BY id DESC LIMIT 51"),
    ]
    for label, sql in queries:
        out = subprocess.run(["psql", "-X", "-At", url, "-c", f"EXPLAIN (ANALYZE, COSTS OFF) {sql}"],
                             capture_output=True, text=True)
        print(f"-- {label}\n{out.stdout.strip() or out.stderr.strip()}\n")


if __name__ == "__main__":
    main()
