//! The customer's status page and the email challenge, black-box.

use crate::both_backends;
use crate::helpers::{Backend, TestApp, account, reference};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    the_status_page_shows_the_state_the_thread_and_the_right_forms,
    status_page_flow
);

async fn status_page_flow(app: TestApp) {
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let t = app
        .create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test", "body": "Locked <out> & sad"}))
        .await;
    let r = reference(&t);
    app.post(
        &format!("/api/v1/tickets/{r}/replies"),
        &json!({"body": "secret agent note", "internal": true}),
    )
    .await;
    let status_path = app.status_path_of(&r).await;
    let (status, page) = app.page(&status_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&r));
    assert!(page.contains("Waiting for you to try your allowlisted IPs"), "{page}");
    assert!(
        page.contains("Locked &#60;out&#62; &#38; sad"),
        "the customer's words, escaped: {page}"
    );
    assert!(
        page.contains("Before we can move forward"),
        "the mail sent to them is in the thread"
    );
    assert!(!page.contains("secret agent note"), "no internal notes");
    assert!(page.contains(&format!(r#"action="{status_path}/allowlisted-attempts""#)));

    let (status, _, body) = app
        .form(
            &format!("{status_path}/allowlisted-attempts"),
            &[("tried_from", ""), ("outcome", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Tell us which allowlisted networks you tried"));
    let (status, location, _) = app
        .form(
            &format!("{status_path}/allowlisted-attempts"),
            &[("tried_from", "office <VPN>"), ("outcome", "blocked")],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some(status_path.as_str()))
    );
    let t = app.ticket(&r).await;
    assert_eq!(t["state"], "attempts_reported");
    let transition = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["type"] == "transition")
        .unwrap();
    assert_eq!(transition["actor"], "customer:ops@acme.test", "the customer's own word");
    let (_, page) = app.page(&status_path).await;
    assert!(page.contains("Waiting for our team to verify ownership"));
    assert!(
        !page.contains("allowlisted-attempts\""),
        "the attempts form is gone once reported"
    );

    // A reply joins the thread; on a resolved ticket it reopens it.
    app.act(&r, "resolve", json!({"note": "done"})).await;
    let (status, _, _) = app
        .form(
            &format!("{status_path}/reply"),
            &[("body", "Still <b>locked</b> out, sorry")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = app.page(&status_path).await;
    assert!(page.contains("Still &#60;b&#62;locked&#60;/b&#62; out, sorry"));
    assert_eq!(
        app.ticket(&r).await["state"],
        "attempts_reported",
        "reopened where verification starts afresh"
    );
    let (status, _, body) = app.form(&format!("{status_path}/reply"), &[("body", "   ")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Write a few words"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_status_links_look_the_same() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.create_ticket(json!({"kind": "general", "requester": "a@x.test"}))
        .await;
    let (s1, unknown) = app.page(&format!("/t/{}", "A".repeat(43))).await;
    let (s2, malformed) = app.page("/t/..%2F..%2Fetc").await;
    let (s3, short) = app.page("/t/abc").await;
    assert_eq!(
        (s1, s2, s3),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(unknown, short);
    assert_eq!(unknown, malformed);
    let (status, _, _) = app
        .form(&format!("/t/{}/reply", "A".repeat(43)), &[("body", "hi")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_sees_account_dependent_states_in_neutral_words() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut term = account("acc_t", "late", "owner@x.test", "terminated");
    term["balance_due_cents"] = json!(1000);
    app.import_accounts(&[term]);
    let t = app
        .create_ticket(json!({"kind": "account_terminated", "requester": "stranger@y.test", "account": "late"}))
        .await;
    let r = reference(&t);
    assert_eq!(t["state"], "awaiting_payment");
    let (_, page) = app.page(&app.status_path_of(&r).await).await;
    assert!(
        page.contains("In progress") && !page.contains("Waiting for payment"),
        "{page}"
    );
    // Their own request is shown back as they gave it ("Account: late"); nothing else of it.
    let beyond_their_words = page.replace("<dt>Account</dt><dd>late</dd>", "");
    assert!(
        !beyond_their_words.contains("$10.00") && !beyond_their_words.contains("late"),
        "nothing of the account: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_challenge_page_names_the_request_records_once_and_expires() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let r = reference(
        &app.create_ticket(json!({"kind": "ip_lockout", "requester": "helper@other.test", "account": "acme-mailer"}))
            .await,
    );
    app.act(
        &r,
        "record_allowlisted_attempts",
        json!({"tried_from": "office", "outcome": "blocked"}),
    )
    .await;
    app.act(&r, "start_ownership_verification", json!({})).await;
    app.act(&r, "send_email_challenge", json!({})).await;
    let path = app.latest_challenge_path().await;
    for _ in 0..2 {
        let (status, page) = app.page(&path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains(&r) && page.contains("helper@other.test"),
            "names the request and who asked: {page}"
        );
        assert!(page.contains(r#"method="post""#));
    }
    assert_eq!(
        app.ticket(&r).await["verification"]["checks"],
        json!([]),
        "looking changes nothing"
    );
    // An expired link: a clear page, nothing recorded.
    {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE email_challenges SET expires_at = '2000-01-01 00:00:00' WHERE used_at IS NULL")
            .execute(&mut app.raw_conn())
            .unwrap();
    }
    let (status, page) = app.page(&path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("expired"));
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::GONE);
    assert_eq!(app.ticket(&r).await["verification"]["checks"], json!([]));

    // A fresh link is used once. (Once it passed, no further challenge is offered.)
    app.act(&r, "send_email_challenge", json!({})).await;
    let path = app.latest_challenge_path().await;
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::OK);
    let (status, page) = app.page(&path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("already used"));
    assert_eq!(
        app.ticket(&r).await["verification"]["checks"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_status_page_reads_the_same_whatever_the_account_they_name() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut term = account("acc_t", "late", "owner-t@x.test", "terminated");
    term["balance_due_cents"] = json!(1000);
    app.import_accounts(&[
        term,
        account("acc_b", "gone", "owner-b@x.test", "banned"),
        account("acc_a", "fine", "owner-a@x.test", "active"),
    ]);
    for kind in ["ip_lockout", "account_terminated", "login_help"] {
        let mut pages = vec![];
        for named in ["late", "gone", "fine", "nobody-at-all"] {
            let t = app
                .create_ticket(
                    json!({"kind": kind, "requester": "stranger@y.test", "account": named, "subject": "Help"}),
                )
                .await;
            let r = reference(&t);
            let path = app.status_path_of(&r).await;
            let (status, page) = app.page(&path).await;
            let token = path.trim_start_matches("/t/");
            // The name they gave is shown back in their request, as they typed it.
            let typed = format!("<dd>{named}</dd>");
            let masked = page
                .replace(&r, "RD-?")
                .replace(token, "TOKEN")
                .replace(&typed, "<dd>NAMED</dd>");
            let head = masked.split("opened").next().unwrap_or("");
            let middle = masked.split("What happens next").nth(1).unwrap_or("");
            let middle = middle
                .split("<section aria-labelledby=\"thread-title\">")
                .next()
                .unwrap_or("");
            pages.push(format!("{status} {head}{middle}"));
        }
        assert!(
            pages.iter().all(|p| p == &pages[0]),
            "{kind}: the pages differ:\n{}",
            pages.join("\n-----\n")
        );
    }
}
