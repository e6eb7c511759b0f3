//! The queue's counts (docs/architecture.md, "Queue counts"): triggers append deltas, the
//! background worker folds them into totals, and the counts read are always the tickets' own,
//! before a fold, after it, and while writers and folds run side by side.

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use crate::races::mail_from;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use recoverydesk::db::{self, AnyConnection};
use reqwest::StatusCode;
use serde_json::json;

/// (kind, state, tickets) counted from the tickets themselves, sorted.
fn grouped(conn: &mut AnyConnection) -> Vec<(String, String, i64)> {
    use recoverydesk::db::schema::tickets;
    let mut rows: Vec<(String, String, i64)> = tickets::table
        .group_by((tickets::kind, tickets::state))
        .select((tickets::kind, tickets::state, diesel::dsl::count_star()))
        .load(conn)
        .expect("a count");
    rows.sort();
    rows
}

fn counted(conn: &mut AnyConnection) -> Vec<(String, String, i64)> {
    let mut rows: Vec<(String, String, i64)> = db::console::counts(conn)
        .expect("counts")
        .into_iter()
        .map(|(kind, state, n)| (kind.to_string(), state.to_string(), n))
        .collect();
    rows.sort();
    rows
}

fn deltas(conn: &mut AnyConnection) -> i64 {
    use recoverydesk::db::schema::ticket_count_deltas;
    ticket_count_deltas::table.count().get_result(conn).expect("a count")
}

async fn exact_across_folds(app: TestApp) {
    let mut refs = vec![];
    for n in 0..12 {
        let ingested = app.ingest(&mail_from(&format!("count{n}@example.test"), 500 + n));
        refs.push(ingested.ticket.expect("a ticket"));
    }
    let mut conn = app.conn();
    // The background worker may have folded already: fold now, so what follows is known.
    recoverydesk::services::housekeeping::fold_counts(&mut conn).expect("a fold");
    assert_eq!(deltas(&mut conn), 0, "a fold leaves no delta");
    assert_eq!(counted(&mut conn), grouped(&mut conn));
    assert_eq!(counted(&mut conn).iter().map(|(_, _, n)| n).sum::<i64>(), 12);

    // State changes append deltas; the counts read them before any fold.
    for r in &refs[..5] {
        let (status, body) = app.action(r, "resolve", json!({"note": "done"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let ticket = app
        .create_ticket(json!({"kind": "general", "requester": "api@example.test", "subject": "Hi", "body": "hello"}))
        .await;
    assert!(deltas(&mut conn) > 0, "the changes are still deltas");
    assert_eq!(counted(&mut conn), grouped(&mut conn));
    recoverydesk::services::housekeeping::fold_counts(&mut conn).expect("a fold");
    assert_eq!(deltas(&mut conn), 0);
    assert_eq!(counted(&mut conn), grouped(&mut conn));
    let resolved: i64 = counted(&mut conn)
        .iter()
        .filter(|(_, state, _)| state == "resolved")
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(resolved, 5);

    // A reply reopens a resolved ticket: -1 resolved, +1 open, and a fold of nothing is harmless.
    let raw = format!(
        "From: count0@example.test\r\nSubject: Re: [{}] question\r\nMessage-ID: <again@example.test>\r\n\r\nstill stuck\r\n",
        refs[0]
    );
    assert_eq!(
        app.ingest(raw.as_bytes()).outcome,
        recoverydesk::services::inbound::Outcome::Appended
    );
    assert_eq!(counted(&mut conn), grouped(&mut conn));
    recoverydesk::services::housekeeping::fold_counts(&mut conn).expect("a fold");
    recoverydesk::services::housekeeping::fold_counts(&mut conn).expect("a fold of nothing");
    assert_eq!(counted(&mut conn), grouped(&mut conn));
    assert_eq!(ticket["kind"], "general");
}

both_backends!(queue_counts_stay_exact_before_and_after_a_fold, exact_across_folds);

/// PostgreSQL: writers, folds and readers at once. Each read takes the counts and a GROUP BY
/// of the tickets in one REPEATABLE READ snapshot: they must agree every time, whether a fold
/// committed just before, just after, or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_agree_with_the_tickets_in_every_snapshot_while_writers_and_folds_run() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = vec![];
    for w in 0..4usize {
        let app = app.clone();
        writers.push(tokio::task::spawn_blocking(move || {
            let mut refs = vec![];
            for i in 0..40usize {
                let raw = if i % 3 == 2 {
                    format!(
                        "From: w{w}-{}@example.test\r\nSubject: Re: [{}] question\r\nMessage-ID: <re-{w}-{i}@example.test>\r\n\r\nmore\r\n",
                        i - 2,
                        refs[i - 2]
                    )
                    .into_bytes()
                } else {
                    mail_from(&format!("w{w}-{i}@example.test"), 20_000 + w * 100 + i)
                };
                let ingested = recoverydesk::services::inbound::ingest(&mut app.conn(), &app.desk, &raw, "test")
                    .unwrap_or_else(|e| panic!("writer {w} message {i}: {e}"));
                refs.extend(ingested.ticket);
            }
        }));
    }
    let folder = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut folds = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                recoverydesk::services::housekeeping::fold_counts(&mut app.conn()).expect("a fold");
                folds += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            folds
        })
    };
    let reader = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut reads = 0;
            let mut conn = app.conn();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .expect("begin");
                let (counts, tickets) = (counted(&mut conn), grouped(&mut conn));
                conn.batch_execute("COMMIT").expect("commit");
                assert_eq!(counts, tickets, "read {reads}");
                reads += 1;
            }
            reads
        })
    };
    for w in writers {
        w.await.expect("a writer");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let folds = folder.await.expect("the folder");
    let reads = reader.await.expect("the reader");
    assert!(folds > 1 && reads > 1, "{folds} folds, {reads} reads");
    let mut conn = app.conn();
    assert_eq!(counted(&mut conn), grouped(&mut conn));
    assert_eq!(counted(&mut conn).iter().map(|(_, _, n)| n).sum::<i64>(), 4 * 27);
}
