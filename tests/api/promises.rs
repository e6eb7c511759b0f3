//! Promises of docs/reference.md that no other test would notice breaking: each test here
//! fails if its promise does.

use crate::both_backends;
use crate::helpers::{
    Backend, Console, PLAIN_PASSWORD, TestApp, account, event_types, plain_agent, reference, settings_for,
    ticket_with_held_mail,
};
use crate::ops_cli::{Served, sqlite};
use crate::smtp_capture::{Answer, SmtpCapture};
use serde_json::{Value, json};

both_backends!(
    a_username_mail_naming_a_terminated_account_links_the_terminated_form,
    username_mail_links_terminated_form
);
both_backends!(
    reclassifying_to_login_help_diagnoses_the_username_the_customer_named,
    reclassify_to_login_help_diagnoses
);
both_backends!(
    a_bounce_event_carries_the_subject_and_body_of_the_mail_that_bounced,
    bounce_event_has_body
);
both_backends!(
    the_first_event_after_created_is_the_customers_message,
    first_message_in_follows_created
);
both_backends!(an_email_challenge_is_valid_for_24_hours, challenge_lasts_a_day);
both_backends!(every_auto_reply_subject_marks_the_mail_automatic, auto_reply_subjects);
both_backends!(
    outbound_retries_double_from_30_seconds_to_10_minutes_and_give_up_after_24_hours,
    retry_schedule
);
both_backends!(
    the_queue_filters_by_state_searches_email_and_subject_and_pages,
    queue_filters_search_and_pages
);
both_backends!(
    every_message_event_lists_its_attachments,
    message_events_list_attachments
);

fn number(reference: &str) -> &str {
    reference.rsplit('-').next().unwrap_or_default()
}

async fn username_mail_links_terminated_form(app: TestApp) {
    app.import_accounts(&[
        account("acc_m1", "multi-one", "multi@x.test", "active"),
        account("acc_m2", "multi-two", "multi@x.test", "terminated"),
    ]);
    let t = app
        .create_ticket(json!({"kind": "forgot_username", "requester": "multi@x.test", "body": "I forgot it"}))
        .await;
    assert_eq!(t["state"], "resolved");
    app.deliver(0).await;
    let mail = app
        .delivered_mail()
        .into_iter()
        .find(|m| m.body.contains("multi-two"))
        .expect("the username mail was delivered");
    let line = mail
        .body
        .lines()
        .skip_while(|l| !l.contains("To settle the balance"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        line.contains(&format!("{}/help/account-terminated", app.desk.settings.base_url))
            || line.contains("/help/account-terminated"),
        "the sentence ends with the form's address: {}",
        mail.body
    );
}

async fn reclassify_to_login_help_diagnoses(app: TestApp) {
    app.import_accounts(&[account("acc_1001", "acme", "ops@acme.test", "active")]);
    let t = app
        .create_ticket(json!({
            "kind": "general",
            "requester": "ops@acme.test",
            "subject": "mail stopped",
            "body": "Our app gets 535 Authentication failed.\nusername: crm-mailer\n"
        }))
        .await;
    assert!(
        t.get("diagnosis").is_none_or(Value::is_null),
        "a general ticket is not diagnosed: {t}"
    );
    let t = app
        .act(&reference(&t), "reclassify", json!({"kind": "login_help"}))
        .await;
    assert_eq!(t["kind"], "login_help");
    assert_eq!(t["diagnosis"]["username"], "crm-mailer", "{t}");
    assert_eq!(
        t["diagnosis"]["finding"], "request_not_seen",
        "no event in the logs: {t}"
    );
    assert!(event_types(&t).contains(&"diagnosis".to_string()), "{t}");

    // Without a username in the thread there is nothing to diagnose, and nothing fails.
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "ops@acme.test", "body": "help"}))
        .await;
    let t = app
        .act(&reference(&t), "reclassify", json!({"kind": "login_help"}))
        .await;
    assert_eq!(t["kind"], "login_help");
    assert!(t.get("diagnosis").is_none_or(Value::is_null), "{t}");
}

