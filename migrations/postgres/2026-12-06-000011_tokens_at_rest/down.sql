-- The old derived links cannot come back (their salts were wiped): tickets keep the hash of
-- their first status link only.
DROP TABLE api_requests;
UPDATE tickets SET status_token_hash = COALESCE(
    (SELECT s.token_hash FROM status_links s WHERE s.ticket_id = tickets.id ORDER BY s.id LIMIT 1),
    status_token_hash);
DROP TABLE status_links;
