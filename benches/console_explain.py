#!/usr/bin/env python3
"""EXPLAIN QUERY PLAN and timing of the queries behind the agent console's queue and ticket page
and the API list, on a seeded database (see console_seed.py), with the values bound as the desk
binds them.

Standard library only. The SQL is what diesel generates for src/db/console.rs (`queue`,
`counts`, `agents`), src/db/tickets.rs (`list`, `find`, `messages_of`, `events_of`,
`checks_of_round`), src/db/outbox.rs (`of_ticket`), src/db/auth_events.rs
(`latest_diagnoses`) and src/db/accounts.rs, written out by hand
(diesel quotes names with backticks and wraps each boxed filter in parentheses). Candidate
rewrites are marked "fix:".

Note: this runs Python's SQLite, which may be older than the SQLite the desk bundles
(libsqlite3-sys); the plans of these queries are the same on both unless said otherwise.

Usage: console_explain.py [--runs 20] DB
"""

import argparse
import sqlite3
import statistics
import sys
import time

TICKET_COLS = ", ".join(
    f"`tickets`.`{c}`"
    for c in (
        "id kind state state_reason subject requester requester_normalized account_id assignee_id "
        "status_token_hash status_token_salt channel verification_round attempts_on_record flagged "
        "auto_generated version waiting_since created_at updated_at"
    ).split()
)
OPEN = "(`tickets`.`state` != ?) AND (`tickets`.`state` != ?)"
ORDER = "ORDER BY `tickets`.`waiting_since` ASC, `tickets`.`id` ASC LIMIT ?"
SEARCH = (
    "((`tickets`.`requester_normalized` LIKE ? ESCAPE '\\') OR "
    "(lower(`tickets`.`subject`) LIKE ? ESCAPE '\\'))"
)
CURSOR = (
    "((`tickets`.`waiting_since` > ?) OR ((`tickets`.`waiting_since` = ?) AND (`tickets`.`id` > ?)))"
)


