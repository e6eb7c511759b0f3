-- The documents as PostgreSQL's parser made them (migration 2026-12-07-000013_ticket_search).
UPDATE ticket_search s SET document = (
    SELECT strip(to_tsvector('simple',
        regexp_replace(left(d.head || coalesce(d.thread, ''), 262144), '[^[:alnum:]]+', ' ', 'g')))
    FROM (SELECT t.requester_normalized || ' ' || t.subject || ' ' AS head, (
            SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id)
            FROM messages m
            WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL
        ) AS thread FROM tickets t WHERE t.id = s.ticket_id) d
);
DELETE FROM settings WHERE key IN ('search_words_rebuilt', 'search_words_cursor');
