-- The provider's authentication logs (SMTP relay and API gateway), kept for
-- RECOVERYDESK_AUTH_LOG_RETENTION_DAYS so that a failed login can be diagnosed (docs/reference.md).
-- Nothing secret is stored: a log line with a password, key or secret field is refused.
-- The unique index answers "this username on this channel around this time" and makes a
-- re-imported (overlapping) log count each event once. The hourly purge scans by `at`
-- without an index of its own: a second index on `at` halved the import rate, and a scan of
-- a million rows takes a fraction of a second once an hour.
-- Usernames compare byte for byte: the "C" collation also keeps the index cheap to build.
CREATE TABLE auth_events (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    channel TEXT NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    account_id TEXT,
    client_ip TEXT COLLATE "C" NOT NULL,
    mechanism TEXT COLLATE "C" NOT NULL,
    tls BOOLEAN NOT NULL,
    result TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX auth_events_lookup ON auth_events (username, channel, at, result, client_ip, mechanism, tls);
