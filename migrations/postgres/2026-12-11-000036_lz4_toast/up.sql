-- The large columns of received mail are compressed with LZ4 instead of PostgreSQL's own
-- pglz: pglz took 7 % of the database's time in an ingestion of generated support mail, for
-- a ratio that LZ4 comes close to at a fraction of the time (docs/benchmarks.md). Only
-- values written from now on change; a PostgreSQL built without LZ4, or older than 14 (which
-- has no SET COMPRESSION), keeps pglz (a notice, not a failure). EXECUTE, so that the
-- statements are read only when they run and their errors can be caught.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE raw_messages ALTER COLUMN raw SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE messages ALTER COLUMN body SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE messages ALTER COLUMN body_html SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE attachments ALTER COLUMN data SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'this PostgreSQL has no LZ4 compression: received mail stays compressed with pglz';
END
$$;
