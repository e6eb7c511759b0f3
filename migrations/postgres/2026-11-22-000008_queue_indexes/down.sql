CREATE INDEX tickets_kind_state_counts ON tickets (state, kind);
DROP TRIGGER ticket_counts_update ON tickets;
DROP TRIGGER ticket_counts_insert_delete ON tickets;
DROP FUNCTION ticket_counts_track();
DROP TABLE ticket_counts;
DROP INDEX tickets_open_assignee_queue;
DROP INDEX tickets_open_kind_queue;
DROP INDEX tickets_open_queue;
CREATE INDEX tickets_open_queue ON tickets (waiting_since, id) WHERE state NOT IN ('resolved', 'refused');