def queries(db):
    """(name, sql, params) of every query worth a look."""
    open_ids = [r[0] for r in db.execute(
        "SELECT id FROM tickets WHERE state NOT IN ('resolved', 'refused') ORDER BY id")]
    tid = open_ids[len(open_ids) // 2]
    # The cursor of page 49's last row (so the query returns page 50).
    at, last = db.execute(
        "SELECT waiting_since, id FROM tickets WHERE state NOT IN ('resolved', 'refused')"
        " ORDER BY waiting_since, id LIMIT 1 OFFSET ?", (min(2449, len(open_ids) - 1),)).fetchone()
    account = db.execute("SELECT account_id FROM tickets WHERE account_id IS NOT NULL LIMIT 1").fetchone()[0]
    address = db.execute("SELECT requester_normalized FROM tickets ORDER BY id LIMIT 1 OFFSET 500").fetchone()[0]
    body = db.execute("SELECT body FROM messages WHERE id % 97 = 0 AND body LIKE '%Order number %' LIMIT 1").fetchone()
    rare = body[0].rsplit("Order number ", 1)[1].split(".")[0] if body else "12345678"
    msg_refs = [r[0] for r in db.execute("SELECT id FROM messages WHERE ticket_id = ?", (tid,))]
    sel = f"SELECT {TICKET_COLS} FROM `tickets`"
    rr = ("resolved", "refused")
    out = [
        ("queue: GET /agent", f"{sel} WHERE {OPEN} {ORDER}", (*rr, 51)),
        ("queue: ?kind=ip_lockout",
         f"{sel} WHERE {OPEN} AND (`tickets`.`kind` = ?) {ORDER}", (*rr, "ip_lockout", 51)),
        ("queue: ?q=garcia",
         f"{sel} WHERE {OPEN} AND {SEARCH} {ORDER}", (*rr, "%garcia%", "%garcia%", 51)),
        ("queue: ?cursor= (page 50)",
         f"{sel} WHERE {OPEN} AND {CURSOR} {ORDER}", (*rr, at, at, last, 51)),
        ("queue: counts",
         "SELECT `tickets`.`kind`, `tickets`.`state`, COUNT(*) FROM `tickets`"
         " GROUP BY `tickets`.`kind`, `tickets`.`state`", ()),
        ("queue: agents",
         "SELECT `agents`.`id`, `agents`.`email`, `agents`.`name`, `agents`.`role`, `agents`.`active`"
         " FROM `agents` ORDER BY `agents`.`active` DESC, `agents`.`email_normalized` ASC", ()),
        ("fix: queue, NOT IN (?, ?) (diesel ne_all)",
         f"{sel} WHERE (`tickets`.`state` NOT IN (?, ?)) {ORDER}", (*rr, 51)),
        ("fix: queue, NOT IN literal (the index's own predicate)",
         f"{sel} WHERE (`tickets`.`state` NOT IN ('resolved', 'refused')) {ORDER}", (51,)),
        ("fix: kind, NOT IN literal",
         f"{sel} WHERE (`tickets`.`state` NOT IN ('resolved', 'refused')) AND (`tickets`.`kind` = ?) {ORDER}",
         ("ip_lockout", 51)),
        ("fix: q=garcia, NOT IN literal",
         f"{sel} WHERE (`tickets`.`state` NOT IN ('resolved', 'refused')) AND {SEARCH} {ORDER}",
         ("%garcia%", "%garcia%", 51)),
        ("fix: cursor, NOT IN literal + row value",
         f"{sel} WHERE (`tickets`.`state` NOT IN ('resolved', 'refused'))"
         f" AND ((`tickets`.`waiting_since`, `tickets`.`id`) > (?, ?)) {ORDER}", (at, last, 51)),
        ("fix: cursor, NOT IN literal + waiting_since >= ? AND (...)",
         f"{sel} WHERE (`tickets`.`state` NOT IN ('resolved', 'refused'))"
         f" AND (`tickets`.`waiting_since` >= ?) AND {CURSOR} {ORDER}", (at, at, at, last, 51)),
        ("api: list ?limit=50",
         f"{sel} ORDER BY `tickets`.`id` DESC LIMIT ?", (51,)),
        ("api: list ?kind=ip_lockout",
         f"{sel} WHERE (`tickets`.`kind` = ?) ORDER BY `tickets`.`id` DESC LIMIT ?", ("ip_lockout", 51)),
        ("api: list ?state=resolved",
         f"{sel} WHERE (`tickets`.`state` = ?) ORDER BY `tickets`.`id` DESC LIMIT ?", ("resolved", 51)),
        ("api: list ?kind=login_help&state=awaiting_agent",
         f"{sel} WHERE (`tickets`.`kind` = ?) AND (`tickets`.`state` = ?) ORDER BY `tickets`.`id` DESC LIMIT ?",
         ("login_help", "awaiting_agent", 51)),
        ("search (src/db/search.rs): exact, a whole address",
         "SELECT `tickets`.`id` FROM `tickets` WHERE (((`tickets`.`id` = ?) OR (`tickets`.`requester_normalized` = ?))"
         " OR (`tickets`.`account_id` IN (SELECT `accounts`.`id` FROM `accounts` WHERE (((`accounts`.`id` = ?)"
         " OR (`accounts`.`username` = ?)) OR (`accounts`.`email_normalized` = ?))))) LIMIT ?",
         (-1, address, address, address, address, 1)),
        ("search: words, a common word (locked)",
         "SELECT ticket_search.rowid >> 20 AS id FROM ticket_search CROSS JOIN tickets ON tickets.id = ticket_search.rowid >> 20"
         " WHERE ticket_search MATCH ? ORDER BY ticket_search.rowid DESC LIMIT ?", ('"locked"', 204)),
        ("search: words, a common word with a state",
         "SELECT ticket_search.rowid >> 20 AS id FROM ticket_search CROSS JOIN tickets ON tickets.id = ticket_search.rowid >> 20"
         " WHERE ticket_search MATCH ? AND tickets.state = ? ORDER BY ticket_search.rowid DESC LIMIT ?",
         ('"locked"', "awaiting_agent", 204)),
        ("search: words, a rare word (an order number)",
         "SELECT ticket_search.rowid >> 20 AS id FROM ticket_search CROSS JOIN tickets ON tickets.id = ticket_search.rowid >> 20"
         " WHERE ticket_search MATCH ? ORDER BY ticket_search.rowid DESC LIMIT ?", (f'"{rare}"', 204)),
        ("api: latest_diagnoses of the listed tickets",
         "SELECT `events`.`ticket_id`, `events`.`data`, `events`.`actor`, `events`.`created_at` FROM `events`"
         f" WHERE (`events`.`ticket_id` IN ({', '.join('?' * 51)})) AND (`events`.`event_type` = ?)"
         " ORDER BY `events`.`id` DESC",
         (*[r[0] for r in db.execute("SELECT id FROM tickets ORDER BY id DESC LIMIT 51")], "diagnosis")),
        ("ticket: find", f"{sel} WHERE (`tickets`.`id` = ?) LIMIT ?", (tid, 1)),
        ("ticket: messages_of",
         "SELECT * FROM `messages` WHERE (`messages`.`ticket_id` = ?) ORDER BY `messages`.`id` ASC", (tid,)),
        ("ticket: events_of",
         "SELECT * FROM `events` WHERE (`events`.`ticket_id` = ?) ORDER BY `events`.`id` ASC", (tid,)),
        ("ticket: outbox of_ticket",
         "SELECT * FROM `outbox` WHERE (`outbox`.`ticket_id` = ?) ORDER BY `outbox`.`id` ASC", (tid,)),
        ("ticket: checks_of_round",
         "SELECT `method`, `passed` FROM `verification_checks` WHERE (`verification_checks`.`ticket_id` = ?)"
         " AND (`verification_checks`.`round` = ?) ORDER BY `verification_checks`.`id` ASC", (tid, 1)),
        ("ticket: attachments_of",
         "SELECT `id`, `message_ref`, `filename`, `content_type`, `size` FROM `attachments`"
         f" WHERE (`attachments`.`message_ref` IN ({', '.join('?' * len(msg_refs)) or 'NULL'}))"
         " ORDER BY `attachments`.`id` ASC", tuple(msg_refs)),
        ("ticket: account find", "SELECT * FROM `accounts` WHERE (`accounts`.`id` = ?) LIMIT ?", (account, 1)),
        ("ticket: sub_users",
         "SELECT `id`, `username`, `status` FROM `accounts` WHERE (`accounts`.`parent_id` = ?)"
         " ORDER BY `accounts`.`id` ASC", (account,)),
    ]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    for name, sql, params in queries(db):
        plan = db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        times = []
        rows = 0
        for _ in range(args.runs):
            t0 = time.perf_counter()
            rows = len(db.execute(sql, params).fetchall())
            times.append((time.perf_counter() - t0) * 1000)
        print(f"-- {name}: {rows} rows, median {statistics.median(times):.2f} ms")
        for _id, parent, _notused, detail in plan:
            depth = 0
            # Indent children under their parents.
            lookup = {p[0]: p[1] for p in plan}
            p = parent
            while p:
                depth += 1
                p = lookup.get(p, 0)
            print(f"   {'  ' * depth}{detail}")
    db.close()


if __name__ == "__main__":
    sys.exit(main())
