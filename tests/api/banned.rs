use crate::both_backends;
use crate::helpers::{TestApp, account, reference};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    every_recovery_action_on_a_banned_ticket_is_refused_and_logged,
    recovery_actions_refused
);
both_backends!(
    a_ban_arriving_by_import_refuses_open_tickets_of_the_account_and_its_sub_users,
    ban_cascade
);

const RECOVERY_ACTIONS: [(&str, &str); 8] = [
    ("send_username", r#"{"account_id":"acc_b"}"#),
    (
        "record_allowlisted_attempts",
        r#"{"tried_from":"office","outcome":"x"}"#,
    ),
    ("start_ownership_verification", "{}"),
    ("send_email_challenge", "{}"),
    (
        "record_verification_check",
        r#"{"method":"billing_details","passed":true}"#,
    ),
    ("grant_ip_access", r#"{"ip":"198.51.100.7"}"#),
    ("record_payment", r#"{"amount_cents":100}"#),
    ("reactivate_account", "{}"),
];

async fn recovery_actions_refused(app: TestApp) {
    app.import_accounts(&[account("acc_b", "banned-user", "b@x.test", "banned")]);
    for kind in [
        "forgot_username",
        "ip_lockout",
        "account_terminated",
        "login_help",
        "general",
    ] {
        let t = app
            .create_ticket(json!({"kind": kind, "requester": "b@x.test", "body": "please"}))
            .await;
        let r = reference(&t);
        assert_eq!(
            (t["state"].clone(), t["state_reason"].clone()),
            (json!("refused"), json!("account_banned")),
            "{kind}"
        );
        let answers: Vec<_> = app.outbox_of(&r).into_iter().map(|m| (m.0, m.1)).collect();
        assert_eq!(
            answers,
            vec![("banned_answer".to_string(), "b@x.test".to_string())],
            "{kind}"
        );
        for (name, params) in RECOVERY_ACTIONS {
            let params: Value = serde_json::from_str(params).unwrap();
            let (status, body) = app.action(&r, name, params).await;
            assert_eq!(status, StatusCode::CONFLICT, "{kind} {name}: {body}");
            assert_eq!(body["error"]["code"], "account_banned", "{kind} {name}");
        }
        let t = app.ticket(&r).await;
        let refusals: Vec<_> = t["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "refusal")
            .collect();
        assert_eq!(
            refusals.len(),
            RECOVERY_ACTIONS.len(),
            "{kind}: every refusal is in the event log"
        );
        assert!(refusals.iter().all(|e| e["data"]["code"] == "account_banned"));
        assert!(
            t["actions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["allowed"] == json!(false)),
            "nothing is offered"
        );
    }
}

async fn ban_cascade(app: TestApp) {
    let mut sub = account("acc_sub", "teammate", "mate@x.test", "active");
    sub["parent_id"] = json!("acc_p");
    app.import_accounts(&[account("acc_p", "parent", "parent@x.test", "active"), sub.clone()]);
    let parent_ticket = app
        .create_ticket(json!({"kind": "ip_lockout", "requester": "parent@x.test"}))
        .await;
    let sub_ticket = app
        .create_ticket(json!({"kind": "login_help", "requester": "mate@x.test"}))
        .await;
    assert_eq!(sub_ticket["state"], "awaiting_agent");

    let summary = app.import_accounts(&[account("acc_p", "parent", "parent@x.test", "banned")]);
    assert_eq!(summary.tickets_refused, 2);
    for t in [&parent_ticket, &sub_ticket] {
        let t = app.ticket(&reference(t)).await;
        assert_eq!(
            (t["state"].clone(), t["state_reason"].clone()),
            (json!("refused"), json!("account_banned"))
        );
    }
    let (_, acc) = app.get("/api/v1/accounts/acc_sub").await;
    assert_eq!(
        (acc["status"].clone(), acc["effective_status"].clone()),
        (json!("active"), json!("banned"))
    );

    // Moving the sub-user away from its banned parent does not lift the ban.
    sub["parent_id"] = json!(null);
    let summary = app.import_accounts(&[sub]);
    assert!(summary.refused.is_empty());
    let (_, acc) = app.get("/api/v1/accounts/acc_sub").await;
    assert_eq!(acc["effective_status"], "banned");
    // And no import un-bans the parent.
    let summary = app.import_accounts(&[account("acc_p", "parent", "parent@x.test", "active")]);
    assert_eq!(summary.refused.len(), 1);
    assert!(
        summary.refused[0].1.contains("ban is permanent"),
        "{:?}",
        summary.refused
    );
}
