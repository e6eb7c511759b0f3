//! What an operator relies on, in the library: retried deliveries recognised, bounce reasons
//! kept whole, honest delivery counts, expired rate-limit rows purged.

use crate::both_backends;
use crate::helpers::{TestApp, reference};
use diesel::prelude::*;
use recoverydesk::db::schema::{form_submissions, inbound_messages, login_attempts};
use recoverydesk::services::inbound::Outcome;
use serde_json::json;

both_backends!(
    a_retry_through_other_relays_is_a_duplicate_but_a_new_body_is_not,
    retried_delivery
);
both_backends!(a_delivery_stored_under_the_older_hash_is_still_a_duplicate, older_hash);
both_backends!(a_folded_diagnostic_code_is_stored_whole, folded_bounce);
both_backends!(sent_mail_counts_the_attempt_that_delivered_it, sent_attempts);
both_backends!(the_hourly_purge_deletes_only_expired_rate_limit_rows, purge);

const BODY: &str = "From: retry@y.test\r\nTo: support@desk.test\r\nSubject: I forgot my username\r\n\
Message-ID: <retry-1@y.test>\r\nDate: Sun, 6 Dec 2026 04:00:00 +0000\r\n\r\nPlease help, it is urgent.\r\n";

/// The message as it arrives after a relay path: an mbox line, trace fields (folded too).
fn relayed(hop: &str, body: &str) -> Vec<u8> {
    format!(
        "From retry@y.test  Sun Dec  6 04:0{hop}:00 2026\r\nReturn-Path: <retry@y.test>\r\n\
X-Original-To: support@desk.test\r\nDelivered-To: support@desk.test\r\n\
Received: from mx{hop}.y.test (mx{hop}.y.test [192.0.2.{hop}])\r\n\tby desk.test (Postfix) with ESMTP id Q{hop};\r\n\tSun, 6 Dec 2026 04:0{hop}:00 +0000\r\n\
Authentication-Results: desk.test;\r\n spf=pass smtp.mailfrom=y.test (via mx{hop})\r\n\
ARC-Seal: i=1; a=rsa-sha256; cv=none; d=y.test; s=arc{hop}; b=AAA{hop}\r\n\
ARC-Authentication-Results: i=1; mx{hop}.y.test; spf=pass\r\n\
received: from client{hop}.y.test by mx{hop}.y.test\r\n{body}"
    )
    .into_bytes()
}

