-- One IMAP poller at a time across instances (docs/reference.md#imap): the instance holding
-- an unexpired lease fetches; the others wait. The row also keeps what `/healthz` reports
-- about the mailbox (the last error, the last good round) and the UIDVALIDITY last seen.
CREATE TABLE imap_leases (
    mailbox TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    uid_validity BIGINT,
    last_ok_at TIMESTAMP,
    last_error TEXT,
    last_error_at TIMESTAMP
);
