-- Each search document's words are now made by the desk (src/domain/search.rs,
-- `document_words`: runs of letters and digits, lowercased, each once) and handed to
-- PostgreSQL (`array_to_tsvector`), instead of PostgreSQL's parser reading the text: that
-- parser read 7 MB/s, half a millisecond of the database's time per message
-- (docs/benchmarks.md). Searches compare the desk's words as they are, so every stored
-- document must be made again with the same rule. SQL cannot: its `[[:alnum:]]` and `lower()`
-- follow the database's locale (in a C database no letter outside ASCII is one). The desk does
-- it right after the migrations (src/db/search/words_rebuild.rs); forgetting that it was done
-- makes it run.
DELETE FROM settings WHERE key IN ('search_words_rebuilt', 'search_words_cursor');
