-- Who acts next (docs/reference.md#who-acts-next): one row per ticket, kept beside the ticket so
-- that the ticket's own row and its compare-and-set stay as they are.
CREATE TABLE ticket_activity (
    ticket_id BIGINT PRIMARY KEY NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    waiting_on TEXT NOT NULL,
    last_activity_at TIMESTAMP NOT NULL,
    customer_activity_at TIMESTAMP,
    assignee_seen_at TIMESTAMP
);
INSERT INTO ticket_activity (ticket_id, waiting_on, last_activity_at)
SELECT id,
       CASE WHEN state IN ('resolved', 'refused') THEN 'none'
            WHEN state IN ('awaiting_customer', 'awaiting_allowlisted_attempts', 'awaiting_payment') THEN 'customer'
            ELSE 'agent' END,
       updated_at
FROM tickets;
CREATE INDEX ticket_activity_waiting_on ON ticket_activity (waiting_on, ticket_id);
CREATE INDEX ticket_activity_last ON ticket_activity (last_activity_at);

-- Canned answers, managed by admins (docs/reference.md#agent-console).
CREATE TABLE canned_answers (
    id BIGSERIAL PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    account_dependent BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
