-- The vocabulary triggers of 000032 compared a word with a list, `NOT IN ('a', 'b', ...)`:
-- SQLite builds a temporary B-tree of the list at every statement that fires one (a new event,
-- a new ticket, a change of state), about 6 µs each, more than the row's own insert
-- (docs/benchmarks.md, "Vocabulary checks without lists"). The same checks as a CASE compare the
-- word with each one in turn, on the statement's own registers. Same words, same messages.
-- A CASE takes a NULL for an unknown word; the columns are NOT NULL anyway.
DROP TRIGGER tickets_kind_known_insert;
CREATE TRIGGER tickets_kind_known_insert BEFORE INSERT ON tickets
WHEN CASE NEW.kind
    WHEN 'forgot_username' THEN 0
    WHEN 'ip_lockout' THEN 0
    WHEN 'account_terminated' THEN 0
    WHEN 'login_help' THEN 0
    WHEN 'general' THEN 0
    ELSE 1
END
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_kind_known (tickets.kind is not a known kind)');
END;
DROP TRIGGER tickets_kind_known_update;
CREATE TRIGGER tickets_kind_known_update BEFORE UPDATE OF kind ON tickets
WHEN CASE NEW.kind
    WHEN 'forgot_username' THEN 0
    WHEN 'ip_lockout' THEN 0
    WHEN 'account_terminated' THEN 0
    WHEN 'login_help' THEN 0
    WHEN 'general' THEN 0
    ELSE 1
END
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_kind_known (tickets.kind is not a known kind)');
END;
DROP TRIGGER tickets_state_known_insert;
CREATE TRIGGER tickets_state_known_insert BEFORE INSERT ON tickets
WHEN CASE NEW.state
    WHEN 'awaiting_agent' THEN 0
    WHEN 'awaiting_customer' THEN 0
    WHEN 'awaiting_allowlisted_attempts' THEN 0
    WHEN 'attempts_reported' THEN 0
    WHEN 'verifying_ownership' THEN 0
    WHEN 'ownership_verified' THEN 0
    WHEN 'awaiting_payment' THEN 0
    WHEN 'payment_confirmed' THEN 0
    WHEN 'resolved' THEN 0
    WHEN 'refused' THEN 0
    ELSE 1
END
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_state_known (tickets.state is not a known state)');
END;
DROP TRIGGER tickets_state_known_update;
CREATE TRIGGER tickets_state_known_update BEFORE UPDATE OF state ON tickets
WHEN CASE NEW.state
    WHEN 'awaiting_agent' THEN 0
    WHEN 'awaiting_customer' THEN 0
    WHEN 'awaiting_allowlisted_attempts' THEN 0
    WHEN 'attempts_reported' THEN 0
    WHEN 'verifying_ownership' THEN 0
    WHEN 'ownership_verified' THEN 0
    WHEN 'awaiting_payment' THEN 0
    WHEN 'payment_confirmed' THEN 0
    WHEN 'resolved' THEN 0
    WHEN 'refused' THEN 0
    ELSE 1
END
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_state_known (tickets.state is not a known state)');
END;
DROP TRIGGER tickets_channel_known_insert;
CREATE TRIGGER tickets_channel_known_insert BEFORE INSERT ON tickets
WHEN CASE NEW.channel
    WHEN 'web' THEN 0
    WHEN 'mail' THEN 0
    WHEN 'api' THEN 0
    ELSE 1
END
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_channel_known (tickets.channel is not a known channel)');
END;
DROP TRIGGER tickets_channel_known_update;
CREATE TRIGGER tickets_channel_known_update BEFORE UPDATE OF channel ON tickets
WHEN CASE NEW.channel
    WHEN 'web' THEN 0
    WHEN 'mail' THEN 0
    WHEN 'api' THEN 0
    ELSE 1
END
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_channel_known (tickets.channel is not a known channel)');
END;
DROP TRIGGER events_event_type_known_insert;
CREATE TRIGGER events_event_type_known_insert BEFORE INSERT ON events
WHEN CASE NEW.event_type
    WHEN 'created' THEN 0
    WHEN 'message_in' THEN 0
    WHEN 'message_out' THEN 0
    WHEN 'note' THEN 0
    WHEN 'transition' THEN 0
    WHEN 'check' THEN 0
    WHEN 'directory_change' THEN 0
    WHEN 'redaction' THEN 0
    WHEN 'auto_reply_suppressed' THEN 0
    WHEN 'duplicate' THEN 0
    WHEN 'forged_sender' THEN 0
    WHEN 'refusal' THEN 0
    WHEN 'diagnosis' THEN 0
    WHEN 'approval_requested' THEN 0
    WHEN 'approval_approved' THEN 0
    WHEN 'approval_rejected' THEN 0
    WHEN 'approval_expired' THEN 0
    WHEN 'mail_released' THEN 0
    ELSE 1
END
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: events_event_type_known (events.event_type is not a known event type)');
END;
