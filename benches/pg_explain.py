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
    words = "SELECT ticket_search.ticket_id AS id FROM ticket_search JOIN tickets ON tickets.id = ticket_search.ticket_id " \
            "WHERE ticket_search.document @@ plainto_tsquery('simple', regexp_replace('{q}', '[^[:alnum:]]+', ' ', 'g'))" \
            "{extra} ORDER BY ticket_search.ticket_id DESC LIMIT 51"
    queries = [
        ("word search, common word", words.format(q="locked", extra="")),
        ("word search, rare word", words.format(q=rare, extra="")),
        ("word search, common word, state", words.format(q="locked", extra=" AND tickets.state = 'awaiting_agent'")),
        ("exact search, an address",
         f"SELECT id FROM tickets WHERE (id = -1 OR requester_normalized = '{address}' OR account_id IN "
         f"(SELECT id FROM accounts WHERE id = '{address}' OR username = '{address}' OR email_normalized = '{address}')) "
         "ORDER BY id DESC LIMIT 51"),
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
