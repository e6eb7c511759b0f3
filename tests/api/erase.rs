//! Erase: an admin blanks a stored message or note; no copy is left in the database.

use crate::both_backends;
use crate::helpers::{Backend, Console, TestApp, event_types, reference};
use recoverydesk::services::agents;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    an_erased_message_leaves_no_copy_and_the_event_log_keeps_its_events,
    erase_leaves_no_copy
);
both_backends!(erase_answers_403_404_and_422_where_it_must, erase_refusals);
both_backends!(
    an_admin_erases_a_note_from_the_console_after_confirming,
    erase_from_console
);

const MARKER: &str = "zq7-MARKER-8fj2-erase-me";

fn mail_with_marker() -> Vec<u8> {
    format!(
        "From: Pat <pat@example.test>\r\nTo: support@recoverydesk.test\r\nSubject: invoice question\r\n\
         Message-ID: <erase-1@example.test>\r\nDate: Sun, 06 Dec 2026 04:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMy note: {MARKER} in the body.\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{MARKER} in the HTML</p>\r\n\
         --b1\r\nContent-Type: text/csv; name=\"list.csv\"\r\nContent-Disposition: attachment; filename=\"list.csv\"\r\n\r\n\
         id,value\r\n1,{MARKER}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// Every place the marker could hide, as the database reports it.
fn rows_with_marker(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let like = format!("%{MARKER}%");
    let blob = |col: &str| match app.backend() {
        Backend::Sqlite => format!("CAST({col} AS TEXT)"),
        Backend::Postgres => format!("encode({col}, 'escape')"),
    };
    let query = format!(
        "SELECT ((SELECT count(*) FROM messages WHERE body LIKE '{like}' OR subject LIKE '{like}' OR body_html LIKE '{like}') \
         + (SELECT count(*) FROM raw_messages WHERE {} LIKE '{like}') \
         + (SELECT count(*) FROM attachments WHERE {} LIKE '{like}') \
         + (SELECT count(*) FROM outbox WHERE body LIKE '{like}' OR params LIKE '{like}') \
         + (SELECT count(*) FROM events WHERE data LIKE '{like}')) AS n",
        blob("raw"),
        blob("data")
    );
    let mut conn = app.conn();
    use diesel::RunQueryDsl;
    diesel::sql_query(query).get_result::<N>(&mut *conn).expect("count").n
}

fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => bytes.windows(needle.len()).any(|w| w == needle),
        Err(_) => false,
    }
}

async fn erase_leaves_no_copy(app: TestApp) {
    let ingested = app.ingest(&mail_with_marker());
    let r = ingested.ticket.expect("a ticket");
    // An agent's internal note with the marker too.
    let (status, _) = app.reply(&r, &format!("customer said {MARKER}"), true).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = app.ticket(&r).await;
    assert!(rows_with_marker(&app) >= 2, "the marker is stored before the erase");
    let types_before = event_types(&before);
    let message = before["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "message_in")
        .expect("the customer's message")
        .clone();
    let note = before["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "note")
        .expect("the note")
        .clone();

    for event in [&message, &note] {
        let (status, ticket) = app
            .post(
                &format!("/api/v1/tickets/{r}/events/{}/redact", event["id"]),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{ticket}");
        assert_eq!(ticket["ref"], json!(r));
    }
    // Erasing again changes nothing and writes no second event.
    let (status, ticket) = app
        .post(
            &format!("/api/v1/tickets/{r}/events/{}/redact", message["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The event log still has every original event, plus one redaction per erase.
    let types_after = event_types(&ticket);
    assert_eq!(&types_after[..types_before.len()], &types_before[..]);
    let erasures: Vec<&Value> = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "redaction" && e["data"]["erased"] == true)
        .collect();
    assert_eq!(erasures.len(), 2, "{types_after:?}");
    assert_eq!(erasures[0]["data"]["event_id"], message["id"]);
    assert_eq!(erasures[0]["actor"], "agent:admin@localhost");
    assert!(erasures[0]["at"].is_string());
    let erased = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == message["id"])
        .unwrap();
    assert_eq!(erased["data"]["body"], "[erased]");

    assert_eq!(rows_with_marker(&app), 0, "no row holds the marker");
    if app.backend() == Backend::Sqlite {
        let file = app.database_url.trim_start_matches("sqlite://").to_string();
        let wal = format!("{file}-wal");
        for path in [file.as_str(), wal.as_str()] {
            assert!(
                !file_contains(std::path::Path::new(path), MARKER.as_bytes()),
                "{path} still holds the marker"
            );
        }
    }
}

async fn erase_refusals(app: TestApp) {
    let ticket = app
        .create_ticket(json!({"kind": "general", "requester": "q@example.test", "subject": "Hi", "body": "hello"}))
        .await;
    let r = reference(&ticket);
    let created = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "created")
        .expect("created")["id"]
        .clone();
    let message = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "message_in")
        .expect("message")["id"]
        .clone();

    let (status, body) = app
        .post(&format!("/api/v1/tickets/{r}/events/{created}/redact"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input");
    let (status, body) = app
        .post(&format!("/api/v1/tickets/{r}/events/999999/redact"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    // An event of another ticket is not found on this one.
    let other = app
        .create_ticket(json!({"kind": "general", "requester": "o@example.test", "subject": "Yo", "body": "x"}))
        .await;
    let (status, _) = app
        .post(
            &format!("/api/v1/tickets/{}/events/{message}/redact", reference(&other)),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An agent who is not an admin.
    let token = {
        let mut conn = app.conn();
        agents::add_agent(&mut conn, "plain@localhost", "Plain", "agent", "a long enough password").expect("agent");
        agents::issue_token(&mut conn, "plain@localhost").expect("token")
    };
    let response = app
        .client
        .post(format!("{}/api/v1/tickets/{r}/events/{message}/redact", app.address))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        app.ticket(&r).await["events"][1]["data"]["body"],
        "hello",
        "nothing was erased"
    );
}

async fn erase_from_console(app: TestApp) {
    let ticket = app
        .create_ticket(json!({"kind": "general", "requester": "c@example.test", "subject": "Hi", "body": "hello"}))
        .await;
    let r = reference(&ticket);
    let (status, ticket) = app.reply(&r, &format!("pasted {MARKER}"), true).await;
    assert_eq!(status, StatusCode::CREATED);
    let note = ticket["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "note")
        .expect("the note")["id"]
        .clone();
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let page_path = format!("/agent/tickets/{r}");
    let (_, _, page) = console.get(&page_path).await;
    let action = format!("/agent/tickets/{r}/events/{note}/redact");
    assert!(page.contains(&action), "an erase button on the note");

    // Without the CSRF token: refused.
    let (status, _, _) = console.post(&action, &[("confirm", "yes")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The button asks first; nothing is erased yet.
    let (status, _, confirm) = console.submit(&page_path, &action, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("erase-confirm"), "{confirm}");
    assert!(rows_with_marker(&app) > 0);
    // Confirmed: erased, back to the ticket.
    let (status, location, _) = console.submit(&page_path, &action, &[("confirm", "yes")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.unwrap_or_default().starts_with(&page_path));
    assert_eq!(rows_with_marker(&app), 0);
    let (_, _, page) = console.get(&page_path).await;
    assert!(page.contains("erased by an admin"));
    assert!(!page.contains(&action), "no button on what is erased already");
}
