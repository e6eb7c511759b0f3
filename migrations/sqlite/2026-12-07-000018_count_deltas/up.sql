-- Queue counts as on PostgreSQL (see the PostgreSQL migration of the same name): the triggers
-- append delta rows, the background worker folds them into ticket_counts, the queue reads
-- totals plus unfolded deltas. SQLite has one writer at a time, so it never had hot rows; the
-- same design keeps one query and one fold for both backends.
CREATE TABLE ticket_count_deltas (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    d BIGINT NOT NULL
);
DROP TRIGGER ticket_counts_insert;
DROP TRIGGER ticket_counts_update;
DROP TRIGGER ticket_counts_delete;
CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets
BEGIN
    INSERT INTO ticket_count_deltas (kind, state, d) VALUES (NEW.kind, NEW.state, 1);
END;
CREATE TRIGGER ticket_counts_update AFTER UPDATE OF kind, state ON tickets
WHEN OLD.kind IS NOT NEW.kind OR OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO ticket_count_deltas (kind, state, d) VALUES (OLD.kind, OLD.state, -1);
    INSERT INTO ticket_count_deltas (kind, state, d) VALUES (NEW.kind, NEW.state, 1);
END;
CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets
BEGIN
    INSERT INTO ticket_count_deltas (kind, state, d) VALUES (OLD.kind, OLD.state, -1);
END;