async fn bounce_event_has_body(app: TestApp) {
    let (r, ours) = app.acknowledged_ticket("gone@customer.test").await;
    let ours = &ours;
    let bounce = crate::helpers::bounce_report(
        "<bounce-1@customer.test>",
        "",
        &format!("[RD-{}] We received your request", number(&r)),
        ours,
    );
    app.ingest(bounce.as_bytes());
    let t = app.ticket(&r).await;
    let bounced = crate::helpers::bounce_events(&t)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("a bounce event: {t}"));
    let subject = bounced["data"]["subject"].as_str().unwrap_or_default();
    let body = bounced["data"]["body"].as_str().unwrap_or_default();
    assert!(subject.contains(&r), "the bounced mail's subject: {bounced}");
    assert!(!body.is_empty(), "the bounced mail's body: {bounced}");
    assert_eq!(bounced["data"]["attachments"], json!([]));
    assert!(
        bounced["data"]["reason"].as_str().unwrap_or_default().contains("550"),
        "{bounced}"
    );
}

async fn first_message_in_follows_created(app: TestApp) {
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "first@x.test", "subject": "S", "body": "B"}))
        .await;
    let types = event_types(&t);
    assert_eq!(&types[..2], ["created", "message_in"], "{types:?}");
    let raw =
        "From: mail@x.test\r\nTo: support@desk.test\r\nSubject: a question\r\nMessage-ID: <q1@x.test>\r\n\r\nhello\r\n";
    let ingested = app.ingest(raw.as_bytes());
    let t = app.ticket(ingested.ticket.as_deref().unwrap()).await;
    let types = event_types(&t);
    assert_eq!(&types[..2], ["created", "message_in"], "{types:?}");
}

async fn challenge_lasts_a_day(app: TestApp) {
    use diesel::prelude::*;
    app.import_accounts(&[account("acc_1", "u1", "owner@x.test", "active")]);
    let t = app
        .create_ticket(
            json!({"kind": "ip_lockout", "requester": "owner@x.test", "body": "locked out",
            "current_ip": "198.51.100.77"}),
        )
        .await;
    let r = reference(&t);
    app.act(
        &r,
        "record_allowlisted_attempts",
        json!({"tried_from": "office 203.0.113.7", "outcome": "blocked"}),
    )
    .await;
    app.act(&r, "start_ownership_verification", json!({})).await;
    app.act(&r, "send_email_challenge", json!({})).await;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Timestamp)]
        expires_at: chrono::NaiveDateTime,
    }
    let rows: Vec<Row> = diesel::sql_query("SELECT expires_at FROM email_challenges")
        .load(&mut app.raw_conn())
        .unwrap();
    assert_eq!(rows.len(), 1);
    let lasts = rows[0].expires_at - recoverydesk::db::now();
    assert!(
        lasts > chrono::Duration::hours(23) + chrono::Duration::minutes(55) && lasts <= chrono::Duration::hours(24),
        "valid 24 h, not {lasts}"
    );
}

async fn auto_reply_subjects(app: TestApp) {
    for (i, subject) in [
        "Auto: away",
        "AUTOMATIC REPLY: gone fishing",
        "Autoreply: x",
        "Out of Office: back Monday",
        "Undeliverable: hello",
        "Undelivered Mail Returned to Sender",
        "Delivery Status Notification (Failure)",
        "Mail delivery failed: returning message to sender",
        "Returned mail: see transcript",
    ]
    .into_iter()
    .enumerate()
    {
        let raw = format!(
            "From: robot{i}@x.test\r\nTo: support@desk.test\r\nSubject: {subject}\r\nMessage-ID: <auto{i}@x.test>\r\n\r\nnot a person\r\n"
        );
        let ingested = app.ingest(raw.as_bytes());
        let r = ingested
            .ticket
            .unwrap_or_else(|| panic!("{subject}: stored on a ticket"));
        let t = app.ticket(&r).await;
        assert_eq!(t["kind"], "general", "{subject}");
        assert!(
            app.outbox_of(&r).is_empty(),
            "{subject:?} is never answered automatically: {:?}",
            app.outbox_of(&r)
        );
    }
    // A person's subject merely containing the words is answered.
    let raw = "From: person@x.test\r\nTo: support@desk.test\r\nSubject: My auto: reply rules\r\nMessage-ID: <p@x.test>\r\n\r\nhelp\r\n";
    let r = app.ingest(raw.as_bytes()).ticket.unwrap();
    assert!(!app.outbox_of(&r).is_empty(), "a person is acknowledged");
}

