DROP TABLE approvals;
DROP TABLE event_hashes;
