-- The queue at scale. Every partial index below has exactly the WHERE that
-- db::console::OPEN_PREDICATE writes (SQLite uses a partial index only for a query whose WHERE
-- contains the index's WHERE term as written).
-- The open queue carries the searched columns, so a search (`q`, a LIKE '%…%') is checked on the
-- index entries and only matches are read from the table.
DROP INDEX tickets_open_queue;
CREATE INDEX tickets_open_queue ON tickets (waiting_since, id, requester_normalized, subject)
    WHERE state NOT IN ('resolved', 'refused');
CREATE INDEX tickets_open_kind_queue ON tickets (kind, waiting_since, id)
    WHERE state NOT IN ('resolved', 'refused');
CREATE INDEX tickets_open_assignee_queue ON tickets (assignee_id, waiting_since, id)
    WHERE state NOT IN ('resolved', 'refused');

-- Tickets per (kind, state), kept exact by triggers, for the queue's counts.
CREATE TABLE ticket_counts (
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (kind, state)
);
INSERT INTO ticket_counts (kind, state, n) SELECT kind, state, COUNT(*) FROM tickets GROUP BY kind, state;
CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets
BEGIN
    INSERT INTO ticket_counts (kind, state, n) VALUES (NEW.kind, NEW.state, 1)
        ON CONFLICT (kind, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER ticket_counts_update AFTER UPDATE OF kind, state ON tickets
WHEN OLD.kind IS NOT NEW.kind OR OLD.state IS NOT NEW.state
BEGIN
    UPDATE ticket_counts SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
    INSERT INTO ticket_counts (kind, state, n) VALUES (NEW.kind, NEW.state, 1)
        ON CONFLICT (kind, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets
BEGIN
    UPDATE ticket_counts SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
END;
DROP INDEX tickets_kind_state_counts;