async fn retry_schedule(app: TestApp) {
    let smtp = SmtpCapture::start();
    let backend = app.backend();
    let app = app.respawn_with(&[("--smtp-url", smtp.url().as_str())]).await;
    assert_eq!(app.backend(), backend);
    app.create_ticket(json!({"kind": "general", "requester": "slow@x.test"}))
        .await;
    smtp.fail_next(&[Answer::TemporaryAtData; 12]);
    // (seconds after the previous failure, the gap expected before the next try)
    let mut at = 0i64;
    for gap in [30, 60, 120, 240, 480, 600, 600] {
        let report = app.deliver(at).await;
        assert_eq!(report.retrying, 1, "failed again at {at}s");
        assert_eq!(
            app.deliver(at + gap - 1).await.claimed(),
            0,
            "not due before {gap}s after {at}s"
        );
        at += gap;
    }
    // A day after the mail was queued, a temporary failure gives up.
    let report = app.deliver(24 * 3600 + 1).await;
    assert_eq!(report.failed, 1, "{report:?}");
    let status = app.outbox_status();
    assert_eq!(status[0].2, "failed");
    assert!(
        status[0].4.as_deref().unwrap_or_default().contains("24 hours"),
        "{status:?}"
    );
}

async fn queue_filters_search_and_pages(app: TestApp) {
    for i in 0..30 {
        app.create_ticket(json!({"kind": "general", "requester": format!("q{i}@x.test"),
            "subject": format!("subject number {i}")}))
            .await;
    }
    let special = app
        .create_ticket(json!({"kind": "forgot_username", "requester": "needle@haystack.test",
            "subject": "zebra crossing"}))
        .await;
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        reqwest::StatusCode::SEE_OTHER
    );
    let r = reference(&special);
    for q in ["needle@haystack.test", "NEEDLE@haystack.test", "zebra", r.as_str()] {
        let (_, _, page) = console.get(&format!("/agent?q={}", urlencode(q))).await;
        assert!(page.contains(&r), "search {q:?} finds {r}");
        assert!(!page.contains("q3@x.test"), "search {q:?} shows only matches");
    }
    let (_, _, page) = console.get("/agent?state=awaiting_agent").await;
    assert!(page.contains("q29@x.test"));
    let special_state = special["state"].as_str().unwrap().to_string();
    if special_state != "awaiting_agent" {
        assert!(!page.contains(&r), "the state filter leaves out {special_state}");
    }
    // The queue pages with a cursor and every ticket is on exactly one page.
    let (_, _, mut page) = console.get("/agent?kind=general").await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        for i in 0..30 {
            if page.contains(&format!("q{i}@x.test<")) || page.contains(&format!(">q{i}@x.test")) {
                seen.insert(i);
            }
        }
        let Some(next) = page
            .split("cursor=")
            .nth(1)
            .and_then(|rest| rest.split(['"', '&']).next())
        else {
            break;
        };
        let (_, _, p) = console.get(&format!("/agent?kind=general&cursor={next}")).await;
        page = p;
    }
    assert!(seen.len() >= 25, "paging reaches the older tickets: {seen:?}");
    // API: the same search and a cursor.
    let (_, body) = app.get("/api/v1/tickets?q=zebra").await;
    let found: Vec<_> = body["tickets"].as_array().unwrap().iter().map(reference).collect();
    assert_eq!(found, vec![r.clone()]);
    let (_, first) = app.get("/api/v1/tickets?kind=general&limit=10").await;
    assert_eq!(first["tickets"].as_array().unwrap().len(), 10);
    let cursor = first["next_cursor"].as_str().expect("a next cursor").to_string();
    let (_, second) = app
        .get(&format!("/api/v1/tickets?kind=general&limit=10&cursor={cursor}"))
        .await;
    let a: Vec<_> = first["tickets"].as_array().unwrap().iter().map(reference).collect();
    let b: Vec<_> = second["tickets"].as_array().unwrap().iter().map(reference).collect();
    assert_eq!(b.len(), 10);
    assert!(a.iter().all(|x| !b.contains(x)), "pages do not overlap");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn message_events_list_attachments(app: TestApp) {
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "a@x.test", "body": "hello"}))
        .await;
    let r = reference(&t);
    app.post(
        &format!("/api/v1/tickets/{r}/replies"),
        &json!({"body": "a note", "internal": true}),
    )
    .await;
    app.post(
        &format!("/api/v1/tickets/{r}/replies"),
        &json!({"body": "a reply", "internal": false}),
    )
    .await;
    let t = app.ticket(&r).await;
    let mut kinds = std::collections::BTreeSet::new();
    for e in t["events"].as_array().unwrap() {
        let kind = e["type"].as_str().unwrap();
        if matches!(kind, "message_in" | "message_out" | "note") {
            assert!(e["data"]["attachments"].is_array(), "{e}");
            assert!(e["data"]["body"].is_string(), "{e}");
            kinds.insert(kind.to_string());
        }
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

/// The answer to a sign-in through the sign-in page (its CSRF token and cookie), as a browser
/// without a cookie store would send it.
async fn signed_in_response(address: &str, password: &str) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(format!("{address}/agent/login")).send().await.unwrap();
    let login_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .find(|c| c.starts_with("rd_login="))
        .expect("the sign-in page sets its CSRF cookie");
    let text = page.text().await.unwrap();
    let marker = r#"name="csrf" value=""#;
    let start = text.find(marker).expect("a CSRF field") + marker.len();
    let csrf = text[start..].split('"').next().unwrap_or_default().to_string();
    client
        .post(format!("{address}/agent/login"))
        .header("cookie", login_cookie)
        .form(&[
            ("email", "admin@localhost"),
            ("password", password),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_when_the_base_url_is_https() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("--base-url", "https://desk.example")]).await else {
        return;
    };
    let response = signed_in_response(&app.address, &app.admin_password).await;
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(!cookies.is_empty(), "a session cookie is set ({})", response.status());
    for c in &cookies {
        let lower = c.to_ascii_lowercase();
        assert!(lower.contains("; secure"), "Secure on https: {c}");
        assert!(lower.contains("httponly") && lower.contains("samesite"), "{c}");
    }
    // And not on plain http (a newcomer's localhost), where browsers would drop it.
    let plain = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = signed_in_response(&plain.address, &plain.admin_password).await;
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect();
    assert!(!cookies.is_empty());
    assert!(cookies.iter().all(|c| !c.contains("; secure")), "{cookies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runs_in_wal_mode_and_ingestion_commits_with_synchronous_full() {
    use diesel::prelude::*;
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    #[derive(QueryableByName)]
    struct Sync {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        synchronous: i32,
    }
    let mut conn = app.conn();
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode").get_result(&mut *conn).unwrap();
    assert_eq!(mode.journal_mode.to_ascii_lowercase(), "wal");
    let inside = recoverydesk::db::with_durable_commits(&mut conn, |c| {
        diesel::sql_query("PRAGMA synchronous").get_result::<Sync>(c)
    })
    .unwrap();
    assert_eq!(
        inside.synchronous, 2,
        "a stored message is committed with synchronous=FULL"
    );
    // mailgate's own connection commits durably too.
    let (mut single, _) = recoverydesk::mailgate::open_existing(&settings_for(&app.database_url, &[])).unwrap();
    let sync: Sync = diesel::sql_query("PRAGMA synchronous").get_result(&mut single).unwrap();
    assert_eq!(sync.synchronous, 2, "mailgate commits with synchronous=FULL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_secret_key_is_kept_in_the_database_and_shared_by_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("desk.db").display());
    let mut settings = settings_for(&url, &[]);
    settings.secret_key = None;
    let (_, one) = recoverydesk::startup::prepare(&settings).unwrap();
    let (_, two) = recoverydesk::startup::prepare(&settings).unwrap();
    assert_eq!(
        one.secret.bytes(),
        two.secret.bytes(),
        "both instances sign with one key"
    );
    assert!(one.secret.bytes().len() >= 64);
    let other_dir = tempfile::tempdir().unwrap();
    let other = format!("sqlite://{}", other_dir.path().join("desk.db").display());
    let mut settings = settings_for(&other, &[]);
    settings.secret_key = None;
    let (_, three) = recoverydesk::startup::prepare(&settings).unwrap();
    assert_ne!(one.secret.bytes(), three.secret.bytes(), "generated, not a constant");
}

#[test]
fn a_conflict_answers_409_with_the_code_conflict() {
    use actix_web::ResponseError;
    let error = recoverydesk::error::ApiError::from(recoverydesk::services::ServiceError::Conflict);
    assert_eq!(error.status_code(), actix_web::http::StatusCode::CONFLICT);
    let body = actix_web::body::to_bytes(error.error_response().into_body());
    let body = futures_lite_block_on(body).unwrap_or_default();
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "conflict");
}

fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn with_no_command_the_binary_serves() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite(&dir.path().join("desk.db"));
    let mail = dir.path().join("mail");
    let mail = mail.to_string_lossy().into_owned();
    let served = Served::start_with_args(
        &[("DATABASE_URL", url.as_str()), ("RECOVERYDESK_MAIL_DIR", mail.as_str())],
        &[],
    );
    assert!(
        served.startup.iter().any(|l| l.contains("is listening on")),
        "{:?}",
        served.startup
    );
    served.terminate(std::time::Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_prefix_names_references_subjects_and_threading() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("--ticket-prefix", "HELP")]).await else {
        return;
    };
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "p@x.test", "subject": "hi"}))
        .await;
    let r = reference(&t);
    assert!(r.starts_with("HELP-"), "{r}");
    assert_eq!(reference(&app.ticket(&r).await), r);
    app.deliver(0).await;
    let mail = app.delivered_mail();
    assert!(
        mail.iter()
            .any(|m| String::from_utf8_lossy(&m.raw).contains(&format!("[{r}]"))),
        "subjects are tagged [{r}]"
    );
    // A reply tagged with the prefix threads onto the ticket.
    let raw = format!("From: p@x.test\r\nTo: support@desk.test\r\nSubject: Re: [{r}] hi\r\n\r\nmore\r\n");
    assert_eq!(app.ingest(raw.as_bytes()).ticket.as_deref(), Some(r.as_str()));
}

