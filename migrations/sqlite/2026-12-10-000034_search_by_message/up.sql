-- The search index, one FTS5 row per message (docs/reference.md#search), where migration
-- 2026-12-07-000013_ticket_search kept one row per ticket. A ticket's rows have the rowids
-- ticket id × 2^20 + n: n = 0 holds the ticket's requester address and subject, n = 1, 2, …
-- each indexed message in order, with the requester and subject again, so that every word of
-- a search is found in one message or the ticket's own fields. Why: a row per ticket was
-- written again whole for every reply, its old words removed from the index with
-- secure-delete (a third of an import's time, docs/benchmarks.md); a reply now adds its own
-- row and nothing is deleted but what an erase takes away.
--
-- The same characters as before are indexed: each message's subject and first 32,768
-- characters of its body, until the ticket's text reaches 262,144 characters (its requester
-- and subject first, a space after each message); the message at the cut is cut there.
-- ticket_search_extent keeps, per ticket, how many message rows it has and how many of the
-- 262,144 characters are used, so that a reply is added without reading the thread.
-- src/db/search/index.rs writes the same rows (keep in step).
DROP TABLE ticket_search;
CREATE VIRTUAL TABLE ticket_search USING fts5(
    document,
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO ticket_search (ticket_search, rank) VALUES ('secure-delete', 1);

CREATE TABLE ticket_search_extent (
    ticket_id INTEGER PRIMARY KEY NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    -- message rows written (n of the last one)
    message_rows INTEGER NOT NULL CHECK (message_rows >= 0),
    -- characters of the 262,144 used
    indexed_chars INTEGER NOT NULL CHECK (indexed_chars BETWEEN 0 AND 262144)
);

-- Where each message's text starts: numbers only (a copy of every message's text would need as
-- much temporary space as the messages themselves).
CREATE TEMP TABLE search_parts AS
WITH lengths AS MATERIALIZED (
    SELECT m.ticket_id, m.id, length(m.subject || ' ' || substr(m.body, 1, 32768)) AS len
    FROM messages m
    WHERE m.sender_role <> 'system' AND m.redacted_at IS NULL
)
SELECT ticket_id, id,
       row_number() OVER w AS n,
       len,
       coalesce(sum(len + 1) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
FROM lengths
WINDOW w AS (PARTITION BY ticket_id ORDER BY id);
CREATE INDEX temp.search_parts_ticket ON search_parts (ticket_id, n);

-- Ticket ids up to 2^43 fit the rowid scheme (a bigger one is not indexed).
INSERT INTO ticket_search (rowid, document)
SELECT rowid, document FROM (
    SELECT t.id * 1048576 AS rowid, t.requester_normalized || ' ' || t.subject AS document
    FROM tickets t WHERE t.id < 8796093022208
    UNION ALL
    SELECT t.id * 1048576 + p.n,
           t.requester_normalized || ' ' || t.subject || ' '
               || substr(m.subject || ' ' || substr(m.body, 1, 32768), 1,
                         262144 - length(t.requester_normalized || ' ' || t.subject || ' ') - p.before)
    FROM search_parts p JOIN tickets t ON t.id = p.ticket_id JOIN messages m ON m.id = p.id
    WHERE t.id < 8796093022208
      AND length(t.requester_normalized || ' ' || t.subject || ' ') + p.before < 262144
)
ORDER BY rowid;

INSERT INTO ticket_search_extent (ticket_id, message_rows, indexed_chars)
SELECT t.id,
       coalesce(sum(CASE WHEN length(t.requester_normalized || ' ' || t.subject || ' ') + p.before < 262144
                         THEN 1 ELSE 0 END), 0),
       min(length(t.requester_normalized || ' ' || t.subject || ' ') + coalesce(sum(p.len + 1), 0), 262144)
FROM tickets t LEFT JOIN search_parts p ON p.ticket_id = t.id
WHERE t.id < 8796093022208
GROUP BY t.id;

DROP TABLE search_parts;
