//! The inbound channels and the threading rules, black-box.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, account};
use recoverydesk::services::inbound::Outcome;
use reqwest::StatusCode;
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};

fn message(from: &str, subject: &str, message_id: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: support@desk.test\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n{headers}\r\n{body}\r\n").into_bytes()
}

both_backends!(
    replies_thread_by_headers_both_ways_and_by_tag_only_for_the_entitled,
    threading
);
both_backends!(
    a_redelivery_is_a_duplicate_but_a_reused_message_id_with_new_content_is_kept,
    duplicates
);
both_backends!(the_webhook_takes_mail_with_its_token_only, webhook);
both_backends!(
    a_reply_with_forty_thousand_references_is_stored_and_threads_by_its_nearest,
    many_references
);
both_backends!(
    a_bounce_naming_our_mail_forty_thousand_times_marks_it_once,
    bounce_with_many_references
);
both_backends!(lists_of_ids_longer_than_sqlite_binds_are_read_whole, long_id_lists);
both_backends!(a_subject_of_many_tags_is_looked_up_by_its_first_five, many_subject_tags);

/// A forged `References` of 40,000 Message-IDs (more than SQLite binds in one statement) is
/// stored, not refused for ever: it threads by the ids nearest the end, where a reply's parent
/// is, and a message whose nearest ids name no ticket opens one.
async fn many_references(app: TestApp) {
    let first = app.ingest(&message(
        "helper@y.test",
        "locked out",
        "<p1@y.test>",
        "",
        "Please help",
    ));
    let r = first.ticket.clone().unwrap();
    let junk = |n: usize| {
        (0..n)
            .map(|i| format!("<junk{i}@forged.test>"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let reply = app.ingest(&message(
        "helper@y.test",
        "Re: locked out",
        "<p2@y.test>",
        &format!("References: {} <p1@y.test>\r\n", junk(40_000)),
        "still locked",
    ));
    assert_eq!(
        (reply.outcome, reply.ticket.as_deref()),
        (Outcome::Appended, Some(r.as_str()))
    );
    // The parent beyond the first hundred ids from the end is not looked for.
    let far = app.ingest(&message(
        "helper@y.test",
        "Re: locked out",
        "<p3@y.test>",
        &format!("References: <p1@y.test> {}\r\n", junk(40_000)),
        "another",
    ));
    assert_eq!(far.outcome, Outcome::Created);
    assert_ne!(far.ticket.as_deref(), Some(r.as_str()));
}

async fn threading(app: TestApp) {
    app.import_accounts(&[account("acc_1", "owner-user", "owner@x.test", "active")]);
    // The requester writes first; their own Message-ID is what a later reply refers to.
    let first = app.ingest(&message(
        "helper@y.test",
        "locked out by IP",
        "<c1@y.test>",
        "",
        "Please help, account owner-user",
    ));
    assert_eq!(first.outcome, Outcome::Created);
    let r = first.ticket.clone().unwrap();
    let t = app.ticket(&r).await;
    assert_eq!(
        (t["kind"].clone(), t["account_id"].clone()),
        (json!("ip_lockout"), json!(null))
    );

    // Threading by the customer's own Message-ID.
    let second = app.ingest(&message(
        "helper@y.test",
        "more",
        "<c2@y.test>",
        "In-Reply-To: <c1@y.test>\r\n",
        "also this",
    ));
    assert_eq!(
        (second.outcome, second.ticket.as_deref()),
        (Outcome::Appended, Some(r.as_str()))
    );
    // Threading by one of ours, in References only.
    let ours = app.our_message_ids(&r)[0].clone();
    let third = app.ingest(&message(
        "helper@y.test",
        "x",
        "<c3@y.test>",
        &format!("References: <zz@y.test> {ours}\r\n"),
        "reply",
    ));
    assert_eq!(third.ticket.as_deref(), Some(r.as_str()));

    // Headers naming messages of two tickets: the ticket of the newest message named, in
    // whichever order the headers name them.
    let other = app.ingest(&message(
        "helper@y.test",
        "another question",
        "<c7@y.test>",
        "",
        "new topic",
    ));
    let other = other.ticket.expect("a second ticket");
    assert_ne!(other, r);
    for (n, headers) in [
        "In-Reply-To: <c1@y.test>\r\nReferences: <c7@y.test> <c1@y.test>\r\n",
        "In-Reply-To: <c7@y.test>\r\nReferences: <c1@y.test> <c7@y.test>\r\n",
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("<both-{n}@y.test>");
        let both = app.ingest(&message("helper@y.test", "which one", &id, headers, "both"));
        assert_eq!(both.ticket.as_deref(), Some(other.as_str()), "{headers}");
    }

    // A subject tag threads only for the requester or the account's registered address.
    let number = r.trim_start_matches("RD-");
    let stranger = app.ingest(&message(
        "stranger@z.test",
        &format!("Re: [RD-{number}] hi"),
        "<s1@z.test>",
        "",
        "I am someone else",
    ));
    assert_eq!(
        stranger.outcome,
        Outcome::Created,
        "a stranger's tagged mail opens a new ticket"
    );
    assert_ne!(stranger.ticket.as_deref(), Some(r.as_str()));
    let own = app.ingest(&message(
        "HELPER@y.test",
        &format!("Re: [RD-{number}] hi"),
        "<c4@y.test>",
        "",
        "tag only",
    ));
    assert_eq!(
        own.ticket.as_deref(),
        Some(r.as_str()),
        "the requester's tag threads (address matched case-insensitively)"
    );
    app.act(&r, "link_account", json!({"account_id": "acc_1"})).await;
    let registered = app.ingest(&message(
        "owner@x.test",
        &format!("[RD-{number}] it is me"),
        "<o1@x.test>",
        "",
        "owner here",
    ));
    assert_eq!(
        registered.ticket.as_deref(),
        Some(r.as_str()),
        "the registered address's tag threads"
    );

    // A stranger threaded in by headers is appended, marked, and changes nothing.
    app.act(&r, "resolve", json!({})).await;
    let by_headers = app.ingest(&message(
        "stranger@z.test",
        "Re: x",
        "<s2@z.test>",
        "In-Reply-To: <c1@y.test>\r\n",
        "i tried from the office",
    ));
    assert_eq!(by_headers.ticket.as_deref(), Some(r.as_str()));
    let t = app.ticket(&r).await;
    assert_eq!(t["state"], "resolved", "a stranger never reopens");
    let last = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["type"] == "message_in")
        .unwrap();
    assert_eq!(last["data"]["sender"], "stranger");
    assert_eq!(t["requester"], "helper@y.test", "never changes the requester");

    // The requester's reply reopens a resolved ip_lockout; its attempts were never reported, so
    // it reopens at the first step.
    app.ingest(&message(
        "helper@y.test",
        "Re: x",
        "<c5@y.test>",
        "In-Reply-To: <c1@y.test>\r\n",
        "still locked",
    ));
    assert_eq!(app.ticket(&r).await["state"], "awaiting_allowlisted_attempts");
}

async fn duplicates(app: TestApp) {
    let raw = message("dup@y.test", "help", "<d1@y.test>", "", "forgot my username");
    let first = app.ingest(&raw);
    let again = app.ingest(&raw);
    assert_eq!((first.outcome, again.outcome), (Outcome::Created, Outcome::Duplicate));
    assert_eq!(again.ticket, first.ticket);
    let t = app.ticket(first.ticket.as_deref().unwrap()).await;
    assert_eq!(
        t["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "message_in")
            .count(),
        1
    );
    assert!(
        t["events"].as_array().unwrap().iter().any(|e| e["type"] == "duplicate"),
        "the redelivery is on the record"
    );
    let changed = message(
        "dup@y.test",
        "help",
        "<d1@y.test>",
        "",
        "forgot my username, and here is more",
    );
    let third = app.ingest(&changed);
    assert_ne!(
        third.outcome,
        Outcome::Duplicate,
        "same Message-ID, new content: never silently dropped"
    );
    // Without a Message-ID, the content alone decides.
    let bare = b"From: nobody-id@y.test\r\nSubject: hi\r\n\r\nno id here\r\n";
    assert_eq!(app.ingest(bare).outcome, Outcome::Created);
    assert_eq!(app.ingest(bare).outcome, Outcome::Duplicate);
}

async fn webhook(app: TestApp) {
    let app = app
        .respawn_with(&[
            ("--inbound-token", "hook-secret-0123456789"),
            ("--max-message-bytes", "4096"),
        ])
        .await;
    let url = format!("{}/inbound/email", app.address);
    let raw = message("hook@y.test", "I forgot my username", "<w1@y.test>", "", "hi");
    for auth in [None, Some("Bearer wrong"), Some("hook-secret-0123456789")] {
        let mut request = app.client.post(&url).body(raw.clone());
        if let Some(value) = auth {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    let ok = app
        .client
        .post(&url)
        .bearer_auth("hook-secret-0123456789")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["outcome"], "created");
    assert!(body["ticket"].as_str().unwrap().starts_with("RD-"));
    let again: serde_json::Value = app
        .client
        .post(&url)
        .bearer_auth("hook-secret-0123456789")
        .body(raw)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["outcome"], "duplicate");
    let big = app
        .client
        .post(&url)
        .bearer_auth("hook-secret-0123456789")
        .body(vec![b'a'; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let empty: serde_json::Value = app
        .client
        .post(&url)
        .bearer_auth("hook-secret-0123456789")
        .body("")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(empty["outcome"], "quarantined", "any body, even empty, is a message");
    assert!(empty["quarantine_id"].as_str().unwrap().starts_with("q_"));
    // Only a POST delivers: with the right token, another method finds no route.
    for method in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE] {
        let response = app
            .client
            .request(method.clone(), &url)
            .bearer_auth("hook-secret-0123456789")
            .body(message("hook@y.test", "by another method", "<w2@y.test>", "", "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_503_when_the_database_is_gone() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[("--inbound-token", "hook-secret-0123456789")]).await
    else {
        return;
    };
    let server = crate::helpers::postgres_server_url().unwrap();
    crate::helpers::drop_pg_database(&server, app.database_url.rsplit('/').next().unwrap());
    let response = app
        .client
        .post(format!("{}/inbound/email", app.address))
        .bearer_auth("hook-secret-0123456789")
        .body(message("a@y.test", "hi", "<x@y.test>", "", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

fn mailgate(
    database_url: &str,
    stdin: &[u8],
    extra_env: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recoverydesk"));
    command
        .arg("mailgate")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RECOVERYDESK_SECRET_KEY", "ab".repeat(64))
        .env("RUST_LOG", "error");
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailgate_speaks_sysexits_and_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("nothing-here.db").display());
    let raw = message("pipe@y.test", "I forgot my username", "<p1@y.test>", "", "hi");
    let (code, stdout, stderr) = mailgate(&missing, &raw, &[], &[]);
    assert_eq!(code, Some(75), "{stderr}");
    assert!(stdout.is_empty() && stderr.contains("does not exist"));
    assert!(!dir.path().join("nothing-here.db").exists(), "no stray database");
    std::fs::write(dir.path().join("empty.db"), b"").unwrap();
    let (code, _, stderr) = mailgate(
        &format!("sqlite://{}", dir.path().join("empty.db").display()),
        &raw,
        &[],
        &[],
    );
    assert_eq!(code, Some(75), "no schema yet: retry later ({stderr})");
    let (code, _, _) = mailgate("postgres://postgres@127.0.0.1:1/nothing", &raw, &[], &[]);
    assert_eq!(code, Some(75), "unreachable server");

    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (code, stdout, stderr) = mailgate(&app.database_url, &raw, &[], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["outcome"], "created");
    assert_eq!(stdout.lines().count(), 1, "one JSON line");
    let (code, stdout, _) = mailgate(&app.database_url, &raw, &[], &[]);
    assert_eq!(
        (
            code,
            serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()["outcome"].clone()
        ),
        (Some(0), json!("duplicate"))
    );
    let (code, stdout, _) = mailgate(&app.database_url, b"", &[], &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()["outcome"],
        "quarantined"
    );
    let (code, _, _) = mailgate(
        &app.database_url,
        &raw,
        &[("RECOVERYDESK_MAX_MESSAGE_BYTES", "20")],
        &[],
    );
    assert_eq!(code, Some(65), "too large: bounce it");
    let (code, _, _) = mailgate(&app.database_url, &raw, &[], &["--no-such-flag"]);
    assert_eq!(code, Some(64));
    let (code, _, _) = mailgate(
        &app.database_url,
        &raw,
        &[("RECOVERYDESK_BASE_URL", "ftp://wrong")],
        &[],
    );
    assert_eq!(code, Some(75), "a misconfigured alias defers, it does not bounce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_maildir_is_idempotent_quiet_by_default_and_counts_outcomes() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.import_accounts(&[account("acc_1", "arch-user", "archive@y.test", "active")]);
    let dir = tempfile::tempdir().unwrap();
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::write(
        dir.path().join("new/1"),
        message("archive@y.test", "I forgot my username", "<a1@y.test>", "", "old mail"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("cur/2:2,S"),
        message(
            "archive@y.test",
            "Re: x",
            "<a2@y.test>",
            "In-Reply-To: <a1@y.test>\r\n",
            "more",
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("cur/3:2,S"), b"").unwrap();
    std::fs::write(dir.path().join("tmp/partial"), b"From: half").unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
            .arg("import-maildir")
            .arg(dir.path())
            .args(extra)
            .env("DATABASE_URL", &app.database_url)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, stdout) = run(&[]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("imported 3 messages") && stdout.contains("1 created, 1 appended, 0 duplicate, 1 quarantined"),
        "{stdout}"
    );
    assert!(app.outbox().is_empty(), "an archive is imported quietly");
    let (_, stdout) = run(&[]);
    assert!(
        stdout.contains("0 created, 0 appended, 3 duplicate"),
        "idempotent: {stdout}"
    );
    std::fs::write(
        dir.path().join("new/4"),
        message("late@y.test", "locked out", "<a4@y.test>", "", "hi"),
    )
    .unwrap();
    let (_, stdout) = run(&["--send-acknowledgements"]);
    assert!(stdout.contains("1 created"), "{stdout}");
    assert_eq!(
        app.outbox().iter().filter(|m| m.1 == "late@y.test").count(),
        1,
        "answered when asked to"
    );
}

both_backends!(a_nul_byte_in_a_message_never_blocks_its_delivery, nul_bytes);

async fn nul_bytes(app: TestApp) {
    let raw = b"From: nul@y.test\r\nSubject: locked\0 out\r\nMessage-ID: <n1@y.test>\r\n\r\nI am locked out\0 of my account\r\n";
    let result = app.ingest(raw);
    assert_eq!(
        result.outcome,
        Outcome::Created,
        "stored on every backend (PostgreSQL refuses NUL in text)"
    );
    let t = app.ticket(result.ticket.as_deref().unwrap()).await;
    assert_eq!(t["subject"], "locked out");
    // Re-delivered by local(8) with its envelope lines in front: the same message.
    let redelivered = [b"From nul@y.test  Mon Nov 23 10:05:07 2026\r\nReturn-Path: <nul@y.test>\r\nDelivered-To: support@desk.test\r\n".as_slice(), raw].concat();
    assert_eq!(app.ingest(&redelivered).outcome, Outcome::Duplicate);
}

/// Many webhook deliveries at once go through the one writer (group commit): each message is
/// stored once, duplicates sent at the same moment included, and every caller gets its answer.
async fn concurrent_webhook_posts(app: TestApp) {
    let app = app.respawn_with(&[("--inbound-token", "hook-secret-0123456789")]).await;
    let url = format!("{}/inbound/email", app.address);
    let mut posts = vec![];
    for n in 0..24 {
        // Every third is the same message as the one before it.
        let id = if n % 3 == 2 { n - 1 } else { n };
        let raw = message(
            &format!("burst{id}@y.test"),
            "I forgot my username",
            &format!("<burst{id}@y.test>"),
            "",
            "hi",
        );
        let request = app.client.post(&url).bearer_auth("hook-secret-0123456789").body(raw);
        posts.push(tokio::spawn(async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<serde_json::Value>().await.unwrap()
        }));
    }
    let mut outcomes = std::collections::BTreeMap::new();
    for post in posts {
        let body = post.await.unwrap();
        *outcomes
            .entry(body["outcome"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(outcomes.get("created"), Some(&16), "{outcomes:?}");
    assert_eq!(outcomes.get("duplicate"), Some(&8), "{outcomes:?}");
    let mut conn = app.conn();
    use diesel::prelude::*;
    use recoverydesk::db::schema::inbound_messages as im;
    let rows: i64 = im::table
        .filter(im::channel.eq("webhook"))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(rows, 16, "one delivery row per distinct message");
}

crate::both_backends!(webhook_burst, concurrent_webhook_posts);

/// An import larger than one batch, read on several threads: the files are still written in
/// order (each reply after the message it answers, within a batch and across two), duplicates
/// inside one batch are recognised, and a second run stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_maildir_in_batches_keeps_the_order_and_finds_duplicates_within_a_batch() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cur")).unwrap();
    let pairs = recoverydesk::mailgate::IMPORT_BATCH / 2 + 20;
    let mut name = 0;
    let mut write = |raw: Vec<u8>| {
        name += 1;
        std::fs::write(dir.path().join(format!("cur/{name:06}:2,S")), raw).unwrap();
    };
    for n in 0..pairs {
        let from = format!("order{n}@y.test");
        write(message(
            &from,
            "I forgot my username",
            &format!("<o{n}@y.test>"),
            "",
            "first",
        ));
        write(message(
            &from,
            "Re: I forgot my username",
            &format!("<r{n}@y.test>"),
            &format!("In-Reply-To: <o{n}@y.test>\r\n"),
            "the reply",
        ));
        if n % 10 == 0 {
            // Delivered twice by the MTA, right away.
            write(message(
                &from,
                "I forgot my username",
                &format!("<o{n}@y.test>"),
                "",
                "first",
            ));
        }
    }
    let dups = pairs.div_ceil(10);
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
            .arg("import-maildir")
            .arg(dir.path())
            .env("DATABASE_URL", &app.database_url)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = run();
    assert!(
        stdout.contains(&format!(
            "{pairs} created, {pairs} appended, {dups} duplicate, 0 quarantined"
        )),
        "{stdout}"
    );
    let stdout = run();
    assert!(
        stdout.contains(&format!("0 created, 0 appended, {} duplicate", 2 * pairs + dups)),
        "{stdout}"
    );
}

/// When `import-maildir` exits, every message it imported is in the database file itself and
/// no WAL is left beside it: a copy of the file alone is then the whole desk.
#[test]
fn import_maildir_leaves_every_message_in_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let url = format!("sqlite://{}", db.display());
    let desk = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("RECOVERYDESK_MAIL_DIR", dir.path().join("outgoing"))
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    desk(&["migrate".as_ref()]);
    let maildir = dir.path().join("archive");
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    let count = 2 * recoverydesk::mailgate::IMPORT_BATCH + 7;
    for n in 0..count {
        let raw = message(
            &format!("walled{n}@y.test"),
            "I forgot my username",
            &format!("<wal{n}@y.test>"),
            "",
            &format!("wal-marker-{n:05}"),
        );
        std::fs::write(maildir.join(format!("cur/{n:06}:2,S")), raw).unwrap();
    }
    let stdout = desk(&["import-maildir".as_ref(), maildir.as_os_str()]);
    assert!(stdout.contains(&format!("{count} created")), "{stdout}");
    let wal = dir.path().join("desk.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "a WAL is left: {:?}",
        std::fs::metadata(&wal)
    );
    let file = std::fs::read(&db).unwrap();
    for n in [0, count / 2, count - 1] {
        let marker = format!("wal-marker-{n:05}");
        assert!(
            file.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{marker} is not in the database file"
        );
    }
}

/// A delivery report whose `References` repeat one of our Message-IDs 40,000 times (a real one,
/// so it passes the check of our signature) is stored and marks that mail bounced once.
async fn bounce_with_many_references(app: TestApp) {
    let (r, ours) = app.acknowledged_ticket("gone@customer.test").await;
    let ours = &ours;
    let repeated = vec![ours.as_str(); 40_000].join(" ");
    let bounce = crate::helpers::bounce_report(
        "<bounce-many@customer.test>",
        &format!("References: {repeated}\r\n"),
        "We received your request",
        ours,
    );
    app.ingest(bounce.as_bytes());
    let t = app.ticket(&r).await;
    assert_eq!(crate::helpers::bounce_events(&t).len(), 1, "{t}");
}

/// A ticket page reads the attachments of every message of its ticket, and a ban the open
/// tickets of every sub-account: either list may be longer than SQLite binds in one statement
/// (32,766). 40,000 ids are read whole, and what is among them is found.
async fn long_id_lists(app: TestApp) {
    app.import_accounts(&[account("acc_39999", "late-user", "late@x.test", "active")]);
    let linked = app
        .create_ticket(
            json!({"kind": "login_help", "requester": "late@x.test", "body": "help", "account": "acc_39999"}),
        )
        .await;
    let linked_id: i64 = crate::helpers::reference(&linked)
        .trim_start_matches("RD-")
        .parse()
        .unwrap();
    let with_file = app.ingest(
        b"From: kim@x.test\r\nTo: support@desk.test\r\nSubject: A log\r\nMessage-ID: <long-ids@x.test>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
here is the log\r\n--b\r\nContent-Type: text/plain; name=\"log.txt\"\r\nContent-Disposition: attachment; \
filename=\"log.txt\"\r\n\r\nconnection log\r\n--b--\r\n",
    );
    assert_eq!(with_file.outcome, Outcome::Created);
    let mut conn = app.conn();
    let message_ids: Vec<i64> = (1..=40_000).collect();
    let files = recoverydesk::db::inbound::attachments_of(&mut conn, &message_ids).unwrap();
    assert_eq!(
        files.iter().map(|f| f.2.as_str()).collect::<Vec<_>>(),
        ["log.txt"],
        "{files:?}"
    );
    let accounts: Vec<String> = (0..40_000).map(|i| format!("acc_{i}")).collect();
    let open = recoverydesk::db::tickets::open_ids_for_accounts(&mut conn, &accounts).unwrap();
    assert_eq!(open, vec![linked_id]);
}

/// A subject's `[RD-n]` tags are looked up five at most (each costs a query inside the write
/// transaction): a forged subject of 200,000 tags naming no ticket opens a ticket, and a tag
/// after the fifth is not read.
async fn many_subject_tags(app: TestApp) {
    let first = app.ingest(&message("kim@x.test", "locked out", "<t1@x.test>", "", "Please help"));
    let r = first.ticket.clone().unwrap();
    let bogus = |n: usize| (0..n).map(|i| format!("[RD-{}]", 900_000 + i)).collect::<String>();
    let flood_subject = format!("Re: {}", bogus(200_000));
    let flood = app.ingest(&message("kim@x.test", &flood_subject, "<t2@x.test>", "", "more"));
    assert_eq!(flood.outcome, Outcome::Created);
    let subject = app.ticket(flood.ticket.as_deref().unwrap()).await["subject"].clone();
    let subject = subject.as_str().unwrap();
    assert_eq!(subject.chars().count(), 501, "cut to 500 characters and an ellipsis");
    assert!(
        subject.starts_with("Re: [RD-900000]") && subject.ends_with('…'),
        "{subject}"
    );
    let ticket = app.ticket(flood.ticket.as_deref().unwrap()).await;
    let first = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "message_in")
        .unwrap_or_else(|| panic!("the first message: {ticket}"));
    assert_eq!(
        first["data"]["subject"].as_str().map(|s| s.chars().count()),
        Some(flood_subject.chars().count()),
        "the message keeps its whole subject"
    );
    // A reply whose ticket's tag comes after `before` tags naming no ticket.
    let tagged_after = |before: usize, id: &str| {
        app.ingest(&message(
            "kim@x.test",
            &format!("Re: {}[{r}] hi", bogus(before)),
            id,
            "",
            "more",
        ))
    };
    let fifth = tagged_after(4, "<t3@x.test>");
    assert_eq!(fifth.ticket.as_deref(), Some(r.as_str()), "the fifth tag is read");
    let sixth = tagged_after(5, "<t4@x.test>");
    assert_eq!(sixth.outcome, Outcome::Created, "the sixth is not");
}
