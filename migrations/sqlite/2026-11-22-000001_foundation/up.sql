-- The foundation schema (SQLite). Kept in step with migrations/postgres: same tables, same
-- names; timestamps are UTC.

CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'pending_confirmation', 'terminated', 'banned')),
    parent_id TEXT,
    banned_via_parent BOOLEAN NOT NULL DEFAULT 0,
    ip_access_enabled BOOLEAN NOT NULL DEFAULT 0,
    balance_due_cents BIGINT NOT NULL DEFAULT 0,
    terminated_at TIMESTAMP,
    banned_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX accounts_email_normalized ON accounts (email_normalized);
CREATE INDEX accounts_parent_id ON accounts (parent_id);

-- A ban is permanent: the database refuses to lift one, whoever asks.
CREATE TRIGGER accounts_ban_is_permanent BEFORE UPDATE OF status ON accounts
WHEN OLD.status = 'banned' AND NEW.status <> 'banned'
BEGIN SELECT RAISE(ABORT, 'a ban is permanent'); END;
CREATE TRIGGER accounts_inherited_ban_is_permanent BEFORE UPDATE OF banned_via_parent ON accounts
WHEN OLD.banned_via_parent AND NOT NEW.banned_via_parent
BEGIN SELECT RAISE(ABORT, 'a ban is permanent'); END;

CREATE TABLE account_allowlist (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    entry TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, entry)
);

CREATE TABLE account_dedicated_ips (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    ip TEXT NOT NULL,
    PRIMARY KEY (account_id, ip)
);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    password_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    deactivated_at TIMESTAMP
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    agent_id BIGINT NOT NULL REFERENCES agents (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    subject TEXT NOT NULL,
    requester TEXT NOT NULL,
    requester_normalized TEXT NOT NULL,
    account_id TEXT REFERENCES accounts (id),
    assignee_id BIGINT REFERENCES agents (id),
    status_token_hash TEXT NOT NULL UNIQUE,
    -- The status link is re-derived for each mail as HMAC(secret key, id, salt); only its hash is
    -- stored, so a copy of the database alone opens no status page.
    status_token_salt TEXT NOT NULL,
    channel TEXT NOT NULL,
    verification_round INTEGER NOT NULL DEFAULT 0,
    attempts_on_record BOOLEAN NOT NULL DEFAULT 0,
    flagged BOOLEAN NOT NULL DEFAULT 0,
    auto_generated BOOLEAN NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    waiting_since TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX tickets_state_waiting ON tickets (state, waiting_since, id);
CREATE INDEX tickets_kind_state ON tickets (kind, state, id);
CREATE INDEX tickets_requester ON tickets (requester_normalized, id);
CREATE INDEX tickets_account ON tickets (account_id, id);
CREATE INDEX tickets_assignee ON tickets (assignee_id, id);

-- Message bodies live apart from the append-only event log so that an admin can still
-- redact a stored message afterwards.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out', 'note')),
    sender_role TEXT NOT NULL,
    from_address TEXT,
    to_address TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    body_html TEXT,
    message_id TEXT,
    content_hash TEXT,
    auto_generated BOOLEAN NOT NULL DEFAULT 0,
    redacted_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX messages_ticket ON messages (ticket_id, id);
CREATE INDEX messages_message_id ON messages (message_id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    event_type TEXT NOT NULL,
    actor TEXT NOT NULL,
    data TEXT NOT NULL,
    message_ref BIGINT REFERENCES messages (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX events_ticket ON events (ticket_id, id);

-- The event log is append-only, enforced by the database itself.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

CREATE TABLE verification_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    round INTEGER NOT NULL,
    method TEXT NOT NULL,
    passed BOOLEAN NOT NULL,
    evidence TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX verification_checks_ticket ON verification_checks (ticket_id, round);

CREATE TABLE email_challenges (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    token_hash TEXT NOT NULL UNIQUE,
    round INTEGER NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

-- Mail waits here until the sender delivers it; written in the same transaction as the
-- decision that wants it sent.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket_id BIGINT REFERENCES tickets (id),
    template TEXT NOT NULL,
    recipient TEXT NOT NULL,
    recipient_normalized TEXT NOT NULL,
    params TEXT NOT NULL,
    automatic BOOLEAN NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'held', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    message_id TEXT,
    in_reply_to TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient_normalized, created_at);
CREATE INDEX outbox_ticket ON outbox (ticket_id);