both_backends!(
    quarantine_is_for_admins_only_and_pages_with_a_cursor,
    quarantine_admins_and_cursor
);

async fn quarantine_admins_and_cursor(app: TestApp) {
    // Broken MIME is quarantined: more than one page of it.
    for i in 0..60 {
        let raw = format!(
            "From: x{i}@x.test\r\nSubject: broken {i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n"
        );
        let ingested = app.ingest(raw.as_bytes());
        assert!(ingested.quarantine_id.is_some(), "{ingested:?}");
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut path = "/api/v1/quarantine".to_string();
    for _ in 0..10 {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, reqwest::StatusCode::OK);
        for m in page["messages"].as_array().unwrap() {
            assert!(ids.insert(m["id"].as_str().unwrap().to_string()), "no message twice");
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/quarantine?cursor={c}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 60, "the cursor reaches every quarantined message once");

    let token = plain_agent(&app);
    let id = ids.iter().next().unwrap();
    for path in ["/api/v1/quarantine".to_string(), format!("/api/v1/quarantine/{id}/raw")] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN, "{path}");
    }
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("plain@localhost", PLAIN_PASSWORD).await,
        reqwest::StatusCode::SEE_OTHER
    );
    let (status, _, page) = console.get("/agent/quarantine").await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{page}");
    assert!(!page.contains("broken 1"), "nothing of it is shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_maildir_reads_a_plain_folder_of_messages_too() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        std::fs::write(
            dir.path().join(format!("{i}.eml")),
            format!(
                "From: plain{i}@x.test\r\nSubject: question {i}\r\nMessage-ID: <plain{i}@x.test>\r\n\r\nbody {i}\r\n"
            ),
        )
        .unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .arg("import-maildir")
        .arg(dir.path())
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 created"), "{stdout}");
    let (_, list) = app.get("/api/v1/tickets?q=question").await;
    assert_eq!(list["tickets"].as_array().unwrap().len(), 3, "{list}");
}

