//! The agent console, black-box: sign-in, throttling, CSRF, the queue, and every action form
//! going through the same engine as the API.

use crate::both_backends;
use crate::helpers::{Backend, Console, TestApp, account, reference, ticket_with_held_mail};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    agents_work_an_ip_lockout_from_the_console_through_the_engine,
    ip_lockout_in_the_console
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_are_sent_to_sign_in_and_sign_out_ends_the_session() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let console = Console::new(&app);
    for path in [
        "/agent",
        "/agent/tickets/RD-1",
        "/agent/accounts/x",
        "/agent/quarantine",
        "/agent/admin/agents",
    ] {
        let (status, location, _) = console.get(path).await;
        assert_eq!(
            (status, location.as_deref()),
            (StatusCode::SEE_OTHER, Some("/agent/login")),
            "{path}"
        );
    }
    let (status, location, _) = console
        .post("/agent/tickets/RD-1/actions/resolve", &[("csrf", "x")])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/agent/login"))
    );
    let (status, _, page) = console.get("/agent/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"name="email""#) && page.contains(r#"name="password""#));

    assert_eq!(
        console.sign_in("admin@localhost", "wrong password").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = console.get("/agent").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Queue"));
    let cookie_header = {
        let fresh = Console::new(&app);
        let token = fresh.csrf("/agent/login").await;
        let response = fresh
            .client
            .post(format!("{}/agent/login", app.address))
            .form(&[
                ("email", "admin@localhost"),
                ("password", app.admin_password.as_str()),
                ("csrf", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        response.headers()["set-cookie"].to_str().unwrap().to_string()
    };
    assert!(
        cookie_header.contains("HttpOnly") && cookie_header.contains("SameSite=Strict"),
        "{cookie_header}"
    );
    assert!(!cookie_header.contains(&app.admin_password), "the cookie is encrypted");

    let (status, _, _) = console.submit("/agent", "/agent/logout", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, location, _) = console.get("/agent").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/agent/login"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_sign_ins_are_throttled() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let console = Console::new(&app);
    for _ in 0..5 {
        assert_eq!(
            console.sign_in("admin@localhost", "guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    // Other accounts from the same client still get their five tries, up to 20 in all.
    for i in 0..15 {
        let status = console.sign_in(&format!("nobody{i}@x.test"), "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        console.sign_in("someone@x.test", "guess").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "c@x.test"}))
        .await;
    let r = reference(&t);
    let console = Console::admin(&app).await;
    for token in ["", "forged-token-value"] {
        let (status, _, _) = console
            .post(&format!("/agent/tickets/{r}/actions/resolve"), &[("csrf", token)])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = console
            .post(&format!("/agent/tickets/{r}/reply"), &[("csrf", token), ("body", "hi")])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(app.ticket(&r).await["state"], "awaiting_agent", "nothing happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_agent_is_locked_out_of_the_console_and_the_api_at_once() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let admin = Console::admin(&app).await;
    let (status, _, page) = admin
        .submit(
            "/agent/admin/agents",
            "/agent/admin/agents",
            &[
                ("email", "sam@desk.test"),
                ("name", "Sam"),
                ("role", "agent"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Added sam@desk.test"));
    let sam = Console::new(&app);
    assert_eq!(
        sam.sign_in("sam@desk.test", "a long enough password").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(sam.get("/agent").await.0, StatusCode::OK);
    let (status, _, _) = sam.get("/agent/admin/agents").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents are not admins");
    let token = recoverydesk::services::agents::issue_token(&mut app.conn(), "sam@desk.test").unwrap();
    let api = |t: String| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/tickets", app.address);
        async move { client.get(url).bearer_auth(t).send().await.unwrap().status() }
    };
    assert_eq!(api(token.clone()).await, StatusCode::OK);

    let (_, _, page) = admin.get("/agent/admin/agents").await;
    let sam_id = page
        .split("/agent/admin/agents/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let (status, _, _) = admin
        .submit(
            "/agent/admin/agents",
            &format!("/agent/admin/agents/{sam_id}/deactivate"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, location, _) = sam.get("/agent").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/agent/login")),
        "the session stops at once"
    );
    assert_eq!(api(token).await, StatusCode::UNAUTHORIZED, "and the API token");
    assert_eq!(
        sam.sign_in("sam@desk.test", "a long enough password").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_ticket_offers_no_reactivation_and_a_forged_post_gets_the_refusal() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut acc = account("acc_t", "late", "late@x.test", "terminated");
    acc["balance_due_cents"] = json!(0);
    app.import_accounts(&[acc]);
    let r = reference(
        &app.create_ticket(json!({"kind": "account_terminated", "requester": "late@x.test"}))
            .await,
    );
    app.import_accounts(&[account("acc_t", "late", "late@x.test", "banned")]);
    let console = Console::admin(&app).await;
    let (status, _, page) = console.get(&format!("/agent/tickets/{r}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("action-reactivate_account"), "no reactivation button");
    assert!(
        page.contains(r#"id="blocked-reactivate_account""#) && page.contains("account_banned"),
        "shown as blocked, with the reason"
    );
    let (status, _, page) = console
        .submit(
            &format!("/agent/tickets/{r}"),
            &format!("/agent/tickets/{r}/actions/reactivate_account"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        page.contains("account_banned") && page.contains("a ban is permanent"),
        "{page}"
    );
    let t = app.ticket(&r).await;
    assert!(
        t["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "refusal" && e["actor"] == "agent:admin@localhost")
    );
    let (_, acc) = app.get("/api/v1/accounts/acc_t").await;
    assert_eq!(acc["status"], "banned");
}

async fn ip_lockout_in_the_console(app: TestApp) {
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let r = reference(&app.create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test", "current_ip": "198.51.100.77", "subject": "Locked <out>"})).await);
    let console = Console::admin(&app).await;
    let page_path = format!("/agent/tickets/{r}");
    let act = |name: &str| format!("/agent/tickets/{r}/actions/{name}");

    let link = format!(r#"href="/agent/tickets/{r}""#);
    let (_, _, queue) = console.get("/agent").await;
    assert!(
        queue.contains(&link) && queue.contains("Locked &#60;out&#62;"),
        "listed, escaped"
    );
    let (_, _, queue) = console.get("/agent?kind=forgot_username").await;
    assert!(!queue.contains(&link), "filtered out by kind");
    let (_, _, queue) = console.get(&format!("/agent?q={r}")).await;
    assert!(queue.contains(&link), "found by reference");
    let (_, _, queue) = console.get("/agent?assignee=me").await;
    assert!(!queue.contains(&link), "not assigned to me yet");

    let (_, _, page) = console.get(&page_path).await;
    assert!(
        page.contains(r#"id="blocked-start_ownership_verification""#) && page.contains("allowlisted_attempts_missing")
    );
    let (status, _, page) = console
        .submit(&page_path, &act("start_ownership_verification"), &[])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("allowlisted_attempts_missing"));
    let (status, location, _) = console
        .submit(
            &page_path,
            &act("record_allowlisted_attempts"),
            &[("tried_from", "office VPN"), ("outcome", "blocked")],
        )
        .await;
    assert_eq!(
        (status, location),
        (
            StatusCode::SEE_OTHER,
            Some(format!("{page_path}?done=record_allowlisted_attempts"))
        )
    );
    console
        .submit(&page_path, &act("start_ownership_verification"), &[])
        .await;
    console.submit(&page_path, &act("send_email_challenge"), &[]).await;
    let (_, _, page) = console.get(&page_path).await;
    assert!(
        !page.contains("/verify/"),
        "the challenge link never reaches an agent's screen"
    );
    assert!(
        !page.contains(r#"value="email_challenge""#),
        "email challenge cannot be recorded by hand"
    );
    app.confirm_challenge(&app.latest_challenge_path().await, "confirm")
        .await;
    let (status, _, _) = console
        .submit(
            &page_path,
            &act("record_verification_check"),
            &[
                ("method", "billing_details"),
                ("passed", "true"),
                ("evidence", "invoice"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = console.get(&page_path).await;
    assert!(
        page.contains("Ownership verified.") && page.contains(r#"value="198.51.100.77""#),
        "grant prefilled with the customer's address"
    );
    let (status, _, page) = console
        .submit(&page_path, &act("grant_ip_access"), &[("ip", "10.0.0.1")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("ip_not_public"));
    let (status, _, _) = console
        .submit(&page_path, &act("grant_ip_access"), &[("ip", "198.51.100.77")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(app.ticket(&r).await["state"], "resolved");

    let (status, _, _) = console
        .submit(
            &page_path,
            &format!("/agent/tickets/{r}/reply"),
            &[("body", "All set <b>now</b>"), ("internal", "on")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = console.get(&page_path).await;
    assert!(page.contains("All set &#60;b&#62;now&#60;/b&#62;") && page.contains("Internal note"));
    assert!(
        page.contains("directory_change") && page.contains("agent:admin@localhost"),
        "the audit trail"
    );
    let (_, _, page) = console.get("/agent/accounts/acc_1001").await;
    assert!(page.contains("198.51.100.77") && page.contains(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thread_shows_redactions_folded_quotes_sanitised_html_and_downloads() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let raw = "From: kim@x.test\r\nTo: support@desk.test\r\nSubject: Locked out\r\nMessage-ID: <k1@x.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>I am locked out, password: Sw0rdfish!</p><script>alert(1)</script><p>On Mon, Support wrote:</p><blockquote>old</blockquote>\r\n--b\r\nContent-Type: text/plain; name=\"log.txt\"\r\nContent-Disposition: attachment; filename=\"log.txt\"\r\n\r\nconnection log\r\n--b--\r\n";
    let r = app.ingest(raw.as_bytes()).ticket.unwrap();
    let console = Console::admin(&app).await;
    let (_, _, page) = console.get(&format!("/agent/tickets/{r}")).await;
    assert!(page.contains("secret redacted") && !page.contains("Sw0rdfish"));
    assert!(!page.contains("<script>alert"), "sanitised");
    let id = page
        .split("/agent/attachments/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let response = console
        .client
        .get(format!("{}/agent/attachments/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.text().await.unwrap().trim(), "connection log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sends_a_held_mail_from_the_ticket_page() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let last = ticket_with_held_mail(&app).await;
    let console = Console::admin(&app).await;
    let page_path = format!("/agent/tickets/{last}");
    let (_, _, page) = console.get(&page_path).await;
    assert!(page.contains(">held<"), "the capped mail waits: {page}");
    let form_action = page
        .split(&format!("/agent/tickets/{last}/mail/"))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let (status, _, _) = console
        .submit(&page_path, &format!("/agent/tickets/{last}/mail/{form_action}"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.outbox_status().last().unwrap().2,
        "pending",
        "released to the sender"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_help_ticket_shows_the_credential_check_and_can_run_it_again() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let events = json!([
        {"at": "2026-11-20T10:00:03Z", "channel": "smtp", "username": "crm-mailer", "account_id": "acc_1001",
         "client_ip": "203.0.113.7", "mechanism": "CRAM-MD5", "tls": true, "result": "mechanism_not_supported"},
        {"at": "2026-11-20T10:05:00Z", "channel": "smtp", "username": "crm-mailer", "account_id": "acc_1001",
         "client_ip": "203.0.113.7", "mechanism": "PLAIN", "tls": true, "result": "ok"}
    ]);
    let (status, body) = app.post("/api/v1/auth-events", &events).await;
    assert!(status.is_success(), "{status} {body}");
    let r = reference(
        &app.create_ticket(
            json!({"kind": "login_help", "requester": "ops@acme.test", "problem": "smtp_535",
                                  "smtp_username": "crm-mailer", "failed_at": "2026-11-20T10:00:00Z"}),
        )
        .await,
    );
    let console = Console::admin(&app).await;
    let page_path = format!("/agent/tickets/{r}");
    let (_, _, page) = console.get(&page_path).await;
    assert!(page.contains(r#"id="diagnosis""#), "the panel is shown");
    assert!(
        page.contains("crm-mailer") && page.contains("203.0.113.7") && page.contains("CRAM-MD5"),
        "the timeline"
    );
    assert!(
        page.contains(r#"id="one-click-resolve""#),
        "it works again since: one click resolves"
    );
    let (status, _, _) = console
        .submit(
            &page_path,
            &format!("/agent/tickets/{r}/actions/diagnose_auth"),
            &[
                ("username", "nobody-here"),
                ("failed_at", "2026-11-20T10:00"),
                ("channel", "smtp"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the re-run form posts through the engine"
    );
    let (_, _, page) = console.get(&page_path).await;
    assert!(page.contains("nobody-here"), "the panel shows the latest diagnosis");
    let (status, _, _) = console
        .submit(
            &page_path,
            &format!("/agent/tickets/{r}/actions/resolve"),
            &[("note", "works again")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(app.ticket(&r).await["state"], "resolved");
}
