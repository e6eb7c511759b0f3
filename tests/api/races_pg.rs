//! PostgreSQL only (SQLite runs one writer at a time): actions and imports that lock what
//! they decide on, and transactions retried after a deadlock.

use crate::helpers::{Backend, TestApp, account, reference, verified_lockout};
use crate::races::{count, mail_from};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use reqwest::StatusCode;
use serde_json::json;

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

    let other_session = deadlock_partner(&app, "acc_d", ticket_id);
    let (status, body) = app.action(&r, "resolve", json!({"note": "done"})).await;
    other_session.await.expect("the other session");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "resolved");
    let deadlocks = deadlocks_reported(&app);
    assert!(deadlocks > deadlocks_before, "a deadlock happened and was survived");
}

/// Another session locks the account, waits until a transaction of the app holds the ticket and
/// waits for the account, then asks for the ticket: a deadlock. It waits longer before checking
/// for one (deadlock_timeout), so PostgreSQL picks the app's transaction as the victim. Returns
/// once the account is locked; the task ends when the other session has the ticket too.
fn deadlock_partner(app: &TestApp, account_id: &str, ticket_id: i64) -> tokio::task::JoinHandle<()> {
    let mut other = app.raw_conn();
    let account_id = account_id.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let other_session = tokio::task::spawn_blocking(move || {
        other
            .batch_execute(&format!(
                "SET deadlock_timeout = '20s'; BEGIN; SELECT id FROM accounts WHERE id = '{account_id}' FOR UPDATE;"
            ))
            .expect("lock the account");
        ready_tx.send(()).expect("signal");
        // Until the app's transaction waits on the account (its ticket lock is then held).
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
            .expect("the other session gets the ticket once the first try is rolled back");
    });
    ready_rx.recv().expect("the other session holds the account");
    other_session
}

/// The same through the webhook: a customer's reply loses a deadlock, is retried inside the
/// service, and the webhook answers 200, never 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_that_loses_a_deadlock_is_retried_and_answers_200() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[("--inbound-token", "hook-secret-0123456789")]).await
    else {
        return;
    };
    app.import_accounts(&[account("acc_m", "mailer", "m@example.test", "active")]);
    let ticket = app
        .create_ticket(
            json!({"kind": "general", "requester": "m@example.test", "subject": "Hi",
                              "body": "hello", "account": "acc_m"}),
        )
        .await;
    let r = reference(&ticket);
    let ticket_id: i64 = r.rsplit('-').next().and_then(|n| n.parse().ok()).expect("a number");
    let deadlocks_before = count(
        &app,
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
    );
    let other_session = deadlock_partner(&app, "acc_m", ticket_id);
    let raw = format!(
        "From: m@example.test\r\nSubject: Re: [{r}] Hi\r\nMessage-ID: <deadlocked@example.test>\r\n\r\nstill stuck\r\n"
    );
    let response = app
        .client
        .post(format!("{}/inbound/email", app.address))
        .bearer_auth("hook-secret-0123456789")
        .body(raw)
        .send()
        .await
        .expect("the webhook answers");
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    other_session.await.expect("the other session");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "appended");
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM inbound_messages"),
        1,
        "stored once"
    );
    assert!(
        deadlocks_reported(&app) > deadlocks_before,
        "a deadlock happened and was survived"
    );
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
    // No deadlock for PostgreSQL to break (the trigger-kept counter rows of old deadlocked
    // here about 20 times a run).
    assert_eq!(deadlocks_reported(&app), 0, "PostgreSQL broke deadlocks");
}

/// The deadlocks PostgreSQL broke in the test's database, every backend's included: a backend
/// reports its statistics when it ends (while it lives, up to 10 s after it goes idle), so
/// every other backend of the database is ended first. The app's pool reconnects afterwards.
pub(crate) fn deadlocks_reported(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.raw_conn();
    let mut query = |sql: &str| diesel::sql_query(sql).get_result::<N>(&mut conn).expect("a count").n;
    query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    for _ in 0..100 {
        let others = query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        if others == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    query("SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()")
}

/// PostgreSQL writes received mail on several connections: a reply that waits for its ticket
/// (another session holds the row) does not hold up the deliveries behind it. With one writer
/// every message queued behind the waiting one; SQLite has one writer by nature.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_waiting_on_a_locked_ticket_does_not_hold_up_the_others() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[("--inbound-token", "hook-secret-0123456789")]).await
    else {
        return;
    };
    let ticket = app
        .create_ticket(json!({"kind": "general", "requester": "slow@example.test", "subject": "Hi", "body": "hello"}))
        .await;
    let r = reference(&ticket);
    let ticket_id: i64 = r.rsplit('-').next().and_then(|n| n.parse().ok()).expect("a number");
    let post = |raw: String| {
        app.client
            .post(format!("{}/inbound/email", app.address))
            .bearer_auth("hook-secret-0123456789")
            .body(raw)
            .send()
    };
    // Another session holds the ticket's row until told to let go.
    let mut other = app.raw_conn();
    other
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM tickets WHERE id = {ticket_id} FOR UPDATE;"
        ))
        .expect("lock the ticket");
    let reply = tokio::spawn(post(format!(
        "From: slow@example.test\r\nSubject: Re: [{r}] Hi\r\nMessage-ID: <waits@example.test>\r\n\r\nstill here\r\n"
    )));
    // The reply's writer is waiting on the row.
    let waiting = "SELECT count(*) AS n FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let mut waited = 0;
    while count(&app, waiting) == 0 {
        waited += 1;
        assert!(waited < 500, "the reply never reached the locked row");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for n in 0..3 {
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            post(format!(
                "From: new{n}@example.test\r\nSubject: Other matter {n}\r\nMessage-ID: <other{n}@example.test>\r\n\r\nunrelated\r\n"
            )),
        )
        .await
        .expect("a new ticket is stored while the reply waits for its row")
        .expect("the webhook answers");
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["outcome"], "created", "{body}");
    }
    assert!(!reply.is_finished(), "the reply still waits for the row");
    other.batch_execute("COMMIT").expect("let go of the ticket");
    let response = reply.await.expect("the reply task").expect("the webhook answers");
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["outcome"], "appended", "{body}");
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM inbound_messages"),
        4,
        "each stored once"
    );
}

/// The mail sender keeps its connection through an SMTP exchange and has it tested before the
/// outcome is recorded (`KeptConnection::test_before_next_use`): a connection that ended
/// meanwhile (a restart, a failover) is replaced, not used, so a mail that went out is never
/// left unrecorded to go out again after its lease.
#[tokio::test]
async fn a_kept_connection_ended_while_its_keeper_waited_is_replaced_before_use() {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    fn pid_of(conn: &mut recoverydesk::db::AnyConnection) -> i32 {
        diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(conn)
            .expect("a pid")
            .pid
    }
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let no_pool = |e: diesel::r2d2::PoolError| e.to_string();
    let mut kept = recoverydesk::db::KeptConnection::new(app.pool.clone(), "test", |_| {});
    let first = pid_of(kept.get(|_| Ok::<(), String>(()), no_pool).expect("a connection"));
    kept.succeeded();
    // Ended from another connection, and waited for (up to 5 s), as a restart would.
    diesel::sql_query(format!("SELECT pg_terminate_backend({first}, 5000)"))
        .execute(&mut app.raw_conn())
        .expect("the backend ended");
    kept.test_before_next_use();
    let conn = kept.get(|_| Ok::<(), String>(()), no_pool).expect("another connection");
    assert_ne!(pid_of(conn), first, "the ended connection was replaced");
}
