use crate::both_backends;
use crate::helpers::{TestApp, account, action_verdict, event_types, reference};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    ip_lockout_walks_from_allowlisted_attempts_to_granted_access,
    walk_to_granted_access
);
both_backends!(
    email_challenge_is_recorded_only_through_the_mailed_link,
    challenge_by_link_only
);
both_backends!(three_failed_checks_refuse_the_request, three_failures_refuse);

async fn open_lockout(app: &TestApp) -> String {
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let ticket = app
        .create_ticket(
            json!({"kind": "ip_lockout", "requester": "ops@acme.test", "subject": "Locked out by IP access",
                              "body": "I changed office and cannot log in.", "current_ip": "198.51.100.77"}),
        )
        .await;
    assert_eq!(ticket["state"], "awaiting_allowlisted_attempts");
    assert_eq!(ticket["account_id"], "acc_1001");
    reference(&ticket)
}

async fn walk_to_granted_access(app: TestApp) {
    let r = open_lockout(&app).await;
    // The customer is told to try their allowlisted IPs first.
    assert!(
        app.outbox_of(&r)
            .iter()
            .any(|(t, to, _)| t == "try_allowlisted_ips" && to == "ops@acme.test")
    );

    // Each guard refuses first, with its code, and the refusal is logged.
    let (status, body) = app.action(&r, "start_ownership_verification", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "allowlisted_attempts_missing");
    let (status, body) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "ownership_not_verified");
    let (status, body) = app
        .action(&r, "record_allowlisted_attempts", json!({"outcome": "still blocked"}))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "tried_from is required: {body}"
    );
    assert_eq!(body["error"]["code"], "invalid_input");

    let ticket = app
        .act(
            &r,
            "record_allowlisted_attempts",
            json!({"tried_from": "office VPN 203.0.113.7", "outcome": "login page says IP not allowed"}),
        )
        .await;
    assert_eq!(ticket["state"], "attempts_reported");
    assert_eq!(action_verdict(&ticket, "start_ownership_verification")["allowed"], true);

    let ticket = app.act(&r, "start_ownership_verification", json!({})).await;
    assert_eq!(ticket["state"], "verifying_ownership");
    let (status, body) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("ownership_not_verified"))
    );

    app.act(&r, "send_email_challenge", json!({})).await;
    let challenge = app
        .outbox()
        .into_iter()
        .rev()
        .find(|(t, _, _)| t == "email_challenge")
        .expect("challenge mailed");
    assert_eq!(
        challenge.1, "ops@acme.test",
        "the challenge goes to the registered address"
    );
    let path = app.latest_challenge_path().await;
    // A GET (a mail scanner following the link) changes nothing.
    let page = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(app.ticket(&r).await["verification"]["checks"], json!([]));
    assert_eq!(app.confirm_challenge(&path, "confirm").await, StatusCode::OK);
    assert_eq!(
        app.confirm_challenge(&path, "confirm").await,
        StatusCode::GONE,
        "single use"
    );
    let ticket = app.ticket(&r).await;
    assert_eq!(ticket["state"], "verifying_ownership", "one method is not enough");

    let ticket = app
        .act(
            &r,
            "record_verification_check",
            json!({"method": "billing_details", "passed": true, "evidence": "last invoice amount matches"}),
        )
        .await;
    assert_eq!(ticket["state"], "ownership_verified");

    for (ip, code) in [
        ("10.1.2.3", "ip_not_public"),
        ("100.64.0.1", "ip_not_public"),
        ("203.0.113.0/23", "invalid_ip"),
        ("nonsense", "invalid_ip"),
    ] {
        let (status, body) = app.action(&r, "grant_ip_access", json!({"ip": ip})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{ip}");
        assert_eq!(body["error"]["code"], code, "{ip}");
    }
    let ticket = app.act(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    assert_eq!(ticket["state"], "resolved");

    let (_, account) = app.get("/api/v1/accounts/acc_1001").await;
    assert!(
        account["ip_access"]["allowlist"]
            .as_array()
            .unwrap()
            .contains(&json!("198.51.100.77"))
    );
    assert!(
        app.outbox_of(&r)
            .iter()
            .any(|(t, to, p)| t == "ip_granted" && to == "ops@acme.test" && p["ip"] == "198.51.100.77")
    );

    let types = event_types(&ticket);
    for expected in [
        "created",
        "message_in",
        "transition",
        "check",
        "directory_change",
        "refusal",
    ] {
        assert!(types.iter().any(|t| t == expected), "missing {expected} in {types:?}");
    }
    let refusals: Vec<_> = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "refusal")
        .collect();
    assert_eq!(refusals.len(), 3, "policy refusals are logged, bad parameters are not");
}

