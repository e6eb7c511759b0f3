-- A re-delivered quarantined message is found by its hash without scanning the table.
CREATE INDEX quarantine_content_hash ON quarantine (content_hash);
