-- Sign-out and password changes end sessions by bumping a generation number that every
-- session cookie carries and that is compared exactly (a timestamp compared in whole seconds
-- let a cookie issued in the same second survive a sign-out).
ALTER TABLE agents ADD COLUMN session_generation BIGINT NOT NULL DEFAULT 0;
-- The first admin's one-time password: replaced at the first sign-in, and void after 24 h
-- unused.
ALTER TABLE agents ADD COLUMN password_must_change BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN password_expires_at TIMESTAMP;
-- API tokens are named and may expire; `revoked_at` and `last_used_at` exist already.
ALTER TABLE api_tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMP;
CREATE INDEX api_tokens_agent ON api_tokens (agent_id);
-- `/metrics` leaves tickets of the last minute out of its per-state counts.
CREATE INDEX tickets_created ON tickets (created_at);
