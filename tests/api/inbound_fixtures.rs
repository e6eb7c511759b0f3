//! Every fixture of tests/fixtures/mail/ becomes the ticket it must (see its README).

use crate::helpers::{Backend, TestApp, account, reference};
use recoverydesk::services::inbound::Outcome;
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/mail/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fixture with its placeholders filled for a ticket.
fn for_ticket(name: &str, ticket: &str, our_message_id: &str, requester: &str) -> Vec<u8> {
    let text = fixture(name);
    let number = ticket.trim_start_matches("RD-");
    let mut out = Vec::with_capacity(text.len());
    let mut rest: &[u8] = &text;
    let swaps: [(&[u8], &[u8]); 3] = [
        (b"{{TICKET}}", number.as_bytes()),
        (b"{{OUR_MESSAGE_ID}}", our_message_id.as_bytes()),
        (b"{{REQUESTER}}", requester.as_bytes()),
    ];
    'scan: while !rest.is_empty() {
        for (from, to) in swaps {
            if rest.starts_with(from) {
                out.extend_from_slice(to);
                rest = &rest[from.len()..];
                continue 'scan;
            }
        }
        out.push(rest[0]);
        rest = &rest[1..];
    }
    out
}

async fn spawn() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await.unwrap()
}

/// A new request from a fixture: the ticket it opened.
async fn new_ticket(app: &TestApp, name: &str) -> Value {
    let result = app.ingest(&fixture(name));
    assert_eq!(result.outcome, Outcome::Created, "{name}: {result:?}");
    app.ticket(result.ticket.as_deref().unwrap()).await
}

fn first_message(ticket: &Value) -> &Value {
    ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "message_in")
        .expect("a message")
}

fn mail_to(app: &TestApp, ticket: &Value) -> Vec<String> {
    app.outbox_of(&reference(ticket)).into_iter().map(|m| m.0).collect()
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(haystack.contains(needle), "missing {needle:?} in:\n{haystack}");
    }
}

fn assert_lacks(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(!haystack.contains(needle), "{needle:?} must not appear in:\n{haystack}");
    }
}

/// Everything the desk keeps on disk for this app (database and its write-ahead log).
fn stored_bytes(app: &TestApp) -> Vec<u8> {
    let db = std::path::PathBuf::from(app.database_url.trim_start_matches("sqlite://"));
    let mut all = vec![];
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    all
}

