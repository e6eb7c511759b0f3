//! Four eyes (docs/reference.md#four-eyes-and-the-audit-trail): a grant or a reactivation
//! needs a second agent, on SQLite and PostgreSQL.

use crate::both_backends;
use crate::helpers::{self, Console, TestApp, account, action_verdict, event_types, reference};
use diesel::prelude::*;
use recoverydesk::services::{agents, audit};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_grant_with_four_eyes_on_needs_a_second_agent_through_the_api,
    grant_needs_two_agents
);
both_backends!(
    a_ban_imported_between_request_and_approval_makes_the_approval_fail,
    ban_between_request_and_approval
);
both_backends!(
    a_reactivation_request_can_be_rejected_or_withdrawn_and_then_applies_nothing,
    reactivation_rejected
);
both_backends!(a_request_expires_after_24_hours, request_expires);
both_backends!(two_approvals_of_one_request_at_once_apply_it_once, concurrent_approvals);

pub async fn four_eyes_app(app: TestApp) -> TestApp {
    app.respawn_with(&[("--four-eyes", "on")]).await
}

/// Adds an agent and returns its API token.
pub fn second_agent(app: &TestApp, email: &str) -> String {
    let mut conn = app.conn();
    agents::add_agent(&mut conn, email, "Second Pair", "agent", "a long enough password").expect("agent added");
    agents::issue_token(&mut conn, email).expect("token")
}

pub async fn post_as(app: &TestApp, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An ip_lockout ticket of acc_1001 walked to `ownership_verified`.
pub async fn verified_lockout(app: &TestApp) -> String {
    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "active")]);
    helpers::verified_lockout(app, "acc_1001", "ops@acme.test").await
}

