#!/usr/bin/env python3
"""Seed a migrated recoverydesk SQLite database with many tickets fast: set-based SQL run inside
SQLite (recursive CTEs and random()), no Python per row, one transaction. A million tickets
took 726 s on a 2-core machine with a load average of 25-45 (benches/console_seed.py, with
richer data: events, outbox, replies, wrote 3 % of that in 10 minutes on the same machine); for
the search and list benchmarks at scale (benches/console_bench.sh SEEDER=bulk).

What it writes, for --tickets N:
  agents    10 (who cannot sign in)
  accounts  N * 0.03: username "user<n>-<word>", address "<first>.<last><n>@<domain>", 90 % active
  tickets   kinds forgot_username 30 %, ip_lockout 25 %, login_help 20 %, account_terminated 15 %,
            general 10 %; 30 % open (in the kind's first open state), 55 % resolved, 15 % refused;
            requester "<first>.<last><n % 60000>@<domain>" (so about 60,000 addresses, some
            writing many times); 55 % linked to an account; 40 % assigned; subjects one of 500
            phrases (ip_lockout ones start "Locked out:"); created over 90 days
  messages  one per ticket: the requester's words, two of 2,000 sentences of 8-20 words from a
            140-word vocabulary, and for 20 % "Order number <8 digits>" (a rare word)
  events    created and message_in per ticket
  ticket_activity  one row per ticket (who acts next), as the agent_day migration derives it
Random data from SQLite's random(): not reproducible run to run (the shape is).

Usage: bulk_seed.py [--tickets N] DB
Prints one JSON line with the counts and the time it took.
"""

import argparse
import json
import random
import sqlite3
import time

