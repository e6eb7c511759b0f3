DROP INDEX quarantine_content_hash;
