//! Bursts and races: throttles that count and record in one step, actions that lock what they
//! decide on, balances that change by the amount, and transactions retried after a deadlock.

use crate::both_backends;
use crate::helpers::{Backend, Console, TestApp, account, reference};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use recoverydesk::db::schema::{form_submissions, login_attempts, outbox};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    parallel_wrong_sign_ins_get_at_most_five_password_checks,
    parallel_wrong_sign_ins
);
both_backends!(
    a_sign_in_lockout_lasts_fifteen_minutes_from_the_failure_that_reached_the_limit,
    lockout_does_not_slide
);
both_backends!(parallel_form_posts_never_exceed_the_limit, parallel_form_posts);
both_backends!(ipv6_clients_count_by_their_64_for_the_form_limit, ipv6_counts_by_64);
both_backends!(
    parallel_mail_from_one_sender_gets_at_most_three_acknowledgements,
    parallel_acknowledgements
);
both_backends!(concurrent_payments_on_one_account_both_count, concurrent_payments);

fn count(app: &TestApp, query: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.conn();
    diesel::sql_query(query).get_result::<N>(&mut *conn).expect("a count").n
}

async fn parallel_wrong_sign_ins(app: TestApp) {
    let mut tries = vec![];
    for _ in 0..30 {
        let console = Console::new(&app);
        tries.push(tokio::spawn(async move {
            console.sign_in("admin@localhost", "not the password at all").await
        }));
    }
    let mut statuses = vec![];
    for t in tries {
        statuses.push(t.await.expect("the sign-in task"));
    }
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + throttled, 30, "{statuses:?}");
    assert!(checked <= 5, "{checked} passwords were checked: {statuses:?}");
    // Each recorded try is one argon2 run; the throttled ones never got that far.
    let recorded = count(&app, "SELECT count(*) AS n FROM login_attempts");
    assert!(recorded <= 5, "{recorded} tries recorded");
    // Locked out now, even with the right password.
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

fn insert_failures(app: &TestApp, minutes_ago: &[i64]) {
    use diesel::ExpressionMethods;
    let mut conn = app.conn();
    for m in minutes_ago {
        diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::email_normalized.eq("admin@localhost"),
                login_attempts::client_ip.eq("127.0.0.1"),
                login_attempts::succeeded.eq(false),
                login_attempts::created_at.eq(recoverydesk::db::now() - chrono::Duration::minutes(*m)),
            ))
            .execute(&mut *conn)
            .expect("insert a failure");
    }
}

async fn lockout_does_not_slide(app: TestApp) {
    // Five failures within 14 minutes, the fifth 6 minutes ago: locked for 9 more minutes,
    // although only one of them is still within the last 15 minutes.
    insert_failures(&app, &[20, 19, 18, 17, 6]);
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A lockout that ended (the fifth failure 21 minutes ago) lets the right password in.
    let app = app.respawn_with(&[]).await;
    insert_failures(&app, &[40, 39, 38, 37, 21]);
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
}