fn stored_contains(app: &TestApp, needle: &str) -> bool {
    stored_bytes(app).windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_from_gmail_outlook_and_apple_mail_join_their_tickets() {
    let app = spawn().await;
    for (name, kind, new_text, history) in [
        (
            "gmail-reply.eml",
            "ip_lockout",
            "access is still not possible from any of the allowlisted networks",
            "On Mon, 23 Nov 2026 at 10:02, Account recovery support",
        ),
        (
            "outlook-reply.eml",
            "account_terminated",
            "I’ve just paid the outstanding balance of €412.50",
            "Sent: Monday, November 23, 2026 10:02",
        ),
        (
            "apple-mail-reply.eml",
            "forgot_username",
            "can’t receive mail there anymore",
            "wrote:",
        ),
    ] {
        let requester = format!("{}@customer.test", name.trim_end_matches(".eml"));
        let t = app
            .create_ticket(json!({"kind": kind, "requester": requester, "subject": "Help"}))
            .await;
        let r = reference(&t);
        let ours = app
            .our_message_ids(&r)
            .into_iter()
            .next()
            .expect("we mailed the customer");
        let before = app.outbox_of(&r).len();
        let result = app.ingest(&for_ticket(name, &r, &ours, &requester));
        assert_eq!(
            (result.outcome, result.ticket.as_deref()),
            (Outcome::Appended, Some(r.as_str())),
            "{name}"
        );
        let t = app.ticket(&r).await;
        let reply = t["events"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["type"] == "message_in")
            .unwrap();
        let body = reply["data"]["body"].as_str().unwrap();
        assert_contains(body, &[new_text, history]);
        assert_lacks(body, &["=E2=80", "=92", "â€", "\u{92}"]);
        assert_eq!(reply["data"]["sender"], "requester", "{name}");
        assert_eq!(app.outbox_of(&r).len(), before, "{name}: a reply is not acknowledged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_only_mail_is_read_and_sanitised() {
    let app = spawn().await;
    let t = new_ticket(&app, "html-only.eml").await;
    assert_eq!(t["kind"], "ip_lockout");
    let message = first_message(&t);
    let body = message["data"]["body"].as_str().unwrap();
    assert_contains(
        body,
        &[
            "Since this morning I am locked out of my account",
            "we don’t have a VPN",
        ],
    );
    assert_lacks(body, &["<script", "window.location", "document.cookie"]);
    let number: i64 = reference(&t).trim_start_matches("RD-").parse().unwrap();
    let html = recoverydesk::db::tickets::messages_of(&mut app.conn(), number).unwrap()[0]
        .body_html
        .clone()
        .unwrap();
    assert_lacks(
        &html,
        &[
            "<script",
            "onclick",
            "tracker.example",
            "font-family",
            "<style",
            "window.location",
        ],
    );
    assert!(
        mail_to(&app, &t).contains(&"acknowledgement".to_string())
            || mail_to(&app, &t).contains(&"try_allowlisted_ips".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_charset_decodes_to_the_customers_words() {
    let app = spawn().await;
    for (name, kind, subject, words) in [
        (
            "iso-8859-1.eml",
            "forgot_username",
            "Forgot username / nom d'utilisateur oublié",
            vec!["J'ai oublié mon nom d'utilisateur", "«\u{a0}Mot de passe oublié\u{a0}»"],
        ),
        (
            "windows-1252.eml",
            "account_terminated",
            "Account terminated – I want to pay the balance",
            vec!["“This account has", "I had no idea… the card", "warning emails – they"],
        ),
        (
            "iso-2022-jp.eml",
            "login_help",
            "SMTP認証エラー（535 Authentication failed）について",
            vec!["いつもお世話になっております。", "535 5.7.8 Authentication failed"],
        ),
        (
            "koi8-r.eml",
            "account_terminated",
            "Аккаунт заблокирован - прошу восстановить",
            vec![
                "Вчера вечером я не смог войти в свой аккаунт.",
                "P.S. Please reactivate my account",
            ],
        ),
        (
            "rfc2047-subject.eml",
            "ip_lockout",
            "Locked out — IP access management blocks my login ✓",
            vec!["I can't try from an allowlisted IP"],
        ),
    ] {
        let t = new_ticket(&app, name).await;
        assert_eq!(t["kind"], kind, "{name}");
        assert_eq!(t["subject"], subject, "{name}");
        let body = first_message(&t)["data"]["body"].as_str().unwrap().to_string();
        assert_contains(&body, &words);
        assert_lacks(&body, &["\u{1b}", "\u{fffd}", "=E9", "Ã©", "\u{93}"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_kept_apart_with_their_names_and_types() {
    let app = spawn().await;
    let t = new_ticket(&app, "attachment.eml").await;
    assert_eq!(t["kind"], "account_terminated");
    let listed = first_message(&t)["data"]["attachments"].as_array().unwrap().clone();
    let names: Vec<(String, String, i64)> = listed
        .iter()
        .map(|a| {
            (
                a["filename"].as_str().unwrap().into(),
                a["content_type"].as_str().unwrap().into(),
                a["size"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("payment-confirmation.pdf".into(), "application/pdf".into(), 776),
            ("Screenshot 2026-11-23 at 09.41.12.png".into(), "image/png".into(), 121)
        ]
    );
    let stored = recoverydesk::db::inbound::attachment(&mut app.conn(), listed[0]["id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert!(stored.data.starts_with(b"%PDF-1.4"));
    assert_eq!(
        recoverydesk::crypto::sha256_hex_bytes(&stored.data),
        "df1c4c1ef54da07606ddbac92ca04a871066411e130db0f7d991471e184e5ce2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_bounce_is_read_and_its_smtp_credentials_never_stored() {
    let app = spawn().await;
    let t = new_ticket(&app, "forwarded-rfc822.eml").await;
    assert_eq!(t["kind"], "login_help");
    assert!(
        !t["auto_generated"].as_bool().unwrap(),
        "the robot is inside the attachment, a person forwarded it"
    );
    let body = first_message(&t)["data"]["body"].as_str().unwrap();
    assert_contains(
        body,
        &[
            "the server says authentication failed",
            "535 5.7.8 Authentication failed",
            "AUTH PLAIN [redacted]",
        ],
    );
    assert!(t["events"].as_array().unwrap().iter().any(|e| e["type"] == "redaction"));
    assert!(mail_to(&app, &t).contains(&"redaction_notice".to_string()));
    assert!(
        !stored_contains(&app, "AGFjbWUtbWFpbGVyAGh1bnRlcjI="),
        "the credential reached a file the desk writes"
    );
    let attachment = &first_message(&t)["data"]["attachments"][0];
    assert_eq!(attachment["content_type"], "message/rfc822");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_are_stored_but_never_answered_and_never_reopen() {
    let app = spawn().await;
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "away@customer.test", "subject": "Help"}))
        .await;
    let r = reference(&t);
    app.act(&r, "resolve", json!({})).await;
    let ours = app.our_message_ids(&r)[0].clone();
    let before = app.outbox().len();
    let result = app.ingest(&for_ticket(
        "out-of-office-auto-submitted.eml",
        &r,
        &ours,
        "away@customer.test",
    ));
    assert_eq!(result.outcome, Outcome::Appended);
    let t = app.ticket(&r).await;
    assert_eq!(t["state"], "resolved", "an out-of-office never reopens");
    assert_eq!(app.outbox().len(), before, "and is never answered");
    let message = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["type"] == "message_in")
        .unwrap();
    assert!(message["data"]["auto_generated"].is_string());
    assert_contains(
        message["data"]["body"].as_str().unwrap(),
        &["I am out of the office until Monday 30 November"],
    );

    for name in ["x-autoreply-only.eml", "mailing-list.eml"] {
        let raw = for_ticket(name, "0", "<none@x.test>", "traveller@customer.test");
        let result = app.ingest(&raw);
        assert_eq!(result.outcome, Outcome::Created, "{name}");
        let t = app.ticket(result.ticket.as_deref().unwrap()).await;
        assert_eq!(
            (t["kind"].clone(), t["auto_generated"].clone()),
            (json!("general"), json!(true)),
            "{name}"
        );
        assert!(
            app.outbox_of(&reference(&t)).is_empty(),
            "{name}: no acknowledgement to a robot"
        );
        assert!(
            t["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "auto_reply_suppressed"),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_of_our_mail_marks_it_bounced_on_its_ticket() {
    let app = spawn().await;
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "gone@customer.test", "subject": "Help"}))
        .await;
    let r = reference(&t);
    let ours = app.our_message_ids(&r)[0].clone();
    let result = app.ingest(&for_ticket("dsn-bounce.eml", &r, &ours, "gone@customer.test"));
    assert_eq!(
        (result.outcome, result.ticket.as_deref()),
        (Outcome::Appended, Some(r.as_str()))
    );
    let t = app.ticket(&r).await;
    assert_eq!(t["state"], "awaiting_agent");
    let mail = &t["mail"][0];
    assert!(mail["bounced_at"].is_string(), "{mail}");
    assert_eq!(mail["bounce_reason"], "5.1.1: smtp; 550 5.1.1 user unknown");
    assert_eq!(app.outbox_of(&r).len(), 1, "nothing answers a bounce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_mime_is_quarantined_visible_to_admins_and_downloadable() {
    let app = spawn().await;
    let result = app.ingest(&fixture("broken-mime.eml"));
    assert_eq!(result.outcome, Outcome::Quarantined, "{result:?}");
    let id = result.quarantine_id.unwrap();
    let (status, list) = app.get("/api/v1/quarantine").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let entry = &list["messages"][0];
    assert_eq!(entry["id"], json!(id));
    assert_eq!(entry["size"], 1233);
    assert!(entry["reason"].as_str().unwrap().len() > 5);
    let raw = app
        .client
        .get(format!("{}/api/v1/quarantine/{id}/raw", app.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "message/rfc822");
    assert!(
        raw.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(raw.bytes().await.unwrap().len(), 1233, "kept as received");
    // The same message again is a duplicate of the quarantined one, not a second entry.
    assert_eq!(app.ingest(&fixture("broken-mime.eml")).outcome, Outcome::Duplicate);
    let (_, retried) = app.post(&format!("/api/v1/quarantine/{id}/retry"), &json!({})).await;
    assert_eq!(retried["outcome"], "quarantined", "still unreadable: it stays");
    assert_eq!(retried["quarantine_id"], json!(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_requests_are_classified_linked_and_redacted() {
    let app = spawn().await;
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    for (name, kind, present, absent) in [
        (
            "new-forgot-username.eml",
            "forgot_username",
            vec!["I forgot my username", "password: [redacted]"],
            vec!["Glockenspiel!1989"],
        ),
        (
            "new-ip-lockout.eml",
            "ip_lockout",
            vec!["My password is correct, it's definitely the IP thing"],
            vec![],
        ),
        (
            "new-terminated-billing.eml",
            "account_terminated",
            vec!["was terminated"],
            vec![],
        ),
        (
            "new-535.eml",
            "login_help",
            vec![
                "username: crm-mailer",
                "535 5.7.8 Authentication failed",
                "S: 334 VXNlcm5hbWU6",
            ],
            vec!["Y3JtLW1haWxlcg==", "VHI0bXBvbGluZS1Ob3YyNg=="],
        ),
        (
            "new-api-key.eml",
            "login_help",
            vec!["api_user=souk-digital-app", "api_key=[redacted]"],
            vec!["SG.ymAJ820y2VPYMz44esb9jf"],
        ),
        ("new-general.eml", "general", vec!["NO 923 456 789 MVA"], vec![]),
    ] {
        let t = new_ticket(&app, name).await;
        assert_eq!(t["kind"], kind, "{name}");
        let body = first_message(&t)["data"]["body"].as_str().unwrap().to_string();
        assert_contains(&body, &present);
        assert_lacks(&body, &absent);
        for secret in &absent {
            assert!(!stored_contains(&app, secret), "{name}: {secret} reached a file");
        }
        let redacted = t["events"].as_array().unwrap().iter().any(|e| e["type"] == "redaction");
        assert_eq!(
            redacted,
            !absent.is_empty(),
            "{name}: a redaction event exactly when a secret was removed"
        );
    }
    // The 535 mail from the registered address links the account and names the SMTP user.
    let result = app.ingest(&fixture("new-535.eml"));
    assert_eq!(result.outcome, Outcome::Duplicate, "the same bytes again");
    let (_, page) = app.get("/api/v1/tickets?q=ops@acme.test").await;
    let t = app.ticket(page["tickets"][0]["ref"].as_str().unwrap()).await;
    assert_eq!(t["account_id"], "acc_1001");
    assert_eq!(t["events"][0]["data"]["smtp_username"], "crm-mailer");
}