fn allowlist(ticket: &Value) -> Vec<String> {
    ticket["account"]["ip_access"]["allowlist"]
        .as_array()
        .expect("allowlist")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn events_of<'a>(ticket: &'a Value, kind: &str) -> Vec<&'a Value> {
    ticket["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

fn chain_holds(app: &TestApp) {
    let mut conn = app.conn();
    let verified = audit::verify_database(&mut conn, &app.desk).expect("verify runs");
    assert!(verified.is_ok(), "{verified:?}");
}

async fn grant_needs_two_agents(app: TestApp) {
    let app = four_eyes_app(app).await;
    let second = second_agent(&app, "second@desk.test");
    let r = verified_lockout(&app).await;

    // The guards pass, so the grant becomes a request: 202, nothing applied yet.
    let (status, held) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let approval = &held["approval"];
    let id = approval["id"].as_str().expect("approval ids are strings").to_string();
    assert_eq!(approval["action"], "grant_ip_access");
    assert_eq!(approval["params"]["ip"], "198.51.100.77");
    assert_eq!(approval["requested_by"], "admin@localhost");
    assert!(approval["requested_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let ticket = app.ticket(&r).await;
    assert_eq!(ticket["state"], "ownership_verified");
    assert!(!allowlist(&ticket).contains(&"198.51.100.77".to_string()));
    let requested = events_of(&ticket, "approval_requested");
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["data"]["params"]["ip"], "198.51.100.77");
    assert_eq!(action_verdict(&ticket, "grant_ip_access")["code"], "approval_pending");

    // One pending request per action and ticket.
    let (status, body) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.78"})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("approval_pending"))
    );

    let (status, list) = app.get("/api/v1/approvals").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["approvals"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["approvals"][0]["id"], id.as_str());
    assert_eq!(list["approvals"][0]["ticket"], r.as_str());

    // The requester cannot approve their own request; it stays pending.
    let (status, body) = app.post(&format!("/api/v1/approvals/{id}/approve"), &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("same_agent"))
    );
    assert_eq!(app.ticket(&r).await["state"], "ownership_verified");

    // A different agent approves: applied as the requester's, both named.
    let (status, ticket) = post_as(&app, &second, &format!("/api/v1/approvals/{id}/approve"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["state"], "resolved");
    assert!(allowlist(&ticket).contains(&"198.51.100.77".to_string()));
    let approved = events_of(&ticket, "approval_approved");
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["actor"], "agent:second@desk.test");
    let transition = events_of(&ticket, "transition")
        .into_iter()
        .find(|e| e["data"]["action"] == "grant_ip_access")
        .expect("the grant's transition");
    assert_eq!(transition["actor"], "agent:admin@localhost");
    assert_eq!(transition["data"]["approved_by"], "agent:second@desk.test");
    assert_eq!(transition["data"]["requested_by"], "agent:admin@localhost");
    let change = events_of(&ticket, "directory_change")
        .into_iter()
        .find(|e| e["data"]["change"] == "allowlist_add")
        .expect("the directory change");
    assert_eq!(change["data"]["approved_by"], "agent:second@desk.test");
    assert_eq!(change["data"]["requested_by"], "agent:admin@localhost");
    // The account's page lists the change with both agents.
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = console.get("/agent/accounts/acc_1001").await;
    assert_eq!(status, StatusCode::OK);
    let changes = &page[page.find("id=\"directory-changes\"").expect("the changes table")..];
    assert!(
        changes.contains("allowlist + 198.51.100.77")
            && changes.contains("admin@localhost")
            && changes.contains("second@desk.test"),
        "{changes}"
    );
    // The customer's mail says two people approved it.
    let mail = app
        .outbox_of(&r)
        .into_iter()
        .find(|(t, _, _)| t == "ip_granted")
        .expect("grant mailed");
    assert_eq!(mail.2["four_eyes"], true);
    app.deliver(0).await;
    let delivered = app
        .delivered_mail()
        .into_iter()
        .find(|m| m.file.ends_with("-ip_granted.eml"))
        .expect("grant delivered");
    assert!(
        delivered.body.contains("approved by two members of our team"),
        "{}",
        delivered.body
    );

    // Decided: not pending for anyone any more, and the list is empty.
    let (status, body) = post_as(&app, &second, &format!("/api/v1/approvals/{id}/approve"), &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("approval_not_pending"))
    );
    let (_, list) = app.get("/api/v1/approvals").await;
    assert_eq!(list["approvals"], json!([]));
    let (status, _) = post_as(&app, &second, "/api/v1/approvals/999999/approve", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post_as(&app, &second, "/api/v1/approvals/not-a-number/approve", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The counters saw one request and one approval.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("recoverydesk_approvals_total{outcome=\"requested\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("recoverydesk_approvals_total{outcome=\"approved\"} 1"),
        "{metrics}"
    );
    chain_holds(&app);
}

async fn ban_between_request_and_approval(app: TestApp) {
    let app = four_eyes_app(app).await;
    let second = second_agent(&app, "second@desk.test");
    let r = verified_lockout(&app).await;
    let (status, held) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let id = held["approval"]["id"].as_str().expect("id").to_string();

    app.import_accounts(&[account("acc_1001", "acme-mailer", "ops@acme.test", "banned")]);
    let (status, body) = post_as(&app, &second, &format!("/api/v1/approvals/{id}/approve"), &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("account_banned"))
    );
    let ticket = app.ticket(&r).await;
    assert_eq!(ticket["state"], "refused");
    assert!(!allowlist(&ticket).contains(&"198.51.100.77".to_string()));
    assert!(events_of(&ticket, "directory_change").is_empty());
    // The request can never apply now: it is closed, and not listed.
    let (_, list) = app.get("/api/v1/approvals").await;
    assert_eq!(list["approvals"], json!([]));
    chain_holds(&app);
}

