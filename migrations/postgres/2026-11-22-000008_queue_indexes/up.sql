-- See the SQLite migration of the same name.
DROP INDEX tickets_open_queue;
CREATE INDEX tickets_open_queue ON tickets (waiting_since, id, requester_normalized, subject)
    WHERE state NOT IN ('resolved', 'refused');
CREATE INDEX tickets_open_kind_queue ON tickets (kind, waiting_since, id)
    WHERE state NOT IN ('resolved', 'refused');
CREATE INDEX tickets_open_assignee_queue ON tickets (assignee_id, waiting_since, id)
    WHERE state NOT IN ('resolved', 'refused');

CREATE TABLE ticket_counts (
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (kind, state)
);
INSERT INTO ticket_counts (kind, state, n) SELECT kind, state, COUNT(*) FROM tickets GROUP BY kind, state;
CREATE FUNCTION ticket_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER ticket_counts_insert_delete AFTER INSERT OR DELETE ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_counts_track();
CREATE TRIGGER ticket_counts_update AFTER UPDATE OF kind, state ON tickets
    FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind OR OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION ticket_counts_track();
DROP INDEX tickets_kind_state_counts;
