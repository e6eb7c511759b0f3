use crate::both_backends;
use crate::helpers::{TestApp, account, action_verdict, reference};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    termination_is_reactivated_after_full_payment_only,
    partial_then_full_payment
);
both_backends!(
    an_active_account_is_not_a_termination,
    active_account_waits_for_an_agent
);

async fn partial_then_full_payment(app: TestApp) {
    let mut acc = account("acc_t", "late-payer", "pay@x.test", "terminated");
    acc["balance_due_cents"] = json!(12_345);
    acc["terminated_at"] = json!("2026-10-28T00:00:00Z");
    app.import_accounts(&[acc]);
    let t = app
        .create_ticket(
            json!({"kind": "account_terminated", "requester": "pay@x.test", "account": "late-payer",
                              "body": "My account was terminated, I want to pay."}),
        )
        .await;
    let r = reference(&t);
    assert_eq!(t["state"], "awaiting_payment");
    let balance_mail = app
        .outbox_of(&r)
        .into_iter()
        .find(|m| m.0 == "balance_due")
        .expect("balance mailed");
    assert_eq!(balance_mail.1, "pay@x.test");
    assert_eq!(balance_mail.2["balance_due_cents"], 12_345);

    let (status, body) = app.action(&r, "reactivate_account", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("balance_outstanding"))
    );
    let (status, body) = app.action(&r, "record_payment", json!({"amount_cents": 0})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_input"))
    );

    let t = app
        .act(
            &r,
            "record_payment",
            json!({"amount_cents": 10_000, "reference": "wire 881"}),
        )
        .await;
    assert_eq!(t["state"], "awaiting_payment");
    assert_eq!(t["account"]["balance_due_cents"], 2_345);
    assert_eq!(action_verdict(&t, "reactivate_account")["code"], "balance_outstanding");

    let t = app
        .act(
            &r,
            "record_payment",
            json!({"amount_cents": 2_345, "reference": "card"}),
        )
        .await;
    assert_eq!(t["state"], "payment_confirmed");
    let t = app.act(&r, "reactivate_account", json!({})).await;
    assert_eq!(t["state"], "resolved");
    let (_, acc) = app.get("/api/v1/accounts/acc_t").await;
    assert_eq!(acc["status"], "active");
    assert_eq!(acc["balance_due_cents"], 0);
    let changes: Vec<_> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "directory_change")
        .collect();
    assert_eq!(changes.len(), 3, "two payments and the reactivation are audited");
    assert!(
        changes
            .iter()
            .all(|e| e["data"]["ticket"] == json!(r) && e["actor"] == "agent:admin@localhost")
    );
}

async fn active_account_waits_for_an_agent(app: TestApp) {
    app.import_accounts(&[account("acc_a", "fine-user", "fine@x.test", "active")]);
    let t = app
        .create_ticket(json!({"kind": "account_terminated", "requester": "fine@x.test"}))
        .await;
    assert_eq!(t["state"], "awaiting_agent");
    let (status, body) = app.action(&reference(&t), "reactivate_account", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("invalid_transition"))
    );
    let t = app
        .act(&reference(&t), "reclassify", json!({"kind": "login_help"}))
        .await;
    assert_eq!(
        (t["kind"].clone(), t["state"].clone()),
        (json!("login_help"), json!("awaiting_agent"))
    );
}
