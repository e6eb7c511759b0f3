ALTER TABLE ticket_search DROP COLUMN indexed_chars;
