#!/usr/bin/env python3
"""Seed a migrated recoverydesk SQLite database with many tickets, for the console benchmark.

Standard library only. Deterministic for a given --seed (and --now), so runs are comparable.

Run it on a database that `recoverydesk migrate` has just created: it writes every row with
Python's sqlite3 in one transaction, matching migrations/sqlite/*/up.sql column for column
(the events table is append-only by trigger; inserting is what the desk does too).

What it writes, for --tickets N (default 100,000):
  agents    --agents (10) agents who cannot sign in (their password hash is not a hash);
            add a real one with `recoverydesk agents add` to sign in
  accounts  N * 0.3 accounts: ~80 % active, 8 % pending confirmation, 9 % terminated (some with
            a balance due), 3 % banned; 5 % are sub-users; 10 % have IP access management on,
            with 1-3 allowlist entries and sometimes a dedicated IP
  tickets   kinds: forgot_username 30 %, ip_lockout 25 %, login_help 20 %, account_terminated
            15 %, general 10 %; states: ~30 % open (spread over the open states that kind can
            be in), 55 % resolved, 15 % refused; created over the last 90 days, waiting_since
            between creation and now (open ones tend to wait longer); ~40 % assigned (most open
            ones, some closed); ~55 % linked to an account; 1 % flagged; 2 % auto-generated;
            channels web 60 %, mail 35 %, api 5 %
  messages  1-3 per ticket (20 % of first messages end with "Order number <8 digits>", a rare
            word for the search benchmark): the requester's first message, then mailed replies from the desk
            (an outbox row, status sent, for each) and the requester's answers quoting them
  events    3-8 per ticket: created, message_in, message_out, diagnosis (60 % of login_help
            tickets, as the automatic credential-failure diagnosis writes it), transition,
            assigned, note, check_recorded... in time order between creation and waiting_since
  verification_checks  for ip_lockout tickets that reached verification

Usage: console_seed.py [--tickets N] [--agents N] [--seed S] [--now ISO] DB
Prints one JSON line with the counts and the time it took.
"""

import argparse
import datetime as dt
import hashlib
import json
import random
import sqlite3
import sys
import time

KINDS = [
    ("forgot_username", 30),
    ("ip_lockout", 25),
    ("login_help", 20),
    ("account_terminated", 15),
    ("general", 10),
]
OPEN_STATES = {
    "forgot_username": ["awaiting_agent", "awaiting_customer"],
    "ip_lockout": [
        "awaiting_allowlisted_attempts",
        "attempts_reported",
        "verifying_ownership",
        "ownership_verified",
        "awaiting_agent",
    ],
    "login_help": ["awaiting_agent", "awaiting_customer"],
    "account_terminated": ["awaiting_payment", "payment_confirmed", "awaiting_agent"],
    "general": ["awaiting_agent", "awaiting_customer"],
}
SUBJECTS = {
    "forgot_username": [
        "Forgot my username",
        "Which username is mine?",
        "Cannot remember my login name",
        "Username reminder please",
        "I lost my account name",
    ],
    "ip_lockout": [
        "Locked out after my IP changed",
        "Cannot log in from new office",
        "IP access blocks me",
        "Please add my new IP to the allowlist",
        "Locked out by IP restriction",
    ],
    "login_help": [
        "Cannot log in",
        "SMTP authentication failed 535",
        "Password reset does not arrive",
        "API key rejected",
        "Login keeps failing",
    ],
    "account_terminated": [
        "My account was terminated",
        "Reactivate account after payment",
        "Why was my account closed?",
        "Account suspended for non-payment",
        "Paid invoice, please restore account",
    ],
    "general": [
        "Question about my plan",
        "Need help with settings",
        "Invoice question",
        "Change my contact address",
        "Feedback about the service",
    ],
}
FIRST = (
    "anna ben carla david elena felix greta hugo ines jonas karin lukas maria nils olga paul "
    "quinn rosa sven tina ulla victor wanda xaver yara zoe ahmed bilal chen dmitri emeka farah "
    "giorgio hana ivan jun kenji leila mateo nadia omar priya rahul sofia tomas uma wei yusuf"
).split()
LAST = (
    "schmidt mueller garcia rossi novak kowalski nguyen kim tanaka silva santos martin bernard "
    "dubois moreau laurent jensen hansen larsen nielsen berg lindqvist virtanen horvat popescu "
    "ivanova petrov smith jones taylor brown wilson evans walker wright thompson white hughes "
    "edwards green hall wood harris clarke patel khan ali singh okafor mensah"
).split()
DOMAINS = (
    "example.com example.org example.net mail.test post.test inbox.test shop-example.test "
    "agency-example.test studio-example.test firm-example.test"
).split()
WORDS = (
    "the a our we you it this that with for on in to of and from at by as is was are have has "
    "will would could please thanks hello team support account service mail message server "
    "domain send sending sent delivery customer yesterday today morning week since after before "
    "again still now urgent campaign newsletter invoice order website application integration "
    "settings configuration change changed update office colleague manager help question "
    "problem issue working stopped suddenly nothing error page button login password username "
    "address access blocked allowlist ip network payment paid balance restored closed"
).split()
ACTORS_SYSTEM = "system"


