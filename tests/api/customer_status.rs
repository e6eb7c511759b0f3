//! A customer's bad day on the status page: words that match what happened, a "sent" notice
//! after each action, their own words first, long automatic mail folded, files with a reply
//! (docs/reference.md#customer-pages).

use crate::diagnosis::reference_from;
use crate::helpers::{BOUNDARY, multipart};
use crate::helpers::{Backend, TestApp, account, last_event, reference, ticket_with_status_page};
use reqwest::StatusCode;
use serde_json::json;

async fn post_multipart(app: &TestApp, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn page_with_cookie(app: &TestApp, path: &str, cookie: Option<&str>) -> (String, Vec<String>) {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let set: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    (response.text().await.unwrap(), set)
}

fn notice_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("rd_notice="))
        .and_then(|v| v.split(';').next())
        .expect("a notice cookie")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_on_the_status_page_is_followed_by_a_sent_notice_shown_once() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let (_, path) = ticket_with_status_page(&app, json!({"kind": "ip_lockout", "requester": "ops@acme.test"})).await;
    let (_, other_path) = ticket_with_status_page(&app, json!({"kind": "general", "requester": "else@x.test"})).await;

    let response = app
        .client
        .post(format!("{}{path}/allowlisted-attempts", app.address))
        .form(&[("tried_from", "the Paris office"), ("outcome", "IP not allowed")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], path.as_str());
    let cookie = notice_cookie(&response);
    let (page, set) = page_with_cookie(&app, &path, Some(&cookie)).await;
    assert!(page.contains("Thank you: what you tried is recorded."), "{page}");
    assert!(
        set.iter().any(|c| c.starts_with("rd_notice=;")),
        "the notice is spent: {set:?}"
    );
    let (page, _) = page_with_cookie(&app, &path, None).await;
    assert!(!page.contains("what you tried is recorded"), "shown once");
    // The notice belongs to its ticket: another status page does not show it.
    let (page, _) = page_with_cookie(&app, &other_path, Some(&cookie)).await;
    assert!(!page.contains("sent-notice"), "{page}");

    let response = post_multipart(
        &app,
        &format!("{path}/reply"),
        multipart(&[("body", "Also: our VPN.")], &[]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (page, _) = page_with_cookie(&app, &path, Some(&notice_cookie(&response))).await;
    assert!(page.contains("Your message was sent."), "{page}");
    assert!(page.contains("Also: our VPN."));
    // A plain form post (no files) says so too.
    let response = app
        .client
        .post(format!("{}{path}/reply", app.address))
        .form(&[("body", "One more thing.")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (page, _) = page_with_cookie(&app, &path, Some(&notice_cookie(&response))).await;
    assert!(page.contains("Your message was sent.") && page.contains("One more thing."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_what_became_of_the_confirmation_link() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let r = reference(
        &app.create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test",
                                  "tried_from": "office", "outcome": "blocked"}))
            .await,
    );
    let path = app.status_path_of(&r).await;
    let (_, page) = app.page(&path).await;
    assert!(
        page.contains("You told us which allowlisted networks you tried."),
        "{page}"
    );
    app.act(&r, "start_ownership_verification", json!({})).await;
    let (_, page) = app.page(&path).await;
    assert!(
        page.contains("An agent is verifying that the account is yours."),
        "{page}"
    );
    app.act(&r, "send_email_challenge", json!({})).await;
    let (_, page) = app.page(&path).await;
    assert!(page.contains("Please confirm by email"), "{page}");
    assert!(page.contains("Open it and press"));

    let challenge = app.latest_challenge_path().await;
    assert_eq!(app.confirm_challenge(&challenge, "confirm").await, StatusCode::OK);
    let (_, page) = app.page(&path).await;
    assert!(page.contains("Confirmation received"), "{page}");
    assert!(
        !page.contains("Open it and press") && !page.contains("for a confirmation link"),
        "no longer asks for the link once it was answered: {page}"
    );

    // A new round whose link expires unused says so, and what to do.
    let r2 = reference(
        &app.create_ticket(
            json!({"kind": "ip_lockout", "requester": "ops@acme.test", "subject": "Second office",
                                  "tried_from": "office", "outcome": "blocked"}),
        )
        .await,
    );
    let path2 = app.status_path_of(&r2).await;
    app.act(&r2, "start_ownership_verification", json!({})).await;
    app.act(&r2, "send_email_challenge", json!({})).await;
    {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE email_challenges SET expires_at = '2000-01-01 00:00:00' WHERE used_at IS NULL")
            .execute(&mut app.raw_conn())
            .unwrap();
    }
    let (_, page) = app.page(&path2).await;
    assert!(page.contains("The confirmation link expired"), "{page}");
    assert!(page.contains("Reply below and we will send a new one."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customers_own_words_come_first_and_long_automatic_mail_is_folded() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let words = "Since Monday our CRM gets 535 for every message.";
    let (status, _, page) = app
        .form(
            "/help/login",
            &[
                ("email", "dev@x.test"),
                ("problem", "smtp_535"),
                ("smtp_username", "crm-mailer"),
                ("failed_at", "2026-11-20T10:00"),
                ("failed_at_zone", "Europe/Paris"),
                ("details", words),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let r = reference_from(&page);
    let path = app.status_path_of(&r).await;
    let (_, page) = app.page(&path).await;
    let request_at = page.find("Your request").expect("their request");
    let words_at = page.find(words).expect("their words");
    let messages_at = page.find(r#"id="thread-title""#).expect("the messages");
    assert!(
        request_at < words_at && words_at < messages_at,
        "their words come first: {page}"
    );
    for field in [
        "<dt>SMTP username</dt><dd>crm-mailer</dd>",
        "<dt>A failed attempt (UTC)</dt><dd>2026-11-20 09:00</dd>",
        "<dt>What happens</dt><dd>535 Authentication failed over SMTP</dd>",
    ] {
        assert!(page.contains(field), "{field}: {page}");
    }
    // The long automatic mail (the diagnosis checklist) is folded under its subject.
    let thread = &page[messages_at..];
    assert!(thread.contains(r#"<details class="folded">"#), "{thread}");
    assert!(thread.contains("(automatic message: open to read)"));

    // Their reply is never folded, and the page says it reached us.
    let response = app
        .client
        .post(format!("{}{path}/reply", app.address))
        .form(&[("body", "It still fails after the reset.")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.page(&path).await;
    let reply_at = page.find("It still fails after the reset.").unwrap();
    let folded_before = page[..reply_at].rfind("<li class=").unwrap();
    assert!(
        !page[folded_before..reply_at].contains("<details"),
        "the customer's words are shown open"
    );
    assert!(page.contains("We received your message."), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sent_with_a_reply_are_scanned_limited_and_served_only_from_their_own_page() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (r, path) = ticket_with_status_page(&app, json!({"kind": "general", "requester": "me@x.test"})).await;
    let (_, other_path) = ticket_with_status_page(&app, json!({"kind": "general", "requester": "else@x.test"})).await;

    let log = b"10:02 connect\n10:02 AUTH LOGIN\npassword: Tr0ub4dor&3horse\n10:03 535 5.7.8\n".to_vec();
    let png = [b"\x89PNG\r\n\x1a\n".to_vec(), vec![0u8; 64], b"IEND".to_vec()].concat();
    let response = post_multipart(
        &app,
        &format!("{path}/reply"),
        multipart(
            &[("body", "The log and a screenshot.")],
            &[("smtp.log", "text/plain", &log), ("error.png", "image/png", &png)],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let t = app.ticket(&r).await;
    let reply = last_event(&t, "message_in");
    let files = reply["data"]["attachments"].as_array().expect("attachments listed");
    assert_eq!(files.len(), 2, "{reply}");
    assert_eq!(files[0]["filename"], "smtp.log");
    assert_eq!(files[1]["filename"], "error.png");
    assert_eq!(files[1]["size"], png.len());
    assert!(!t.to_string().contains("Tr0ub4dor"), "{t}");
    assert!(crate::helpers::event_types(&t).contains(&"redaction".to_string()));

    // The page lists them; each downloads from this page only, as a download.
    let (_, page) = app.page(&path).await;
    let log_id = files[0]["id"].as_i64().unwrap();
    let link = format!("{path}/files/{log_id}");
    assert!(page.contains(&format!(r#"href="{link}""#)), "{page}");
    let response = app.client.get(format!("{}{link}", app.address)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(response.headers()["content-type"], "application/octet-stream");
    let kept = response.bytes().await.unwrap();
    let kept = String::from_utf8_lossy(&kept);
    assert!(
        kept.contains("AUTH LOGIN") && !kept.contains("Tr0ub4dor"),
        "scanned as mail is: {kept}"
    );
    for (from, id) in [
        (other_path.as_str(), log_id.to_string()),
        (path.as_str(), "999999".to_string()),
        (path.as_str(), "-1".to_string()),
        (path.as_str(), "1%20OR%201=1".to_string()),
    ] {
        let (status, _) = app.page(&format!("{from}/files/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{from}/files/{id}");
    }

    // Too large, too many, or unreadable: the form comes back with the words kept, nothing sent.
    let before = app.ticket(&r).await["events"].as_array().unwrap().len();
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    let six: Vec<(String, Vec<u8>)> = (0..6).map(|i| (format!("f{i}.txt"), b"x".to_vec())).collect();
    let six: Vec<(&str, &str, &[u8])> = six
        .iter()
        .map(|(n, d)| (n.as_str(), "text/plain", d.as_slice()))
        .collect();
    for (body, message) in [
        (
            multipart(&[("body", "Here is the big one.")], &[("big.log", "text/plain", &big)]),
            "big.log is larger than 10 MB",
        ),
        (
            multipart(&[("body", "Here is the big one.")], &six),
            "Send at most 5 files",
        ),
        (
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nHere is the big one.")
                .into_bytes(),
            "could not read",
        ),
    ] {
        let response = post_multipart(&app, &format!("{path}/reply"), body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = response.text().await.unwrap();
        assert!(page.contains(message), "{message}: {page}");
        if !message.contains("could not read") {
            assert!(page.contains("Here is the big one."), "the words are kept");
        }
    }
    assert_eq!(app.ticket(&r).await["events"].as_array().unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_larger_than_a_mail_may_be_is_refused_before_it_is_read() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("--max-message-bytes", "2048")])
        .await
        .unwrap();
    let (_, path) = ticket_with_status_page(&app, json!({"kind": "general", "requester": "me@x.test"})).await;
    let body = multipart(&[("body", "hello")], &[("a.txt", "text/plain", &[b'x'; 4096])]);
    let response = post_multipart(&app, &format!("{path}/reply"), body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.text().await.unwrap().contains("Nothing was sent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_replies_two_at_once_a_key_in_a_file_name_and_lying_content_types() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (r, path) = ticket_with_status_page(&app, json!({"kind": "general", "requester": "me@x.test"})).await;
    let reply = format!("{path}/reply");

    // Two replies at once, each with a file: both are kept, each with its own file.
    let (a, b) = tokio::join!(
        post_multipart(
            &app,
            &reply,
            multipart(&[("body", "first at once")], &[("a.txt", "text/plain", b"alpha")])
        ),
        post_multipart(
            &app,
            &reply,
            multipart(&[("body", "second at once")], &[("b.txt", "text/plain", b"beta")])
        ),
    );
    assert_eq!((a.status(), b.status()), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER));
    let (_, page) = app.page(&path).await;
    assert!(page.contains("first at once") && page.contains("second at once"));
    assert!(page.contains(">a.txt</a>") && page.contains(">b.txt</a>"));

    // A key in a file's name (and a NUL in the words) never reaches storage.
    let key = "AKIAQ3EGRTZKX5VNM2PL";
    let response = post_multipart(
        &app,
        &reply,
        multipart(
            &[("body", "see\0 attached")],
            &[(&format!("{key}.txt"), "text/plain", b"hello")],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let t = app.ticket(&r).await;
    assert!(!t.to_string().contains(key), "{t}");
    assert!(t.to_string().contains("see attached"));

    // A multipart type over a form-encoded body, and the other way round: nothing is sent.
    let before = app.ticket(&r).await["events"].as_array().unwrap().len();
    let lying = app
        .client
        .post(format!("{}{reply}", app.address))
        .header("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body("body=hello")
        .send()
        .await
        .unwrap();
    assert_eq!(lying.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let lying = app
        .client
        .post(format!("{}{reply}", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(multipart(&[("body", "hello")], &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(lying.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.ticket(&r).await["events"].as_array().unwrap().len(), before);
}
