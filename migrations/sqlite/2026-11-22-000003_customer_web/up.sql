-- Web form submissions: the rate limits (per client address and per email address) and the
-- "same request again within the hour attaches to its ticket" rule are read from here, so they
-- hold across every instance sharing the database.
CREATE TABLE form_submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    attached BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX form_submissions_client ON form_submissions (client_ip, created_at);
CREATE INDEX form_submissions_email ON form_submissions (email_normalized, created_at);