def ts(t: dt.datetime) -> str:
    """A timestamp exactly as diesel writes a NaiveDateTime to SQLite (`%F %T%.f`)."""
    base = t.strftime("%Y-%m-%d %H:%M:%S")
    us = t.microsecond
    if us == 0:
        return base
    if us % 1000 == 0:
        return f"{base}.{us // 1000:03d}"
    return f"{base}.{us:06d}"


def weighted(rng, pairs):
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def sentence(rng, n):
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def paragraph(rng, sentences):
    return " ".join(sentence(rng, rng.randint(6, 16)) for _ in range(sentences))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--now", default=None, help="ISO time taken as now (default: the real now, UTC)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    now = (
        dt.datetime.fromisoformat(args.now)
        if args.now
        else dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    )
    started = time.perf_counter()
    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = OFF")
    existing = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
    if existing:
        sys.exit(f"{args.db} already has {existing} tickets; seed a freshly migrated database")
    conn.execute("BEGIN IMMEDIATE")

    # Agents (ids 1..A). They cannot sign in: "!" is not a password hash.
    agent_ids = []
    for i in range(1, args.agents + 1):
        email = f"agent{i:02d}@desk.test"
        cur = conn.execute(
            "INSERT INTO agents (email, email_normalized, name, role, password_hash, active, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (email, email, f"Agent {i:02d}", "admin" if i == 1 else "agent", "!", 1,
             ts(now - dt.timedelta(days=365))),
        )
        agent_ids.append(cur.lastrowid)

    # People: requester addresses. Some people write several times.
    n_people = max(1, int(args.tickets * 0.6))
    people = []
    seen = set()
    while len(people) < n_people:
        f, l = rng.choice(FIRST), rng.choice(LAST)
        style = rng.random()
        local = f"{f}.{l}" if style < 0.5 else (f"{f[0]}{l}" if style < 0.8 else f"{f}{l}{rng.randint(1, 999)}")
        addr = f"{local}@{rng.choice(DOMAINS)}"
        if addr in seen:
            addr = f"{local}{rng.randint(1000, 99999)}@{rng.choice(DOMAINS)}"
            if addr in seen:
                continue
        seen.add(addr)
        display = addr if rng.random() < 0.9 else addr.capitalize()
        people.append(display)

    # Accounts.
    n_accounts = max(1, int(args.tickets * 0.3))
    accounts = []  # (id, email, status, ip_access)
    acc_rows, allow_rows, ded_rows = [], [], []
    for i in range(1, n_accounts + 1):
        acc_id = f"acc-{i:07d}"
        email = rng.choice(people)
        status = weighted(rng, [("active", 80), ("pending_confirmation", 8), ("terminated", 9), ("banned", 3)])
        parent = accounts[rng.randrange(len(accounts))][0] if accounts and rng.random() < 0.05 else None
        ip_access = rng.random() < 0.10
        created = now - dt.timedelta(days=rng.uniform(100, 2000))
        terminated_at = ts(now - dt.timedelta(days=rng.uniform(1, 100))) if status == "terminated" else None
        banned_at = ts(now - dt.timedelta(days=rng.uniform(1, 300))) if status == "banned" else None
        balance = rng.choice([0, 0, 1999, 4999, 12000]) if status == "terminated" else 0
        acc_rows.append((
            acc_id, f"user{i:07d}", email, email.lower(), status, parent, 0, int(ip_access),
            balance, terminated_at, banned_at, ts(created), ts(created),
        ))
        if ip_access:
            for k in range(rng.randint(1, 3)):
                allow_rows.append((acc_id, f"203.0.{rng.randint(0, 255)}.{k * 50 + rng.randint(1, 49)}",
                                   "import", ts(created)))
            if rng.random() < 0.3:
                ded_rows.append((acc_id, f"198.51.100.{rng.randint(1, 254)}"))
        accounts.append((acc_id, email, status, ip_access))
    conn.executemany(
        "INSERT INTO accounts (id, username, email, email_normalized, status, parent_id,"
        " banned_via_parent, ip_access_enabled, balance_due_cents, terminated_at, banned_at,"
        " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        acc_rows,
    )
    conn.executemany(
        "INSERT OR IGNORE INTO account_allowlist (account_id, entry, source, added_at) VALUES (?,?,?,?)",
        allow_rows,
    )
    conn.executemany("INSERT OR IGNORE INTO account_dedicated_ips (account_id, ip) VALUES (?,?)", ded_rows)

    ticket_rows, message_rows, event_rows, outbox_rows, check_rows = [], [], [], [], []
    msg_id = 0
    event_id = 0
    outbox_id = 0
    n_open = 0
    rare_rng = random.Random(args.seed * 7919 + 1)
    span = dt.timedelta(days=90)
    for tid in range(1, args.tickets + 1):
        kind = weighted(rng, KINDS)
        r = rng.random()
        if r < 0.30:
            state = rng.choice(OPEN_STATES[kind])
            reason = None
            n_open += 1
        elif r < 0.85:
            state, reason = "resolved", rng.choice(["username_sent", "allowlist_updated", "reactivated",
                                                      "answered", "no_reply"])
        else:
            state, reason = "refused", rng.choice(["not_the_owner", "verification_failed", "account_banned",
                                                     "duplicate"])
        is_open = state not in ("resolved", "refused")
        created = now - span * rng.random()
        # Open tickets wait from their last change; closed ones "wait" since they were closed.
        life = now - created
        waiting = created + life * (rng.random() ** (2.0 if is_open else 0.7))
        requester = rng.choice(people)
        linked = None
        if rng.random() < 0.55:
            acc = accounts[rng.randrange(len(accounts))]
            linked = acc[0]
            if rng.random() < 0.8:
                requester = acc[1]
        assignee = None
        if (is_open and rng.random() < 0.6) or (not is_open and rng.random() < 0.3):
            assignee = rng.choice(agent_ids)
        channel = weighted(rng, [("web", 60), ("mail", 35), ("api", 5)])
        subject = rng.choice(SUBJECTS[kind])
        if rng.random() < 0.5:
            subject = f"{subject} - {sentence(rng, rng.randint(2, 5))[:-1].lower()}"
        verification_round = 0
        if kind == "ip_lockout" and (state in ("verifying_ownership", "ownership_verified")
                                     or (not is_open and rng.random() < 0.4)):
            verification_round = rng.randint(1, 2)
        token = hashlib.sha256(f"bench-status-{args.seed}-{tid}".encode()).hexdigest()
        salt = hashlib.sha256(f"bench-salt-{args.seed}-{tid}".encode()).hexdigest()[:32]
        version = rng.randint(1, 8)
        ticket_rows.append((
            tid, kind, state, reason, subject, requester, requester.lower(), linked, assignee, token,
            salt, channel, verification_round, int(kind == "ip_lockout" and rng.random() < 0.5),
            int(rng.random() < 0.01), int(rng.random() < 0.02), version, ts(waiting), ts(created),
            ts(waiting),
        ))

        # The thread and the log, in time order between creation and waiting_since.
        n_msgs = rng.randint(1, 3)
        n_events = rng.randint(max(3, 2 * n_msgs), 8) if 2 * n_msgs <= 8 else 8
        times = sorted(created + (waiting - created) * rng.random() for _ in range(n_events))
        times[0] = created
        customer = f"customer:{requester.lower()}"
        agent_actor = f"agent:agent{(assignee or 1):02d}@desk.test"
        events = []  # (type, actor, data, message_ref)
        created_data = {"kind": kind, "channel": channel, "requester": requester, "subject": subject}
        if linked:
            created_data["account"] = linked
        if kind == "ip_lockout":
            created_data["current_ip"] = f"192.0.2.{rng.randint(1, 254)}"
        events.append(("created", customer, created_data, None))
        last_out = None
        pending_msgs, pending_outbox = {}, {}
        for m in range(n_msgs):
            at = times[min(len(times) - 1, 1 + 2 * m)]
            msg_id += 1
            if m % 2 == 0:
                body = paragraph(rng, rng.randint(2, 6))
                if m == 0 and rare_rng.random() < 0.2:
                    # A rare word for the search benchmark: an order number (its own generator,
                    # so the rest of the data is what earlier seeds wrote).
                    body = f"{body} Order number {rare_rng.randrange(10_000_000, 100_000_000)}."
                if last_out:
                    quoted = "\n".join("> " + line for line in last_out.splitlines())
                    body = f"{body}\n\nOn {at:%Y-%m-%d}, support wrote:\n{quoted}"
                pending_msgs[msg_id] = [
                    msg_id, tid, "in", "requester", requester, None,
                    subject if m == 0 else f"Re: [RD-{tid}] {subject}", body, None,
                    f"<bench.{tid}.{m}@{requester.split('@')[1]}>" if channel == "mail" else None,
                    None, 0, None, None,
                ]
                events.append(("message_in", customer, {"channel": channel}, msg_id))
            else:
                template = rng.choice(["acknowledgement", "agent_reply", "username_reminder",
                                       "allowlist_instructions"])
                body = f"Hello,\n\n{paragraph(rng, rng.randint(2, 5))}\n\nYour support team"
                last_out = body
                mid = f"<rd.bench{tid}x{m}.mac{tid:08x}@desk.test>"
                outbox_id += 1
                automatic = int(template == "acknowledgement")
                pending_outbox[msg_id] = [
                    outbox_id, tid, template, requester, requester.lower(), "{}", automatic, "sent", 1,
                    None, None, mid, None, None, None, f"[RD-{tid}] {subject}", body,
                    "auto-replied" if automatic else None, None, None, None, None, None,
                ]
                pending_msgs[msg_id] = [
                    msg_id, tid, "out", "system" if automatic else "agent", "support@desk.test", requester,
                    f"[RD-{tid}] {subject}", body, None, mid, None, automatic, None, None,
                ]
                events.append(("message_out", agent_actor,
                               {"to": requester, "template": template, "outbox_id": outbox_id,
                                "message_id": mid}, msg_id))
        if kind == "login_help" and rng.random() < 0.6 and len(events) < n_events - 1:
            # The automatic credential-failure diagnosis of a login_help ticket at opening.
            t0 = created - dt.timedelta(minutes=rng.randint(5, 600))
            timeline = [
                {"at": (t0 + dt.timedelta(minutes=3 * k)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "client_ip": f"203.0.113.{rng.randint(1, 254)}", "mechanism": rng.choice(["PLAIN", "LOGIN"]),
                 "tls": True, "result": rng.choice(["bad_password", "unknown_user", "ok"])}
                for k in range(rng.randint(1, 4))
            ]
            finding = rng.choice(["bad_password", "unknown_user", "ip_not_authorized", "succeeded_since",
                                  "request_not_seen", "username_has_at"])
            events.append(("diagnosis", ACTORS_SYSTEM, {
                "finding": finding, "username": f"user{rng.randint(1, 9999999):07d}", "channel": "smtp",
                "events": len(timeline), "first_at": timeline[0]["at"], "last_at": timeline[-1]["at"],
                "client_ips": sorted({t["client_ip"] for t in timeline}), "mechanisms": ["PLAIN"],
                "failed_at": timeline[0]["at"], "failed_at_source": "latest_failure",
                "window": {"from": timeline[0]["at"], "to": timeline[-1]["at"]}, "known_to_logs": True,
                "account_id": linked, "timeline": timeline,
            }, None))
        if assignee and len(events) < n_events - 1:
            events.append(("assigned", agent_actor, {"agent": f"agent{assignee:02d}@desk.test"}, None))
        if verification_round and len(events) < n_events - 1:
            for method in rng.sample(["dedicated_ip", "billing_details", "email_challenge", "recent_invoice"],
                                     rng.randint(1, 3)):
                passed = rng.random() < 0.8
                check_rows.append((tid, verification_round, method, int(passed), "seeded", agent_actor,
                                   ts(times[-1])))
            events.append(("check_recorded", agent_actor, {"round": verification_round}, None))
        while len(events) < n_events - 1:
            if rng.random() < 0.5:
                events.append(("note", agent_actor, {"internal": True}, None))
            else:
                events.append(("transition", agent_actor,
                               {"from": "awaiting_agent", "to": "awaiting_customer", "action": "reply"}, None))
        events.append(("transition", agent_actor if not is_open or rng.random() < 0.5 else ACTORS_SYSTEM,
                       {"from": "awaiting_agent", "to": state, "action": "resolve" if state == "resolved" else
                        ("refuse" if state == "refused" else "reply"), **({"reason": reason} if reason else {})},
                       None))
        for i, (etype, actor, data, ref) in enumerate(events):
            event_id += 1
            at = ts(times[min(i, len(times) - 1)])
            event_rows.append((event_id, tid, etype, actor, json.dumps(data), ref, at))
            if ref is not None:
                pending_msgs[ref][13] = at
                if ref in pending_outbox:
                    o = pending_outbox[ref]
                    o[9] = o[13] = o[14] = at
        message_rows.extend(tuple(m) for m in pending_msgs.values())
        outbox_rows.extend(tuple(o) for o in pending_outbox.values())

        if len(ticket_rows) >= 20_000:
            flush(conn, ticket_rows, message_rows, event_rows, outbox_rows, check_rows)

    flush(conn, ticket_rows, message_rows, event_rows, outbox_rows, check_rows)
    # Who acts next, as the agent_day migration derives it (the seed runs after it): the
    # queue's `waiting_on` filter and every queue row read it.
    conn.execute(
        "INSERT OR IGNORE INTO ticket_activity (ticket_id, waiting_on, last_activity_at)"
        " SELECT id, CASE WHEN state IN ('resolved', 'refused') THEN 'none'"
        " WHEN state IN ('awaiting_customer', 'awaiting_allowlisted_attempts', 'awaiting_payment')"
        " THEN 'customer' ELSE 'agent' END, updated_at FROM tickets")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("tickets", "events", "messages", "outbox", "accounts", "agents", "verification_checks")}
    counts["open_tickets"] = n_open
    counts["seconds"] = round(time.perf_counter() - started, 1)
    conn.close()
    print(json.dumps(counts))


