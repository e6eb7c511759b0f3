//! Every door a customer's or a mail's text comes in by is scanned: one planted secret per
//! door, then searched for (plain, base64 at every alignment, hex) in the database file and its
//! WAL, the raw store and quarantine, the mail directory and the mail gate's log output.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, account, event_types, reference};
use base64::Engine;
use recoverydesk::services::inbound::Outcome;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

/// A SendGrid-shaped key unique to door `n` (the redactor knows the shape anywhere).
fn secret(n: usize) -> String {
    format!("SG.door{n:02}AbCdEfGhIjKlMnOp.Zy{n:02}qRsTuVwXyZ0123456789-abcdefghijklmnopqr")
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// What a secret looks like in stored bytes: plain, the stretch of its base64 that depends on
/// it alone at each of the three alignments, and hex (PostgreSQL prints bytea so).
fn encodings(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    for skip in 0..3 {
        let enc = b64(&format!("{}{secret}", "x".repeat(skip)));
        out.push(enc[4..enc.len() - 4].to_string());
    }
    out.push(secret.bytes().map(|b| format!("{b:02x}")).collect());
    out
}

fn leaks(haystack: &[u8], secrets: &[String]) -> Vec<String> {
    let mut found = vec![];
    for s in secrets {
        for e in encodings(s) {
            if haystack.windows(e.len()).any(|w| w == e.as_bytes()) {
                found.push(format!("{s} (as {e})"));
            }
        }
    }
    found
}

/// Runs `recoverydesk mailgate` on one message, with its log at debug level; returns the JSON
/// line and the log.
fn mailgate(app: &TestApp, raw: &[u8]) -> (Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .arg("mailgate")
        .env("DATABASE_URL", &app.database_url)
        .env("RECOVERYDESK_SECRET_KEY", "ab".repeat(64))
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(raw).expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("mailgate finishes");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{log}");
    (serde_json::from_str(stdout.trim()).expect("one JSON line"), log)
}

/// A mail with a secret behind every door a mail has.
fn hostile_mail(s: &[String]) -> String {
    let deep = format!(
        "From: deep@else.test\r\nSubject: deep\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64(&format!("the deep key {}\n", s[12]))
    );
    let forwarded = format!(
        "From: someone@else.test\r\nSubject: =?iso-8859-1?q?Fwd=3A_{}?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--inner\r\nContent-Type: message/rfc822\r\n\r\n{deep}\r\n--inner--\r\n",
        s[11]
    );
    let (html_a, html_b) = s[3].split_at(10);
    let (qp_a, qp_b) = s[2].split_at(30);
    format!(
        concat!(
            "From: \"Key {s0}\" <mailer@cust.test>\r\n",
            "To: support@desk.test\r\n",
            "Subject: =?utf-8?b?{subject}?=\r\n",
            "Message-ID: <doors-a@cust.test>\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n",
            "--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n",
            "--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
            "I am locked out. My key is {qp_a}=\r\n{qp_b} thanks\r\n",
            "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n",
            "<p>Also {html_a}<b></b>{html_b} and <a href=\"https://x.test/?k={s4}\">this</a></p>\r\n",
            "--alt--\r\n",
            "--outer\r\nContent-Type: application/json; name=\"config.json\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{json}\r\n",
            "--outer\r\nContent-Type: application/octet-stream; name=\"{s6}.bin\"\r\nContent-Disposition: attachment; filename=\".env\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{env}\r\n",
            "--outer\r\nContent-Type: text/plain; charset=utf-8; x-note=\"{s8}\"\r\nContent-Disposition: attachment; filename=\"smtp-{s9}.log\"\r\n\r\nlog line with {s10}\r\n",
            "--outer\r\nContent-Type: message/rfc822\r\n\r\n{forwarded}\r\n",
            "--outer--\r\n",
        ),
        s0 = s[0],
        subject = b64(&format!("Help {}", s[1])),
        qp_a = qp_a,
        qp_b = qp_b,
        html_a = html_a,
        html_b = html_b,
        s4 = s[4],
        json = b64(&format!("{{\"sendgrid\": \"{}\"}}", s[5])),
        s6 = s[6],
        env = b64(&format!("SENDGRID_API_KEY={}\nDEBUG=1\n", s[7])),
        s8 = s[8],
        s9 = s[9],
        s10 = s[10],
        forwarded = forwarded,
    )
}

/// Everything PostgreSQL holds in the tables, as text (bytea printed as hex).
fn pg_dump(url: &str) -> String {
    use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, sql_types::Text};
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        table_name: String,
    }
    #[derive(QueryableByName)]
    struct Dump {
        #[diesel(sql_type = Text)]
        dump: String,
    }
    let mut conn = PgConnection::establish(url).expect("the test database");
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT table_name::text AS table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .load(&mut conn)
    .expect("tables");
    let mut out = String::new();
    for t in tables {
        let rows: Vec<Dump> = diesel::sql_query(format!(
            "SELECT coalesce(string_agg(t::text, E'\\n'), '') AS dump FROM \"{}\" t",
            t.table_name
        ))
        .load(&mut conn)
        .expect("dump");
        for r in rows {
            out.push_str(&r.dump);
            out.push('\n');
        }
    }
    out
}

