//! The challenge fails closed, strangers' status pages are neutral, the banned answer names no
//! username, only a terminated account is reactivated, API bodies are strict and the API is
//! rate-limited per token.

use crate::both_backends;
use crate::helpers::{TestApp, account, reference};
use crate::tokens::{contains, lockout_owner, newest_ticket};
use reqwest::StatusCode;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// 2. The challenge fails closed
// ---------------------------------------------------------------------------------------------

both_backends!(
    a_challenge_answer_other_than_confirm_or_not_me_records_nothing,
    challenge_fails_closed
);

async fn challenge_fails_closed(app: TestApp) {
    app.import_accounts(&[lockout_owner()]);
    let r = reference(
        &app.create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test",
                                  "tried_from": "office", "outcome": "blocked"}))
            .await,
    );
    app.act(&r, "start_ownership_verification", json!({})).await;
    app.act(&r, "send_email_challenge", json!({})).await;
    let path = app.latest_challenge_path().await;
    let url = format!("{}{path}", app.address);
    let bodies: [(&str, Option<&str>); 7] = [
        ("", None),
        ("", Some("application/x-www-form-urlencoded")),
        ("answer=", Some("application/x-www-form-urlencoded")),
        ("answer=yes", Some("application/x-www-form-urlencoded")),
        ("answer=Confirm", Some("application/x-www-form-urlencoded")),
        (
            "answer=confirm&answer=not_me",
            Some("application/x-www-form-urlencoded"),
        ),
        ("{\"answer\":\"confirm\"}", Some("application/json")),
    ];
    for (body, content_type) in bodies {
        let mut request = app.client.post(&url).body(body.to_string());
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body:?}");
    }
    let t = app.ticket(&r).await;
    assert_eq!(t["verification"]["checks"], json!([]), "nothing was recorded");
    assert_eq!(t["flagged"], false);
    // The page's own button still works, once.
    let (_, page) = app.page(&path).await;
    assert!(page.contains(r#"name="answer" value="confirm""#), "{page}");
    assert!(page.contains(r#"name="answer" value="not_me""#));
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::OK);
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::GONE);
    let t = app.ticket(&r).await;
    assert_eq!(
        t["verification"]["checks"],
        json!([{"method": "email_challenge", "passed": true}])
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Neutral status pages
// ---------------------------------------------------------------------------------------------

both_backends!(
    a_strangers_ip_lockout_status_page_is_the_same_for_banned_active_and_absent_accounts,
    neutral_status_pages
);

/// The page with what may differ by nature (reference, token, times) replaced.
fn normalised(page: &str, reference: &str, path: &str) -> String {
    let page = page.replace(reference, "RD-?").replace(path, "/t/TOKEN");
    let mut out = String::with_capacity(page.len());
    let bytes = page.as_bytes();
    let mut i = 0;
    // "2026-12-06 04:31 UTC" → "TIME"
    while i < bytes.len() {
        let candidate = page.get(i..i + 20).unwrap_or_default();
        let is_time = candidate.len() == 20
            && candidate.ends_with(" UTC")
            && candidate.as_bytes()[4] == b'-'
            && candidate.as_bytes()[10] == b' '
            && candidate.as_bytes()[13] == b':';
        if is_time {
            out.push_str("TIME");
            i += 20;
        } else {
            let ch = page[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

async fn neutral_status_pages(app: TestApp) {
    let app = app.respawn_with(&[("--form-rate-limit", "100")]).await;
    app.import_accounts(&[
        account("acc_active", "active-user", "owner-active@x.test", "active"),
        account("acc_banned", "banned-user", "owner-banned@x.test", "banned"),
    ]);
    for with_attempts in [true, false] {
        let mut pages = vec![];
        for (n, named) in ["active-user", "banned-user", "nobody-user"].into_iter().enumerate() {
            let stranger = format!("stranger{n}-{with_attempts}@y.test");
            let mut fields = vec![
                ("email", stranger.as_str()),
                ("account", named),
                ("details", "Locked out"),
            ];
            if with_attempts {
                fields.extend([
                    ("tried_allowlisted_ips", "yes"),
                    ("tried_from", "office"),
                    ("outcome", "blocked"),
                ]);
            } else {
                fields.push(("tried_allowlisted_ips", "no"));
            }
            let (status, _, _) = app.form("/help/ip-lockout", &fields).await;
            assert_eq!(status, StatusCode::SEE_OTHER);
            let r = newest_ticket(&app).await;
            let path = app.status_path_mailed_to(&stranger).await;
            let (status, page) = app.page(&path).await;
            assert_eq!(status, StatusCode::OK);
            assert!(
                page.contains("Tell us which allowlisted networks you tried"),
                "{named}: the attempts form is offered"
            );
            // Their own request is shown back as they typed it, the account's name too.
            let typed = format!("<dd>{named}</dd>");
            pages.push((
                named,
                normalised(&page, &r, &path)
                    .replace(&stranger, "EMAIL")
                    .replace(&typed, "<dd>NAMED</dd>"),
            ));
        }
        for (named, page) in &pages[1..] {
            assert_eq!(
                page, &pages[0].1,
                "attempts given: {with_attempts}; the page for {named} differs from the page for {}",
                pages[0].0
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The banned answer names no username
// ---------------------------------------------------------------------------------------------

both_backends!(every_banned_answer_names_no_username, banned_answer_without_username);

async fn banned_answer_without_username(app: TestApp) {
    let mut sub = account("acc_sub", "sub-user-name", "sub@x.test", "active");
    sub["parent_id"] = json!("acc_parent");
    app.import_accounts(&[
        account("acc_parent", "parent-user-name", "parent@x.test", "banned"),
        sub,
        account("acc_b1", "first-banned-name", "several@x.test", "banned"),
        account("acc_b2", "second-banned-name", "several@x.test", "banned"),
        account("acc_lock", "lockout-banned-name", "lock@x.test", "banned"),
    ]);
    for requester in ["parent@x.test", "sub@x.test", "several@x.test"] {
        let t = app
            .create_ticket(json!({"kind": "forgot_username", "requester": requester}))
            .await;
        assert_eq!(t["state"], "refused", "{requester}");
    }
    for kind in ["ip_lockout", "account_terminated", "login_help"] {
        let t = app
            .create_ticket(json!({"kind": kind, "requester": "lock@x.test"}))
            .await;
        assert_eq!(t["state"], "refused", "{kind}");
    }
    // A stranger naming the banned account.
    app.create_ticket(json!({"kind": "ip_lockout", "requester": "someone@y.test", "account": "acc_lock"}))
        .await;
    app.deliver(0).await;
    let banned: Vec<_> = app
        .delivered_mail()
        .into_iter()
        .filter(|m| m.file.ends_with("-banned_answer.eml"))
        .collect();
    assert!(banned.len() >= 6, "{}", banned.len());
    for mail in &banned {
        assert!(mail.body.contains("is banned"), "{}", mail.body);
        for name in [
            "parent-user-name",
            "sub-user-name",
            "first-banned-name",
            "second-banned-name",
            "lockout-banned-name",
        ] {
            assert!(
                !contains(&mail.raw, name.as_bytes()),
                "{} names {name}:\n{}",
                mail.file,
                mail.body
            );
        }
    }
    // Nor does the copy on the ticket's thread.
    let (_, list) = app.get("/api/v1/tickets?limit=50").await;
    for t in list["tickets"].as_array().expect("tickets") {
        let t = app.ticket(&reference(t)).await;
        let text = t["events"].to_string();
        assert!(!text.contains("first-banned-name") && !text.contains("lockout-banned-name"));
    }
}

// ---------------------------------------------------------------------------------------------
// 5. reactivate_account needs a terminated account
// ---------------------------------------------------------------------------------------------

both_backends!(
    an_unconfirmed_signup_linked_to_a_termination_ticket_is_never_reactivated,
    reactivation_side_door
);

async fn reactivation_side_door(app: TestApp) {
    app.import_accounts(&[
        account("acc_pending", "fresh-signup", "pending@x.test", "pending_confirmation"),
        account("acc_active", "active-user", "active@x.test", "active"),
    ]);
    let r = reference(
        &app.create_ticket(json!({"kind": "account_terminated", "requester": "pending@x.test"}))
            .await,
    );
    for account_id in ["acc_pending", "acc_active"] {
        let t = app.act(&r, "link_account", json!({"account_id": account_id})).await;
        assert_eq!(t["account_id"], account_id);
        // The side door: the ticket is moved to where reactivation is allowed by state.
        let (status, body) = app.action(&r, "reactivate_account", json!({})).await;
        assert!(status == StatusCode::CONFLICT, "{account_id}: {status} {body}");
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code == "account_not_terminated" || code == "invalid_transition",
            "{account_id}: {body}"
        );
    }
    // Reaching the state reactivation is allowed in: a terminated account is linked first,
    // then swapped for the unconfirmed signup.
    let mut terminated = account("acc_term", "late-payer", "late@x.test", "terminated");
    terminated["balance_due_cents"] = json!(0);
    app.import_accounts(&[terminated]);
    let r = reference(
        &app.create_ticket(json!({"kind": "account_terminated", "requester": "late@x.test"}))
            .await,
    );
    let t = app.ticket(&r).await;
    assert!(
        ["awaiting_payment", "payment_confirmed"].contains(&t["state"].as_str().unwrap_or_default()),
        "{}",
        t["state"]
    );
    app.act(&r, "link_account", json!({"account_id": "acc_pending"})).await;
    let t = app.ticket(&r).await;
    let verdict = crate::helpers::action_verdict(&t, "reactivate_account");
    assert_eq!(verdict["allowed"], false, "{verdict}");
    assert_eq!(verdict["code"], "account_not_terminated", "{verdict}");
    let (status, body) = app.action(&r, "reactivate_account", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "account_not_terminated");
    let (_, acc) = app.get("/api/v1/accounts/acc_pending").await;
    assert_eq!(acc["status"], "pending_confirmation", "{acc}");
    let t = app.ticket(&r).await;
    assert!(
        crate::helpers::event_types(&t).contains(&"refusal".to_string()),
        "the refusal is on the record"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Strict API bodies
// ---------------------------------------------------------------------------------------------

both_backends!(
    a_malformed_or_non_object_api_body_answers_422_and_changes_nothing,
    strict_api_bodies
);

async fn raw_post(app: &TestApp, path: &str, body: &str, content_type: Option<&str>) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .body(body.to_string());
    if let Some(ct) = content_type {
        request = request.header("Content-Type", ct);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn strict_api_bodies(app: TestApp) {
    app.import_accounts(&[lockout_owner()]);
    let r = reference(
        &app.create_ticket(json!({"kind": "general", "requester": "someone@y.test"}))
            .await,
    );
    let events_before = app.ticket(&r).await["events"].as_array().map(Vec::len);
    let json_ct = Some("application/json");
    let resolve = format!("/api/v1/tickets/{r}/actions/resolve");
    for (body, ct) in [
        (r#"{"note": "#, json_ct),
        (r#"{"note": "done""#, json_ct),
        ("[]", json_ct),
        (r#"["note"]"#, json_ct),
        (r#""done""#, json_ct),
        ("null", json_ct),
        ("42", json_ct),
        (r#"{"note":"done"}"#, Some("text/plain")),
        (r#"{"note":"done"}"#, Some("application/x-www-form-urlencoded")),
        (r#"{"note":"done"}"#, None),
        ("note=done", Some("application/x-www-form-urlencoded")),
        ("", json_ct),
        ("", None),
        ("   ", json_ct),
    ] {
        let (status, answer) = raw_post(&app, &resolve, body, ct).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
            "{body:?} as {ct:?}: {answer}"
        );
    }
    // Too large is 413, in JSON like every API error.
    let big = format!(r#"{{"note":"{}"}}"#, "x".repeat(1024 * 1024 + 1));
    let (status, answer) = raw_post(&app, &resolve, &big, json_ct).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let t = app.ticket(&r).await;
    assert_eq!(t["state"], "awaiting_agent", "nothing changed");
    assert!(!crate::helpers::event_types(&t).contains(&"transition".to_string()));

    // Replies and new tickets alike.
    for (path, body) in [
        (format!("/api/v1/tickets/{r}/replies"), r#"{"body": "hi"#),
        (format!("/api/v1/tickets/{r}/replies"), "[]"),
        (
            "/api/v1/tickets".to_string(),
            r#"{"kind":"general","requester":"x@y.test""#,
        ),
        (
            "/api/v1/tickets".to_string(),
            r#"[{"kind":"general","requester":"x@y.test"}]"#,
        ),
    ] {
        let (status, answer) = raw_post(&app, &path, body, json_ct).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body:?}: {answer}");
    }
    let (status, answer) = raw_post(&app, "/api/v1/quarantine/q_none/retry", "{", json_ct).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let t = app.ticket(&r).await;
    assert_eq!(
        t["events"].as_array().map(Vec::len),
        events_before,
        "no event was written"
    );

    // An action without parameters may come with an empty body; one with parameters needs an
    // object, `{}` included.
    let lock = reference(
        &app.create_ticket(json!({"kind": "ip_lockout", "requester": "ops@acme.test",
                                  "tried_from": "office", "outcome": "blocked"}))
            .await,
    );
    let (status, t) = raw_post(
        &app,
        &format!("/api/v1/tickets/{lock}/actions/start_ownership_verification"),
        "",
        None,
    )
    .await;
    assert_eq!(
        (status, t["state"].as_str()),
        (StatusCode::OK, Some("verifying_ownership")),
        "{t}"
    );
    let (status, t) = raw_post(&app, &resolve, "{}", json_ct).await;
    assert_eq!((status, t["state"].as_str()), (StatusCode::OK, Some("resolved")), "{t}");
    let (status, t) = raw_post(
        &app,
        &format!("/api/v1/tickets/{lock}/actions/no_such_action"),
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{t}");
}

// ---------------------------------------------------------------------------------------------
// 7. The API rate limit
// ---------------------------------------------------------------------------------------------

both_backends!(
    parallel_api_requests_beyond_the_limit_get_429_with_retry_after,
    api_rate_limit
);

async fn api_rate_limit(app: TestApp) {
    let app = app.respawn_with(&[("--api-rate-limit", "5")]).await;
    let second_token = {
        let mut conn = app.conn();
        recoverydesk::services::agents::issue_token(&mut conn, "admin@localhost").expect("a second token")
    };
    let mut requests = vec![];
    for _ in 0..20 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/tickets", app.address);
        let token = app.token.clone();
        requests.push(tokio::spawn(async move {
            let response = client.get(url).bearer_auth(token).send().await.expect("request");
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, retry_after, body)
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for request in requests {
        let (status, retry_after, body) = request.await.expect("joined");
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)), "{retry_after:?}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ok, limited), (5, 15), "exactly the limit got through");
    // POSTs count too, and are refused before they change anything.
    let (status, _) = app
        .post("/api/v1/tickets", &json!({"kind": "general", "requester": "x@y.test"}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another token has its own count; an invalid one is refused as such, and not counted.
    let response = app
        .client
        .get(format!("{}/api/v1/tickets", app.address))
        .bearer_auth(&second_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .client
        .get(format!("{}/api/v1/tickets", app.address))
        .bearer_auth("A".repeat(43))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Requests older than the window are purged as new ones come in, and no longer count.
    {
        use diesel::prelude::*;
        use recoverydesk::db::schema::api_requests;
        let mut conn = app.conn();
        diesel::update(api_requests::table)
            .set(api_requests::created_at.eq(recoverydesk::db::now() - chrono::Duration::seconds(61)))
            .execute(&mut conn)
            .expect("age the rows");
    }
    let (status, _) = app.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK, "the window moved on");
    use diesel::prelude::*;
    let left: i64 = recoverydesk::db::schema::api_requests::table
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(left, 1, "expired rows are purged");
}

#[test]
fn the_api_rate_limit_setting_is_validated() {
    use clap::Parser;
    let parse = |value: &str| {
        let cli = recoverydesk::cli::Cli::try_parse_from([
            "recoverydesk",
            "--database-url",
            "sqlite://x.db",
            "--api-rate-limit",
            value,
        ]);
        cli.map_err(|e| e.to_string())
            .and_then(|c| recoverydesk::config::Settings::from_options(&c.options))
    };
    assert_eq!(parse("1200").expect("valid").api_rate_limit, 1200);
    assert_eq!(parse("1").expect("valid").api_rate_limit, 1);
    for bad in ["0", "ten", "", "100001"] {
        let error = parse(bad).err().unwrap_or_else(|| panic!("{bad:?} was accepted"));
        assert!(
            error.contains("RECOVERYDESK_API_RATE_LIMIT") || error.contains("api-rate-limit"),
            "{bad:?}: {error}"
        );
    }
    let cli =
        recoverydesk::cli::Cli::try_parse_from(["recoverydesk", "--database-url", "sqlite://x.db"]).expect("parses");
    assert_eq!(
        recoverydesk::config::Settings::from_options(&cli.options)
            .expect("valid")
            .api_rate_limit,
        1200,
        "the default"
    );
}
