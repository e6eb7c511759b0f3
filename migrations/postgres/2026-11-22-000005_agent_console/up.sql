-- Sign-in attempts, for throttling guessing (kept in the database so the limits hold across
-- instances), and the index the queue reads: open tickets, oldest waiting first.
CREATE TABLE login_attempts (
    id BIGSERIAL PRIMARY KEY,
    email_normalized TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX login_attempts_client ON login_attempts (client_ip, created_at);
CREATE INDEX login_attempts_email ON login_attempts (email_normalized, client_ip, created_at);

CREATE INDEX tickets_open_queue ON tickets (waiting_since, id) WHERE state NOT IN ('resolved', 'refused');
CREATE INDEX tickets_kind_state_counts ON tickets (state, kind);
ALTER TABLE agents ADD COLUMN sessions_valid_after TIMESTAMP;
