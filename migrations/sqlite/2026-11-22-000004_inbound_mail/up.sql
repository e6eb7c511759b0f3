-- Inbound mail: every message received is recorded once (duplicates are recognised by
-- Message-ID and content hash), its raw copy is kept (redacted) beside its message, its
-- attachments apart, and what could not be processed waits in quarantine.
CREATE TABLE inbound_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    message_id TEXT,
    content_hash TEXT NOT NULL,
    ticket_id BIGINT REFERENCES tickets (id),
    message_ref BIGINT REFERENCES messages (id),
    outcome TEXT NOT NULL,
    channel TEXT NOT NULL,
    size BIGINT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX inbound_messages_message_id ON inbound_messages (message_id);
CREATE INDEX inbound_messages_content_hash ON inbound_messages (content_hash);

CREATE TABLE raw_messages (
    message_ref BIGINT PRIMARY KEY NOT NULL REFERENCES messages (id),
    raw BLOB NOT NULL
);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    message_ref BIGINT NOT NULL REFERENCES messages (id),
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    data BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_ref);

CREATE TABLE quarantine (
    id TEXT PRIMARY KEY NOT NULL,
    reason TEXT NOT NULL,
    from_address TEXT,
    subject TEXT,
    size BIGINT NOT NULL,
    raw BLOB NOT NULL,
    channel TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    released_ticket_id BIGINT REFERENCES tickets (id),
    released_at TIMESTAMP
);
CREATE INDEX quarantine_received ON quarantine (received_at, id);

ALTER TABLE outbox ADD COLUMN bounced_at TIMESTAMP;
ALTER TABLE outbox ADD COLUMN bounce_reason TEXT;