async fn parallel_form_posts(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut posts = vec![];
    for i in 0..20 {
        let app = app.clone();
        posts.push(tokio::spawn(async move {
            let details = format!("try {i}");
            app.form(
                "/help/forgot-username",
                &[("email", "burst@example.test"), ("details", &details)],
            )
            .await
            .0
        }));
    }
    let mut accepted = 0;
    for p in posts {
        let status = p.await.expect("the post task");
        assert!(
            status == StatusCode::SEE_OTHER || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        accepted += usize::from(status == StatusCode::SEE_OTHER);
    }
    assert_eq!(accepted, 5, "the default limit is 5 an hour");
    let recorded = {
        use diesel::QueryDsl;
        let mut conn = app.conn();
        form_submissions::table
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count")
    };
    assert_eq!(recorded, 5);
}

async fn ipv6_counts_by_64(app: TestApp) {
    let app = app
        .respawn_with(&[("--form-rate-limit", "2"), ("--trusted-proxies", "127.0.0.1")])
        .await;
    // Three addresses of one /64: one client. Different emails, so only the client counts.
    for (i, status) in [
        StatusCode::SEE_OTHER,
        StatusCode::SEE_OTHER,
        StatusCode::TOO_MANY_REQUESTS,
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("v6-{i}@example.test");
        let client = format!("2001:db8:7:7::{:x}", i + 1);
        let (got, _, _) = app
            .form_from("/help/forgot-username", &[("email", &email)], Some(&client))
            .await;
        assert_eq!(got, status, "request {i} from {client}");
    }
    // The next /64 is another client.
    let (got, _, _) = app
        .form_from(
            "/help/forgot-username",
            &[("email", "v6-other@example.test")],
            Some("2001:db8:7:8::1"),
        )
        .await;
    assert_eq!(got, StatusCode::SEE_OTHER);
}

fn mail_from(sender: &str, n: usize) -> Vec<u8> {
    format!(
        "From: {sender}\r\nTo: support@recoverydesk.test\r\nSubject: question number {n}\r\n\
         Message-ID: <burst-{n}@example.test>\r\nDate: Sun, 06 Dec 2026 04:00:00 +0000\r\n\r\n\
         Hello, a question about my invoice, number {n}.\r\n"
    )
    .into_bytes()
}

async fn parallel_acknowledgements(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let mut deliveries = vec![];
    for n in 0..12 {
        let app = app.clone();
        deliveries.push(tokio::task::spawn_blocking(move || {
            app.ingest(&mail_from("someone@example.test", n));
        }));
    }
    for d in deliveries {
        d.await.expect("the delivery task");
    }
    let acks = {
        use diesel::{ExpressionMethods, QueryDsl};
        let mut conn = app.conn();
        outbox::table
            .filter(outbox::template.eq("acknowledgement"))
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count")
    };
    assert_eq!(acks, 3, "at most 3 acknowledgements to one sender in 24 hours");
}

async fn terminated_ticket(app: &TestApp, requester: &str) -> String {
    let ticket = app
        .create_ticket(json!({"kind": "account_terminated", "requester": requester,
                              "subject": "Account terminated", "body": "I will pay", "account": "acc_9"}))
        .await;
    assert_eq!(ticket["state"], "awaiting_payment", "{ticket}");
    reference(&ticket)
}

async fn concurrent_payments(app: TestApp) {
    let app = std::sync::Arc::new(app);
    for round in 0..8 {
        let mut line = account("acc_9", "payer", "payer@example.test", "terminated");
        line["balance_due_cents"] = json!(10_000);
        line["terminated_at"] = json!("2026-11-01T00:00:00Z");
        app.import_accounts(&[line]);
        let a = terminated_ticket(&app, "payer@example.test").await;
        let b = terminated_ticket(&app, "payer@example.test").await;
        let (first, second) = {
            let (app1, app2) = (app.clone(), app.clone());
            let p1 = tokio::spawn(async move {
                app1.action(&a, "record_payment", json!({"amount_cents": 3000, "reference": "r1"}))
                    .await
            });
            let p2 = tokio::spawn(async move {
                app2.action(&b, "record_payment", json!({"amount_cents": 2000, "reference": "r2"}))
                    .await
            });
            (p1.await.expect("task"), p2.await.expect("task"))
        };
        assert_eq!(first.0, StatusCode::OK, "round {round}: {}", first.1);
        assert_eq!(second.0, StatusCode::OK, "round {round}: {}", second.1);
        let (_, acc) = app.get("/api/v1/accounts/acc_9").await;
        assert_eq!(acc["balance_due_cents"], 5000, "round {round}: both payments count");
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL only: locks and retries (SQLite runs one writer at a time).

/// An ip_lockout ticket of `account_id`, walked to `ownership_verified`.
async fn verified_lockout(app: &TestApp, account_id: &str, email: &str) -> String {
    let ticket = app
        .create_ticket(
            json!({"kind": "ip_lockout", "requester": email, "subject": "Locked out",
                              "body": "new office", "current_ip": "198.51.100.77", "account": account_id}),
        )
        .await;
    let r = reference(&ticket);
    app.act(
        &r,
        "record_allowlisted_attempts",
        json!({"tried_from": "office 203.0.113.7", "outcome": "blocked"}),
    )
    .await;
    app.act(&r, "start_ownership_verification", json!({})).await;
    app.act(&r, "send_email_challenge", json!({})).await;
    let path = app.latest_challenge_path();
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::OK);
    let ticket = app
        .act(
            &r,
            "record_verification_check",
            json!({"method": "billing_details", "passed": true, "evidence": "invoice matches"}),
        )
        .await;
    assert_eq!(ticket["state"], "ownership_verified");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ban_import_and_a_grant_never_both_decide_on_an_unbanned_account() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    let (mut granted, mut refused) = (0, 0);
    for round in 0..50 {
        let id = format!("acc_r{round}");
        let email = format!("owner{round}@example.test");
        app.import_accounts(&[account(&id, &format!("user{round}"), &email, "active")]);
        let r = verified_lockout(&app, &id, &email).await;
        let importer = {
            let (app, id, email) = (app.clone(), id.clone(), email.clone());
            tokio::task::spawn_blocking(move || {
                app.import_accounts(&[account(&id, &format!("user{round}"), &email, "banned")])
            })
        };
        let (status, body) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
        let summary = importer.await.expect("the import task");
        assert!(summary.refused.is_empty(), "round {round}: {:?}", summary.refused);
        let ticket = app.ticket(&r).await;
        // The import rewrites the allowlist from the provider's line, so the ticket's own
        // record says whether the grant changed the directory.
        let granted_entry = ticket["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "directory_change" && e["data"]["change"] == "allowlist_add");
        match status {
            // The grant went first: the ban found the ticket resolved.
            StatusCode::OK => {
                granted += 1;
                assert_eq!(ticket["state"], "resolved", "round {round}");
                assert!(granted_entry, "round {round}");
                assert_eq!(summary.tickets_refused, 0, "round {round}");
            }
            // The ban went first: the grant saw it, refused, and added nothing.
            StatusCode::CONFLICT => {
                refused += 1;
                assert_eq!(body["error"]["code"], "account_banned", "round {round}: {body}");
                assert_eq!(ticket["state"], "refused", "round {round}");
                assert!(!granted_entry, "round {round}: a grant on a banned account");
                assert_eq!(summary.tickets_refused, 1, "round {round}");
            }
            other => panic!("round {round}: {other} {body}"),
        }
    }
    eprintln!("grant first {granted} times, ban first {refused} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ban_import_and_a_reactivation_never_both_decide_on_an_unbanned_account() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    for round in 0..50 {
        let id = format!("acc_t{round}");
        let email = format!("late{round}@example.test");
        let mut line = account(&id, &format!("late{round}"), &email, "terminated");
        line["terminated_at"] = json!("2026-11-01T00:00:00Z");
        app.import_accounts(&[line]);
        let ticket = app
            .create_ticket(json!({"kind": "account_terminated", "requester": email,
                                  "subject": "Terminated", "body": "paid already", "account": id}))
            .await;
        let r = reference(&ticket);
        let importer = {
            let (app, id, email) = (app.clone(), id.clone(), email.clone());
            tokio::task::spawn_blocking(move || {
                app.import_accounts(&[account(&id, &format!("late{round}"), &email, "banned")])
            })
        };
        let (status, body) = app.action(&r, "reactivate_account", json!({})).await;
        let summary = importer.await.expect("the import task");
        assert!(summary.refused.is_empty(), "round {round}: {:?}", summary.refused);
        let ticket = app.ticket(&r).await;
        match status {
            StatusCode::OK => {
                assert_eq!(ticket["state"], "resolved", "round {round}");
                assert_eq!(summary.tickets_refused, 0, "round {round}");
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "account_banned", "round {round}: {body}");
                assert_eq!(ticket["state"], "refused", "round {round}");
            }
            other => panic!("round {round}: {other} {body}"),
        }
        let (_, acc) = app.get(&format!("/api/v1/accounts/{id}")).await;
        assert_eq!(acc["status"], "banned", "round {round}: a ban is permanent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_action_that_loses_a_deadlock_is_retried_and_answers_200() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    app.import_accounts(&[account("acc_d", "deadlocked", "d@example.test", "active")]);
    let ticket = app
        .create_ticket(
            json!({"kind": "general", "requester": "d@example.test", "subject": "Hi",
                              "body": "hello", "account": "acc_d"}),
        )
        .await;
    let r = reference(&ticket);
    let ticket_id: i64 = r.rsplit('-').next().and_then(|n| n.parse().ok()).expect("a number");
    assert_eq!(ticket["account_id"], "acc_d");
    let deadlocks_before = count(
        &app,
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
    );

    // Another session locks the account, waits until the action holds the ticket and waits for
    // the account, then asks for the ticket: a deadlock. It waits longer before checking for
    // one (deadlock_timeout), so PostgreSQL picks the action's transaction as the victim.
    let mut other = app.raw_conn();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let other_session = tokio::task::spawn_blocking(move || {
        other
            .batch_execute(
                "SET deadlock_timeout = '20s'; BEGIN; SELECT id FROM accounts WHERE id = 'acc_d' FOR UPDATE;",
            )
            .expect("lock the account");
        ready_tx.send(()).expect("signal");
        // Until the action waits on the account (its ticket lock is then held).
        let waiting = "SELECT count(*) AS n FROM pg_stat_activity \
                       WHERE datname = current_database() AND wait_event_type = 'Lock'";
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        for _ in 0..500 {
            let n = diesel::sql_query(waiting)
                .get_result::<N>(&mut other)
                .expect("pg_locks")
                .n;
            if n > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        other
            .batch_execute(&format!(
                "SELECT id FROM tickets WHERE id = {ticket_id} FOR UPDATE; COMMIT;"
            ))
            .expect("the other session gets the ticket once the action's first try is rolled back");
    });
    ready_rx.recv().expect("the other session holds the account");
    let (status, body) = app.action(&r, "resolve", json!({"note": "done"})).await;
    other_session.await.expect("the other session");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "resolved");
    // The statistics arrive a moment later.
    let mut deadlocks = deadlocks_before;
    for _ in 0..50 {
        deadlocks = count(
            &app,
            "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
        );
        if deadlocks > deadlocks_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(deadlocks > deadlocks_before, "a deadlock happened and was survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_on_postgresql_lose_nothing_and_answer_every_message() {
    use recoverydesk::services::inbound::Outcome;
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    // Eight tickets the writers reply to, each from its own customer.
    let mut refs = vec![];
    for t in 0..8 {
        let ingested = app.ingest(&mail_from(&format!("c{t}@example.test"), 1000 + t));
        refs.push(ingested.ticket.expect("a ticket"));
    }
    let refs = std::sync::Arc::new(refs);
    const PER_WRITER: usize = 30;
    let mut writers = vec![];
    for w in 0..8usize {
        let (app, refs) = (app.clone(), refs.clone());
        writers.push(tokio::task::spawn_blocking(move || {
            let mut outcomes = vec![];
            for i in 0..PER_WRITER {
                let raw = if i % 2 == 0 {
                    // A new ticket.
                    mail_from(&format!("new{w}-{i}@example.test"), 10_000 + w * 1000 + i)
                } else {
                    // A reply to a ticket another writer replies to as well.
                    let t = (w + i) % 8;
                    format!(
                        "From: c{t}@example.test\r\nTo: support@recoverydesk.test\r\nSubject: Re: [{}] question\r\n\
                         Message-ID: <reply-{w}-{i}@example.test>\r\nDate: Sun, 06 Dec 2026 04:00:00 +0000\r\n\r\n\
                         More details, {w} {i}.\r\n",
                        refs[t]
                    )
                    .into_bytes()
                };
                let mut conn = app.conn();
                let outcome = recoverydesk::services::inbound::ingest(&mut conn, &app.desk, &raw, "test")
                    .unwrap_or_else(|e| panic!("writer {w} message {i}: {e}"));
                outcomes.push(outcome.outcome);
            }
            outcomes
        }));
    }
    // Meanwhile an agent changes the same tickets' state through the API.
    let agent = {
        let (app, refs) = (app.clone(), refs.clone());
        tokio::spawn(async move {
            for round in 0..3 {
                for r in refs.iter() {
                    let (status, body) = app
                        .post(
                            &format!("/api/v1/tickets/{r}/replies"),
                            &json!({"body": format!("looking, round {round}"), "internal": false}),
                        )
                        .await;
                    assert_eq!(status, StatusCode::CREATED, "{body}");
                }
            }
        })
    };
    let mut created = 0;
    let mut appended = 0;
    for w in writers {
        for outcome in w.await.expect("a writer") {
            match outcome {
                Outcome::Created => created += 1,
                Outcome::Appended => appended += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    agent.await.expect("the agent");
    assert_eq!(created, 8 * PER_WRITER / 2);
    assert_eq!(appended, 8 * PER_WRITER / 2);
    let stored = count(&app, "SELECT count(*) AS n FROM inbound_messages");
    assert_eq!(stored, (8 + 8 * PER_WRITER) as i64, "every message stored once");
    let incoming = count(&app, "SELECT count(*) AS n FROM messages WHERE direction = 'in'");
    assert_eq!(incoming, (8 + 8 * PER_WRITER) as i64);
    // For the record (statistics arrive a moment later): deadlocks PostgreSQL broke, each
    // retried by the service.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let deadlocks = count(
        &app,
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
    );
    eprintln!("deadlocks survived: {deadlocks}");
}
