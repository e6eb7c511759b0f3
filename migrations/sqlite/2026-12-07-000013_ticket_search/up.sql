-- Full-text search of tickets (docs/reference.md#search): one FTS5 row per ticket, its rowid
-- the ticket's id, holding the ticket's search document: the requester's address, the
-- subject, and the subjects and bodies of its messages and notes (already scrubbed: the
-- index holds no secret), not the desk's automatic mail, not erased messages; each message
-- at most 32,768 characters, the whole at most 262,144. src/db/search.rs writes the same
-- document (SEARCH_DOCUMENT) in the transaction that adds a message or erases one.
-- The document is kept (ticket_search_content) so that replacing it knows the old words:
-- with secure-delete they leave the index's pages at once (a contentless table only marks
-- them deleted, and an erased message's words would stay in the file until a merge).
CREATE VIRTUAL TABLE ticket_search USING fts5(
    document,
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO ticket_search (ticket_search, rank) VALUES ('secure-delete', 1);
INSERT INTO ticket_search (rowid, document)
SELECT t.id, substr(t.requester_normalized || ' ' || t.subject || ' ' || coalesce((
        SELECT group_concat(m.subject || ' ' || substr(m.body, 1, 32768), ' ' ORDER BY m.id)
        FROM messages m
        WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL
    ), ''), 1, 262144)
FROM tickets t;

-- The API's list filtered by kind or by state, newest first, without sorting every match
-- (kind and state together use tickets_kind_state (kind, state, id)).
CREATE INDEX tickets_kind_id ON tickets (kind, id);
CREATE INDEX tickets_state_id ON tickets (state, id);