async fn reactivation_rejected(app: TestApp) {
    let app = four_eyes_app(app).await;
    let second = second_agent(&app, "second@desk.test");
    let mut acc = account("acc_t", "late-payer", "pay@x.test", "terminated");
    acc["balance_due_cents"] = json!(500);
    app.import_accounts(&[acc]);
    let t = app
        .create_ticket(
            json!({"kind": "account_terminated", "requester": "pay@x.test", "account": "late-payer",
                              "body": "I paid."}),
        )
        .await;
    let r = reference(&t);
    app.act(&r, "record_payment", json!({"amount_cents": 500, "reference": "wire"}))
        .await;

    let (status, held) = app.action(&r, "reactivate_account", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let id = held["approval"]["id"].as_str().expect("id").to_string();
    // Rejected by another agent: nothing applied.
    let (status, ticket) = post_as(
        &app,
        &second,
        &format!("/api/v1/approvals/{id}/reject"),
        &json!({"reason": "caller could not confirm the invoice"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["state"], "payment_confirmed");
    assert_eq!(ticket["account"]["status"], "terminated");
    let rejected = events_of(&ticket, "approval_rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["data"]["reason"], "caller could not confirm the invoice");
    let (status, body) = post_as(&app, &second, &format!("/api/v1/approvals/{id}/approve"), &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("approval_not_pending"))
    );
    // A reason that is not text is refused.
    let (status, held) = app.action(&r, "reactivate_account", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let id = held["approval"]["id"].as_str().expect("id").to_string();
    let (status, _) = post_as(
        &app,
        &second,
        &format!("/api/v1/approvals/{id}/reject"),
        &json!({"reason": 7}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // The requester withdraws their own request.
    let (status, ticket) = app.post(&format!("/api/v1/approvals/{id}/reject"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(events_of(&ticket, "approval_rejected")[1]["data"]["cancelled"], true);
    assert_eq!(ticket["account"]["status"], "terminated");

    // Asked again and approved by the second agent: reactivated, mail says so.
    let (_, held) = app.action(&r, "reactivate_account", json!({})).await;
    let id = held["approval"]["id"].as_str().expect("id").to_string();
    let (status, ticket) = post_as(&app, &second, &format!("/api/v1/approvals/{id}/approve"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["state"], "resolved");
    assert_eq!(ticket["account"]["status"], "active");
    let change = events_of(&ticket, "directory_change")
        .into_iter()
        .find(|e| e["data"]["change"] == "reactivated")
        .expect("reactivation recorded");
    assert_eq!(change["data"]["approved_by"], "agent:second@desk.test");
    let mail = app
        .outbox_of(&r)
        .into_iter()
        .find(|(t, _, _)| t == "account_reactivated")
        .expect("mailed");
    assert_eq!(mail.2["four_eyes"], true);
    chain_holds(&app);
}

async fn request_expires(app: TestApp) {
    let app = four_eyes_app(app).await;
    let second = second_agent(&app, "second@desk.test");
    let r = verified_lockout(&app).await;
    let (_, held) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    let id: i64 = held["approval"]["id"].as_str().expect("id").parse().expect("a number");
    {
        use recoverydesk::db::schema::approvals::dsl as a;
        let mut conn = app.conn();
        diesel::update(a::approvals.filter(a::id.eq(id)))
            .set(a::requested_at.eq(recoverydesk::db::now() - chrono::Duration::hours(25)))
            .execute(&mut *conn)
            .expect("back-dated");
    }
    let (_, list) = app.get("/api/v1/approvals").await;
    assert_eq!(list["approvals"], json!([]), "an expired request is not listed");
    let (status, body) = post_as(&app, &second, &format!("/api/v1/approvals/{id}/approve"), &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("approval_expired"))
    );
    let ticket = app.ticket(&r).await;
    assert_eq!(ticket["state"], "ownership_verified");
    assert!(event_types(&ticket).contains(&"approval_expired".to_string()));
    // It no longer holds the action: a new request may be made.
    let (status, held) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    chain_holds(&app);
}

async fn concurrent_approvals(app: TestApp) {
    let app = four_eyes_app(app).await;
    let second = second_agent(&app, "second@desk.test");
    let third = second_agent(&app, "third@desk.test");
    let r = verified_lockout(&app).await;
    let (_, held) = app.action(&r, "grant_ip_access", json!({"ip": "198.51.100.77"})).await;
    let id = held["approval"]["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/approvals/{id}/approve");
    let empty = json!({});
    let ((a, _), (b, _)) = tokio::join!(
        post_as(&app, &second, &path, &empty),
        post_as(&app, &third, &path, &empty)
    );
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let ticket = app.ticket(&r).await;
    assert_eq!(events_of(&ticket, "approval_approved").len(), 1);
    assert_eq!(
        events_of(&ticket, "directory_change")
            .iter()
            .filter(|e| e["data"]["change"] == "allowlist_add")
            .count(),
        1
    );
    assert_eq!(
        app.outbox_of(&r).iter().filter(|(t, _, _)| t == "ip_granted").count(),
        1
    );
    chain_holds(&app);
}
