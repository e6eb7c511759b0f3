use crate::both_backends;
use crate::helpers::{TestApp, reference};
use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    tickets_are_listed_newest_first_with_search_and_keyset_pages,
    list_search_paginate
);
both_backends!(
    unknown_things_and_bad_input_get_the_documented_errors,
    documented_errors
);
both_backends!(
    the_event_log_cannot_be_changed_even_through_sql,
    event_log_is_append_only
);
both_backends!(a_stale_write_is_a_conflict_not_a_lost_update, stale_write_conflicts);

async fn list_search_paginate(app: TestApp) {
    let mut refs = vec![];
    for i in 0..7 {
        let subject = if i == 3 {
            "Cannot reach the DASHBOARD".to_string()
        } else {
            format!("Question {i}")
        };
        let t = app
            .create_ticket(json!({"kind": "general", "requester": format!("user{i}@list.test"), "subject": subject}))
            .await;
        refs.push(reference(&t));
    }
    let (status, page) = app.get("/api/v1/tickets?limit=3").await;
    assert_eq!(status, StatusCode::OK);
    let got: Vec<_> = page["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ref"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, vec![refs[6].clone(), refs[5].clone(), refs[4].clone()]);
    let mut all = got;
    let mut cursor = page["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let (_, page) = app.get(&format!("/api/v1/tickets?limit=3&cursor={c}")).await;
        all.extend(
            page["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["ref"].as_str().unwrap().to_string()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    let mut expected = refs.clone();
    expected.reverse();
    assert_eq!(all, expected, "every ticket exactly once");

    for (q, hit) in [
        ("dashboard", &refs[3]),
        ("USER5@LIST", &refs[5]),
        (refs[2].as_str(), &refs[2]),
    ] {
        let (_, page) = app.get(&format!("/api/v1/tickets?q={q}")).await;
        let found: Vec<_> = page["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["ref"].clone())
            .collect();
        assert!(found.contains(&json!(hit)), "{q}: {found:?}");
    }
    let (_, page) = app.get("/api/v1/tickets?q=100%25").await;
    assert_eq!(page["tickets"], json!([]), "LIKE wildcards are escaped");
    let (_, page) = app
        .get("/api/v1/tickets?kind=general&state=awaiting_agent&limit=200")
        .await;
    assert_eq!(page["tickets"].as_array().unwrap().len(), 7);
    let (_, page) = app.get("/api/v1/tickets?state=resolved").await;
    assert_eq!(page["tickets"], json!([]));
}

async fn documented_errors(app: TestApp) {
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "e@x.test"}))
        .await;
    let r = reference(&t);
    let cases = [
        (
            app.get("/api/v1/tickets/RD-999999").await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            app.get("/api/v1/tickets/garbage").await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            app.get("/api/v1/accounts/acc_none").await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            app.action(&r, "fly_to_the_moon", json!({})).await,
            StatusCode::NOT_FOUND,
            "unknown_action",
        ),
        (
            app.action(&r, "reclassify", json!({"kind": "nope"})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            app.action(&r, "grant_ip_access", json!({"ip": "1.2.3.4"})).await,
            StatusCode::CONFLICT,
            "invalid_transition",
        ),
        (
            app.action(&r, "assign", json!({"agent_email": "ghost@x.test"})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            app.post("/api/v1/tickets", &json!({"kind": "weird", "requester": "a@b.test"}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            app.post(
                "/api/v1/tickets",
                &json!({"kind": "general", "requester": "not an email"}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            app.post("/api/v1/tickets", &json!({"requester": "a@b.test"})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            app.get("/api/v1/tickets?limit=0").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            app.get("/api/v1/tickets?kind=nope").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
    ];
    for ((status, body), expected_status, code) in cases {
        assert_eq!(status, expected_status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let t = app.act(&r, "assign", json!({"agent_email": "ADMIN@localhost"})).await;
    assert_eq!(t["assignee"], "admin@localhost");
    let t = app.act(&r, "resolve", json!({"note": "answered by phone"})).await;
    assert_eq!(t["state"], "resolved");
    let (status, body) = app.action(&r, "resolve", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("invalid_transition"))
    );
}

async fn event_log_is_append_only(app: TestApp) {
    app.create_ticket(json!({"kind": "general", "requester": "e@x.test"}))
        .await;
    let mut conn = app.raw_conn();
    assert!(
        diesel::sql_query("UPDATE events SET actor = 'forged'")
            .execute(&mut conn)
            .is_err()
    );
    assert!(diesel::sql_query("DELETE FROM events").execute(&mut conn).is_err());
    let mut conn = app.raw_conn();
    let count: i64 = {
        use diesel::QueryDsl;
        use recoverydesk::db::schema::events::dsl::*;
        events.count().get_result(&mut conn).unwrap()
    };
    assert!(count >= 2, "the events are still there");
}

async fn stale_write_conflicts(app: TestApp) {
    let t = app
        .create_ticket(json!({"kind": "general", "requester": "race@x.test"}))
        .await;
    let number: i64 = reference(&t).trim_start_matches("RD-").parse().unwrap();
    let mut conn = app.conn();
    let row = recoverydesk::db::tickets::find(&mut conn, number).unwrap().unwrap();
    // Every column the write sets, changed, so that the row it returns is checked whole.
    let mut change = recoverydesk::db::tickets::TicketChange::from_row(&row);
    change.kind = recoverydesk::domain::ticket::Kind::LoginHelp;
    change.state = recoverydesk::domain::ticket::State::Resolved;
    change.state_reason = Some("a reason".into());
    change.verification_round = 3;
    change.attempts_on_record = true;
    change.flagged = true;
    change.waiting_since = recoverydesk::db::now() - chrono::Duration::minutes(5);
    let written = recoverydesk::db::tickets::update_if_version(&mut conn, &row, &change)
        .unwrap()
        .expect("the first writer wins");
    // What the write returns is the row as stored: its new version, and what a read finds.
    assert_eq!(written.version, row.version + 1);
    let read = recoverydesk::db::tickets::find(&mut conn, number).unwrap().unwrap();
    assert_eq!(format!("{written:?}"), format!("{read:?}"));
    assert!(
        recoverydesk::db::tickets::update_if_version(&mut conn, &row, &change)
            .unwrap()
            .is_none(),
        "the second writer loses"
    );
}
