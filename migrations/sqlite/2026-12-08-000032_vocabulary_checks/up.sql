-- The words of tickets and events are a closed vocabulary (src/domain/ticket.rs, src/domain/event.rs):
-- the desk refuses to load a row holding any other word, and from here on the database refuses
-- to store one. Keep these lists in step with the enums (a unit test in src/db/words.rs checks).
-- SQLite cannot add a CHECK to a table that exists, and rebuilding `tickets` would mean
-- recreating every table, index and trigger that names it: triggers make the same check.
CREATE TRIGGER tickets_kind_known_insert BEFORE INSERT ON tickets
WHEN NEW.kind NOT IN (
    'forgot_username', 'ip_lockout', 'account_terminated', 'login_help', 'general'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_kind_known (tickets.kind is not a known kind)');
END;
CREATE TRIGGER tickets_kind_known_update BEFORE UPDATE OF kind ON tickets
WHEN NEW.kind NOT IN (
    'forgot_username', 'ip_lockout', 'account_terminated', 'login_help', 'general'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_kind_known (tickets.kind is not a known kind)');
END;
CREATE TRIGGER tickets_state_known_insert BEFORE INSERT ON tickets
WHEN NEW.state NOT IN (
    'awaiting_agent', 'awaiting_customer', 'awaiting_allowlisted_attempts',
    'attempts_reported', 'verifying_ownership', 'ownership_verified', 'awaiting_payment',
    'payment_confirmed', 'resolved', 'refused'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_state_known (tickets.state is not a known state)');
END;
CREATE TRIGGER tickets_state_known_update BEFORE UPDATE OF state ON tickets
WHEN NEW.state NOT IN (
    'awaiting_agent', 'awaiting_customer', 'awaiting_allowlisted_attempts',
    'attempts_reported', 'verifying_ownership', 'ownership_verified', 'awaiting_payment',
    'payment_confirmed', 'resolved', 'refused'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_state_known (tickets.state is not a known state)');
END;
CREATE TRIGGER tickets_channel_known_insert BEFORE INSERT ON tickets
WHEN NEW.channel NOT IN (
    'web', 'mail', 'api'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_channel_known (tickets.channel is not a known channel)');
END;
CREATE TRIGGER tickets_channel_known_update BEFORE UPDATE OF channel ON tickets
WHEN NEW.channel NOT IN (
    'web', 'mail', 'api'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_channel_known (tickets.channel is not a known channel)');
END;
CREATE TRIGGER events_event_type_known_insert BEFORE INSERT ON events
WHEN NEW.event_type NOT IN (
    'created', 'message_in', 'message_out', 'note', 'transition', 'check', 'directory_change',
    'redaction', 'auto_reply_suppressed', 'duplicate', 'forged_sender', 'refusal', 'diagnosis',
    'approval_requested', 'approval_approved', 'approval_rejected', 'approval_expired', 'mail_released'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: events_event_type_known (events.event_type is not a known event type)');
END;
-- Triggers see only what is written from now on: the words already stored are checked once
-- here, through a table whose CHECK carries the same name, so a database holding an unknown
-- word stops the upgrade naming it, as on PostgreSQL.
CREATE TEMP TABLE tickets_kind_known (word TEXT NOT NULL CONSTRAINT tickets_kind_known CHECK (word IN (
    'forgot_username', 'ip_lockout', 'account_terminated', 'login_help', 'general'
)));
INSERT INTO tickets_kind_known SELECT DISTINCT kind FROM tickets;
DROP TABLE temp.tickets_kind_known;
CREATE TEMP TABLE tickets_state_known (word TEXT NOT NULL CONSTRAINT tickets_state_known CHECK (word IN (
    'awaiting_agent', 'awaiting_customer', 'awaiting_allowlisted_attempts',
    'attempts_reported', 'verifying_ownership', 'ownership_verified', 'awaiting_payment',
    'payment_confirmed', 'resolved', 'refused'
)));
INSERT INTO tickets_state_known SELECT DISTINCT state FROM tickets;
DROP TABLE temp.tickets_state_known;
CREATE TEMP TABLE tickets_channel_known (word TEXT NOT NULL CONSTRAINT tickets_channel_known CHECK (word IN (
    'web', 'mail', 'api'
)));
INSERT INTO tickets_channel_known SELECT DISTINCT channel FROM tickets;
DROP TABLE temp.tickets_channel_known;
CREATE TEMP TABLE events_event_type_known (word TEXT NOT NULL CONSTRAINT events_event_type_known CHECK (word IN (
    'created', 'message_in', 'message_out', 'note', 'transition', 'check', 'directory_change',
    'redaction', 'auto_reply_suppressed', 'duplicate', 'forged_sender', 'refusal', 'diagnosis',
    'approval_requested', 'approval_approved', 'approval_rejected', 'approval_expired', 'mail_released'
)));
INSERT INTO events_event_type_known SELECT DISTINCT event_type FROM events;
DROP TABLE temp.events_event_type_known;