both_backends!(
    an_attachment_over_the_size_limit_is_listed_but_not_kept,
    attachment_size_limit
);

async fn attachment_size_limit(app: TestApp) {
    use base64::Engine;
    let limit = recoverydesk::services::inbound::MAX_ATTACHMENT_BYTES;
    let big = base64::engine::general_purpose::STANDARD.encode(vec![b'a'; limit + 1]);
    let small = base64::engine::general_purpose::STANDARD.encode(b"small file");
    let wrapped = |b64: &str| {
        b64.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let raw = format!(
        "From: big@x.test\r\nSubject: files\r\nMessage-ID: <files@x.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"small.txt\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        wrapped(&big),
        wrapped(&small)
    );
    let r = app.ingest(raw.as_bytes()).ticket.expect("stored");
    // Read through the service: the point is what was stored, not the HTTP layer.
    let number: i64 = r.rsplit('-').next().and_then(|n| n.parse().ok()).expect("a reference");
    let t = recoverydesk::services::view::ticket_details(&mut app.conn(), &app.desk, number).expect("the ticket");
    let listed = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "message_in")
        .map(|e| e["data"]["attachments"].clone())
        .unwrap();
    let by_name = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["filename"] == name)
            .cloned()
    };
    let big = by_name("big.bin").unwrap_or_else(|| panic!("the big file is listed: {listed}"));
    assert!(big.get("id").is_none_or(Value::is_null), "not kept: {big}");
    assert!(
        big["dropped"].as_str().unwrap_or_default().contains("larger than"),
        "{big}"
    );
    let small = by_name("small.txt").unwrap_or_else(|| panic!("{listed}"));
    assert!(small["id"].is_number() || small["id"].is_string(), "kept: {small}");
}

