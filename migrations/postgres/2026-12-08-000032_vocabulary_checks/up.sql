-- The words of tickets and events are a closed vocabulary (src/domain/ticket.rs, src/domain/event.rs):
-- the desk refuses to load a row holding any other word, and from here on the database refuses
-- to store one. Keep these lists in step with the enums (a unit test in src/db/words.rs checks).
-- Adding a constraint checks the rows already there: a database holding an unknown word stops
-- the upgrade here, naming the constraint, rather than failing later on a page.
ALTER TABLE tickets ADD CONSTRAINT tickets_kind_known CHECK (kind IN (
    'forgot_username', 'ip_lockout', 'account_terminated', 'login_help', 'general'
));
ALTER TABLE tickets ADD CONSTRAINT tickets_state_known CHECK (state IN (
    'awaiting_agent', 'awaiting_customer', 'awaiting_allowlisted_attempts',
    'attempts_reported', 'verifying_ownership', 'ownership_verified', 'awaiting_payment',
    'payment_confirmed', 'resolved', 'refused'
));
ALTER TABLE tickets ADD CONSTRAINT tickets_channel_known CHECK (channel IN (
    'web', 'mail', 'api'
));
ALTER TABLE events ADD CONSTRAINT events_event_type_known CHECK (event_type IN (
    'created', 'message_in', 'message_out', 'note', 'transition', 'check', 'directory_change',
    'redaction', 'auto_reply_suppressed', 'duplicate', 'forged_sender', 'refusal', 'diagnosis',
    'approval_requested', 'approval_approved', 'approval_rejected', 'approval_expired', 'mail_released'
));
