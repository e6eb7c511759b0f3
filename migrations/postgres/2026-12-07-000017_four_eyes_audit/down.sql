DROP TABLE approvals;
DROP TABLE event_hashes;
DROP FUNCTION event_hashes_append_only();