both_backends!(
    five_failed_sign_ins_lock_the_account_out_for_15_minutes_not_a_sliding_minute,
    sign_in_lockout_lasts_15_minutes
);

/// docs/reference.md: after the 5th failed sign-in for an account from one client, 429 for 15
/// minutes. The desk's clock is moved, so a sliding count that lifts early fails here.
async fn sign_in_lockout_lasts_15_minutes(app: TestApp) {
    let console = Console::new(&app);
    for i in 0..5 {
        assert_eq!(
            console.sign_in("admin@localhost", "wrong password").await,
            reqwest::StatusCode::UNAUTHORIZED,
            "failure {i}"
        );
        // Spread over four minutes: the first failure is old by the time of the fifth.
        app.clock.advance(chrono::Duration::minutes(1));
    }
    // 14 minutes after the fifth failure (18 after the first): still locked, whatever ages out.
    for minutes in [1, 5, 7] {
        app.clock.advance(chrono::Duration::minutes(minutes));
        assert_eq!(
            console.sign_in("admin@localhost", &app.admin_password).await,
            reqwest::StatusCode::TOO_MANY_REQUESTS,
            "even the right password waits out the 15 minutes"
        );
    }
    // Another account from the same client is not locked by this one.
    assert_eq!(
        console.sign_in("nobody@x.test", "guess").await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    app.clock
        .advance(chrono::Duration::minutes(1) + chrono::Duration::seconds(1));
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        reqwest::StatusCode::SEE_OTHER,
        "15 minutes after the fifth failure the right password signs in"
    );
}

both_backends!(
    releasing_a_held_mail_from_the_console_is_written_to_the_tickets_log,
    releasing_held_mail_writes_an_event
);

/// A held mail let go from the ticket page: the log names the agent and the mail; a second
/// release of the same mail is refused and writes nothing.
async fn releasing_held_mail_writes_an_event(app: TestApp) {
    use recoverydesk::db::outbox;
    let last = ticket_with_held_mail(&app).await;
    let held = outbox::all(&mut app.conn())
        .expect("outbox")
        .into_iter()
        .find(|m| m.status == "held")
        .expect("a held mail");
    let number: i64 = last
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a reference");
    assert_eq!(held.ticket_id, Some(number), "the last ticket's mail is the held one");
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        reqwest::StatusCode::SEE_OTHER
    );
    let page = format!("/agent/tickets/{last}");
    let release = format!("/agent/tickets/{last}/mail/{}/release", held.id);
    let (status, _, _) = console.submit(&page, &release, &[]).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    let (status, _, _) = console.submit(&page, &release, &[]).await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "not held any more");

    let ticket = app.ticket(&last).await;
    let released: Vec<&Value> = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "mail_released")
        .collect();
    assert_eq!(released.len(), 1, "{ticket}");
    assert_eq!(released[0]["actor"], "agent:admin@localhost");
    assert_eq!(released[0]["data"]["outbox_id"], held.id);
    assert_eq!(released[0]["data"]["to"], "target@x.test");
    assert_eq!(released[0]["data"]["template"], held.template);
    let status_now = outbox::all(&mut app.conn())
        .expect("outbox")
        .into_iter()
        .find(|m| m.id == held.id)
        .map(|m| m.status);
    assert_eq!(status_now.as_deref(), Some("pending"), "handed to the sender");
}

