//! Diesel table definitions, written by hand to the portable subset MultiConnection supports
//! (Text, BigInt, Integer, Bool, Timestamp). Keep in step with both migration folders.

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        username -> Text,
        email -> Text,
        email_normalized -> Text,
        status -> Text,
        parent_id -> Nullable<Text>,
        banned_via_parent -> Bool,
        ip_access_enabled -> Bool,
        balance_due_cents -> BigInt,
        terminated_at -> Nullable<Timestamp>,
        banned_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    account_allowlist (account_id, entry) {
        account_id -> Text,
        entry -> Text,
        source -> Text,
        added_at -> Timestamp,
    }
}

diesel::table! {
    account_dedicated_ips (account_id, ip) {
        account_id -> Text,
        ip -> Text,
    }
}

diesel::table! {
    agents (id) {
        id -> BigInt,
        email -> Text,
        email_normalized -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        active -> Bool,
        created_at -> Timestamp,
        deactivated_at -> Nullable<Timestamp>,
        sessions_valid_after -> Nullable<Timestamp>,
        session_generation -> BigInt,
        password_must_change -> Bool,
        password_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        agent_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        name -> Text,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    tickets (id) {
        id -> BigInt,
        kind -> Text,
        state -> Text,
        state_reason -> Nullable<Text>,
        subject -> Text,
        requester -> Text,
        requester_normalized -> Text,
        account_id -> Nullable<Text>,
        assignee_id -> Nullable<BigInt>,
        status_token_hash -> Text,
        status_token_salt -> Text,
        channel -> Text,
        verification_round -> Integer,
        attempts_on_record -> Bool,
        flagged -> Bool,
        auto_generated -> Bool,
        version -> BigInt,
        waiting_since -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        direction -> Text,
        sender_role -> Text,
        from_address -> Nullable<Text>,
        to_address -> Nullable<Text>,
        subject -> Text,
        body -> Text,
        body_html -> Nullable<Text>,
        message_id -> Nullable<Text>,
        content_hash -> Nullable<Text>,
        auto_generated -> Bool,
        redacted_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        event_type -> Text,
        actor -> Text,
        data -> Text,
        message_ref -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    verification_checks (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        round -> Integer,
        method -> Text,
        passed -> Bool,
        evidence -> Text,
        actor -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    email_challenges (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        account_id -> Text,
        token_hash -> Text,
        round -> Integer,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        ticket_id -> Nullable<BigInt>,
        template -> Text,
        recipient -> Text,
        recipient_normalized -> Text,
        params -> Text,
        automatic -> Bool,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        message_id -> Nullable<Text>,
        in_reply_to -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        subject -> Text,
        body -> Text,
        auto_submitted -> Nullable<Text>,
        references_header -> Nullable<Text>,
        claimed_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
        bounced_at -> Nullable<Timestamp>,
        bounce_reason -> Nullable<Text>,
    }
}

diesel::joinable!(account_allowlist -> accounts (account_id));
diesel::joinable!(account_dedicated_ips -> accounts (account_id));
diesel::joinable!(api_tokens -> agents (agent_id));
diesel::joinable!(tickets -> accounts (account_id));
diesel::joinable!(tickets -> agents (assignee_id));
diesel::joinable!(messages -> tickets (ticket_id));
diesel::joinable!(events -> tickets (ticket_id));
diesel::joinable!(verification_checks -> tickets (ticket_id));
diesel::joinable!(email_challenges -> tickets (ticket_id));
diesel::joinable!(outbox -> tickets (ticket_id));

diesel::allow_tables_to_appear_in_same_query!(
    settings,
    accounts,
    account_allowlist,
    account_dedicated_ips,
    agents,
    api_tokens,
    tickets,
    messages,
    events,
    verification_checks,
    email_challenges,
    outbox,
);

diesel::table! {
    form_submissions (id) {
        id -> BigInt,
        kind -> Text,
        client_ip -> Text,
        email_normalized -> Text,
        ticket_id -> BigInt,
        attached -> Bool,
        created_at -> Timestamp,
    }
}

diesel::joinable!(form_submissions -> tickets (ticket_id));
diesel::allow_tables_to_appear_in_same_query!(form_submissions, tickets);

diesel::table! {
    inbound_messages (id) {
        id -> BigInt,
        message_id -> Nullable<Text>,
        content_hash -> Text,
        ticket_id -> Nullable<BigInt>,
        message_ref -> Nullable<BigInt>,
        outcome -> Text,
        channel -> Text,
        size -> BigInt,
        received_at -> Timestamp,
    }
}

diesel::table! {
    raw_messages (message_ref) {
        message_ref -> BigInt,
        raw -> Binary,
    }
}

diesel::table! {
    attachments (id) {
        id -> BigInt,
        message_ref -> BigInt,
        filename -> Text,
        content_type -> Text,
        size -> BigInt,
        data -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    quarantine (id) {
        id -> Text,
        reason -> Text,
        from_address -> Nullable<Text>,
        subject -> Nullable<Text>,
        size -> BigInt,
        raw -> Binary,
        channel -> Text,
        content_hash -> Text,
        received_at -> Timestamp,
        released_ticket_id -> Nullable<BigInt>,
        released_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(inbound_messages, tickets);
diesel::allow_tables_to_appear_in_same_query!(inbound_messages, messages);
diesel::allow_tables_to_appear_in_same_query!(attachments, messages);

diesel::table! {
    login_attempts (id) {
        id -> BigInt,
        email_normalized -> Text,
        client_ip -> Text,
        succeeded -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// The provider's authentication logs (SMTP relay and API gateway), for credential-failure
    /// diagnosis; purged after RECOVERYDESK_AUTH_LOG_RETENTION_DAYS.
    auth_events (id) {
        id -> BigInt,
        at -> Timestamp,
        channel -> Text,
        username -> Text,
        account_id -> Nullable<Text>,
        client_ip -> Text,
        mechanism -> Text,
        tls -> Bool,
        result -> Text,
    }
}

diesel::table! {
    /// Tickets per (kind, state) as of the last fold of `ticket_count_deltas` (migrations 000008
    /// and 000018); the queue's counts are these plus the unfolded deltas.
    ticket_counts (kind, state) {
        kind -> Text,
        state -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    /// One row per status link mailed: only the SHA-256 of its token (migration 000011).
    status_links (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(status_links -> tickets (ticket_id));
diesel::allow_tables_to_appear_in_same_query!(status_links, tickets);

diesel::table! {
    /// API requests of the last minute, per token hash, for the API rate limit.
    api_requests (id) {
        id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// One IMAP poller at a time across instances, and the mailbox's health (migration 000016).
    imap_leases (mailbox) {
        mailbox -> Text,
        holder -> Text,
        expires_at -> Timestamp,
        uid_validity -> Nullable<BigInt>,
        last_ok_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Who acts next on a ticket, and when anything last happened (migration 000015).
    ticket_activity (ticket_id) {
        ticket_id -> BigInt,
        waiting_on -> Text,
        last_activity_at -> Timestamp,
        customer_activity_at -> Nullable<Timestamp>,
        assignee_seen_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(ticket_activity -> tickets (ticket_id));
diesel::allow_tables_to_appear_in_same_query!(ticket_activity, tickets);

diesel::table! {
    /// Canned answers admins keep for replies (migration 000015).
    canned_answers (id) {
        id -> BigInt,
        title -> Text,
        body -> Text,
        account_dependent -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Each event's link in its ticket's hash chain (migration 000017).
    event_hashes (event_id) {
        event_id -> BigInt,
        ticket_id -> BigInt,
        ticket_ref -> Text,
        content_sha256 -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    /// Grants and reactivations waiting for a second agent (migration 000017).
    approvals (id) {
        id -> BigInt,
        ticket_id -> BigInt,
        action -> Text,
        params -> Text,
        requested_by_id -> BigInt,
        requested_by -> Text,
        requested_at -> Timestamp,
        status -> Text,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        reason -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(event_hashes, events);
diesel::allow_tables_to_appear_in_same_query!(approvals, tickets);

diesel::table! {
    /// +1/-1 per ticket inserted, deleted or moved between (kind, state), appended by triggers
    /// and folded into `ticket_counts` by the background worker (migration 000018).
    ticket_count_deltas (id) {
        id -> BigInt,
        kind -> Text,
        state -> Text,
        d -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(ticket_count_deltas, ticket_counts);
