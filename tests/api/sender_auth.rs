//! Who really sent it (docs/reference.md#sender-authentication), on every channel that takes
//! mail over HTTP or the ingestion function: a DMARC `fail` from a registered address with
//! another ticket's tag opens its own ticket, flagged, with no account; a header from another
//! authserv-id changes nothing; a `pass` from the registered address shows as evidence.

use crate::both_backends;
use crate::helpers::{Backend, Console, TestApp, account};
use recoverydesk::services::inbound::Outcome;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One form field: its name, (file name, content type) for a file, and its bytes.
pub type FormField<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

pub const TOKEN: &str = "hook-secret-0123456789";
pub const MAILGUN_KEY: &str = "key-mailgun-test-0123456789";
const OURS: &str = "mx.desk.test";

pub fn settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("--inbound-token", TOKEN),
        ("--authserv-id", OURS),
        ("--mailgun-signing-key", MAILGUN_KEY),
    ]
}

fn mail(id: &str, subject: &str, results: &str, body: &str) -> Vec<u8> {
    let header = if results.is_empty() {
        String::new()
    } else {
        format!("Authentication-Results: {results}\r\n")
    };
    format!(
        "{header}Received: from mx.evil.test by mx.desk.test\r\nFrom: Owner <owner@owner.test>\r\nTo: support@desk.test\r\nSubject: {subject}\r\nMessage-ID: <{id}@owner.test>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A `multipart/form-data` body: (name, optional (filename, content type), bytes).
pub fn form(fields: &[FormField<'_>]) -> (String, Vec<u8>) {
    let boundary = "----rdTestBoundary7MA4YWxkTrZu0gW";
    let mut body = vec![];
    for (name, file, data) in fields {
        body.extend(format!("--{boundary}\r\n").into_bytes());
        match file {
            Some((filename, content_type)) => body.extend(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n")
                    .into_bytes(),
            ),
            None => body.extend(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").into_bytes()),
        }
        body.extend_from_slice(data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").into_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn mailgun_signature(key: &str, timestamp: &str, token: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub async fn post_form(app: &TestApp, path: &str, fields: &[FormField<'_>]) -> (StatusCode, Value) {
    let (content_type, body) = form(fields);
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .basic_auth("sendgrid", Some(TOKEN))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Delivers `raw` through `channel`, saying `verdict` the way that channel can.
async fn deliver(app: &TestApp, channel: &str, raw: &[u8], provider_fail: bool) -> (Outcome, String) {
    let answer: Value = match channel {
        "ingest" => serde_json::to_value(app.ingest(raw)).unwrap(),
        "webhook" => {
            let response = app
                .client
                .post(format!("{}/inbound/email", app.address))
                .bearer_auth(TOKEN)
                .body(raw.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json().await.unwrap()
        }
        "sendgrid" => {
            let (spf, dkim): (&[u8], &[u8]) = if provider_fail {
                (b"fail", b"{@owner.test : fail}")
            } else {
                (b"", b"")
            };
            let (status, answer) = post_form(
                app,
                "/inbound/sendgrid",
                &[("email", None, raw), ("SPF", None, spf), ("dkim", None, dkim)],
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            answer
        }
        "mailgun" => {
            let (timestamp, token) = ("1767225600", "9f2c0a7be1d4");
            let signature = mailgun_signature(MAILGUN_KEY, timestamp, token);
            let mut fields: Vec<FormField<'_>> = vec![
                ("timestamp", None, timestamp.as_bytes()),
                ("token", None, token.as_bytes()),
                ("signature", None, signature.as_bytes()),
                ("body-mime", None, raw),
            ];
            if provider_fail {
                fields.push(("X-Mailgun-Spf", None, b"Fail"));
                fields.push(("X-Mailgun-Dkim-Check-Result", None, b"Fail"));
            }
            let (status, answer) = post_form(app, "/inbound/mailgun", &fields).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            answer
        }
        other => panic!("no channel {other}"),
    };
    let outcome = match answer["outcome"].as_str() {
        Some("created") => Outcome::Created,
        Some("appended") => Outcome::Appended,
        Some("duplicate") => Outcome::Duplicate,
        _ => Outcome::Quarantined,
    };
    (outcome, answer["ticket"].as_str().unwrap_or_default().to_string())
}

fn last_message_in(ticket: &Value) -> Value {
    ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["type"] == "message_in")
        .cloned()
        .expect("a message_in event")
}

both_backends!(
    a_forged_owner_opens_its_own_flagged_ticket_on_every_channel_and_a_pass_is_evidence,
    forged_owner
);

async fn forged_owner(app: TestApp) {
    let app = app.respawn_with(&settings()).await;
    app.import_accounts(&[account("acc_1", "owner-user", "owner@owner.test", "active")]);
    let pass = format!(
        "{OURS}; spf=pass smtp.mailfrom=owner.test; dkim=pass header.d=owner.test; dmarc=pass header.from=owner.test"
    );
    let first = app.ingest(&mail(
        "own1",
        "locked out by IP",
        &pass,
        "my IP is blocked, account owner-user",
    ));
    assert_eq!(first.outcome, Outcome::Created);
    let owned = first.ticket.clone().unwrap();
    let t = app.ticket(&owned).await;
    assert_eq!(
        (t["kind"].as_str(), t["account_id"].as_str()),
        (Some("ip_lockout"), Some("acc_1"))
    );
    let data = &last_message_in(&t)["data"];
    assert_eq!(data["sender_auth"], "pass");
    assert_eq!(
        data["sender_auth_detail"],
        "mx.desk.test: dmarc=pass header.from=owner.test"
    );
    assert_eq!(t["flagged"], false);

    // The console shows the verdict next to the message and the pass as supporting evidence.
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let (_, _, page) = console.get(&format!("/agent/tickets/{owned}")).await;
    assert!(page.contains("sender authenticated"), "the verdict is on the page");
    assert!(
        page.contains("id=\"sender-evidence\""),
        "the pass is evidence in the checklist"
    );

    let number = owned.trim_start_matches("RD-");
    let fail =
        format!("{OURS}; spf=fail smtp.mailfrom=evil.test; dkim=none; dmarc=fail (p=none) header.from=owner.test");
    for (i, channel) in ["ingest", "webhook", "sendgrid", "mailgun"].into_iter().enumerate() {
        // Over a provider, the provider's fields decide; elsewhere our server's header.
        let provider = matches!(channel, "sendgrid" | "mailgun");
        let results = if provider { "" } else { fail.as_str() };
        let raw = mail(
            &format!("forged{i}"),
            &format!("Re: [RD-{number}] please allow 198.51.100.{i}"),
            results,
            "I tried from the office, please add the IP",
        );
        let (outcome, forged) = deliver(&app, channel, &raw, true).await;
        assert_eq!(
            outcome,
            Outcome::Created,
            "{channel}: a forged owner never threads by tag"
        );
        assert_ne!(forged, owned, "{channel}");
        let f = app.ticket(&forged).await;
        assert_eq!(
            f["account_id"],
            Value::Null,
            "{channel}: no account for a forged sender"
        );
        assert_eq!(f["flagged"], true, "{channel}: flagged");
        let flag = f["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "forged_sender")
            .cloned();
        let flag = flag.unwrap_or_else(|| panic!("{channel}: a forged_sender event"));
        assert_eq!(flag["data"]["registered_address"], true);
        assert_eq!(last_message_in(&f)["data"]["sender_auth"], "fail", "{channel}");
    }
    // The owner's ticket heard none of it.
    let t = app.ticket(&owned).await;
    let messages = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message_in")
        .count();
    assert_eq!(messages, 1);

    // A forged mail threaded in by its headers is appended as a stranger's and flagged.
    let ours = app.our_message_ids(&owned);
    if let Some(id) = ours.first() {
        let raw = format!(
            "Authentication-Results: {fail}\r\nFrom: owner@owner.test\r\nTo: support@desk.test\r\nSubject: Re: yes\r\nIn-Reply-To: {id}\r\nMessage-ID: <byhdr@owner.test>\r\n\r\nI tried from 198.51.100.7\r\n"
        );
        let appended = app.ingest(raw.as_bytes());
        assert_eq!(
            (appended.outcome, appended.ticket.as_deref()),
            (Outcome::Appended, Some(owned.as_str()))
        );
        let t = app.ticket(&owned).await;
        assert_eq!(last_message_in(&t)["data"]["sender"], "stranger");
        assert_eq!(t["flagged"], true);
    }

    // A header from another authserv-id (the sender wrote it) changes nothing: it threads.
    let foreign = "mx.desk.test.evil.example; dmarc=fail header.from=owner.test";
    let raw = mail("foreign1", &format!("Re: [RD-{number}] more"), foreign, "more words");
    let (outcome, target) = deliver(&app, "webhook", &raw, false).await;
    assert_eq!((outcome, target.as_str()), (Outcome::Appended, owned.as_str()));
    let data = &last_message_in(&app.ticket(&owned).await)["data"];
    assert_eq!(
        (data["sender_auth"].as_str(), data["sender"].as_str()),
        (Some("none"), Some("requester"))
    );

    // Counted in /metrics (the server's own: the three that came over HTTP).
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("recoverydesk_inbound_sender_auth_total{verdict=\"fail\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_authserv_id_no_authentication_results_header_is_believed() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    app.import_accounts(&[account("acc_1", "owner-user", "owner@owner.test", "active")]);
    let raw = mail(
        "n1",
        "forgot my username",
        "mx.desk.test; dmarc=fail header.from=owner.test",
        "hi",
    );
    let r = app.ingest(&raw).ticket.unwrap();
    let t = app.ticket(&r).await;
    assert_eq!(t["account_id"], json!("acc_1"));
    assert_eq!(last_message_in(&t)["data"]["sender_auth"], "none");
}
