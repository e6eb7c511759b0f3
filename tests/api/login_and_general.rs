use crate::both_backends;
use crate::helpers::{TestApp, account, event_types, reference};
use serde_json::json;

both_backends!(
    login_help_flags_common_causes_and_reroutes_terminated_accounts,
    login_help_rules
);
both_backends!(secrets_pasted_by_customers_are_never_stored, secrets_are_redacted);

async fn login_help_rules(app: TestApp) {
    let mut term = account("acc_t", "late", "late@x.test", "terminated");
    term["balance_due_cents"] = json!(500);
    app.import_accounts(&[
        account("acc_a", "api-user", "api@x.test", "active"),
        term,
        account("acc_p", "new-user", "new@x.test", "pending_confirmation"),
    ]);
    let t = app
        .create_ticket(
            json!({"kind": "login_help", "requester": "api@x.test", "problem": "smtp_535",
                              "smtp_username": " crm@mailer ", "failed_at": "2026-11-20T10:00:03Z",
                              "error_text": "535 Authentication failed"}),
        )
        .await;
    assert_eq!(t["state"], "awaiting_agent");
    let created = &t["events"][0];
    assert_eq!(created["type"], "created");
    assert_eq!(created["data"]["smtp_username"], " crm@mailer ", "kept byte-exact");
    assert_eq!(
        created["data"]["flags"],
        json!(["smtp_username_has_at", "smtp_username_whitespace"])
    );

    let t = app
        .create_ticket(json!({"kind": "login_help", "requester": "late@x.test", "problem": "web_login"}))
        .await;
    assert_eq!(
        (t["kind"].clone(), t["state"].clone()),
        (json!("account_terminated"), json!("awaiting_payment"))
    );

    let t = app
        .create_ticket(json!({"kind": "login_help", "requester": "new@x.test", "problem": "web_login"}))
        .await;
    assert_eq!(t["state"], "resolved");
    assert!(
        app.outbox_of(&reference(&t))
            .iter()
            .any(|m| m.0 == "unconfirmed_signup" && m.1 == "new@x.test")
    );

    // Agent replies wait for the customer on conversational kinds.
    let g = app
        .create_ticket(json!({"kind": "general", "requester": "who@y.test", "body": "hello"}))
        .await;
    let (status, t) = app
        .post(
            &format!("/api/v1/tickets/{}/replies", reference(&g)),
            &json!({"body": "How can we help?", "internal": false}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    assert_eq!(t["state"], "awaiting_customer");
    assert!(
        app.outbox_of(&reference(&g))
            .iter()
            .any(|m| m.0 == "agent_reply" && m.1 == "who@y.test")
    );
    let (_, t) = app
        .post(
            &format!("/api/v1/tickets/{}/replies", reference(&g)),
            &json!({"body": "VIP", "internal": true}),
        )
        .await;
    assert_eq!(t["state"], "awaiting_customer", "a note changes nothing");
    let types = event_types(&t);
    assert!(
        types.contains(&"message_out".to_string()) && types.contains(&"note".to_string()),
        "{types:?}"
    );
    let note = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "note")
        .unwrap();
    assert_eq!(note["data"]["body"], "VIP");
}

async fn secrets_are_redacted(app: TestApp) {
    let body = "Hi, my password is Hunter2Secret! and the key SG.aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb fails";
    let t = app.create_ticket(json!({"kind": "general", "requester": "leaky@y.test", "subject": "password: Hunter2Secret!", "body": body})).await;
    let r = reference(&t);
    let text = t.to_string();
    assert!(!text.contains("Hunter2Secret"), "{text}");
    assert!(!text.contains("SG.aaaa"), "{text}");
    assert!(text.contains("[redacted]"));
    let redaction = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "redaction")
        .expect("redaction event");
    assert!(redaction["data"]["kinds"].as_array().unwrap().len() >= 2, "{redaction}");
    assert!(
        app.outbox_of(&r)
            .iter()
            .any(|m| m.0 == "redaction_notice" && m.1 == "leaky@y.test")
    );
    // Nothing secret anywhere in the database, outbox included.
    let everything = format!("{:?}", app.outbox());
    assert!(!everything.contains("Hunter2Secret"));
}