def flush(conn, ticket_rows, message_rows, event_rows, outbox_rows, check_rows):
    conn.executemany(
        "INSERT INTO tickets (id, kind, state, state_reason, subject, requester, requester_normalized,"
        " account_id, assignee_id, status_token_hash, status_token_salt, channel, verification_round,"
        " attempts_on_record, flagged, auto_generated, version, waiting_since, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        ticket_rows,
    )
    conn.executemany(
        "INSERT INTO messages (id, ticket_id, direction, sender_role, from_address, to_address, subject,"
        " body, body_html, message_id, content_hash, auto_generated, redacted_at, created_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        message_rows,
    )
    conn.executemany(
        "INSERT INTO outbox (id, ticket_id, template, recipient, recipient_normalized, params, automatic,"
        " status, attempts, next_attempt_at, last_error, message_id, in_reply_to, created_at, sent_at,"
        " subject, body, auto_submitted, references_header, claimed_at, claimed_by, bounced_at,"
        " bounce_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        outbox_rows,
    )
    conn.executemany(
        "INSERT INTO events (id, ticket_id, event_type, actor, data, message_ref, created_at)"
        " VALUES (?,?,?,?,?,?,?)",
        event_rows,
    )
    conn.executemany(
        "INSERT INTO verification_checks (ticket_id, round, method, passed, evidence, actor, created_at)"
        " VALUES (?,?,?,?,?,?,?)",
        check_rows,
    )
    for rows in (ticket_rows, message_rows, event_rows, outbox_rows, check_rows):
        rows.clear()


if __name__ == "__main__":
    main()
