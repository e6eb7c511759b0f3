DROP INDEX tickets_state_id;
DROP INDEX tickets_kind_id;
DROP TABLE ticket_search;
