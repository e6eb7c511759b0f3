INSERT INTO ticket_counts (kind, state, n)
    SELECT kind, state, SUM(d) FROM ticket_count_deltas WHERE true GROUP BY kind, state
    ON CONFLICT (kind, state) DO UPDATE SET n = n + excluded.n;
DROP TRIGGER ticket_counts_insert;
DROP TRIGGER ticket_counts_update;
DROP TRIGGER ticket_counts_delete;
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
DROP TABLE ticket_count_deltas;
