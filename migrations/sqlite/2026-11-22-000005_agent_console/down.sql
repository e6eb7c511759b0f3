ALTER TABLE agents DROP COLUMN sessions_valid_after;
DROP INDEX tickets_kind_state_counts;
DROP INDEX tickets_open_queue;
DROP TABLE login_attempts;
