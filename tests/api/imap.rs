//! The IMAP channel against a real IMAP server started here: Debian's dovecot-imapd, on a
//! random port with a throwaway passdb and maildir (docs/reference.md#imap). Without dovecot
//! the tests say SKIPPED loudly; with RECOVERYDESK_REQUIRE_DOVECOT=1 (CI) they fail instead.

use crate::both_backends;
use crate::dovecot::{Dovecot, PASSWORD};
use crate::helpers::{Backend, TestApp, account};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `recoverydesk fetch-imap --once` on the app's database.
fn fetch_command(app: &TestApp, server: &Dovecot, password: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recoverydesk"));
    command
        .args(["fetch-imap", "--once"])
        .env("DATABASE_URL", &app.database_url)
        .env("RECOVERYDESK_SECRET_KEY", "ab".repeat(64))
        .env("RECOVERYDESK_IMAP_URL", server.url())
        .env("RECOVERYDESK_IMAP_PASSWORD", password)
        .env("RECOVERYDESK_AUTHSERV_ID", "mx.desk.test")
        .env("RECOVERYDESK_MAIL_DIR", server.dir.path().join("mail"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn fetch(app: &TestApp, server: &Dovecot) -> (Option<i32>, String, String) {
    let out: Output = fetch_command(app, server, PASSWORD).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The count before `label` in a summary line ("3 created, 0 appended, …").
fn counted(line: &str, label: &str) -> usize {
    line.split(", ")
        .flat_map(|part| part.split(": "))
        .find_map(|part| {
            part.strip_suffix(&format!(" {label}"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn tickets(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use recoverydesk::db::schema::tickets;
    let mut conn = app.conn();
    tickets::table.count().get_result(&mut *conn).unwrap()
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: customer{i}@customer.test\r\nTo: support@desk.test\r\nSubject: I forgot my username ({i})\r\nMessage-ID: <imap-{i}@customer.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nHello, I cannot remember my username. Number {i}.\r\n"
    )
    .into_bytes()
}

/// Waits (up to a generous bound, never asserted as a speed) until `done` says yes.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

both_backends!(
    imap_messages_become_tickets_once_and_move_after_commit_even_after_a_uidvalidity_reset,
    once_and_moved
);

async fn once_and_moved(app: TestApp) {
    let Some(mut server) = Dovecot::start() else { return };
    for i in 0..3 {
        server.deliver(&message(i));
    }
    let (code, out, err) = fetch(&app, &server);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!((counted(&out, "created"), counted(&out, "failed")), (3, 0), "{out}");
    assert_eq!(tickets(&app), 3);
    assert_eq!(server.count("INBOX"), (0, 0), "moved out of the INBOX");
    assert_eq!(
        server.count("recoverydesk-processed"),
        (3, 3),
        "moved and flagged \\Seen"
    );
    let t = app.ticket("RD-1").await;
    assert_eq!(t["kind"], "forgot_username");

    // Nothing new: nothing happens.
    let (code, out, _) = fetch(&app, &server);
    assert_eq!((code, counted(&out, "created")), (Some(0), 0), "{out}");

    // The server is restored from a backup: the same messages back, a new UIDVALIDITY.
    for i in 0..3 {
        server.deliver(&message(i));
    }
    server.reset_uid_validity(4242);
    let (code, out, err) = fetch(&app, &server);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!((counted(&out, "created"), counted(&out, "duplicate")), (0, 3), "{out}");
    assert_eq!(tickets(&app), 3, "nothing imported twice");
    assert_eq!(server.count("INBOX").0, 0);

    // Over IMAP too, a forged registered address opens a flagged ticket of its own.
    app.import_accounts(&[account("acc_9", "owner-user", "owner@owner.test", "active")]);
    server.deliver(b"Authentication-Results: mx.desk.test; dmarc=fail header.from=owner.test\r\nFrom: owner@owner.test\r\nTo: support@desk.test\r\nSubject: Re: [RD-1] grant my IP\r\nMessage-ID: <imap-forged@owner.test>\r\n\r\nplease add 198.51.100.9\r\n");
    let (code, out, err) = fetch(&app, &server);
    assert_eq!((code, counted(&out, "created")), (Some(0), 1), "{out}{err}");
    let forged = app.ticket("RD-4").await;
    assert_eq!(
        (forged["flagged"].as_bool(), forged["account_id"].as_str()),
        (Some(true), None)
    );
    assert!(
        forged["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "forged_sender")
    );
}

both_backends!(two_instances_never_both_fetch_one_message, two_instances);

async fn two_instances(app: TestApp) {
    let Some(mut server) = Dovecot::start() else { return };
    let n = 120;
    for i in 0..n {
        server.deliver(&message(i));
    }
    let first = fetch_command(&app, &server, PASSWORD).spawn().unwrap();
    let second = fetch_command(&app, &server, PASSWORD).spawn().unwrap();
    let outputs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
    let mut created = 0;
    for out in &outputs {
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        created += counted(&text, "created");
        assert_eq!(counted(&text, "duplicate"), 0, "no message was fetched by both: {text}");
    }
    assert_eq!(created, n);
    assert_eq!(tickets(&app), n as i64);
    assert_eq!(server.count("recoverydesk-processed").0, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_fetch_and_commit_loses_nothing_and_duplicates_nothing() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let Some(mut server) = Dovecot::start() else { return };
    let n = 400;
    for i in 0..n {
        server.deliver(&message(i));
    }
    let mut child = fetch_command(&app, &server, PASSWORD).spawn().unwrap();
    wait_until("the first tickets", || tickets(&app) >= 20);
    let killed_midway = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let (code, out, err) = fetch(&app, &server);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        tickets(&app),
        n as i64,
        "every message once (killed mid-way: {killed_midway})"
    );
    assert_eq!(server.count("INBOX").0, 0);
    assert_eq!(server.count("recoverydesk-processed").0, n, "each moved once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_mid_fetch_or_a_refused_login_is_a_temporary_failure() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let Some(mut server) = Dovecot::start() else { return };

    // Bad credentials: 75 and a clear message, nothing fetched.
    server.deliver(&message(0));
    let out = fetch_command(&app, &server, "wrong-password").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("refused the login of desk"), "{err}");
    assert!(!err.contains("wrong-password"), "the password is never printed");
    assert_eq!(tickets(&app), 0);

    // The server stops while a fetch runs: 75 (or done, if it was quicker), then all is fetched.
    let n = 400;
    for i in 1..n {
        server.deliver(&message(i));
    }
    let child = fetch_command(&app, &server, PASSWORD).spawn().unwrap();
    wait_until("the first tickets", || tickets(&app) >= 20);
    server.stop();
    let out = child.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 75)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unreachable = fetch(&app, &server);
    assert_eq!(unreachable.0, Some(75), "a stopped server is a temporary failure");
    assert!(
        unreachable.2.contains("cannot reach the IMAP server"),
        "{}",
        unreachable.2
    );
    server.launch();
    let (code, out, err) = fetch(&app, &server);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(tickets(&app), n as i64);
    assert_eq!(server.count("INBOX").0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fetches_the_mailbox_and_reports_a_refused_login_in_healthz() {
    let Some(mut server) = Dovecot::start() else { return };
    let url = server.url();
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("--imap-url", &url),
            ("--imap-password", PASSWORD),
            ("--imap-poll-seconds", "1"),
        ],
    )
    .await
    else {
        return;
    };
    server.deliver(&message(1));
    wait_until("the first message fetched by serve", || tickets(&app) == 1);
    // A message arriving while serve waits (in IDLE) is fetched too.
    server.deliver(&message(2));
    wait_until("the second message", || tickets(&app) == 2);
    let (status, health) = app.get("/healthz").await;
    assert_eq!(
        (status.as_u16(), health["imap"]["status"].as_str()),
        (200, Some("ok")),
        "{health}"
    );
    drop(app);

    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("--imap-url", &url),
            ("--imap-password", "wrong"),
            ("--imap-poll-seconds", "1"),
        ],
    )
    .await
    else {
        return;
    };
    let client = reqwest::Client::new();
    let mut health = serde_json::Value::Null;
    for _ in 0..600 {
        health = client
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["imap"]["status"] == "error" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health["status"], "ok", "the web side stays up");
    let error = health["imap"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("refused the login"), "{health}");
}
