//! The hash-chained audit trail (docs/reference.md#four-eyes-and-the-audit-trail): export,
//! `audit verify`, tampering found, erasing left intact.

use crate::both_backends;
use crate::helpers::{Backend, Console, TestApp, account, first_event, reference};
use diesel::connection::SimpleConnection;
use recoverydesk::domain::audit::{self, GENESIS};
use recoverydesk::services::audit as audit_service;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::{Command, Output};

both_backends!(every_event_is_chained_and_the_export_verifies, export_verifies);
both_backends!(erasing_a_message_leaves_the_chain_intact, erase_keeps_chain);
both_backends!(
    concurrent_writers_on_one_ticket_never_fork_its_chain,
    concurrent_writers
);
both_backends!(
    an_interrupted_backfill_resumes_after_its_cursor_and_links_each_event_once,
    backfill_resumes
);
both_backends!(a_desk_without_events_is_marked_backfilled_at_once, backfill_of_nothing);
both_backends!(
    an_event_after_a_rolled_back_savepoint_links_to_the_last_kept_one,
    savepoint_rolled_back
);

async fn export(app: &TestApp, r: &str) -> String {
    let response = app
        .client
        .get(format!("{}/api/v1/tickets/{r}/audit", app.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/jsonl"))
    );
    response.text().await.expect("text")
}

async fn busy_ticket(app: &TestApp) -> String {
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let ticket = app
        .create_ticket(
            json!({"kind": "ip_lockout", "requester": "ops@acme.test", "subject": "Locked out – café",
                              "body": "Ünïcode words; password: hunter2hunter2", "account": "acc_1001"}),
        )
        .await;
    let r = reference(&ticket);
    app.act(
        &r,
        "record_allowlisted_attempts",
        json!({"tried_from": "office", "outcome": "blocked"}),
    )
    .await;
    let (status, _) = app.reply(&r, "a note", true).await;
    assert_eq!(status, StatusCode::CREATED);
    r
}

fn verify(app: &TestApp) -> Result<usize, audit::Broken> {
    let mut conn = app.conn();
    audit_service::verify_database(&mut conn, &app.desk).expect("verify runs")
}

fn desk_binary(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env("RECOVERYDESK_SECRET_KEY", "ab".repeat(64))
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn export_verifies(app: TestApp) {
    let r = busy_ticket(&app).await;
    let ticket = app.ticket(&r).await;
    let events = ticket["events"].as_array().expect("events").clone();
    let exported = export(&app, &r).await;
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), events.len(), "one line per event");
    assert_eq!(lines[0]["prev_hash"], GENESIS);
    for (i, (line, event)) in lines.iter().zip(&events).enumerate() {
        assert_eq!(line["id"], event["id"]);
        assert_eq!(line["type"], event["type"]);
        assert_eq!(line["ticket"], r.as_str());
        assert!(
            line["at"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 27),
            "{line}"
        );
        if i > 0 {
            assert_eq!(line["prev_hash"], lines[i - 1]["hash"]);
        }
        // A message carries its content hash, never its text.
        if event["type"] == "message_in" || event["type"] == "note" {
            assert!(
                line["data"]["content_sha256"].as_str().is_some_and(|h| h.len() == 64),
                "{line}"
            );
            assert!(line["data"].get("body").is_none());
        }
    }
    assert!(exported.contains("café"), "non-ASCII is written as UTF-8");
    assert!(!exported.contains("hunter2hunter2"));
    assert_eq!(audit::verify_export(&exported), Ok(events.len()));
    assert!(verify(&app).is_ok(), "{:?}", verify(&app));
    let (status, _) = app.get("/api/v1/tickets/RD-99999/audit").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The binary checks the export file: ok, then one edited byte names that event.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("trail.jsonl");
    std::fs::write(&file, &exported).expect("write");
    let out = desk_binary(&app.database_url, &["audit", "verify", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("ok {} events", events.len())));
    let third = &lines[2];
    let line_start: usize = exported.lines().take(2).map(|l| l.len() + 1).sum();
    let actor_at = line_start + exported[line_start..].find("\"actor\":\"").expect("an actor") + 9;
    let mut bytes = exported.clone().into_bytes();
    bytes[actor_at] = if bytes[actor_at] == b'X' { b'Y' } else { b'X' };
    std::fs::write(&file, &bytes).expect("write");
    let out = desk_binary(&app.database_url, &["audit", "verify", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(&format!("ticket {r} event {}", third["id"])),
        "{}",
        text(&out.stdout)
    );
    // The database's own chains, through the binary.
    let out = desk_binary(&app.database_url, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
}

async fn erase_keeps_chain(app: TestApp) {
    let r = busy_ticket(&app).await;
    let ticket = app.ticket(&r).await;
    let message = first_event(&ticket, "message_in");
    let (status, body) = app
        .post(
            &format!("/api/v1/tickets/{r}/events/{}/redact", message["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(verify(&app).is_ok(), "{:?}", verify(&app));
    assert!(audit::verify_export(&export(&app, &r).await).is_ok());

    // Changing a message's text without erasing it is found: the text is checked against
    // the content hash recorded when it was stored.
    let note = first_event(&ticket, "note");
    let mut conn = app.raw_conn();
    conn.batch_execute(&format!(
        "UPDATE messages SET body = 'rewritten' WHERE id = {}",
        note["data"]["message_id"]
    ))
    .expect("rewrite the note");
    let broken = verify(&app).expect_err("a rewritten note is found");
    assert_eq!(broken.ticket, r);
    assert_eq!(broken.event, note["id"].as_i64());
}

async fn concurrent_writers(app: TestApp) {
    let r = busy_ticket(&app).await;
    let mut tasks = vec![];
    for i in 0..12 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/tickets/{r}/replies", app.address);
        let token = app.token.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"body": format!("note {i}"), "internal": true}))
                .send()
                .await
                .expect("request")
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), StatusCode::CREATED);
    }
    let checked = verify(&app).expect("one unforked chain");
    assert!(checked >= 12);
    assert!(audit::verify_export(&export(&app, &r).await).is_ok());
}