async fn retried_delivery(app: TestApp) {
    let first = app.ingest(&relayed("1", BODY));
    assert_eq!(first.outcome, Outcome::Created, "{first:?}");
    let r = first.ticket.clone().unwrap();
    let acknowledgements = app.outbox_of(&r).len();
    assert!(acknowledgements >= 1, "the request is acknowledged");

    // The sender lost our answer and sent again: another relay, new trace fields.
    let again = app.ingest(&relayed("2", BODY));
    assert_eq!(
        (again.outcome, again.ticket.as_deref()),
        (Outcome::Duplicate, Some(r.as_str()))
    );
    // And once more without any of them.
    assert_eq!(app.ingest(BODY.as_bytes()).outcome, Outcome::Duplicate);
    assert_eq!(app.outbox_of(&r).len(), acknowledgements, "nothing sent again");
    let tickets: i64 = {
        let mut conn = app.conn();
        recoverydesk::db::schema::tickets::table
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    assert_eq!(tickets, 1, "one ticket");

    // Same Message-ID, different words: a new message, never dropped as a duplicate.
    let changed = BODY.replace("it is urgent", "and here is my account name");
    let third = app.ingest(&relayed("3", &changed));
    assert_ne!(third.outcome, Outcome::Duplicate, "{third:?}");
}

async fn older_hash(app: TestApp) {
    let delivered = [
        b"Return-Path: <retry@y.test>\r\nReceived: from mx1 by desk\r\n".as_slice(),
        BODY.as_bytes(),
    ]
    .concat();
    let first = app.ingest(&delivered);
    assert_eq!(first.outcome, Outcome::Created);
    // As an earlier version stored it: the hash of the message less only its envelope lines.
    let hash = recoverydesk::mail::inbound::fingerprint::ContentHash::of(&delivered);
    assert_ne!(
        hash.current, hash.legacy,
        "the Received line makes the two rules differ"
    );
    {
        let mut conn = app.conn();
        let updated = diesel::update(inbound_messages::table)
            .set(inbound_messages::content_hash.eq(&hash.legacy))
            .execute(&mut *conn)
            .unwrap();
        assert_eq!(updated, 1);
    }
    let again = app.ingest(&delivered);
    assert_eq!((again.outcome, again.ticket), (Outcome::Duplicate, first.ticket));
}

async fn folded_bounce(app: TestApp) {
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "alice@desk.test", "subject": "Help"}))
        .await;
    let r = reference(&t);
    let ours = app.our_message_ids(&r)[0].clone();
    let bounce = format!(
        "From: MAILER-DAEMON@desk.test (Mail Delivery System)\r\nTo: support@desk.test\r\n\
Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMessage-Id: <b1@desk.test>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; desk.test\r\n\r\n\
Final-Recipient: rfc822; alice@desk.test\r\nAction: failed\r\nStatus: 5.2.0\r\n\
Diagnostic-Code: X-Postfix; cannot update mailbox /var/mail/alice for user\r\n    alice. cannot open file: Permission denied\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@desk.test\r\nMessage-ID: {ours}\r\n\r\n--B--\r\n"
    );
    let result = app.ingest(bounce.as_bytes());
    assert_eq!(result.ticket.as_deref(), Some(r.as_str()), "{result:?}");
    let t = app.ticket(&r).await;
    assert_eq!(
        t["mail"][0]["bounce_reason"],
        "5.2.0: X-Postfix; cannot update mailbox /var/mail/alice for user alice. cannot open file: Permission denied"
    );
}

async fn sent_attempts(app: TestApp) {
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "count@x.test", "subject": "Help"}))
        .await;
    assert_eq!(app.deliver(0).await.sent, 1);
    let t = app.ticket(&reference(&t)).await;
    assert_eq!(t["mail"][0]["status"], "sent", "{}", t["mail"]);
    assert_eq!(t["mail"][0]["attempts"], 1, "the try that delivered it counts");
}

async fn purge(app: TestApp) {
    let now = recoverydesk::db::now();
    let old = now - chrono::Duration::hours(25);
    let recent = now - chrono::Duration::minutes(30);
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "p@x.test", "subject": "Help"}))
        .await;
    let ticket_id: i64 = reference(&t).rsplit('-').next().unwrap().parse().unwrap();
    let mut conn = app.conn();
    for at in [old, recent] {
        diesel::insert_into(form_submissions::table)
            .values((
                form_submissions::kind.eq("general"),
                form_submissions::client_ip.eq("203.0.113.9"),
                form_submissions::email_normalized.eq("p@x.test"),
                form_submissions::ticket_id.eq(ticket_id),
                form_submissions::attached.eq(false),
                form_submissions::created_at.eq(at),
            ))
            .execute(&mut *conn)
            .unwrap();
        diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::email_normalized.eq("agent@x.test"),
                login_attempts::client_ip.eq("203.0.113.9"),
                login_attempts::succeeded.eq(false),
                login_attempts::created_at.eq(at),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    let deleted = recoverydesk::services::housekeeping::purge_rate_limits(&mut conn, now).unwrap();
    assert_eq!(deleted, (1, 1));
    let left: Vec<chrono::NaiveDateTime> = form_submissions::table
        .select(form_submissions::created_at)
        .load(&mut *conn)
        .unwrap();
    assert_eq!(left, vec![recent], "the rows a rate limit still reads stay");
    let logins: i64 = login_attempts::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(logins, 1);
}
