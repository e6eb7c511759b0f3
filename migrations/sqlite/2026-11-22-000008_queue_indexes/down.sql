CREATE INDEX tickets_kind_state_counts ON tickets (state, kind);
DROP TRIGGER ticket_counts_delete;
DROP TRIGGER ticket_counts_update;
DROP TRIGGER ticket_counts_insert;
DROP TABLE ticket_counts;
DROP INDEX tickets_open_assignee_queue;
DROP INDEX tickets_open_kind_queue;
DROP INDEX tickets_open_queue;
CREATE INDEX tickets_open_queue ON tickets (waiting_since, id) WHERE state NOT IN ('resolved', 'refused');
