//! The agent's day (docs/reference.md#who-acts-next, #agent-console): whose turn it is, a
//! refusal with its reason told to the customer, an admin's reopen, notes that can never be
//! mailed, bulk actions, live queue updates, codes and money in words.

use crate::both_backends;
use crate::helpers::{Console, TestApp, account, action_verdict, reference};
use recoverydesk::services::agents;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn refs_of(list: &Value) -> Vec<String> {
    list["tickets"]
        .as_array()
        .map(|a| a.iter().map(reference).collect())
        .unwrap_or_default()
}

both_backends!(
    an_agents_reply_puts_the_ticket_on_the_customer_and_their_answer_puts_it_back,
    turns_follow_the_conversation
);

async fn turns_follow_the_conversation(app: TestApp) {
    let r = app.general_ticket("kim@example.test", "Invoices missing").await;
    let opened = app.ticket(&r).await;
    assert_eq!(opened["waiting_on"], "agent");
    assert!(opened["last_activity_at"].is_string());

    let (status, after_reply) = app.reply(&r, "Could you check again?", false).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(after_reply["waiting_on"], "customer");
    assert_eq!(after_reply["state"], "awaiting_customer");
    assert!(
        after_reply["updated_at"].as_str() > opened["updated_at"].as_str(),
        "updated_at moves with a reply: {} then {}",
        opened["updated_at"],
        after_reply["updated_at"]
    );

    // A note changes whose turn it is not, but it is activity.
    let (_, after_note) = app.reply(&r, "Called her, she will look tonight.", true).await;
    assert_eq!(after_note["waiting_on"], "customer");
    assert!(after_note["last_activity_at"].as_str() >= after_reply["last_activity_at"].as_str());

    let (_, customers) = app.get("/api/v1/tickets?waiting_on=customer").await;
    assert_eq!(refs_of(&customers), vec![r.clone()]);
    let (_, ours) = app.get("/api/v1/tickets?waiting_on=agent").await;
    assert!(refs_of(&ours).is_empty(), "{ours}");
    let (status, body) = app.get("/api/v1/tickets?waiting_on=someone").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The customer answers on the status page: our turn again.
    let status_path = app.status_path_of(&r).await;
    let (status, _, _) = app
        .form(&format!("{status_path}/reply"), &[("body", "Still missing, sorry.")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let back = app.ticket(&r).await;
    assert_eq!(back["waiting_on"], "agent");
    assert_eq!(back["state"], "awaiting_agent");
    let (_, ours) = app.get("/api/v1/tickets?waiting_on=agent").await;
    assert_eq!(refs_of(&ours), vec![r.clone()]);

    let closed = app.act(&r, "resolve", json!({"note": "found them"})).await;
    assert_eq!(closed["waiting_on"], "none");
}

both_backends!(
    a_mail_that_asks_the_customer_waits_on_them_and_a_passed_challenge_is_not_offered_again,
    challenge_turns
);

async fn challenge_turns(app: TestApp) {
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let ticket = app
        .create_ticket(
            json!({"kind": "ip_lockout", "requester": "ops@acme.test", "subject": "Locked out",
                              "body": "New office.", "current_ip": "198.51.100.77"}),
        )
        .await;
    let r = reference(&ticket);
    // The opening mail asks them to try their allowlisted IPs.
    assert_eq!(app.ticket(&r).await["waiting_on"], "customer");
    let t = app
        .act(
            &r,
            "record_allowlisted_attempts",
            json!({"tried_from": "office VPN", "outcome": "blocked"}),
        )
        .await;
    assert_eq!(t["waiting_on"], "agent");
    app.act(&r, "start_ownership_verification", json!({})).await;
    let t = app.act(&r, "send_email_challenge", json!({})).await;
    assert_eq!(t["waiting_on"], "customer", "the challenge asks the customer to act");
    assert_eq!(action_verdict(&t, "send_email_challenge")["allowed"], true);

    let path = app.latest_challenge_path().await;
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::OK);
    let t = app.ticket(&r).await;
    assert_eq!(t["waiting_on"], "agent", "the customer's confirmation puts it on us");
    let verdict = action_verdict(&t, "send_email_challenge");
    assert_eq!(verdict["allowed"], false, "{verdict}");
    assert_eq!(verdict["code"], "invalid_transition");
    let (status, _) = app.action(&r, "send_email_challenge", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

both_backends!(
    a_refusal_needs_a_reason_and_tells_the_customer_by_mail_and_on_the_status_page,
    refusal_told
);

async fn refusal_told(app: TestApp) {
    let r = app
        .general_ticket("sam@example.test", "Please delete someone else's account")
        .await;
    let status_path = app.status_path_of(&r).await;
    for params in [
        json!({}),
        json!({"reason": "   "}),
        json!({"reason": "x", "category": "nope"}),
    ] {
        let (status, body) = app.action(&r, "refuse", params.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{params}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input");
    }
    assert_eq!(app.ticket(&r).await["state"], "awaiting_agent");

    let t = app
        .act(
            &r,
            "refuse",
            json!({"reason": "asks about an account that is not theirs [internal]", "category": "not_authorised"}),
        )
        .await;
    assert_eq!(t["state"], "refused");
    assert_eq!(t["state_reason"], "not_authorised");
    assert_eq!(t["waiting_on"], "none");
    assert!(
        app.outbox_of(&r)
            .iter()
            .any(|(template, to, _)| template == "request_refused" && to == "sam@example.test")
    );
    app.deliver(0).await;
    let mail = app
        .delivered_mail()
        .into_iter()
        .find(|m| m.body.contains("Only the holder of an account"))
        .expect("the refusal mail, in the reason's words");
    assert_eq!(mail.to, "sam@example.test");
    assert!(
        !mail.body.contains("[internal]"),
        "the agent's own words are not mailed"
    );

    let (_, page) = app.page(&status_path).await;
    assert!(page.contains("Only the holder of an account"), "{page}");
    assert!(!page.contains("In progress"));
    assert!(!page.contains("[internal]"));
}

both_backends!(
    the_console_confirms_a_refusal_before_it_is_final,
    console_refusal_confirmed
);

async fn console_refusal_confirmed(app: TestApp) {
    let r = app.general_ticket("lee@example.test", "Twice the same").await;
    let console = Console::admin(&app).await;
    let ticket_path = format!("/agent/tickets/{r}");
    let (_, _, page) = console.get(&ticket_path).await;
    assert!(page.contains(r#"name="category""#) && page.contains("Duplicate of another request"));
    let action = format!("{ticket_path}/actions/refuse");
    let (status, _, confirm) = console
        .submit(
            &ticket_path,
            &action,
            &[("category", "duplicate"), ("reason", "same as the other one")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("This request repeats another one"), "{confirm}");
    assert!(confirm.contains(r#"name="confirmed" value="yes""#));
    assert_eq!(
        app.ticket(&r).await["state"],
        "awaiting_agent",
        "nothing happens before the confirmation"
    );

    let (status, location, _) = console
        .submit(
            &ticket_path,
            &action,
            &[
                ("category", "duplicate"),
                ("reason", "same as the other one"),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location:?}");
    let t = app.ticket(&r).await;
    assert_eq!(
        (t["state"].clone(), t["state_reason"].clone()),
        (json!("refused"), json!("duplicate"))
    );
    let (_, _, page) = console.get(&ticket_path).await;
    assert!(
        page.contains("Duplicate of another request"),
        "the reason in words on the ticket page"
    );
}

both_backends!(only_admins_reopen_and_never_a_policy_refusal, reopen_rules);

async fn reopen_rules(app: TestApp) {
    app.import_accounts(&[account("acc_9", "gone", "gone@x.test", "banned")]);
    let banned = reference(
        &app.create_ticket(json!({"kind": "forgot_username", "requester": "gone@x.test", "body": "my username?"}))
            .await,
    );
    assert_eq!(app.ticket(&banned).await["state_reason"], "account_banned");
    let (status, body) = app.action(&banned, "reopen", json!({"reason": "please"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "account_banned");

    let r = app.general_ticket("pat@example.test", "Refused too fast").await;
    app.act(&r, "refuse", json!({"reason": "spam", "category": "abusive"}))
        .await;
    let (status, body) = app.action(&r, "reopen", json!({})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reopen needs a reason: {body}"
    );

    let token = {
        let mut conn = app.conn();
        agents::add_agent(&mut conn, "plain@localhost", "Plain", "agent", "a long enough password").expect("agent");
        agents::issue_token(&mut conn, "plain@localhost").expect("token")
    };
    let response = app
        .client
        .post(format!("{}/api/v1/tickets/{r}/actions/reopen", app.address))
        .bearer_auth(token)
        .json(&json!({"reason": "it was a real customer"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(app.ticket(&r).await["state"], "refused");

    let t = app.act(&r, "reopen", json!({"reason": "it was a real customer"})).await;
    assert_eq!(t["state"], "awaiting_agent");
    assert_eq!(t["waiting_on"], "agent");

    // verification_failed is the policy's too.
    {
        let mut conn = app.conn();
        use diesel::prelude::*;
        use recoverydesk::db::schema::tickets;
        let id: i64 = r.trim_start_matches("RD-").parse().unwrap();
        diesel::update(tickets::table.find(id))
            .set((
                tickets::state.eq("refused"),
                tickets::state_reason.eq("verification_failed"),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    let (status, body) = app.action(&r, "reopen", json!({"reason": "again"})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("refused_by_policy"))
    );
}

both_backends!(a_forgotten_choice_can_never_mail_a_note, notes_are_never_mailed);

async fn notes_are_never_mailed(app: TestApp) {
    let r = app.general_ticket("ana@example.test", "Question").await;
    let mailed = |app: &TestApp| {
        app.outbox_of(&r)
            .into_iter()
            .filter(|(t, _, _)| t == "agent_reply")
            .count()
    };
    // The API wants the choice said out loud.
    let (status, body) = app
        .post(
            &format!("/api/v1/tickets/{r}/replies"),
            &json!({"body": "internal: VIP customer"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(mailed(&app), 0);

    let console = Console::admin(&app).await;
    let ticket_path = format!("/agent/tickets/{r}");
    let (_, _, page) = console.get(&ticket_path).await;
    assert!(
        page.contains(r#"action="/agent/tickets/RD-"#) && page.contains("/note\""),
        "a note form of its own"
    );
    assert!(!page.contains(r#"name="internal""#), "no box to forget");
    // The note form's address only writes notes, whatever else is sent with it.
    for extra in [vec![], vec![("internal", "false")], vec![("send", "reply")]] {
        let mut fields = vec![("body", "VIP, be nice")];
        fields.extend(extra);
        let (status, location, _) = console
            .submit(&ticket_path, &format!("{ticket_path}/note"), &fields)
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(location.unwrap_or_default().ends_with("done=note"));
    }
    assert_eq!(mailed(&app), 0, "a note is never mailed");
    assert_eq!(app.ticket(&r).await["waiting_on"], "agent", "notes change no turn");

    let (status, _, _) = console
        .submit(&ticket_path, &format!("{ticket_path}/reply"), &[("body", "Hello Ana")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(mailed(&app), 1);
}

both_backends!(
    bulk_assign_and_resolve_go_through_the_engine_ticket_by_ticket,
    bulk_actions
);

async fn bulk_actions(app: TestApp) {
    let a = app.general_ticket("one@example.test", "First").await;
    let b = app.general_ticket("two@example.test", "Second").await;
    let done = app.general_ticket("three@example.test", "Third").await;
    app.act(&done, "resolve", json!({})).await;
    let console = Console::admin(&app).await;
    let (_, _, queue) = console.get("/agent").await;
    assert!(queue.contains(r#"action="/agent/bulk""#));
    let (status, _, page) = console
        .submit(
            "/agent",
            "/agent/bulk",
            &[
                ("op", "assign"),
                ("agent_email", "admin@localhost"),
                ("ticket", &a),
                ("ticket", &b),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("2 done, 0 not done"), "{page}");
    for r in [&a, &b] {
        assert_eq!(app.ticket(r).await["assignee"], "admin@localhost");
    }

    let (status, _, page) = console
        .submit(
            "/agent",
            "/agent/bulk",
            &[
                ("op", "resolve"),
                ("note", "sorted"),
                ("ticket", &a),
                ("ticket", &done),
                ("ticket", "RD-99999"),
                ("ticket", "junk"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("1 done, 3 not done"), "{page}");
    assert!(
        page.contains(&format!(r#"id="result-{done}""#)) && page.contains("Not at this step"),
        "{page}"
    );
    assert_eq!(app.ticket(&a).await["state"], "resolved");
    assert_eq!(app.ticket(&b).await["state"], "awaiting_agent");

    let (status, _, _) = console.submit("/agent", "/agent/bulk", &[("op", "resolve")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "nothing selected");
    let (status, _, _) = console
        .submit("/agent", "/agent/bulk", &[("op", "delete"), ("ticket", &b)])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = console
        .post("/agent/bulk", &[("csrf", "forged"), ("op", "resolve"), ("ticket", &b)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let many: Vec<(&str, &str)> = std::iter::repeat_n(("ticket", b.as_str()), 101).collect();
    let mut fields = vec![("op", "resolve")];
    fields.extend(many);
    let (status, _, _) = console.submit("/agent", "/agent/bulk", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "at most 100 at once");
    assert_eq!(app.ticket(&b).await["state"], "awaiting_agent");
}

both_backends!(
    the_queue_marks_customer_activity_until_the_assignee_opens_the_ticket,
    new_activity_mark
);

async fn new_activity_mark(app: TestApp) {
    let r = app.general_ticket("kai@example.test", "Where is my invoice").await;
    app.act(&r, "assign", json!({"agent_email": "admin@localhost"})).await;
    app.reply(&r, "Which invoice?", false).await;
    let console = Console::admin(&app).await;
    let (_, _, queue) = console.get("/agent").await;
    assert!(!queue.contains("New activity"), "nothing new yet");
    assert!(
        queue.contains("Last activity") && queue.contains(" UTC</span>"),
        "absolute times beside relative ones"
    );
    assert!(queue.contains("Customer&#39;s turn"), "{queue}");

    let status_path = app.status_path_of(&r).await;
    let (status, _, body) = app
        .form(&format!("{status_path}/reply"), &[("body", "The March one.")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let t = app.ticket(&r).await;
    assert_eq!(t["waiting_on"], "agent", "{t}");
    let (_, _, queue) = console.get("/agent").await;
    assert!(queue.contains("New activity"), "{queue}");
    let (_, _, mine) = console.get("/agent?waiting_on=customer").await;
    assert!(!mine.contains(&format!(">{r}<")), "the filter by turn: {mine}");

    console.get(&format!("/agent/tickets/{r}")).await;
    let (_, _, queue) = console.get("/agent").await;
    assert!(!queue.contains("New activity"), "seen by the assignee");
}

both_backends!(the_queue_streams_an_event_when_a_customer_does_something, live_queue);

async fn live_queue(app: TestApp) {
    let r = app.general_ticket("mo@example.test", "Live").await;
    app.reply(&r, "Tell us more", false).await;
    let status_path = app.status_path_of(&r).await;
    let console = Console::admin(&app).await;
    let response = console
        .client
        .get(format!("{}/agent/queue/events", app.address))
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    let mut response = response;
    let first = response.chunk().await.expect("bytes").expect("a first chunk");
    assert!(String::from_utf8_lossy(&first).contains("retry:"));
    app.form(&format!("{status_path}/reply"), &[("body", "Here is more.")])
        .await;
    // The server writes a line every poll; the event comes within a few of them.
    let mut seen = String::new();
    for _ in 0..30 {
        let chunk = response.chunk().await.expect("bytes").expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("event: activity") {
            break;
        }
    }
    assert!(seen.contains("event: activity"), "{seen}");
    // Anonymous visitors get no stream.
    let (status, location, _) = Console::new(&app).get("/agent/queue/events").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/agent/login"))
    );
}

both_backends!(
    the_account_page_says_money_and_statuses_in_words_and_a_banned_parent_bans_its_sub_users,
    account_words
);

async fn account_words(app: TestApp) {
    let mut terminated = account("acc_7", "old-shop", "old@x.test", "terminated");
    terminated["balance_due_cents"] = json!(1200);
    let parent = account("acc_1", "parent", "p@x.test", "banned");
    let mut sub = account("acc_2", "child", "c@x.test", "active");
    sub["parent_id"] = json!("acc_1");
    app.import_accounts(&[terminated, parent, sub]);
    let console = Console::admin(&app).await;
    let (_, _, page) = console.get("/agent/accounts/acc_7").await;
    assert!(page.contains("$12.00"), "{page}");
    assert!(!page.contains("cents"), "money is never told in cents");
    assert!(page.contains("Terminated for non-payment"));
    let (_, _, page) = console.get("/agent/accounts/acc_1").await;
    let subs = &page[page.find(r#"id="sub-users""#).expect("sub-users listed")..];
    assert!(subs.contains("Banned") && !subs.contains("Active"), "{subs}");
    let (_, _, page) = console.get("/agent/accounts/acc_2").await;
    let status = &page[page.find(r#"id="status""#).expect("status")..];
    assert!(
        status.starts_with(r#"id="status">"#) || status.contains("Banned"),
        "{status}"
    );
    assert!(status.contains("banned via its parent"), "{status}");

    // Engine words on the ticket page: plain words first, the code small beside them.
    let r = app.general_ticket("c@x.test", "help").await;
    let (_, _, page) = console.get(&format!("/agent/tickets/{r}")).await;
    assert!(
        page.contains("Not at this step of the ticket") || !page.contains("blocked-"),
        "{page}"
    );
    assert!(
        !page.contains("is not possible while the ticket is awaiting_"),
        "no raw state codes in sentences"
    );
}

both_backends!(
    a_corrected_login_form_is_diagnosed_again_and_the_rerun_form_starts_from_it,
    repeat_rediagnosed
);

async fn repeat_rediagnosed(app: TestApp) {
    use crate::diagnosis::{OWNER, diagnosis_events, directory, failed_at, load, mailed, the_log};
    directory(&app);
    load(&app, &the_log()).await;
    let at_local = failed_at().format("%Y-%m-%dT%H:%M").to_string();
    let send = |username: &'static str| {
        let at_local = at_local.clone();
        let app = &app;
        async move {
            let (status, _, body) = app
                .form(
                    "/help/login",
                    &[
                        ("email", OWNER),
                        ("problem", "smtp_535"),
                        ("smtp_username", username),
                        ("failed_at", &at_local),
                    ],
                )
                .await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        }
    };
    // First the login's email address (a finding of its own), then the real username.
    send("ops@acme.test").await;
    let (_, list) = app.get("/api/v1/tickets?q=ops%40acme.test").await;
    let r = refs_of(&list).first().cloned().expect("the ticket");
    let first = app.ticket(&r).await;
    assert_eq!(
        first["diagnosis"]["finding"], "username_has_at",
        "{}",
        first["diagnosis"]
    );
    let mails_before = mailed(&app, &r).len();

    send("crm-mailer").await;
    let (_, list) = app.get("/api/v1/tickets?q=ops%40acme.test").await;
    assert_eq!(refs_of(&list), vec![r.clone()], "the repeat joined its ticket");
    let again = app.ticket(&r).await;
    assert_eq!(again["diagnosis"]["finding"], "bad_password", "{}", again["diagnosis"]);
    assert_eq!(again["diagnosis"]["username"], "crm-mailer");
    assert_eq!(diagnosis_events(&again).len(), 2);
    let new_mail: Vec<String> = mailed(&app, &r)[mails_before..]
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    assert!(
        new_mail.iter().all(|t| t == "acknowledgement"),
        "no account-dependent mail again for a repeat: {new_mail:?}"
    );

    // The same facts once more: nothing to re-run.
    send("crm-mailer").await;
    assert_eq!(diagnosis_events(&app.ticket(&r).await).len(), 2);

    // The agent's re-run form starts from the newest username.
    let console = Console::admin(&app).await;
    let (_, _, page) = console.get(&format!("/agent/tickets/{r}")).await;
    assert!(
        page.contains(r#"name="username""#) && page.contains(r#"value="crm-mailer""#),
        "prefilled with the newest facts"
    );
}

both_backends!(
    canned_answers_are_kept_by_admins_filled_from_the_ticket_and_never_tell_a_stranger_about_an_account,
    canned_answers
);

async fn canned_answers(app: TestApp) {
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let own = reference(
        &app.create_ticket(
            json!({"kind": "general", "requester": "ops@acme.test", "subject": "Name?", "body": "What is my login?"}),
        )
        .await,
    );
    let stranger = reference(
        &app.create_ticket(
            json!({"kind": "general", "requester": "someone@elsewhere.test", "account": "acc_1001",
                                  "subject": "Name?", "body": "What is the login of acme?"}),
        )
        .await,
    );
    assert_eq!(app.ticket(&stranger).await["account_id"], "acc_1001");
    let console = Console::admin(&app).await;
    let (status, _, _) = console
        .submit(
            "/agent/admin/canned",
            "/agent/admin/canned",
            &[("title", ""), ("body", "x")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for (title, body) in [
        ("Your login", "Hello {requester}, the login of {ref} is {username}."),
        ("Thanks", "Thank you, we are looking at {ref} ({subject})."),
    ] {
        let (status, location, _) = console
            .submit(
                "/agent/admin/canned",
                "/agent/admin/canned",
                &[("title", title), ("body", body)],
            )
            .await;
        assert_eq!(
            (status, location.as_deref()),
            (StatusCode::SEE_OTHER, Some("/agent/admin/canned"))
        );
    }
    let (_, _, page) = console.get(&format!("/agent/tickets/{own}")).await;
    let id_of = |title: &str| {
        let marker = format!(">{title}</option>");
        let end = page.find(&marker).expect("listed on the ticket page");
        let start = page[..end].rfind("value=\"").expect("an id") + 7;
        page[start..end].trim_end_matches('"').to_string()
    };
    let (login, thanks) = (id_of("Your login"), id_of("Thanks"));

    // To the registered address: filled and mailed.
    let (status, _, _) = console
        .submit(
            &format!("/agent/tickets/{own}"),
            &format!("/agent/tickets/{own}/canned"),
            &[("canned_id", &login)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let sent = app
        .outbox_of(&own)
        .into_iter()
        .find(|(t, _, _)| t == "agent_reply")
        .expect("mailed");
    assert_eq!(
        sent.2["body"],
        format!("Hello ops@acme.test, the login of {own} is acme-mailer.")
    );

    // To someone else: the engine refuses the account-dependent answer; a neutral one goes.
    let (status, _, page) = console
        .submit(
            &format!("/agent/tickets/{stranger}"),
            &format!("/agent/tickets/{stranger}/canned"),
            &[("canned_id", &login)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("account_dependent_answer"));
    assert!(!app.outbox_of(&stranger).iter().any(|(t, _, _)| t == "agent_reply"));
    let (status, _, _) = console
        .submit(
            &format!("/agent/tickets/{stranger}"),
            &format!("/agent/tickets/{stranger}/canned"),
            &[("canned_id", &thanks)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(app.outbox_of(&stranger).iter().any(
        |(t, _, p)| t == "agent_reply" && p["body"] == format!("Thank you, we are looking at {stranger} (Name?).")
    ));

    // Only admins manage them.
    {
        let mut conn = app.conn();
        agents::add_agent(&mut conn, "plain@localhost", "Plain", "agent", "a long enough password").expect("agent");
    }
    let plain = Console::new(&app);
    assert_eq!(
        plain.sign_in("plain@localhost", "a long enough password").await,
        StatusCode::SEE_OTHER
    );
    let (status, _, _) = plain.get("/agent/admin/canned").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = plain
        .submit("/agent", "/agent/admin/canned", &[("title", "Mine"), ("body", "x")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
