//! Provider webhooks (docs/reference.md#provider-webhooks), with payloads in the shapes the
//! providers document: SendGrid Inbound Parse in raw and parsed mode (multipart, attachments,
//! ISO-8859-1 and Shift_JIS parts) and Mailgun `body-mime` posts with valid and forged
//! signatures. Written for this project from the providers' public documentation.

use crate::both_backends;
use crate::helpers::{Backend, TestApp};
use crate::sender_auth::{FormField, MAILGUN_KEY, TOKEN, form, mailgun_signature, post_form, settings};
use reqwest::StatusCode;
use serde_json::Value;

const RAW: &[u8] = b"Received: from mail-ej1.example.net by mx.sendgrid.net\r\nFrom: Ada <ada@customer.test>\r\nTo: support@desk.test\r\nSubject: I forgot my username\r\nMessage-ID: <sg-raw-1@customer.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, I cannot remember my username.\r\n";

fn message_in(ticket: &Value) -> Value {
    ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "message_in")
        .cloned()
        .unwrap()
}

both_backends!(sendgrid_raw_and_parsed_posts_become_tickets, sendgrid);

async fn sendgrid(app: TestApp) {
    let app = app.respawn_with(&settings()).await;
    // Raw mode: the whole message in `email`, the rest alongside (as SendGrid posts it).
    let envelope = br#"{"to":["support@desk.test"],"from":"ada@customer.test"}"#;
    let raw_fields: Vec<FormField<'_>> = vec![
        ("dkim", None, b"{@customer.test : pass}"),
        ("email", None, RAW),
        ("to", None, b"support@desk.test"),
        ("from", None, b"Ada <ada@customer.test>"),
        ("sender_ip", None, b"192.0.2.10"),
        ("envelope", None, envelope),
        ("subject", None, b"I forgot my username"),
        ("charsets", None, br#"{"to":"UTF-8","subject":"UTF-8","from":"UTF-8"}"#),
        ("SPF", None, b"pass"),
    ];
    let (status, answer) = post_form(&app, "/inbound/sendgrid", &raw_fields).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::OK, Some("created")),
        "{answer}"
    );
    let t = app.ticket(answer["ticket"].as_str().unwrap()).await;
    assert_eq!(t["kind"], "forgot_username");
    let data = &message_in(&t)["data"];
    assert_eq!(
        (data["from"].as_str(), data["sender_auth"].as_str()),
        (Some("ada@customer.test"), Some("pass"))
    );
    // The same post again is a duplicate.
    let (_, again) = post_form(&app, "/inbound/sendgrid", &raw_fields).await;
    assert_eq!(again["outcome"], "duplicate");

    // Parsed mode: headers, text and html in their charsets, two files.
    let headers = b"Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn\r\nMIME-Version: 1.0\r\nFrom: =?ISO-8859-1?Q?J=FCrgen?= <juergen@customer.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0100\r\nMessage-ID: <sg-parsed-1@customer.test>\r\nSubject: Login help\r\nTo: support@desk.test\r\nContent-Type: multipart/mixed; boundary=001a113df448cad2d00529d5b10d\r\n";
    let text = b"Gr\xfc\xdfe, I get 535 Authentication failed. username: crm-mailer\r\n";
    let html = b"<p>Gr\xfc\xdfe, I get <b>535</b></p><script>alert(1)</script>";
    let pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n";
    let info = r#"{"attachment1":{"filename":"screenshot 1.png","name":"screenshot 1.png","type":"image/png"},"attachment2":{"filename":"設定.pdf","name":"設定.pdf","type":"application/pdf"}}"#;
    let parsed_fields: Vec<FormField<'_>> = vec![
        ("headers", None, headers),
        ("dkim", None, b"none"),
        ("content-ids", None, b"{}"),
        ("to", None, b"support@desk.test"),
        ("html", None, html),
        ("from", None, b"J\xfcrgen <juergen@customer.test>"),
        ("text", None, text),
        ("sender_ip", None, b"192.0.2.11"),
        (
            "envelope",
            None,
            br#"{"to":["support@desk.test"],"from":"juergen@customer.test"}"#,
        ),
        ("attachments", None, b"2"),
        ("subject", None, b"Login help"),
        ("attachment-info", None, info.as_bytes()),
        (
            "charsets",
            None,
            br#"{"to":"UTF-8","html":"iso-8859-1","subject":"UTF-8","from":"iso-8859-1","text":"iso-8859-1"}"#,
        ),
        ("SPF", None, b"neutral"),
        (
            "attachment1",
            Some(("screenshot 1.png", "image/png")),
            b"\x89PNG\r\n\x1a\n\x00\x00",
        ),
        ("attachment2", Some(("x.pdf", "application/pdf")), pdf),
    ];
    let (status, answer) = post_form(&app, "/inbound/sendgrid", &parsed_fields).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::OK, Some("created")),
        "{answer}"
    );
    let reference = answer["ticket"].as_str().unwrap().to_string();
    let t = app.ticket(&reference).await;
    assert_eq!(t["kind"], "login_help", "classified from the decoded text");
    let m = message_in(&t);
    let body = m["data"]["body"].as_str().unwrap();
    assert!(
        body.contains("Grüße, I get 535"),
        "the ISO-8859-1 text is decoded: {body}"
    );
    assert_eq!(m["data"]["from"], "juergen@customer.test");
    let files: Vec<(String, String)> = m["data"]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["filename"].as_str().unwrap().into(),
                a["content_type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("screenshot 1.png".to_string(), "image/png".to_string()),
            ("設定.pdf".to_string(), "application/pdf".to_string())
        ]
    );
    // The raw copy says it was rebuilt, and the original's structure headers are gone.
    let raw = raw_copy(&app, &reference);
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("X-Recoverydesk-Rebuilt: from a SendGrid Inbound Parse post"),
        "{raw}"
    );
    assert!(!raw.contains("001a113df448cad2d00529d5b10d"));

    // Parsed mode without `headers`: From, To and Subject from the fields, in Shift_JIS.
    let invoice = b"\x90\xbf\x8b\x81\x8f\x91"; // 請求書
    let (status, answer) = post_form(
        &app,
        "/inbound/sendgrid",
        &[
            ("from", None, b"kenji@customer.test"),
            ("to", None, b"support@desk.test"),
            ("subject", None, invoice),
            ("text", None, invoice),
            (
                "charsets",
                None,
                br#"{"subject":"Shift_JIS","text":"Shift_JIS","from":"UTF-8","to":"UTF-8"}"#,
            ),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let t = app.ticket(answer["ticket"].as_str().unwrap()).await;
    assert_eq!(t["subject"], "請求書");
    assert_eq!(message_in(&t)["data"]["body"].as_str().map(str::trim), Some("請求書"));

    // Credentials: none, a wrong one, or a bearer token; basic auth with any user works.
    let (content_type, body) = form(&raw_fields);
    for auth in [None, Some(("sendgrid", "wrong"))] {
        let mut request = app
            .client
            .post(format!("{}/inbound/sendgrid", app.address))
            .header("Content-Type", content_type.clone())
            .body(body.clone());
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{auth:?}"
        );
    }
    let bearer = app
        .client
        .post(format!("{}/inbound/sendgrid", app.address))
        .bearer_auth(TOKEN)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    // Hostile posts: not a form, a form without the fields, a broken form.
    for (content_type, body) in [
        ("text/plain", b"hello".to_vec()),
        (
            "multipart/form-data; boundary=zz",
            b"--zz\r\nContent-Disposition: form-data; name=\"nothing\"\r\n\r\nx\r\n--zz--\r\n".to_vec(),
        ),
        (
            "multipart/form-data; boundary=zz",
            b"--zz\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nnever closed".to_vec(),
        ),
    ] {
        let response = app
            .client
            .post(format!("{}/inbound/sendgrid", app.address))
            .bearer_auth(TOKEN)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{content_type}: {}",
            response.status()
        );
    }
}

