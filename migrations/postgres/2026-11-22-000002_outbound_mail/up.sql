-- Outbound mail is rendered when it is decided (the thread shows exactly what the customer
-- was told) and claimed by a sender with a lease, so a sender that dies mid-delivery does not
-- strand its mail.
ALTER TABLE outbox ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN body TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN auto_submitted TEXT;
ALTER TABLE outbox ADD COLUMN references_header TEXT;
ALTER TABLE outbox ADD COLUMN claimed_at TIMESTAMP;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
CREATE UNIQUE INDEX outbox_message_id ON outbox (message_id);
