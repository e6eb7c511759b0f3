DROP INDEX outbox_message_id;
ALTER TABLE outbox DROP COLUMN claimed_by;
ALTER TABLE outbox DROP COLUMN claimed_at;
ALTER TABLE outbox DROP COLUMN references_header;
ALTER TABLE outbox DROP COLUMN auto_submitted;
ALTER TABLE outbox DROP COLUMN body;
ALTER TABLE outbox DROP COLUMN subject;