WORDS = (
    "the a our we you it this that with for on in to of and from at by as is was are have has "
    "will would could please thanks hello team support account service mail message server "
    "domain send sending sent delivery customer yesterday today morning week since after before "
    "again still now urgent campaign newsletter invoice order website application integration "
    "settings configuration change changed update office colleague manager help question "
    "problem issue working stopped suddenly nothing error page button login password username "
    "address access blocked allowlist ip network payment paid balance restored closed locked "
    "remember forgot reset new old moved cannot unable failing bounce relay smtp api key "
    "dashboard report billing card refund terminated reactivate suspended verify owner phone"
).split()
FIRST = "anna ben carla david elena felix greta hugo ines jonas maria omar priya wei yusuf".split()
LAST = "schmidt garcia rossi novak nguyen kim silva martin jensen smith patel khan okafor".split()
DOMAINS = "example.com example.org mail.test post.test inbox.test shop-example.test".split()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("--tickets", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.tickets
    started = time.perf_counter()
    c = sqlite3.connect(args.db, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = OFF")
    c.execute("PRAGMA cache_size = -262144")
    c.execute("BEGIN")
    c.execute("CREATE TEMP TABLE w (i INTEGER PRIMARY KEY, word TEXT)")
    c.executemany("INSERT INTO temp.w VALUES (?, ?)", list(enumerate(WORDS)))
    c.execute("CREATE TEMP TABLE f (i INTEGER PRIMARY KEY, word TEXT)")
    c.executemany("INSERT INTO temp.f VALUES (?, ?)", list(enumerate(FIRST)))
    c.execute("CREATE TEMP TABLE l (i INTEGER PRIMARY KEY, word TEXT)")
    c.executemany("INSERT INTO temp.l VALUES (?, ?)", list(enumerate(LAST)))
    c.execute("CREATE TEMP TABLE d (i INTEGER PRIMARY KEY, word TEXT)")
    c.executemany("INSERT INTO temp.d VALUES (?, ?)", list(enumerate(DOMAINS)))
    # 2,000 sentences of 8-20 words and 500 subject phrases, made here once; rows pick them.
    rng = random.Random(1)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."
                 for _ in range(2000)]
    c.execute("CREATE TEMP TABLE sen (i INTEGER PRIMARY KEY, text TEXT)")
    c.executemany("INSERT INTO temp.sen VALUES (?, ?)", list(enumerate(sentences)))
    phrases = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4))) for _ in range(500)]
    c.execute("CREATE TEMP TABLE sub (i INTEGER PRIMARY KEY, text TEXT)")
    c.executemany("INSERT INTO temp.sub VALUES (?, ?)", list(enumerate(phrases)))
    nw, nf, nl, nd = len(WORDS), len(FIRST), len(LAST), len(DOMAINS)
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    for i in range(1, 11):
        c.execute("INSERT INTO agents (email, email_normalized, name, role, password_hash, active, created_at)"
                  f" VALUES (?, ?, ?, 'agent', 'not-a-hash', 1, {now})",
                  (f"agent{i:02d}@desk.test", f"agent{i:02d}@desk.test", f"Agent {i}"))
    n_accounts = max(10, n * 3 // 100)
    c.execute(f"""
        WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n_accounts})
        INSERT INTO accounts (id, username, email, email_normalized, status, created_at, updated_at)
        SELECT 'acc_' || i, 'user' || i || '-' || (SELECT word FROM temp.w WHERE w.i = s.i % {nw}),
               (SELECT word FROM temp.f WHERE f.i = s.i % {nf}) || '.' || (SELECT word FROM temp.l WHERE l.i = s.i % {nl})
                   || i || '@' || (SELECT word FROM temp.d WHERE d.i = s.i % {nd}),
               '', CASE WHEN i % 10 = 0 THEN 'terminated' ELSE 'active' END, {now}, {now}
        FROM s""")
    c.execute("UPDATE accounts SET email_normalized = lower(email)")
    # Tickets: kind and state from i, the rest from random().
    c.execute(f"""
        WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}),
        r AS MATERIALIZED (SELECT i, abs(random()) AS x, abs(random()) AS y, abs(random()) AS z FROM s),
        k AS (SELECT i, x, y, z,
                CASE WHEN x % 100 < 30 THEN 'forgot_username' WHEN x % 100 < 55 THEN 'ip_lockout'
                     WHEN x % 100 < 75 THEN 'login_help' WHEN x % 100 < 90 THEN 'account_terminated'
                     ELSE 'general' END AS kind,
                CASE WHEN y % 100 < 30 THEN 'open' WHEN y % 100 < 85 THEN 'resolved' ELSE 'refused' END AS st,
                (z % 60000) AS person,
                datetime('now', '-' || (z % 7776000) || ' seconds') AS created
              FROM r)
        INSERT INTO tickets (id, kind, state, subject, requester, requester_normalized, account_id, assignee_id,
                             status_token_hash, status_token_salt, channel, waiting_since, created_at, updated_at)
        SELECT i, kind,
               CASE st WHEN 'open' THEN CASE kind WHEN 'ip_lockout' THEN 'awaiting_allowlisted_attempts'
                                                  WHEN 'account_terminated' THEN 'awaiting_payment'
                                                  ELSE 'awaiting_agent' END
                       ELSE st END,
               CASE WHEN kind = 'ip_lockout' THEN 'Locked out: ' WHEN kind = 'forgot_username' THEN 'Forgot username: '
                    ELSE '' END || (SELECT text FROM temp.sub WHERE sub.i = (x / 100) % 500),
               (SELECT word FROM temp.f WHERE f.i = person % {nf}) || '.' || (SELECT word FROM temp.l WHERE l.i = (person / {nf}) % {nl})
                   || person || '@' || (SELECT word FROM temp.d WHERE d.i = person % {nd}),
               '', CASE WHEN (y / 100) % 100 < 55 THEN 'acc_' || (1 + (z / 13) % {n_accounts}) END,
               CASE WHEN (z / 100) % 100 < 40 THEN 1 + (z / 10000) % 10 END,
               'none:bench' || i, '', 'web', created, created, created
        FROM k""")
    c.execute("UPDATE tickets SET requester_normalized = lower(requester)")
    c.execute(f"""
        INSERT INTO messages (id, ticket_id, direction, sender_role, from_address, subject, body, created_at)
        SELECT t.id, t.id, 'in', 'requester', t.requester, t.subject,
               (SELECT text FROM temp.sen WHERE sen.i = (t.id * 7919) % 2000) || ' '
                 || (SELECT text FROM temp.sen WHERE sen.i = (t.id * 104729 + abs(random())) % 2000)
                 || CASE WHEN abs(random()) % 5 = 0 THEN '. Order number ' || (10000000 + abs(random()) % 90000000) ELSE '' END
                 || '.',
               t.created_at
        FROM tickets t""")
    c.execute("""
        INSERT INTO events (ticket_id, event_type, actor, data, message_ref, created_at)
        SELECT id, 'created', 'customer:' || requester_normalized,
               json_object('kind', kind, 'channel', 'web', 'requester', requester, 'subject', subject), NULL, created_at
        FROM tickets""")
    c.execute("""
        INSERT INTO events (ticket_id, event_type, actor, data, message_ref, created_at)
        SELECT id, 'message_in', 'customer:' || requester_normalized, json_object('channel', 'web'), id, created_at
        FROM tickets""")
    # Who acts next, as the agent_day migration derives it for existing tickets (the seed runs
    # after that migration, so its backfill saw no tickets): the queue's `waiting_on` filter
    # and every queue row read it.
    c.execute("""
        INSERT INTO ticket_activity (ticket_id, waiting_on, last_activity_at)
        SELECT id,
               CASE WHEN state IN ('resolved', 'refused') THEN 'none'
                    WHEN state IN ('awaiting_customer', 'awaiting_allowlisted_attempts', 'awaiting_payment')
                        THEN 'customer'
                    ELSE 'agent' END,
               updated_at
        FROM tickets""")
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("tickets", "messages", "events", "accounts", "ticket_activity")}
    counts["open_tickets"] = c.execute(
        "SELECT COUNT(*) FROM tickets WHERE state NOT IN ('resolved', 'refused')").fetchone()[0]
    counts["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
