-- Back to the trigger-kept counter rows, with the unfolded deltas folded in first.
LOCK TABLE ticket_count_deltas IN EXCLUSIVE MODE;
INSERT INTO ticket_counts (kind, state, n)
    SELECT kind, state, SUM(d)::BIGINT FROM ticket_count_deltas GROUP BY kind, state
    ON CONFLICT (kind, state) DO UPDATE SET n = ticket_counts.n + EXCLUDED.n;
CREATE OR REPLACE FUNCTION ticket_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE ticket_counts SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO ticket_counts (kind, state, n) VALUES (NEW.kind, NEW.state, 1)
            ON CONFLICT (kind, state) DO UPDATE SET n = ticket_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
DROP TABLE ticket_count_deltas;
