-- Where the next message's text would start in each ticket's search document (its length,
-- and the space before the next message; at most 262,144: docs/reference.md#search). A new
-- message's words are added to the stored document (src/db/search/index.rs) instead of the
-- whole thread being read and tokenised again; this says how much of the 262,144 characters
-- is left for them. Backfilled from what is stored, as the document itself was.
ALTER TABLE ticket_search ADD COLUMN indexed_chars INTEGER NOT NULL DEFAULT 0
    CHECK (indexed_chars BETWEEN 0 AND 262144);
UPDATE ticket_search s SET indexed_chars = (
    SELECT least(length(d.head) + coalesce(length(d.thread) + 1, 0), 262144)
    FROM (SELECT t.requester_normalized || ' ' || t.subject || ' ' AS head, (
            SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id)
            FROM messages m
            WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL
        ) AS thread FROM tickets t WHERE t.id = s.ticket_id) d
);
