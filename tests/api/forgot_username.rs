use crate::both_backends;
use crate::helpers::{TestApp, account, reference};
use serde_json::{Value, json};

both_backends!(forgot_username_outcomes_follow_the_directory, outcomes_per_status);
both_backends!(
    send_username_goes_only_to_the_registered_address,
    send_username_to_registered_only
);

async fn forgot(app: &TestApp, email: &str) -> Value {
    app.create_ticket(json!({"kind": "forgot_username", "requester": email, "body": "I forgot my username"}))
        .await
}

async fn outcomes_per_status(app: TestApp) {
    let mut sub = account("acc_sub", "sub-of-banned", "sub@x.test", "active");
    sub["parent_id"] = json!("acc_banned");
    app.import_accounts(&[
        account("acc_active", "Ünïcode user ", "active@x.test", "active"),
        account("acc_pending", "pending-user", "pending@x.test", "pending_confirmation"),
        account("acc_term", "term-user", "term@x.test", "terminated"),
        account("acc_banned", "banned-user", "banned@x.test", "banned"),
        sub,
        account("acc_m1", "multi-one", "multi@x.test", "active"),
        account("acc_m2", "multi-two", "MULTI@x.test", "terminated"),
        account("acc_m3", "multi-three", "multi@x.test", "banned"),
    ]);

    let t = forgot(&app, "Active@X.test").await;
    assert_eq!(t["state"], "resolved");
    let mails = app.outbox_of(&reference(&t));
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (template, to, params) = &mails[0];
    assert_eq!((template.as_str(), to.as_str()), ("username_delivery", "active@x.test"));
    assert_eq!(
        params["accounts"][0]["username"], "Ünïcode user ",
        "usernames are byte-exact"
    );
    assert_eq!(
        params["status_link"], true,
        "mail to the requester carries a status link (made when it is sent)"
    );
    assert!(
        !params.to_string().contains("/t/"),
        "the outbox never holds the link itself: {params}"
    );

    for (email, template, state) in [
        ("pending@x.test", "unconfirmed_signup", "resolved"),
        ("term@x.test", "terminated_notice", "resolved"),
        ("banned@x.test", "banned_answer", "refused"),
        ("sub@x.test", "banned_answer", "refused"),
    ] {
        let t = forgot(&app, email).await;
        assert_eq!(t["state"], state, "{email}");
        let mails = app.outbox_of(&reference(&t));
        assert_eq!(
            mails.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
            vec![template],
            "{email}"
        );
        assert!(
            mails.iter().all(|m| m.2.get("accounts").is_none()),
            "no username for {email}"
        );
        if state == "refused" {
            assert_eq!(t["state_reason"], "account_banned");
        }
    }

    let t = forgot(&app, "nobody@x.test").await;
    assert_eq!(t["state"], "awaiting_agent");
    assert_eq!(
        app.outbox_of(&reference(&t))
            .iter()
            .map(|m| m.0.as_str())
            .collect::<Vec<_>>(),
        vec!["acknowledgement"]
    );

    let t = forgot(&app, "multi@x.test").await;
    assert_eq!(t["state"], "resolved");
    let mails = app.outbox_of(&reference(&t));
    assert_eq!(mails.len(), 1, "one mail for several accounts");
    let listed: Vec<_> = mails[0].2["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["username"].clone(), a["status"].clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (json!("multi-one"), json!("active")),
            (json!("multi-two"), json!("terminated")),
            (json!("multi-three"), json!("banned"))
        ]
    );
}

async fn send_username_to_registered_only(app: TestApp) {
    app.import_accounts(&[
        account("acc_1", "real-user", "owner@x.test", "active"),
        account("acc_b", "bad-user", "bad@x.test", "banned"),
    ]);
    let t = forgot(&app, "someone-else@y.test").await;
    let r = reference(&t);
    assert_eq!(t["state"], "awaiting_agent");
    let t = app.act(&r, "send_username", json!({"account_id": "acc_1"})).await;
    assert_eq!(t["state"], "resolved");
    let mails = app.outbox_of(&r);
    let username_mails: Vec<_> = mails.iter().filter(|m| m.0 == "username_delivery").collect();
    assert_eq!(username_mails.len(), 1);
    assert_eq!(username_mails[0].1, "owner@x.test", "never the requester");
    assert!(
        username_mails[0].2.get("status_link").is_none(),
        "no status link to someone who is not the requester"
    );
    let to_requester: Vec<_> = mails.iter().filter(|m| m.1 == "someone-else@y.test").collect();
    assert!(
        to_requester.iter().all(|m| !m.2.to_string().contains("real-user")),
        "the requester never sees the username"
    );

    let t = forgot(&app, "again@y.test").await;
    let (status, body) = app
        .action(&reference(&t), "send_username", json!({"account_id": "acc_b"}))
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "account_banned");
    let (status, body) = app
        .action(&reference(&t), "send_username", json!({"account_id": "acc_missing"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (reqwest::StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_input"))
    );
}
