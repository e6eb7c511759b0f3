-- Back to one row per ticket, as migration 2026-12-07-000013_ticket_search built it.
DROP TABLE ticket_search_extent;
DROP TABLE ticket_search;
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
