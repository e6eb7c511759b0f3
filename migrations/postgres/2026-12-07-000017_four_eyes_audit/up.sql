-- Four eyes and the hash-chained audit trail (docs/reference.md#four-eyes-and-the-audit-trail).

-- One row per event: its link in the ticket's chain. A side table, so the event rows and
-- their append-only triggers stay as they are. The hashes of events written before this
-- migration are computed by the desk itself right after it (the same code on both backends):
-- `db::audit::backfill`, run by every command that migrates.
CREATE TABLE event_hashes (
    event_id BIGINT PRIMARY KEY REFERENCES events (id),
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    -- The reference the ticket had when the event was written (part of what is hashed).
    ticket_ref TEXT NOT NULL,
    -- SHA-256 of a message's or note's text as first stored (NULL for other events).
    content_sha256 TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX event_hashes_ticket ON event_hashes (ticket_id, event_id);
CREATE FUNCTION event_hashes_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit chain is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER event_hashes_no_update BEFORE UPDATE OR DELETE ON event_hashes
FOR EACH ROW EXECUTE FUNCTION event_hashes_append_only();
CREATE TRIGGER event_hashes_no_truncate BEFORE TRUNCATE ON event_hashes
FOR EACH STATEMENT EXECUTE FUNCTION event_hashes_append_only();

-- Grants and reactivations waiting for a second agent (RECOVERYDESK_FOUR_EYES=on).
CREATE TABLE approvals (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    requested_by_id BIGINT NOT NULL REFERENCES agents (id),
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired')),
    decided_by TEXT,
    decided_at TIMESTAMP,
    reason TEXT
);
-- One pending request per action and ticket, whatever races.
CREATE UNIQUE INDEX approvals_one_pending ON approvals (ticket_id, action) WHERE status = 'pending';
CREATE INDEX approvals_status ON approvals (status, id);
