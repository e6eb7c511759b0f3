//! Replying with files, canned answers kept from the API and edited in the console, mail to
//! the assignee on customer activity, and a search that keeps the other filters
//! (docs/reference.md#agent-console, #canned-answers, #who-acts-next, #search).

use crate::both_backends;
use crate::helpers::{Console, TestApp, reference};
use mail_parser::MimeHeaders;
use recoverydesk::db;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A live-looking AWS access key id: the scanner removes it wherever it is.
const KEY: &str = "AKIAQ3EGRTZKX5VNM2PL";

/// The `/t/…/files/{id}` links of a status page.
fn file_links(page: &str) -> Vec<String> {
    page.match_indices("href=\"/t/")
        .filter_map(|(at, _)| {
            let link = page[at + 6..].split('"').next()?;
            link.contains("/files/").then(|| link.to_string())
        })
        .collect()
}

fn outbox_rows(app: &TestApp) -> Vec<db::outbox::OutboxRow> {
    db::outbox::all(&mut app.conn()).expect("outbox")
}

both_backends!(
    an_agents_reply_takes_its_files_to_the_mail_and_the_status_page_and_a_notes_files_stay_inside,
    reply_with_files
);

async fn reply_with_files(app: TestApp) {
    let r = app.general_ticket("kim@example.test", "Invoices missing").await;
    let status_path = app.status_path_of(&r).await;
    let console = Console::admin(&app).await;
    let ticket_page = format!("/agent/tickets/{r}");
    let csrf = console.csrf(&ticket_page).await;
    let export = format!("month,total\nmarch,120\naws,{KEY}\n");
    let (status, location, page) = console
        .post_files(
            &format!("{ticket_page}/reply"),
            &[("csrf", &csrf), ("body", "Here is the export you asked for.")],
            &[
                ("export.csv", "text/csv", export.as_bytes()),
                ("guide.pdf", "application/pdf", b"%PDF-1.4 a small guide"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location.as_deref(), Some(format!("{ticket_page}?done=reply").as_str()));

    // The outbox names the files; it holds neither their bytes nor the key.
    let rows = outbox_rows(&app);
    let reply = rows
        .iter()
        .find(|row| row.template == "agent_reply")
        .expect("the reply is queued");
    let params: Value = serde_json::from_str(&reply.params).expect("params");
    assert_eq!(params["attachment_ids"].as_array().map(Vec::len), Some(2), "{params}");
    for row in &rows {
        assert!(!row.params.contains(KEY) && !row.body.contains(KEY), "{row:?}");
    }

    // The mail goes out with both files, the key removed from the text one.
    app.deliver(0).await;
    let mail = app
        .delivered_mail()
        .into_iter()
        .rfind(|m| m.file.ends_with("-agent_reply.eml"))
        .expect("the reply was delivered");
    assert!(!String::from_utf8_lossy(&mail.raw).contains(KEY));
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .expect("parseable");
    assert!(
        parsed.body_text(0).unwrap_or_default().contains("Here is the export"),
        "the words come first"
    );
    let files: Vec<(String, Vec<u8>)> = parsed
        .attachments()
        .map(|a| {
            (
                a.attachment_name().unwrap_or_default().to_string(),
                a.contents().to_vec(),
            )
        })
        .collect();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["export.csv", "guide.pdf"]);
    let csv = String::from_utf8_lossy(&files[0].1).into_owned();
    assert!(csv.contains("march,120") && !csv.contains(KEY), "{csv}");
    assert_eq!(files[1].1, b"%PDF-1.4 a small guide");

    // Listed on the ticket page and on the customer's status page, where they download.
    let (_, _, page) = console.get(&ticket_page).await;
    assert!(
        page.contains(">export.csv</a>") && page.contains(">guide.pdf</a>"),
        "{page}"
    );
    let (_, status_page) = app.page(&status_path).await;
    let links = file_links(&status_page);
    assert_eq!(links.len(), 2, "{status_page}");
    let (status, csv_back) = app.page(&links[0]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv_back.contains("march,120") && !csv_back.contains(KEY));

    // A note's file stays on the note: on the ticket page, never mailed, not on the status
    // page, and its id does not download through the customer's link.
    let mailed_before = outbox_rows(&app).len();
    let csrf = console.csrf(&ticket_page).await;
    let (status, location, _) = console
        .post_files(
            &format!("{ticket_page}/note"),
            &[("csrf", &csrf), ("body", "Our internal plan is attached.")],
            &[("internal-plan.txt", "text/plain", b"only for agents")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some(format!("{ticket_page}?done=note").as_str()));
    assert_eq!(outbox_rows(&app).len(), mailed_before, "a note mails nothing");
    let (_, _, page) = console.get(&ticket_page).await;
    assert!(page.contains(">internal-plan.txt</a>"));
    let (_, status_page) = app.page(&status_path).await;
    assert!(!status_page.contains("internal-plan") && !status_page.contains("Our internal plan"));
    let ticket = app.ticket(&r).await;
    let note = ticket["events"]
        .as_array()
        .and_then(|events| events.iter().rfind(|e| e["type"] == "note"))
        .expect("the note event")
        .clone();
    let note_file = note["data"]["attachments"][0]["id"]
        .as_i64()
        .expect("the note's file id");
    let token_path = status_path.clone();
    let (status, _) = app.page(&format!("{token_path}/files/{note_file}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a note's file is not the customer's");
    app.deliver(0).await;
    assert!(
        app.delivered_mail()
            .iter()
            .all(|m| !String::from_utf8_lossy(&m.raw).contains("only for agents")),
        "no mail carries the note's file"
    );

    // Too many files: nothing is sent, and the typed words come back.
    let six: Vec<(String, Vec<u8>)> = (0..6).map(|i| (format!("f{i}.txt"), vec![b'x'; 3])).collect();
    let six: Vec<(&str, &str, &[u8])> = six
        .iter()
        .map(|(n, d)| (n.as_str(), "text/plain", d.as_slice()))
        .collect();
    let csrf = console.csrf(&ticket_page).await;
    let (status, _, page) = console
        .post_files(
            &format!("{ticket_page}/reply"),
            &[("csrf", &csrf), ("body", "Six files at once, typed with care")],
            &six,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("attach at most 5 files"), "{page}");
    assert!(
        page.contains(">Six files at once, typed with care</textarea>"),
        "the text is kept"
    );
    assert_eq!(outbox_rows(&app).len(), mailed_before);

    // A forged post without the CSRF token does nothing.
    let (status, _, _) = console
        .post_files(
            &format!("{ticket_page}/reply"),
            &[("body", "forged")],
            &[("x.txt", "text/plain", b"x")],
        )
        .await;
    assert_ne!(status, StatusCode::SEE_OTHER);
    assert_eq!(outbox_rows(&app).len(), mailed_before);
}

both_backends!(
    the_api_reply_takes_base64_files_and_refuses_malformed_ones,
    api_reply_files
);

async fn api_reply_files(app: TestApp) {
    let r = app.general_ticket("kim@example.test", "Invoices missing").await;
    let replies = format!("/api/v1/tickets/{r}/replies");
    let (status, ticket) = app
        .post(
            &replies,
            &json!({"body": "Attached.", "internal": false,
                    "attachments": [{"filename": "a.txt", "content_type": "text/plain",
                                     "content_base64": "aGVsbG8gd29ybGQ="}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let out = ticket["events"]
        .as_array()
        .and_then(|events| events.iter().rfind(|e| e["type"] == "message_out"))
        .expect("the reply's event")
        .clone();
    assert_eq!(out["data"]["attachments"][0]["filename"], "a.txt", "{out}");
    assert_eq!(out["data"]["attachments"][0]["size"], 11);

    // A key in a file's name or type is removed like a key anywhere else.
    let (status, ticket) = app
        .post(
            &replies,
            &json!({"body": "One more.", "internal": true,
                    "attachments": [{"filename": format!("{KEY}.txt"), "content_type": format!("text/{KEY}"),
                                     "content_base64": "eA=="}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!ticket.to_string().contains(KEY), "{ticket}");

    // Hostile names and types cannot add a header to the mail.
    let (status, _) = app
        .post(
            &replies,
            &json!({"body": "Two more.", "internal": false,
                    "attachments": [{"filename": "x\r\nBcc: victim@evil.test", "content_type": "text/plain\r\nBcc: victim@evil.test",
                                     "content_base64": "eA=="},
                                    {"filename": "\"; name=\"../../etc/passwd", "content_type": "multipart/mixed; boundary=zz",
                                     "content_base64": ""}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.deliver(0).await;
    let mail = app
        .delivered_mail()
        .into_iter()
        .rfind(|m| m.file.ends_with("-agent_reply.eml"))
        .expect("delivered");
    let raw = String::from_utf8_lossy(&mail.raw).into_owned();
    assert!(
        !raw.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{raw}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.raw)
        .expect("parseable");
    assert_eq!(parsed.attachments().count(), 2, "{raw}");
    assert!(parsed.bcc().is_none());

    let before = app.ticket(&r).await["events"].as_array().map(Vec::len);
    for (body, why) in [
        (
            json!({"body": "x", "internal": false, "attachments": [{"filename": "a.txt", "content_base64": "%%%"}]}),
            "not base64",
        ),
        (
            json!({"body": "x", "internal": false, "attachments": [{"filename": " ", "content_base64": "eA=="}]}),
            "no name",
        ),
        (
            json!({"body": "x", "internal": false, "attachments": [{"filename": "a", "content_base64": "eA==", "path": "/etc/passwd"}]}),
            "an unknown field",
        ),
        (
            json!({"body": "x", "internal": false, "attachments": vec![json!({"filename": "a", "content_base64": "eA=="}); 6]}),
            "six files",
        ),
        (
            json!({"body": "x", "internal": false, "attachments": "a.txt"}),
            "not a list",
        ),
    ] {
        let (status, answer) = app.post(&replies, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_input", "{why}: {answer}");
    }
    assert_eq!(app.ticket(&r).await["events"].as_array().map(Vec::len), before);
}

both_backends!(
    canned_answers_are_kept_through_the_api_by_admins_and_read_by_every_agent,
    canned_api
);

async fn canned_api(app: TestApp) {
    let (status, list) = app.get("/api/v1/canned").await;
    assert_eq!((status, list.clone()), (StatusCode::OK, json!({"canned": []})));
    let (status, made) = app
        .post(
            "/api/v1/canned",
            &json!({"title": "Allowlist steps", "body": "Hello {requester}, your key AKIAQ3EGRTZKX5VNM2PL"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["title"], "Allowlist steps");
    assert_eq!(made["account_dependent"], false);
    assert!(
        !made["body"].as_str().unwrap_or_default().contains(KEY),
        "scrubbed: {made}"
    );
    let id = made["id"].as_i64().expect("an id");

    // Malformed bodies: 422 in the API's error format, nothing written.
    let url = format!("{}/api/v1/canned", app.address);
    for (body, content_type, why) in [
        ("{\"title\": ", "application/json", "not JSON"),
        ("[1, 2]", "application/json", "not an object"),
        ("{\"body\": \"text\"}", "application/json", "no title"),
        (
            "{\"title\": 5, \"body\": \"b\"}",
            "application/json",
            "a number for a title",
        ),
        (
            "{\"title\": \"t\", \"body\": \"b\", \"account_dependent\": \"yes\"}",
            "application/json",
            "not a boolean",
        ),
        (
            "{\"title\": \"t\", \"body\": \"b\", \"tilte\": \"x\"}",
            "application/json",
            "an unknown field",
        ),
        (
            "{\"title\": \"   \", \"body\": \"b\"}",
            "application/json",
            "an empty title",
        ),
        (
            "title=t&body=b",
            "application/x-www-form-urlencoded",
            "not sent as JSON",
        ),
        ("", "application/json", "no body"),
    ] {
        let response = app
            .client
            .post(&url)
            .bearer_auth(&app.token)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let answer: Value = response.json().await.unwrap_or_default();
        assert_eq!(answer["error"]["code"], "invalid_input", "{why}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{why}");
    }
    assert_eq!(
        app.get("/api/v1/canned").await.1["canned"].as_array().map(Vec::len),
        Some(1)
    );

    // An edit replaces the whole answer.
    let put = |path: String, body: Value| {
        let request = app.client.put(format!("{}{path}", app.address)).bearer_auth(&app.token);
        async move {
            let response = request.json(&body).send().await.expect("request");
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, edited) = put(
        format!("/api/v1/canned/{id}"),
        json!({"title": "Allowlist: the steps", "body": "Hi {requester}, see {username}.", "account_dependent": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["title"], "Allowlist: the steps");
    assert_eq!(edited["account_dependent"], true);
    let (_, list) = app.get("/api/v1/canned").await;
    assert_eq!(list["canned"][0], edited);
    let (status, missing) = put("/api/v1/canned/999999".into(), json!({"title": "t", "body": "b"})).await;
    assert_eq!(
        (status, missing["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (status, _) = put(format!("/api/v1/canned/{id}"), json!({"title": "t"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = put("/api/v1/canned/abc".into(), json!({"title": "t", "body": "b"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An agent who is not an admin reads them and writes none.
    let agent_token = {
        let mut conn = app.conn();
        recoverydesk::services::agents::add_agent(&mut conn, "sam@desk.test", "Sam", "agent", "a long password 42")
            .expect("an agent");
        recoverydesk::services::agents::issue_token(&mut conn, "sam@desk.test").expect("a token")
    };
    let as_agent = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = app
            .client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&agent_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("request");
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, list) = as_agent(reqwest::Method::GET, "/api/v1/canned".into(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["canned"].as_array().map(Vec::len), Some(1));
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/canned".to_string()),
        (reqwest::Method::PUT, format!("/api/v1/canned/{id}")),
        (reqwest::Method::DELETE, format!("/api/v1/canned/{id}")),
    ] {
        let (status, answer) = as_agent(method.clone(), path, Some(json!({"title": "t", "body": "b"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    // Even a malformed body from a non-admin is a 403: who may write is said first.
    let (status, _) = as_agent(reqwest::Method::POST, "/api/v1/canned".into(), Some(json!([1]))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let delete = |path: String| {
        let request = app
            .client
            .delete(format!("{}{path}", app.address))
            .bearer_auth(&app.token);
        async move { request.send().await.expect("request").status() }
    };
    assert_eq!(delete(format!("/api/v1/canned/{id}")).await, StatusCode::NO_CONTENT);
    assert_eq!(delete(format!("/api/v1/canned/{id}")).await, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/canned").await.1, json!({"canned": []}));
}

both_backends!(an_admin_edits_a_canned_answer_in_the_console, canned_console_edit);

async fn canned_console_edit(app: TestApp) {
    let (_, made) = app
        .post(
            "/api/v1/canned",
            &json!({"title": "Old title", "body": "Old text for {ref}."}),
        )
        .await;
    let id = made["id"].as_i64().expect("an id");
    let console = Console::admin(&app).await;
    let (status, _, page) = console.get("/agent/admin/canned").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("action=\"/agent/admin/canned/{id}\"")),
        "an edit form"
    );
    let (status, location, _) = console
        .submit(
            "/agent/admin/canned",
            &format!("/agent/admin/canned/{id}"),
            &[
                ("title", "New title"),
                ("body", "New text for {ref}."),
                ("account_dependent", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/agent/admin/canned"));
    let (_, list) = app.get("/api/v1/canned").await;
    assert_eq!(list["canned"][0]["title"], "New title");
    assert_eq!(list["canned"][0]["body"], "New text for {ref}.");
    assert_eq!(list["canned"][0]["account_dependent"], true);
    // An empty title is refused with the page again; nothing changes.
    let (status, _, page) = console
        .submit(
            "/agent/admin/canned",
            &format!("/agent/admin/canned/{id}"),
            &[("title", ""), ("body", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("title: between 1 and"), "{page}");
    assert_eq!(app.get("/api/v1/canned").await.1["canned"][0]["title"], "New title");
}

/// Outbox rows to the assignee, as (recipient, subject, body, params).
fn assignee_mail(app: &TestApp) -> Vec<(String, String, String, String)> {
    outbox_rows(app)
        .into_iter()
        .filter(|row| row.template == "assignee_activity")
        .map(|row| (row.recipient, row.subject, row.body, row.params))
        .collect()
}

both_backends!(
    customer_activity_mails_the_assignee_once_per_quarter_hour_when_the_setting_is_on,
    notify_assignee_on
);

async fn notify_assignee_on(app: TestApp) {
    let app = app.respawn_with(&[("--notify-assignee", "on")]).await;
    {
        let mut conn = app.conn();
        recoverydesk::services::agents::add_agent(&mut conn, "sam@desk.test", "Sam", "agent", "a long password 42")
            .expect("an agent");
    }
    let r = app.general_ticket("kim@example.test", "Invoices missing").await;
    app.act(&r, "assign", json!({"agent_email": "sam@desk.test"})).await;
    let status_path = app.status_path_of(&r).await;
    let words = format!("Still missing. My password: hunter2hunter2 and the key {KEY}");
    let (status, _, _) = app.form(&format!("{status_path}/reply"), &[("body", &words)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mails = assignee_mail(&app);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (to, subject, body, params) = &mails[0];
    assert_eq!(to, "sam@desk.test");
    assert!(subject.contains(&r) && subject.contains("wrote"), "{subject}");
    assert!(body.contains(&format!("/agent/tickets/{r}")), "{body}");
    for text in [subject, body, params] {
        assert!(
            !text.contains("Still missing") && !text.contains("hunter2") && !text.contains(KEY),
            "the customer's words stay on the desk: {text}"
        );
    }
    // A second reply within the quarter hour: no second mail.
    let (status, _, _) = app
        .form(&format!("{status_path}/reply"), &[("body", "One more thing.")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(assignee_mail(&app).len(), 1);
    // It is machine-written mail: it goes out with Auto-Submitted.
    app.deliver(0).await;
    let delivered = app
        .delivered_mail()
        .into_iter()
        .find(|m| m.file.ends_with("-assignee_activity.eml"))
        .expect("delivered to the assignee");
    assert_eq!(delivered.to, "sam@desk.test");
    assert!(String::from_utf8_lossy(&delivered.raw).contains("Auto-Submitted: auto-"));

    // An unassigned ticket mails nobody.
    let r2 = app.general_ticket("lee@example.test", "Another one").await;
    let status_path = app.status_path_of(&r2).await;
    app.form(&format!("{status_path}/reply"), &[("body", "Hello?")]).await;
    assert_eq!(assignee_mail(&app).len(), 1);
    // A deactivated assignee gets nothing either.
    let r3 = app.general_ticket("max@example.test", "A third").await;
    app.act(&r3, "assign", json!({"agent_email": "sam@desk.test"})).await;
    let status_path = app.status_path_of(&r3).await;
    {
        let mut conn = app.conn();
        let sam = db::agents::find_by_email(&mut conn, "sam@desk.test")
            .expect("query")
            .expect("sam");
        db::console::deactivate_agent(&mut conn, sam.id).expect("deactivated");
    }
    app.form(&format!("{status_path}/reply"), &[("body", "Anyone?")]).await;
    assert_eq!(assignee_mail(&app).len(), 1);

    // Two replies at once on a fresh ticket: one mail (the ticket's lock orders them).
    let r4 = app.general_ticket("ana@example.test", "A fourth").await;
    app.act(&r4, "assign", json!({"agent_email": "admin@localhost"})).await;
    let status_path = app.status_path_of(&r4).await;
    let reply = format!("{status_path}/reply");
    let (a, b) = tokio::join!(
        app.form(&reply, &[("body", "first at once")]),
        app.form(&reply, &[("body", "second at once")])
    );
    assert_eq!((a.0, b.0), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER));
    let to_admin: Vec<_> = assignee_mail(&app)
        .into_iter()
        .filter(|(to, subject, _, _)| to == "admin@localhost" && subject.contains(&r4))
        .collect();
    assert_eq!(to_admin.len(), 1, "{to_admin:?}");
}

both_backends!(
    a_confirmed_challenge_mails_the_assignee_and_nothing_is_mailed_when_the_setting_is_off,
    notify_assignee_challenge
);

async fn notify_assignee_challenge(app: TestApp) {
    // Off (the default): a customer's reply on an assigned ticket mails nobody.
    let r = app.general_ticket("kim@example.test", "Invoices missing").await;
    app.act(&r, "assign", json!({"agent_email": "admin@localhost"})).await;
    let status_path = app.status_path_of(&r).await;
    app.form(&format!("{status_path}/reply"), &[("body", "Hello?")]).await;
    assert!(assignee_mail(&app).is_empty());

    let app = app.respawn_with(&[("--notify-assignee", "on")]).await;
    app.import_accounts(&[crate::helpers::account(
        "acc_1001",
        "acme-mailer",
        "ops@acme.test",
        "active",
    )]);
    let ticket = app
        .create_ticket(
            json!({"kind": "ip_lockout", "requester": "ops@acme.test", "subject": "Locked out",
                               "body": "New office.", "current_ip": "198.51.100.77"}),
        )
        .await;
    let r = reference(&ticket);
    app.act(
        &r,
        "record_allowlisted_attempts",
        json!({"tried_from": "office VPN", "outcome": "blocked"}),
    )
    .await;
    app.act(&r, "start_ownership_verification", json!({})).await;
    app.act(&r, "assign", json!({"agent_email": "admin@localhost"})).await;
    app.act(&r, "send_email_challenge", json!({})).await;
    assert!(assignee_mail(&app).is_empty(), "nothing the agent did mails the agent");
    let path = app.latest_challenge_path().await;
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::OK);
    let mails = assignee_mail(&app);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, "admin@localhost");
    assert!(mails[0].1.contains("answered the email challenge"), "{}", mails[0].1);
}

both_backends!(a_search_keeps_the_turn_state_and_kind_filters, search_with_filters);

async fn search_with_filters(app: TestApp) {
    let r1 = app
        .general_ticket("kim@example.test", "Invoices missing from the portal")
        .await;
    let r2 = app.general_ticket("lee@example.test", "Invoices missing again").await;
    let (status, _) = app.reply(&r1, "Could you check again?", false).await;
    assert_eq!(status, StatusCode::CREATED);
    let refs = |list: Value| -> Vec<String> {
        list["tickets"]
            .as_array()
            .map(|a| a.iter().map(reference).collect())
            .unwrap_or_default()
    };
    // Words: both match, the turn narrows them.
    assert_eq!(
        refs(app.get("/api/v1/tickets?q=invoices").await.1),
        vec![r2.clone(), r1.clone()]
    );
    assert_eq!(
        refs(app.get("/api/v1/tickets?q=invoices&waiting_on=customer").await.1),
        vec![r1.clone()]
    );
    assert_eq!(
        refs(app.get("/api/v1/tickets?q=invoices&waiting_on=agent").await.1),
        vec![r2.clone()]
    );
    // An exact address: the same.
    assert_eq!(
        refs(
            app.get("/api/v1/tickets?q=kim@example.test&waiting_on=customer")
                .await
                .1
        ),
        vec![r1.clone()]
    );
    assert!(refs(app.get("/api/v1/tickets?q=kim@example.test&waiting_on=agent").await.1).is_empty());
    // With a state and a kind too.
    assert_eq!(
        refs(
            app.get("/api/v1/tickets?q=invoices&waiting_on=agent&state=awaiting_agent&kind=general")
                .await
                .1
        ),
        vec![r2.clone()]
    );
    assert!(
        refs(
            app.get("/api/v1/tickets?q=invoices&waiting_on=agent&kind=ip_lockout")
                .await
                .1
        )
        .is_empty()
    );
    // The console's queue, the same service.
    let console = Console::admin(&app).await;
    let (_, _, page) = console.get("/agent?q=invoices&waiting_on=agent").await;
    assert!(page.contains(&format!("/agent/tickets/{r2}")), "{page}");
    assert!(!page.contains(&format!("/agent/tickets/{r1}\"")), "{page}");
    let (_, _, page) = console.get("/agent?q=invoices&waiting_on=customer").await;
    assert!(page.contains(&format!("/agent/tickets/{r1}")));
    assert!(!page.contains(&format!("/agent/tickets/{r2}\"")));
}