async fn challenge_by_link_only(app: TestApp) {
    let r = open_lockout(&app).await;
    app.act(
        &r,
        "record_allowlisted_attempts",
        json!({"tried_from": "home", "outcome": "blocked"}),
    )
    .await;
    app.act(&r, "start_ownership_verification", json!({})).await;
    let (status, body) = app
        .action(
            &r,
            "record_verification_check",
            json!({"method": "email_challenge", "passed": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "email_challenge_by_link_only");

    // "This was not me" records a failed challenge and flags the ticket.
    app.act(&r, "send_email_challenge", json!({})).await;
    let path = app.latest_challenge_path().await;
    assert_eq!(app.confirm_challenge(&path, "not_me").await, StatusCode::OK);
    let ticket = app.ticket(&r).await;
    assert_eq!(ticket["flagged"], true);
    assert_eq!(
        ticket["verification"]["checks"],
        json!([{"method": "email_challenge", "passed": false}])
    );

    let unknown = app
        .client
        .post(format!("{}/verify/{}", app.address, "x".repeat(43)))
        .form(&[("answer", "confirm")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

async fn three_failures_refuse(app: TestApp) {
    let r = open_lockout(&app).await;
    app.act(
        &r,
        "record_allowlisted_attempts",
        json!({"tried_from": "office", "outcome": "blocked"}),
    )
    .await;
    app.act(&r, "start_ownership_verification", json!({})).await;
    for method in ["billing_details", "account_details"] {
        let t = app
            .act(
                &r,
                "record_verification_check",
                json!({"method": method, "passed": false, "evidence": "no match"}),
            )
            .await;
        assert_eq!(t["state"], "verifying_ownership");
    }
    let t = app
        .act(
            &r,
            "record_verification_check",
            json!({"method": "phone_callback", "passed": false}),
        )
        .await;
    assert_eq!(t["state"], "refused");
    assert_eq!(t["state_reason"], "verification_failed");
    let (status, body) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("invalid_transition"))
    );
}

both_backends!(
    the_api_reads_tried_allowlisted_ips_as_the_form_does,
    tried_answer_through_the_api
);

/// One rule for "did you try your allowlisted IPs?": `no` means not tried whatever `tried_from`
/// says, `yes` needs `tried_from`, and no other answer is taken.
async fn tried_answer_through_the_api(app: TestApp) {
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    let base = json!({"kind": "ip_lockout", "requester": "ops@acme.test", "body": "locked out"});
    let with = |extra: serde_json::Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        body
    };
    let said_no = app
        .create_ticket(with(json!({"tried_allowlisted_ips": "no", "tried_from": "office"})))
        .await;
    assert_eq!(said_no["state"], "awaiting_allowlisted_attempts", "{said_no}");
    let said_false = app
        .create_ticket(with(json!({"tried_allowlisted_ips": false, "tried_from": "office"})))
        .await;
    assert_eq!(said_false["state"], "awaiting_allowlisted_attempts", "{said_false}");
    let said_yes = app
        .create_ticket(with(
            json!({"tried_allowlisted_ips": "yes", "tried_from": "office VPN"}),
        ))
        .await;
    assert_eq!(said_yes["state"], "attempts_reported", "{said_yes}");
    for refused in [
        json!({"tried_allowlisted_ips": "yes"}),
        json!({"tried_allowlisted_ips": true, "tried_from": "  "}),
        json!({"tried_allowlisted_ips": "maybe", "tried_from": "office"}),
        json!({"tried_allowlisted_ips": 1}),
    ] {
        let (status, body) = app.post("/api/v1/tickets", &with(refused.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input", "{refused}: {body}");
    }
    // Left out, `tried_from` stands as given (an agent who does not ask the question).
    let unasked = app.create_ticket(with(json!({"tried_from": "office VPN"}))).await;
    assert_eq!(unasked["state"], "attempts_reported", "{unasked}");
}