both_backends!(a_secret_behind_every_door_is_found_nowhere_afterwards, every_door);

async fn every_door(app: TestApp) {
    let mail_dir = tempfile::tempdir().expect("a mail directory");
    let app = app
        .respawn_with(&[("--mail-dir", mail_dir.path().to_str().expect("utf-8 path"))])
        .await;
    app.import_accounts(&[account("acc_7", "acme-mailer", "ops@acme.test", "active")]);
    let s: Vec<String> = (0..40).map(secret).collect();
    let mut logs = String::new();

    // Mail: display name, encoded subjects, quoted-printable, HTML split by tags and in an
    // attribute, JSON and octet-stream parts, a filename, a Content-Type parameter, a log
    // file, and a base64 body in an rfc822 inside a multipart inside an rfc822.
    let (line, log) = mailgate(&app, hostile_mail(&s).as_bytes());
    logs.push_str(&log);
    assert_eq!(line["outcome"], "created", "{line}");
    let mail_ticket = app.ticket(line["ticket"].as_str().expect("a ticket")).await;
    assert!(event_types(&mail_ticket).contains(&"redaction".to_string()));
    let listed = mail_ticket.to_string();
    assert!(
        listed.contains(".env") && listed.contains("config.json"),
        "attachments kept: {listed}"
    );

    // Quarantined: no From, a Q-encoded subject and a base64 body.
    let no_from = format!(
        "Subject: =?iso-8859-1?q?{}?=\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        s[14],
        b64(&format!("key {}\n", s[13]))
    );
    let (line, log) = mailgate(&app, no_from.as_bytes());
    logs.push_str(&log);
    assert_eq!(line["outcome"], "quarantined", "{line}");

    // Quarantined: more parts than allowed, the secret base64-encoded in one of them.
    let mut many = String::from(
        "From: parts@cust.test\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n",
    );
    for i in 0..1001 {
        if i == 500 {
            many.push_str(&format!(
                "--p\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                b64(&format!("k={}", s[15]))
            ));
        } else {
            many.push_str("--p\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
    }
    many.push_str("--p--\r\n");
    let (line, log) = mailgate(&app, many.as_bytes());
    logs.push_str(&log);
    assert_eq!(line["outcome"], "quarantined", "{line}");

    // Forms: every field, not only `details`.
    let (status, _, _) = app
        .form(
            "/help/ip-lockout",
            &[
                ("email", "ops@acme.test"),
                ("account", &s[16]),
                ("current_ip", "203.0.113.9"),
                ("tried_allowlisted_ips", "yes"),
                ("tried_from", &s[17]),
                ("details", &s[18]),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    let login = |username: &str, error: &str, details: &str| {
        vec![
            ("email".to_string(), "dev@cust.test".to_string()),
            ("problem".to_string(), "smtp_535".to_string()),
            ("smtp_username".to_string(), username.to_string()),
            ("error_text".to_string(), error.to_string()),
            ("details".to_string(), details.to_string()),
        ]
    };
    for fields in [login(&s[19], &s[20], &s[21]), login(&s[33], &s[34], "again")] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, _, body) = app.form("/help/login", &fields).await;
        assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{body}");
    }

    // API: every ticket field.
    let api = app
        .create_ticket(json!({
            "kind": "ip_lockout", "requester": "api@cust.test", "subject": s[22], "body": s[23],
            "account": s[24], "tried_from": s[25], "outcome": s[26], "smtp_username": s[27],
            "error_text": s[28], "details": s[29],
        }))
        .await;
    assert!(!api.to_string().contains("SG.door"), "{api}");

    // Status page: a reply, and an allowlisted-attempts report.
    let waiting = app
        .create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test", "body": "locked"}))
        .await;
    let r = reference(&waiting);
    let path = app.status_path_of(&r).await;
    let (status, _, _) = app.form(&format!("{path}/reply"), &[("body", &s[30])]).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    let (status, _, _) = app
        .form(
            &format!("{path}/allowlisted-attempts"),
            &[("tried_from", &s[31]), ("outcome", &s[32])],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    let waiting = app.ticket(&r).await;
    let redactions = event_types(&waiting).iter().filter(|t| *t == "redaction").count();
    assert_eq!(
        redactions, 2,
        "the reply's and the report's secrets are both recorded: {waiting}"
    );

    // Every mail the desk sends, written out.
    app.deliver(0).await;

    let mut places: Vec<(String, Vec<u8>)> = vec![("mail gate log".into(), logs.into_bytes())];
    for entry in std::fs::read_dir(mail_dir.path()).expect("the mail directory") {
        let path = entry.expect("an entry").path();
        places.push((path.display().to_string(), std::fs::read(&path).expect("a mail file")));
    }
    match app.backend() {
        Backend::Sqlite => {
            let file = app.database_url.trim_start_matches("sqlite://").to_string();
            for suffix in ["", "-wal"] {
                let path = format!("{file}{suffix}");
                if let Ok(bytes) = std::fs::read(&path) {
                    places.push((path, bytes));
                }
            }
        }
        Backend::Postgres => places.push(("PostgreSQL rows".into(), pg_dump(&app.database_url).into_bytes())),
    }
    assert!(
        places.len() >= 3,
        "looked in: {:?}",
        places.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    for (place, bytes) in &places {
        let found = leaks(bytes, &s);
        assert!(found.is_empty(), "in {place}: {found:#?}");
    }
}

both_backends!(more_mime_parts_than_allowed_are_quarantined_with_that_reason, part_cap);

async fn part_cap(app: TestApp) {
    let app = app.respawn_with(&[("--max-mime-parts", "20")]).await;
    let message = |parts: usize| {
        let mut m = format!(
            "From: parts@cust.test\r\nSubject: parts {parts}\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n"
        );
        for _ in 0..parts {
            m.push_str("--p\r\nContent-Type: text/plain\r\n\r\nlocked out\r\n");
        }
        m.push_str("--p--\r\n");
        m
    };
    // The root counts: 19 parts inside it make 20.
    assert_eq!(app.ingest(message(19).as_bytes()).outcome, Outcome::Created);
    let over = app.ingest(message(20).as_bytes());
    assert_eq!(over.outcome, Outcome::Quarantined);
    let (_, list) = app.get("/api/v1/quarantine").await;
    assert!(
        list.to_string().contains("the message has more than 20 MIME parts"),
        "{list}"
    );

    // Nested forwarded messages a hundred thousand deep: refused before parsing, no stack
    // overflow, kept in quarantine.
    let mut deep = String::new();
    for _ in 0..100_000 {
        deep.push_str("From: d@cust.test\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    deep.push_str("From: d@cust.test\r\n\r\nbottom\r\n");
    assert_eq!(app.ingest(deep.as_bytes()).outcome, Outcome::Quarantined);
}

/// Forwarded messages nested as deep as the default part limit allows are handled on a
/// thread with a small stack (a web worker's), without overflowing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_forwards_within_the_limit_do_not_overflow_the_stack() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut deep = String::from("From: nest@cust.test\r\nSubject: nested\r\nContent-Type: message/rfc822\r\n\r\n");
    for _ in 0..990 {
        deep.push_str("From: d@cust.test\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    deep.push_str(&format!("From: d@cust.test\r\n\r\nbottom {}\r\n", secret(1)));
    let (pool, desk) = (app.pool.clone(), app.desk.clone());
    let outcome = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let mut conn = pool.get().expect("a connection");
            recoverydesk::services::inbound::ingest(&mut conn, &desk, deep.as_bytes(), "test")
                .expect("ingested")
                .outcome
        })
        .expect("a thread")
        .join()
        .expect("no overflow");
    assert_eq!(outcome, Outcome::Created);
}

/// The part limit is a setting, validated like the other sizes.
#[test]
fn the_part_limit_must_be_at_least_one() {
    use clap::Parser;
    let cli = recoverydesk::cli::Cli::try_parse_from([
        "recoverydesk",
        "--database-url",
        "sqlite://x.db",
        "--max-mime-parts",
        "0",
    ])
    .expect("parses");
    let err = recoverydesk::config::Settings::from_options(&cli.options).expect_err("refused");
    assert!(err.contains("RECOVERYDESK_MAX_MIME_PARTS"), "{err}");
    let cli =
        recoverydesk::cli::Cli::try_parse_from(["recoverydesk", "--database-url", "sqlite://x.db"]).expect("parses");
    let settings = recoverydesk::config::Settings::from_options(&cli.options).expect("defaults");
    assert_eq!(settings.max_mime_parts, 1000);
}

/// Parsing and scanning need no database: a hostile message is prepared while another
/// connection holds SQLite's write lock, and only the writes wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_scanned_before_the_write_lock_is_taken() {
    use diesel::RunQueryDsl;
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut holder = app.raw_conn();
    let mut lock = |sql: &str| match &mut holder {
        recoverydesk::db::AnyConnection::Sqlite(c) => {
            diesel::sql_query(sql).execute(c).expect("the lock statement runs");
        }
        _ => unreachable!("a SQLite app"),
    };
    lock("BEGIN IMMEDIATE");
    // A body of nothing but the scanners' bait, base64-encoded as mail carries it.
    let bait = "pass: password: SG. AUTH PLAIN 4111 1111 1111 1111\n".repeat(20_000);
    let raw = format!(
        "From: big@cust.test\r\nSubject: big\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        base64::engine::general_purpose::STANDARD
            .encode(&bait)
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).to_string())
            .collect::<Vec<_>>()
            .join("\r\n")
    );
    let prepared = recoverydesk::services::inbound::prepare(&app.desk, raw.as_bytes()).expect("prepared");
    assert!(prepared.is_routable(), "scanned and ready while the database is locked");
    lock("COMMIT");
    let mut conn = app.conn();
    let stored = recoverydesk::services::inbound::store_prepared(&mut conn, &app.desk, &prepared, "test", None)
        .expect("the writes run once the lock is free");
    assert_eq!(stored.outcome, Outcome::Created);
}
