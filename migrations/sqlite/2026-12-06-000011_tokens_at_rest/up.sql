-- Status and challenge tokens are never at rest in plain: a token is made by the mail sender
-- when the mail that carries it goes out, and only its SHA-256 is kept. A ticket has one
-- status link per mail that carried one.
CREATE TABLE status_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX status_links_ticket ON status_links (ticket_id);

-- Links already mailed keep working: their hashes move here. The salt they were derived from
-- is wiped, so nobody (not even with the secret key kept in this database) derives them again.
INSERT INTO status_links (ticket_id, token_hash, created_at)
    SELECT id, status_token_hash, created_at FROM tickets;
UPDATE tickets SET status_token_salt = '', status_token_hash = 'moved:' || id;

-- Outbox rows kept the live links in `params` (and unsent ones in `body`): they now hold a
-- marker that the sender fills with a fresh link at send time.
UPDATE outbox
SET body = replace(body, json_extract(params, '$.status_url'), '[[recoverydesk:status-link]]'),
    params = json_set(json_remove(params, '$.status_url'), '$.status_link', json('true'))
WHERE json_valid(params) AND json_type(params, '$.status_url') = 'text';
UPDATE outbox
SET body = replace(body, json_extract(params, '$.verify_url'), '[[recoverydesk:challenge-link]]'),
    params = json_set(json_remove(params, '$.verify_url'), '$.challenge_id',
        (SELECT max(c.id) FROM email_challenges c WHERE c.ticket_id = outbox.ticket_id))
WHERE json_valid(params) AND json_type(params, '$.verify_url') = 'text';

-- The API rate limit: one row per request of the last minute, per token (by its hash).
CREATE TABLE api_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX api_requests_token ON api_requests (token_hash, created_at);
CREATE INDEX api_requests_created ON api_requests (created_at);
