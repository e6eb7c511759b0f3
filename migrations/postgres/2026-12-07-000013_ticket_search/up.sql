-- See the SQLite migration of the same name. Here the document is a tsvector of the same
-- text with everything but letters and digits turned into spaces (the words FTS5's
-- unicode61 tokenizer reads), in the 'simple' configuration (no stemming, no stop words),
-- without positions. src/db/search.rs writes the same document (SEARCH_DOCUMENT).
CREATE TABLE ticket_search (
    ticket_id BIGINT PRIMARY KEY NOT NULL REFERENCES tickets (id),
    document TSVECTOR NOT NULL
);
INSERT INTO ticket_search (ticket_id, document)
SELECT t.id, strip(to_tsvector('simple', regexp_replace(left(t.requester_normalized || ' ' || t.subject || ' ' || coalesce((
        SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id)
        FROM messages m
        WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL
    ), ''), 262144), '[^[:alnum:]]+', ' ', 'g')))
FROM tickets t;
CREATE INDEX ticket_search_document ON ticket_search USING GIN (document);

CREATE INDEX tickets_kind_id ON tickets (kind, id);
CREATE INDEX tickets_state_id ON tickets (state, id);