/// The stored raw copy of a ticket's first message.
fn raw_copy(app: &TestApp, reference: &str) -> Vec<u8> {
    use diesel::prelude::*;
    use recoverydesk::db::schema::{messages, raw_messages};
    let number: i64 = reference.trim_start_matches("RD-").parse().unwrap();
    let mut conn = app.conn();
    let first: i64 = messages::table
        .filter(messages::ticket_id.eq(number))
        .select(messages::id)
        .order(messages::id.asc())
        .first(&mut *conn)
        .unwrap();
    raw_messages::table
        .filter(raw_messages::message_ref.eq(first))
        .select(raw_messages::raw)
        .first(&mut *conn)
        .unwrap()
}

both_backends!(mailgun_posts_need_a_valid_signature, mailgun);

async fn mailgun(app: TestApp) {
    let app = app.respawn_with(&settings()).await;
    let raw = b"From: Bo <bo@customer.test>\r\nTo: support@desk.test\r\nSubject: account terminated?\r\nMessage-ID: <mg-1@customer.test>\r\n\r\nMy account was terminated, why?\r\n";
    let (timestamp, token) = ("1767225600", "e9b3f0c4d2a14c7a9d5b1f2e3a4c5d6e7f8091a2b3c4d5e6f7");
    let good = mailgun_signature(MAILGUN_KEY, timestamp, token);
    let forged = mailgun_signature("not-the-key", timestamp, token);
    let fields = |signature: &str| -> Vec<(String, Vec<u8>)> {
        vec![
            ("recipient".into(), b"support@desk.test".to_vec()),
            ("sender".into(), b"bo@customer.test".to_vec()),
            ("subject".into(), b"account terminated?".to_vec()),
            ("from".into(), b"Bo <bo@customer.test>".to_vec()),
            ("X-Mailgun-Spf".into(), b"Pass".to_vec()),
            ("X-Mailgun-Dkim-Check-Result".into(), b"Pass".to_vec()),
            ("timestamp".into(), timestamp.as_bytes().to_vec()),
            ("token".into(), token.as_bytes().to_vec()),
            ("signature".into(), signature.as_bytes().to_vec()),
            ("body-mime".into(), raw.to_vec()),
        ]
    };
    let send = |list: Vec<(String, Vec<u8>)>| {
        let app = &app;
        async move {
            let borrowed: Vec<FormField<'_>> = list.iter().map(|(n, v)| (n.as_str(), None, v.as_slice())).collect();
            post_form(app, "/inbound/mailgun", &borrowed).await
        }
    };
    for bad in [forged.as_str(), "", "zz", &good[..good.len() - 2]] {
        let (status, _) = send(fields(bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad:?}");
    }
    let tickets = app.get("/api/v1/tickets").await.1;
    assert_eq!(
        tickets["tickets"].as_array().map(Vec::len),
        Some(0),
        "nothing stored from forged posts"
    );
    let (status, answer) = send(fields(&good)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (StatusCode::OK, Some("created")),
        "{answer}"
    );
    let t = app.ticket(answer["ticket"].as_str().unwrap()).await;
    let data = &message_in(&t)["data"];
    assert_eq!(
        (data["from"].as_str(), data["sender_auth"].as_str()),
        (Some("bo@customer.test"), Some("pass"))
    );
    // URL-encoded posts are read too.
    let response = app
        .client
        .post(format!("{}/inbound/mailgun", app.address))
        .bearer_auth(TOKEN)
        .form(&[
            ("timestamp", timestamp),
            ("token", token),
            ("signature", good.as_str()),
            (
                "body-mime",
                "From: cy@customer.test\r\nSubject: hello\r\nMessage-ID: <mg-2@customer.test>\r\n\r\nhi\r\n",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signing_key_mailgun_posts_are_refused_and_oversized_posts_get_413() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[("--inbound-token", TOKEN), ("--max-message-bytes", "2048")],
    )
    .await
    else {
        return;
    };
    let signature = mailgun_signature("anything", "1", "2");
    let (status, _) = post_form(
        &app,
        "/inbound/mailgun",
        &[
            ("timestamp", None, b"1"),
            ("token", None, b"2"),
            ("signature", None, signature.as_bytes()),
            ("body-mime", None, RAW),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let big = vec![b'a'; 2 * 1024 * 1024];
    let (status, _) = post_form(&app, "/inbound/sendgrid", &[("email", None, &big)]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let mut raw = RAW.to_vec();
    raw.extend(vec![b'x'; 4000]);
    let (status, _) = post_form(&app, "/inbound/sendgrid", &[("email", None, &raw)]).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "the message inside is over the limit"
    );
}
