-- The triggers of 000032 as they were.
DROP TRIGGER tickets_kind_known_insert;
CREATE TRIGGER tickets_kind_known_insert BEFORE INSERT ON tickets
WHEN NEW.kind NOT IN (
    'forgot_username', 'ip_lockout', 'account_terminated', 'login_help', 'general'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_kind_known (tickets.kind is not a known kind)');
END;
DROP TRIGGER tickets_kind_known_update;
CREATE TRIGGER tickets_kind_known_update BEFORE UPDATE OF kind ON tickets
WHEN NEW.kind NOT IN (
    'forgot_username', 'ip_lockout', 'account_terminated', 'login_help', 'general'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_kind_known (tickets.kind is not a known kind)');
END;
DROP TRIGGER tickets_state_known_insert;
CREATE TRIGGER tickets_state_known_insert BEFORE INSERT ON tickets
WHEN NEW.state NOT IN (
    'awaiting_agent', 'awaiting_customer', 'awaiting_allowlisted_attempts',
    'attempts_reported', 'verifying_ownership', 'ownership_verified', 'awaiting_payment',
    'payment_confirmed', 'resolved', 'refused'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_state_known (tickets.state is not a known state)');
END;
DROP TRIGGER tickets_state_known_update;
CREATE TRIGGER tickets_state_known_update BEFORE UPDATE OF state ON tickets
WHEN NEW.state NOT IN (
    'awaiting_agent', 'awaiting_customer', 'awaiting_allowlisted_attempts',
    'attempts_reported', 'verifying_ownership', 'ownership_verified', 'awaiting_payment',
    'payment_confirmed', 'resolved', 'refused'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_state_known (tickets.state is not a known state)');
END;
DROP TRIGGER tickets_channel_known_insert;
CREATE TRIGGER tickets_channel_known_insert BEFORE INSERT ON tickets
WHEN NEW.channel NOT IN (
    'web', 'mail', 'api'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_channel_known (tickets.channel is not a known channel)');
END;
DROP TRIGGER tickets_channel_known_update;
CREATE TRIGGER tickets_channel_known_update BEFORE UPDATE OF channel ON tickets
WHEN NEW.channel NOT IN (
    'web', 'mail', 'api'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: tickets_channel_known (tickets.channel is not a known channel)');
END;
DROP TRIGGER events_event_type_known_insert;
CREATE TRIGGER events_event_type_known_insert BEFORE INSERT ON events
WHEN NEW.event_type NOT IN (
    'created', 'message_in', 'message_out', 'note', 'transition', 'check', 'directory_change',
    'redaction', 'auto_reply_suppressed', 'duplicate', 'forged_sender', 'refusal', 'diagnosis',
    'approval_requested', 'approval_approved', 'approval_rejected', 'approval_expired', 'mail_released'
)
BEGIN
    SELECT RAISE(ABORT, 'CHECK constraint failed: events_event_type_known (events.event_type is not a known event type)');
END;
