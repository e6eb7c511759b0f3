//! The agent console in the browser: an agent signs in through the form, picks a ticket from the
//! queue and works it with the page's own forms; the customer's side (the mailed challenge link,
//! a reply by email) happens through the app as a mailbox would do it.

use crate::helpers::{self, TestApp, account};
use crate::support::{Page, Window, in_browser};
use serde_json::{Value, json};

/// The console is a desk tool: the screenshots are taken on a laptop-sized window.
const CONSOLE_WINDOW: Window = Window {
    width: 1280,
    height: 900,
    phone: false,
};

const REQUESTER: &str = "ops@acme.test";
const CUSTOMER_IP: &str = "198.51.100.77";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_an_ip_lockout_from_blocked_verification_to_granted_access() {
    in_browser(CONSOLE_WINDOW, |app, page| async move {
        app.import_accounts(&[account("acc_1001", "acme-mailer", REQUESTER, "active")]);
        let ticket = app
            .create_ticket(json!({
                "kind": "ip_lockout",
                "requester": REQUESTER,
                "subject": "Locked out after our office moved",
                "body": "Since the move the login page says our IP is not allowed.",
                "current_ip": CUSTOMER_IP,
            }))
            .await;
        let reference = helpers::reference(&ticket);
        backdate(&app, &reference, 12);
        let others = fill_the_queue(&app).await;
        let ticket_path = format!("/agent/tickets/{reference}");

        // Sign in through the form; the console then shows the queue.
        page.open("/agent").await;
        page.wait_for_path("/agent/login").await;
        sign_in(&page, &app).await;
        page.wait_for_path("/agent").await;
        assert_eq!(page.text("h1").await, "Queue oldest waiting first");
        let rows = page.texts("section.list tbody tr").await;
        assert_eq!(rows.len(), others.len() + 1, "every open ticket is listed: {rows:#?}");
        assert!(
            rows[0].starts_with(&format!("{} ", others[0])),
            "the ticket waiting longest comes first: {rows:#?}"
        );
        let ours = rows
            .iter()
            .find(|row| row.starts_with(&format!("{reference} ")))
            .unwrap_or_else(|| panic!("{reference} is not in the queue: {rows:#?}"));
        assert!(
            ours.contains("Locked out after our office moved")
                && ours.contains("Locked out by IP access management")
                && ours.contains("Waiting for allowlisted attempts")
                && ours.contains(REQUESTER),
            "the queue row says what the ticket is: {ours}"
        );
        page.screenshot("console-queue.png").await;

        page.click_link(&reference).await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("h1").await, "Locked out after our office moved");
        assert_eq!(
            page.text(".ticket-head .state").await,
            "Waiting for allowlisted attempts"
        );
        assert!(page.text("#account").await.contains("acme-mailer"));

        // Verification cannot start before the customer has tried their allowlisted IPs.
        assert!(!page.has("#action-start_ownership_verification").await);
        assert_blocked(
            &page,
            "start_ownership_verification",
            "allowlisted_attempts_missing",
            "the customer must first try to log in from their allowlisted IPs",
        )
        .await;
        assert_blocked(
            &page,
            "grant_ip_access",
            "ownership_not_verified",
            "has not been verified",
        )
        .await;
        assert!(
            page.text("#verification").await.contains("Not started"),
            "the checklist waits for the attempts"
        );

        let attempts = "#action-record_allowlisted_attempts";
        page.type_into(
            &format!("{attempts} input[name=tried_from]"),
            "Their old office VPN (203.0.113.7), on the phone with me",
        )
        .await;
        page.type_into(
            &format!("{attempts} input[name=outcome]"),
            "The login page still says the IP is not allowed",
        )
        .await;
        page.submit_with(&format!("{attempts} button[type=submit]")).await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Done: Record allowlisted attempts.");
        assert_eq!(page.text(".ticket-head .state").await, "Attempts reported");
        assert!(!page.has("#blocked-start_ownership_verification").await);

        page.submit_with("#action-start_ownership_verification button[type=submit]")
            .await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Done: Start ownership verification.");
        assert_eq!(page.text(".ticket-head .state").await, "Verifying ownership");
        assert!(
            page.text("#verification")
                .await
                .contains("0 of 2 passed methods (the email challenge is still needed)")
        );

        page.submit_with("#action-send_email_challenge button[type=submit]")
            .await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Done: Send an email challenge.");
        assert!(
            page.texts("#mail li")
                .await
                .iter()
                .any(|line| line.starts_with("email_challenge") && line.contains(REQUESTER)),
            "the challenge went to the registered address"
        );

        // The customer opens the mailed link and presses "Yes, this was me", whose form posts
        // `answer=confirm`; the agent reloads the page.
        let challenge_path = app.latest_challenge_path().await;
        page.open(&challenge_path).await;
        assert_eq!(
            page.text("h1").await,
            "Did you ask us to restore access to your account?"
        );
        page.submit_with("button[name=answer][value=confirm]").await;
        assert_eq!(page.text("h1").await, "Thank you: your confirmation is recorded");
        page.open(&ticket_path).await;
        assert_eq!(
            checklist_line(&page, "Email challenge").await,
            "passed Email challenge to the registered address"
        );
        assert_eq!(checklist_line(&page, "Billing details").await, "— Billing details");
        assert!(
            page.text("#verification")
                .await
                .contains("1 of 2 passed methods; 0 of 3 failed checks allowed used.")
        );
        assert_blocked(&page, "grant_ip_access", "ownership_not_verified", "two passed checks").await;
        assert!(page.has("#action-record_verification_check").await);
        page.screenshot("console-ticket.png").await;

        // A passed billing check is the second method.
        let check = "#action-record_verification_check";
        page.click(&format!("{check} select[name=method] option[value=billing_details]"))
            .await;
        assert_eq!(
            page.value(&format!("{check} select[name=method]")).await,
            "billing_details"
        );
        page.click(&format!("{check} input[name=passed][value=true]")).await;
        page.type_into(
            &format!("{check} input[name=evidence]"),
            "Amount and date of the last invoice match",
        )
        .await;
        page.submit_with(&format!("{check} button[type=submit]")).await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Done: Record a verification check.");
        assert_eq!(page.text(".ticket-head .state").await, "Ownership verified");
        assert!(page.text("#verification").await.contains("Ownership verified."));
        assert_eq!(checklist_line(&page, "Billing details").await, "passed Billing details");

        // The grant form offers the address the customer wrote from; a private one is refused.
        let ip_field = "#action-grant_ip_access input[name=ip]";
        assert_eq!(
            page.value(ip_field).await,
            CUSTOMER_IP,
            "prefilled with the customer's IP"
        );
        page.retype(ip_field, "10.0.0.1").await;
        page.submit_with("#action-grant_ip_access button[type=submit]").await;
        let refusal = page.text("#refusal").await;
        assert!(
            refusal.contains("“Grant IP access” was not done: That address is not a public one.")
                && refusal.contains("(code ip_not_public)"),
            "the refusal says it in words, the code beside: {refusal}"
        );
        assert_eq!(
            page.text(".ticket-head .state").await,
            "Ownership verified",
            "nothing changed"
        );
        assert!(!page.has("p.notice").await);
        assert!(
            !page.text("#account").await.contains("10.0.0.1"),
            "the private address was not added"
        );

        assert_eq!(page.value(ip_field).await, CUSTOMER_IP, "the form is offered again");
        page.submit_with("#action-grant_ip_access button[type=submit]").await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Done: Grant IP access.");
        assert_eq!(page.text(".ticket-head .state").await, "Resolved");
        assert!(!page.has("#refusal").await);
        assert_eq!(
            page.texts("#account ul.plain code").await,
            ["203.0.113.7", CUSTOMER_IP],
            "the allowlist now has the customer's address"
        );
        assert!(
            !page.has("#action-grant_ip_access").await,
            "a resolved ticket grants nothing more"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_from_the_console_comes_back_by_email_into_the_same_ticket() {
    in_browser(CONSOLE_WINDOW, |app, page| async move {
        let customer = "kim@example.test";
        let ticket = app
            .create_ticket(json!({
                "kind": "general",
                "requester": customer,
                "subject": "Invoices missing from the dashboard",
                "body": "Since yesterday I cannot see my invoices.",
            }))
            .await;
        let reference = helpers::reference(&ticket);
        let ticket_path = format!("/agent/tickets/{reference}");
        let mail_before = app.our_message_ids(&reference);

        page.open("/agent/login").await;
        sign_in(&page, &app).await;
        page.wait_for_path("/agent").await;
        page.open(&ticket_path).await;
        assert_eq!(page.text(".ticket-head .state").await, "Waiting for us");

        let answer = "Hello Kim, the invoices are back. Could you check that you see them again?";
        page.type_into("#reply textarea[name=body]", answer).await;
        assert_eq!(
            page.text("#reply button[type=submit]").await,
            "Reply to customer",
            "a mailed reply, not a note (notes have a form of their own)"
        );
        page.submit_with("#reply button[type=submit]").await;
        page.wait_for_path(&ticket_path).await;
        assert_eq!(page.text("p.notice").await, "Your reply is on its way.");
        assert_eq!(page.text(".ticket-head .state").await, "Waiting for the customer");
        let sent = last(page.texts("ol.thread li.message.out").await);
        assert!(
            sent.starts_with(&format!("Sent to {customer}")) && sent.contains(answer),
            "the reply is in the thread: {sent}"
        );
        assert_eq!(
            page.value("#reply textarea[name=body]").await,
            "",
            "the box is empty again"
        );

        let mail_after = app.our_message_ids(&reference);
        assert_eq!(mail_after.len(), mail_before.len() + 1, "one more mail: {mail_after:?}");
        let reply_id = mail_after.last().expect("the reply's Message-ID").clone();
        assert!(!mail_before.contains(&reply_id));

        // The customer answers from their mail client, quoting us; no ticket tag in the subject,
        // so only In-Reply-To can thread it.
        let words = "Yes, all twelve invoices are there again. Thank you!";
        let raw = format!(
            "From: Kim Lee <{customer}>\r\n\
             To: support@desk.test\r\n\
             Subject: Re: Invoices missing from the dashboard\r\n\
             Date: Tue, 24 Nov 2026 09:15:00 +0000\r\n\
             Message-ID: <reply-1.kim@example.test>\r\n\
             In-Reply-To: {reply_id}\r\n\
             References: {reply_id}\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             \r\n\
             {words}\r\n\
             \r\n\
             On Mon, 23 Nov 2026 at 17:40, Account recovery support <support@desk.test> wrote:\r\n\
             > {answer}\r\n\
             >\r\n\
             > Account recovery support\r\n"
        );
        let ingested = app.ingest(raw.as_bytes());
        assert_eq!(
            ingested.ticket.as_deref(),
            Some(reference.as_str()),
            "threaded into the same ticket: {:?}",
            ingested.outcome
        );

        page.open(&ticket_path).await;
        assert_eq!(page.text(".ticket-head .state").await, "Waiting for us", "back with us");
        let newest = "ol.thread li.message:last-child";
        assert!(
            page.has(&format!("{newest}.in")).await,
            "the newest message is the customer's"
        );
        assert!(
            page.text(&format!("{newest} .meta"))
                .await
                .starts_with(&format!("From {customer}")),
            "from the requester"
        );
        let new_part = page.text(&format!("{newest} > pre")).await;
        assert_eq!(new_part, words, "only the new words are shown unfolded");
        let history = format!("{newest} details.history");
        assert_eq!(page.text(&format!("{history} > summary")).await, "Quoted history");
        assert!(
            !page.is_visible(&format!("{history} > pre")).await,
            "the quoted history starts folded"
        );
        page.click(&format!("{history} > summary")).await;
        let quoted = page.text(&format!("{history} > pre")).await;
        assert!(
            quoted.starts_with("On Mon, 23 Nov 2026") && quoted.contains(answer),
            "the history unfolds: {quoted}"
        );
        assert_eq!(
            page.texts("ol.thread li.message.in").await.len(),
            2,
            "the first message and the reply"
        );
    })
    .await;
}

async fn sign_in(page: &Page, app: &TestApp) {
    assert_eq!(page.text("h1").await, "Sign in");
    page.type_into("#email", "admin@localhost").await;
    page.type_into("#password", &app.admin_password).await;
    page.submit_with("form[action='/agent/login'] button[type=submit]")
        .await;
}

/// Checks that the ticket page lists `action` as not possible now, with its code and reason.
async fn assert_blocked(page: &Page, action: &str, code: &str, reason: &str) {
    let line = format!("#blocked-{action}");
    assert_eq!(page.text(&format!("{line} code")).await, code, "{action}'s code");
    let text = page.text(&line).await;
    assert!(text.contains(reason), "{action} should say why: {text}");
}

/// The checklist line whose method label starts with `method`.
async fn checklist_line(page: &Page, method: &str) -> String {
    let lines = page.texts("#verification .checklist li").await;
    lines
        .iter()
        .find(|line| line.split_once(' ').is_some_and(|(_, label)| label.starts_with(method)))
        .unwrap_or_else(|| panic!("no {method} in the checklist: {lines:?}"))
        .clone()
}

fn last(texts: Vec<String>) -> String {
    texts.into_iter().last().unwrap_or_default()
}

/// Makes a ticket look `minutes` old in the queue (tickets opened through the API are new).
fn backdate(app: &TestApp, reference: &str, minutes: i64) {
    use diesel::RunQueryDsl;
    let id: i64 = reference
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a reference");
    let at = (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    diesel::sql_query(format!("UPDATE tickets SET waiting_since = '{at}' WHERE id = {id}"))
        .execute(&mut app.raw_conn())
        .expect("the ticket is backdated");
}

/// Other open tickets of every kind, state and age, as an agent finds them on a Monday
/// morning; returns their references, the longest waiting first.
async fn fill_the_queue(app: &TestApp) -> Vec<String> {
    let mut terminated = account("acc_3003", "globex-alerts", "billing@globex.test", "terminated");
    terminated["balance_due_cents"] = json!(4_900);
    terminated["terminated_at"] = json!("2026-10-28T00:00:00Z");
    app.import_accounts(&[
        account("acc_2002", "northwind-news", "it@northwind.test", "active"),
        terminated,
        account("acc_4004", "umbrella-tx", "sec@umbrella.test", "active"),
    ]);
    let opened: Vec<(Value, i64)> = vec![
        (
            json!({"kind": "ip_lockout", "requester": "it@northwind.test", "subject": "New office IP is blocked",
                   "current_ip": "192.0.2.44", "tried_from": "Head office VPN", "outcome": "IP not allowed"}),
            3 * 24 * 60 + 40,
        ),
        (
            json!({"kind": "ip_lockout", "requester": "sec@umbrella.test", "subject": "Cannot log in from the data centre",
                   "current_ip": "203.0.113.200", "tried_from": "Our Frankfurt office", "outcome": "blocked"}),
            26 * 60,
        ),
        (
            json!({"kind": "account_terminated", "requester": "billing@globex.test",
                   "subject": "Our account was closed, how do we get it back?"}),
            9 * 60,
        ),
        (
            json!({"kind": "forgot_username", "requester": "lost@initech.test", "subject": "I forgot my username"}),
            5 * 60,
        ),
        (
            json!({"kind": "general", "requester": "sam@contoso.test", "subject": "Invoice shows the wrong company name"}),
            4 * 60,
        ),
        (
            json!({"kind": "login_help", "requester": "dev@hooli.test", "subject": "SMTP authentication fails (535)",
                   "smtp_username": "dev@hooli.test", "error_text": "535 Authentication failed"}),
            2 * 60,
        ),
        (
            json!({"kind": "general", "requester": "pat@fabrikam.test", "subject": "Can we add a second owner to the account?"}),
            45,
        ),
        (
            json!({"kind": "general", "requester": "lee@tailspin.test", "subject": "Two-factor codes arrive late"}),
            20,
        ),
    ];
    let mut references = vec![];
    for (body, minutes) in opened {
        let reference = helpers::reference(&app.create_ticket(body).await);
        references.push((reference, minutes));
    }
    // Work on some of them, so the queue shows more than fresh tickets.
    let umbrella = references[1].0.as_str();
    let contoso = references[4].0.as_str();
    let fabrikam = references[6].0.as_str();
    app.act(umbrella, "start_ownership_verification", json!({})).await;
    app.act(umbrella, "assign", json!({"agent_email": "admin@localhost"}))
        .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/tickets/{contoso}/replies"),
            &json!({"body": "Which company name should the invoice show?", "internal": false}),
        )
        .await;
    assert!(status.is_success(), "replying on {contoso}: {body}");
    app.act(fabrikam, "assign", json!({"agent_email": "admin@localhost"}))
        .await;
    for (reference, minutes) in &references {
        backdate(app, reference, *minutes);
    }
    references.into_iter().map(|(r, _)| r).collect()
}
