ALTER TABLE outbox DROP COLUMN bounce_reason;
ALTER TABLE outbox DROP COLUMN bounced_at;
DROP TABLE quarantine;
DROP TABLE attachments;
DROP TABLE raw_messages;
DROP TABLE inbound_messages;