/// An event row changed in the SQLite file, its append-only trigger dropped first: `audit
/// verify` names the ticket and the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_event_row_in_the_sqlite_file_fails_audit_verify() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let r = busy_ticket(&app).await;
    let ticket = app.ticket(&r).await;
    let target = first_event(&ticket, "transition");
    let mut conn = app.raw_conn();
    conn.batch_execute(&format!(
        "DROP TRIGGER events_no_update; UPDATE events SET data = '{{\"to\":\"resolved\"}}' WHERE id = {};",
        target["id"]
    ))
    .expect("tamper");
    let out = desk_binary(&app.database_url, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("ticket {r} event {}", target["id"])),
        "{}",
        text(&out.stdout)
    );
    // The console's "verify this trail" line says so too.
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = console.get(&format!("/agent/tickets/{r}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("the hash chain is broken"), "{page}");
    assert!(page.contains(&format!("event {}", target["id"])));
}

/// The console offers the same export as the API, with the agent's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_exports_the_same_trail_and_says_it_holds() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let r = busy_ticket(&app).await;
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = console.get(&format!("/agent/tickets/{r}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("the hash chain holds"), "{page}");
    let (status, _, exported) = console.get(&format!("/agent/tickets/{r}/audit")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(exported, export(&app, &r).await);
    // Anonymous: to the sign-in page.
    let (status, location, _) = Console::new(&app).get(&format!("/agent/tickets/{r}/audit")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/agent/login"));
}

/// Events written before the chain existed get their links when the desk migrates: the
/// chain is computed from the rows as they are, and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_the_chain_get_their_hashes_at_migration() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let r = busy_ticket(&app).await;
    let before = export(&app, &r).await;
    let mut conn = app.raw_conn();
    // As the database was before migration 000017: no links, no record of a backfill.
    conn.batch_execute(
        "DROP TRIGGER event_hashes_no_delete; DELETE FROM event_hashes; \
         DELETE FROM settings WHERE key = 'audit_chain_backfilled';",
    )
    .expect("forget the chain");
    assert!(verify(&app).is_err(), "events without links do not verify");
    let out = desk_binary(&app.database_url, &["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(verify(&app).is_ok(), "{:?}", verify(&app));
    assert_eq!(export(&app, &r).await, before, "the same chain, computed again");
}

/// Deletes every link and the record of the backfill, as the database was before migration
/// 000017 (the append-only triggers are lifted for it).
fn forget_links(app: &TestApp, where_clause: &str) {
    let mut conn = app.raw_conn();
    let sql = if app.database_url.starts_with("postgres") {
        format!(
            "ALTER TABLE event_hashes DISABLE TRIGGER event_hashes_no_update; \
             DELETE FROM event_hashes WHERE {where_clause}; \
             ALTER TABLE event_hashes ENABLE TRIGGER event_hashes_no_update;"
        )
    } else {
        format!(
            "DROP TRIGGER IF EXISTS event_hashes_no_delete; \
             DELETE FROM event_hashes WHERE {where_clause};"
        )
    };
    conn.batch_execute(&sql).expect("forget links");
}

fn ticket_id(r: &str) -> i64 {
    r.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a numbered reference")
}

/// (events, links, distinct linked events) of one ticket.
fn chain_counts(app: &TestApp, ticket: i64) -> (i64, i64, i64) {
    use diesel::prelude::*;
    use recoverydesk::db::schema::{event_hashes, events};
    let mut conn = app.conn();
    let events: i64 = events::table
        .filter(events::ticket_id.eq(ticket))
        .count()
        .get_result(&mut *conn)
        .expect("count events");
    let mut linked: Vec<i64> = event_hashes::table
        .filter(event_hashes::ticket_id.eq(ticket))
        .select(event_hashes::event_id)
        .load(&mut *conn)
        .expect("links");
    let links = linked.len() as i64;
    linked.sort_unstable();
    linked.dedup();
    (events, links, linked.len() as i64)
}

fn setting(app: &TestApp, key: &str) -> Option<String> {
    recoverydesk::db::settings::get(&mut app.conn(), key).expect("settings")
}

async fn backfill_resumes(app: TestApp) {
    use recoverydesk::db::audit as chain;
    let mut refs = vec![busy_ticket(&app).await];
    for n in 0..2 {
        let ticket = app
            .create_ticket(json!({"kind": "general", "requester": format!("user{n}@example.test"),
                                  "subject": format!("Question {n}"), "body": "Hello – wörld"}))
            .await;
        refs.push(reference(&ticket));
    }
    let ids: Vec<i64> = refs.iter().map(|r| ticket_id(r)).collect();
    let mut before = Vec::new();
    for r in &refs {
        before.push(export(&app, r).await);
    }
    forget_links(&app, "1 = 1");
    app.raw_conn()
        .batch_execute(&format!(
            "DELETE FROM settings WHERE key IN ('{}', '{}')",
            chain::BACKFILLED_KEY,
            chain::CURSOR_KEY
        ))
        .expect("forget the backfill");
    assert!(verify(&app).is_err(), "events without links do not verify");

    // The first batch of a start that is then killed: one ticket, committed with its cursor.
    let step = chain::backfill_step(&mut app.conn(), 1)
        .expect("a batch runs")
        .expect("a ticket to link");
    assert_eq!((step.last_ticket, step.tickets), (ids[0], 1));
    assert_eq!(step.linked as i64, chain_counts(&app, ids[0]).0);
    assert_eq!(setting(&app, chain::CURSOR_KEY), Some(ids[0].to_string()));
    assert_eq!(setting(&app, chain::BACKFILLED_KEY), None, "not done yet");

    // The next start goes on after the cursor: a ticket before it is not visited again (its
    // links, removed here, stay missing), every ticket after it is linked.
    forget_links(&app, &format!("ticket_id = {}", ids[0]));
    let linked = chain::backfill(&mut app.conn()).expect("the backfill runs");
    let rest: i64 = ids[1..].iter().map(|&id| chain_counts(&app, id).0).sum();
    assert_eq!(linked as i64, rest);
    assert_eq!(chain_counts(&app, ids[0]).1, 0, "the cursor was trusted");
    for &id in &ids[1..] {
        let (events, links, distinct) = chain_counts(&app, id);
        assert!(events > 0);
        assert_eq!((links, distinct), (events, events), "one link per event of ticket {id}");
    }
    assert_eq!(setting(&app, chain::BACKFILLED_KEY).as_deref(), Some("1"));
    assert_eq!(setting(&app, chain::CURSOR_KEY), None, "the cursor goes with the run");
    assert_eq!(chain::backfill(&mut app.conn()).expect("skipped"), 0, "done is done");

    // Without the marker and the cursor, a run from the start links what is missing and only
    // that; the chains are those the desk wrote, and verify.
    app.raw_conn()
        .batch_execute(&format!("DELETE FROM settings WHERE key = '{}'", chain::BACKFILLED_KEY))
        .expect("forget the marker");
    let linked = chain::backfill(&mut app.conn()).expect("the backfill runs");
    assert_eq!(linked as i64, chain_counts(&app, ids[0]).0);
    for &id in &ids {
        let (events, links, distinct) = chain_counts(&app, id);
        assert_eq!((links, distinct), (events, events), "one link per event of ticket {id}");
    }
    assert!(verify(&app).is_ok(), "{:?}", verify(&app));
    for (r, exported) in refs.iter().zip(&before) {
        assert_eq!(
            &export(&app, r).await,
            exported,
            "the same chain of {r}, computed again"
        );
    }
}

async fn backfill_of_nothing(app: TestApp) {
    use diesel::prelude::*;
    use recoverydesk::db::audit as chain;
    use recoverydesk::db::schema::events;
    let events: i64 = events::table
        .count()
        .get_result(&mut *app.conn())
        .expect("count events");
    assert_eq!(events, 0, "a fresh desk");
    app.raw_conn()
        .batch_execute(&format!("DELETE FROM settings WHERE key = '{}'", chain::BACKFILLED_KEY))
        .expect("forget the marker");
    assert_eq!(chain::backfill(&mut app.conn()).expect("the backfill runs"), 0);
    assert_eq!(setting(&app, chain::BACKFILLED_KEY).as_deref(), Some("1"));
    assert_eq!(setting(&app, chain::CURSOR_KEY), None);
}

/// A transaction remembers each chain's last link so that its next event does not read it
/// back; a savepoint rolled back (a message that failed in its group) takes its links with
/// it, and what was remembered of them must go too, or the next event would link to a hash
/// that is not in the database.
async fn savepoint_rolled_back(app: TestApp) {
    use recoverydesk::db::{self, tickets};
    use recoverydesk::domain::event::EventType;
    let r = app
        .general_ticket("savepoint@example.test", "A group with a failure")
        .await;
    let id: i64 = r.trim_start_matches("RD-").parse().unwrap();
    let event = |conn: &mut db::AnyConnection, n: i32| {
        tickets::insert_event(conn, id, EventType::Duplicate, "system", &json!({"n": n}), None)
    };
    let mut conn = app.conn();
    let mut kept = vec![];
    db::write_transaction(&mut conn, |conn| -> Result<(), diesel::result::Error> {
        kept.push(event(conn, 1)?);
        let failed: Result<(), diesel::result::Error> = db::write_transaction(conn, |conn| {
            event(conn, 2)?;
            event(conn, 3)?;
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(failed.is_err());
        // A released savepoint's links stay, and are what the next event links to.
        db::write_transaction(conn, |conn| event(conn, 4).map(|e| kept.push(e)))?;
        kept.push(event(conn, 5)?);
        Ok(())
    })
    .unwrap();
    assert!(verify(&app).is_ok(), "the chain is whole: {:?}", verify(&app));
    let chain = export(&app, &r).await;
    assert!(audit::verify_export(&chain).is_ok());
    let linked: Vec<i64> = chain
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "duplicate")
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(linked, kept, "the rolled-back events are in no chain");
}
