DROP INDEX tickets_created;
DROP INDEX api_tokens_agent;
ALTER TABLE api_tokens DROP COLUMN expires_at;
ALTER TABLE api_tokens DROP COLUMN name;
ALTER TABLE agents DROP COLUMN password_expires_at;
ALTER TABLE agents DROP COLUMN password_must_change;
ALTER TABLE agents DROP COLUMN session_generation;
