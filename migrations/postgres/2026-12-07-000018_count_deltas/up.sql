-- Queue counts without hot rows (docs/architecture.md, "Queue counts"). The triggers no longer
-- update one `ticket_counts` row per (kind, state), which every new ticket and every state
-- change queued on and two opposite state changes deadlocked over: they append delta rows,
-- which no other transaction ever locks. The background worker folds the deltas into
-- `ticket_counts` every few seconds; the queue reads the totals plus the unfolded deltas,
-- in one statement, so its counts stay exact.
CREATE TABLE ticket_count_deltas (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    d BIGINT NOT NULL
);
CREATE OR REPLACE FUNCTION ticket_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO ticket_count_deltas (kind, state, d) VALUES (OLD.kind, OLD.state, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO ticket_count_deltas (kind, state, d) VALUES (NEW.kind, NEW.state, 1);
    END IF;
    RETURN NULL;
END $$;