both_backends!(
    the_console_and_the_api_retry_quarantined_mail_through_one_service,
    quarantine_retry_from_both_doors
);

/// The same quarantined message retried from the console and through the API gets the same
/// answer; a plain agent is refused by both before anything runs; an unknown id is 404 in both.
async fn quarantine_retry_from_both_doors(app: TestApp) {
    let raw = "From: q@x.test\r\nSubject: broken\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n";
    let id = app.ingest(raw.as_bytes()).quarantine_id.expect("quarantined");

    let (status, body) = app.post(&format!("/api/v1/quarantine/{id}/retry"), &json!({})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "quarantined", "{body}");
    let (status, body) = app.post("/api/v1/quarantine/q_nothing/retry", &json!({})).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");

    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        reqwest::StatusCode::SEE_OTHER
    );
    let (status, _, page) = console
        .submit("/agent/quarantine", &format!("/agent/quarantine/{id}/retry"), &[])
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(page.contains("Still quarantined."), "{page}");
    let (status, _, page) = console
        .submit("/agent/quarantine", "/agent/quarantine/q_nothing/retry", &[])
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(page.contains("There is no such message."), "{page}");
    let (status, _, _) = console.get("/agent/quarantine/q_nothing/raw").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let (status, _, raw_copy) = console.get(&format!("/agent/quarantine/{id}/raw")).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(raw_copy.contains("Subject: broken"), "{raw_copy}");

    // A plain agent: 403 from both doors, and the message is still there, untouched.
    let token = plain_agent(&app);
    let response = app
        .client
        .post(format!("{}/api/v1/quarantine/{id}/retry", app.address))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    let plain = Console::new(&app);
    assert_eq!(
        plain.sign_in("plain@localhost", PLAIN_PASSWORD).await,
        reqwest::StatusCode::SEE_OTHER
    );
    // The agent's own CSRF token (taken from a page every agent may see): only the role refuses.
    for path in [
        format!("/agent/quarantine/{id}/retry"),
        "/agent/admin/tokens/1/revoke".to_string(),
        "/agent/admin/agents".to_string(),
    ] {
        let (status, _, page) = plain.submit("/agent", &path, &[]).await;
        assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{path}: {page}");
    }
    for path in ["/agent/admin/tokens", "/agent/admin/canned", "/agent/admin/agents"] {
        let (status, _, _) = plain.get(path).await;
        assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{path}");
    }
    let (status, list) = app.get("/api/v1/quarantine").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(
        list["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == id.as_str()),
        "{list}"
    );
}

/// docs/reference.md's settings table: every documented default is the one the command line
/// applies (a value in backquotes; `unset` is no default, `empty` the empty string). Rows whose
/// default is described in words (the base URL, the socket, the secret key) have their own tests.
#[test]
fn every_documented_default_is_the_default_applied() {
    use clap::CommandFactory;
    let doc = include_str!("../../docs/reference.md");
    let command = recoverydesk::cli::Cli::command();
    let mut checked = 0;
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, name, default, ..] = cells.as_slice() else {
            continue;
        };
        let Some(var) = backquoted(name) else {
            continue;
        };
        let Some(arg) = command.get_arguments().find(|a| a.get_env().is_some_and(|e| e == var)) else {
            continue;
        };
        let documented = match *default {
            "unset" => vec![],
            "empty" => vec![String::new()],
            words => match backquoted(words) {
                Some(value) => vec![value.to_string()],
                None => continue,
            },
        };
        let applied: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        assert_eq!(applied, documented, "{var}");
        checked += 1;
    }
    assert!(checked >= 20, "the settings table was read: {checked} rows");
}

/// The value of a cell that is one value in backquotes, perhaps followed by words in brackets.
fn backquoted(cell: &str) -> Option<&str> {
    let (value, after) = cell.strip_prefix('`')?.split_once('`')?;
    (after.is_empty() || after.starts_with(" (")).then_some(value)
}
