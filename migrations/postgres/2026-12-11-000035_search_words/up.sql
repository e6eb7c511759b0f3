-- Each search document's words as the desk now makes them itself (src/domain/search.rs,
-- `document_words`): runs of letters and digits, lowercased, each once, a word longer than a
-- lexeme's 2,047 bytes left out. The desk hands PostgreSQL the words (`array_to_tsvector`)
-- instead of having its parser read the text: that parser read 7 MB/s, half a millisecond of
-- the database's time per message (docs/benchmarks.md). Searches compare their words with
-- the stored ones as they are, so the documents written before are made again with the same
-- rule here. The text is the one indexed before (docs/reference.md#search); keep in step with
-- src/db/search/index.rs.
UPDATE ticket_search s SET document = (
    SELECT array_to_tsvector(ARRAY(
        SELECT DISTINCT w FROM (
            SELECT lower(piece) AS w
            FROM regexp_split_to_table(left(d.head || coalesce(d.thread, ''), 262144), '[^[:alnum:]]+') AS piece
        ) words
        WHERE w <> '' AND octet_length(w) <= 2047
    ))
    FROM (SELECT t.requester_normalized || ' ' || t.subject || ' ' AS head, (
            SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id)
            FROM messages m
            WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL
        ) AS thread FROM tickets t WHERE t.id = s.ticket_id) d
);
