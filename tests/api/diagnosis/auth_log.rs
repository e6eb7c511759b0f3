//! Loading the authentication logs: the API and the command, the per-line report, secrets
//! refused and never stored, duplicates counted once, and the retention purge.

use super::{event, failed_at, rfc3339};
use crate::both_backends;
use crate::helpers::TestApp;
use chrono::{Duration, Utc};
use recoverydesk::services::diagnosis::import;
use reqwest::StatusCode;
use serde_json::json;
use std::process::Command;

both_backends!(
    the_api_keeps_good_events_and_reports_each_refused_one,
    api_import_reports
);
both_backends!(
    only_admins_load_authentication_logs_and_large_bodies_are_refused,
    api_import_limits
);
both_backends!(events_past_the_retention_period_are_purged, purge);

const SECRET: &str = "Hunter2-Very-Secret-Value";

async fn api_import_reports(app: TestApp) {
    let t = failed_at();
    let mut with_password = event(t, "crm-mailer", "bad_password", Some("acc_1001"));
    with_password["password"] = json!(SECRET);
    let mut with_key = event(t, "crm-mailer", "ok", Some("acc_1001"));
    with_key["auth"] = json!({"api_key": SECRET});
    let mut bad_ip = event(t, "crm-mailer", "ok", None);
    bad_ip["client_ip"] = json!("not-an-address");
    let mut extra_fields = event(t + Duration::seconds(1), "crm-mailer", "ok", Some("acc_1001"));
    extra_fields["queue_id"] = json!("4ZfPF8e5");
    let events = json!([
        event(t, "crm-mailer", "bad_password", Some("acc_1001")),
        with_password,
        with_key,
        bad_ip,
        "just a string",
        extra_fields,
        event(t - Duration::days(45), "crm-mailer", "bad_password", Some("acc_1001")),
    ]);
    let (status, report) = app.post("/api/v1/auth-events", &events).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["received"], 7);
    assert_eq!(report["stored"], 2);
    assert_eq!(report["expired"], 1, "older than the 30-day retention");
    let refused: Vec<(u64, String)> = report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        [2, 3, 4, 5],
        "{report}"
    );
    assert!(refused[0].1.starts_with("password: "), "{}", refused[0].1);
    assert!(refused[1].1.starts_with("auth.api_key: "), "{}", refused[1].1);
    assert!(refused[2].1.starts_with("client_ip: "), "{}", refused[2].1);
    assert!(!report.to_string().contains(SECRET), "{report}");

    // The same events again: counted once.
    let (_, again) = app.post("/api/v1/auth-events", &events).await;
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(2)),
        "{again}"
    );
    let mut conn = app.conn();
    assert_eq!(recoverydesk::db::auth_events::count(&mut conn).unwrap(), 2);
    let kept = recoverydesk::db::auth_events::of_username(&mut conn, "crm-mailer").unwrap();
    assert_eq!(kept[0].at, t.naive_utc());
    assert_eq!(kept[0].client_ip, "203.0.113.7");

    // Not JSON, or not an array: 422, without echoing the body.
    let (status, body) = app.post("/api/v1/auth-events", &json!({"password": SECRET})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!body.to_string().contains(SECRET));
}

async fn api_import_limits(app: TestApp) {
    // An agent who is not an admin.
    let token = {
        let mut conn = app.conn();
        recoverydesk::services::agents::add_agent(&mut conn, "sam@desk.test", "Sam", "agent", "a long passphrase 42")
            .unwrap();
        recoverydesk::services::agents::issue_token(&mut conn, "sam@desk.test").unwrap()
    };
    let response = app
        .client
        .post(format!("{}/api/v1/auth-events", app.address))
        .bearer_auth(&token)
        .json(&json!([event(failed_at(), "crm-mailer", "ok", None)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .client
        .post(format!("{}/api/v1/auth-events", app.address))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Above the limit: 413, whether the length is announced or not.
    let one = event(failed_at(), "crm-mailer", "bad_password", Some("acc_1001")).to_string();
    let count = 11 * 1024 * 1024 / one.len();
    let big = format!("[{}]", vec![one.as_str(); count].join(","));
    let response = app
        .client
        .post(format!("{}/api/v1/auth-events", app.address))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Sent in chunks without a length: the server stops reading at the limit.
    assert_eq!(
        chunked_post_status(&app, "/api/v1/auth-events", big.as_bytes()).await,
        413
    );
    let mut conn = app.conn();
    assert_eq!(recoverydesk::db::auth_events::count(&mut conn).unwrap(), 0);
}

async fn purge(app: TestApp) {
    let now = Utc::now();
    let events: Vec<_> = [
        now - Duration::days(40),
        now - Duration::days(31),
        now - Duration::days(29),
        now - Duration::hours(1),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, at)| event(at, &format!("user-{i}"), "bad_password", Some("acc_1001")))
    .collect();
    let mut conn = app.conn();
    // Loaded under a longer retention, then purged under 30 days.
    let report = import::import_values(&mut conn, 365, &events).unwrap();
    assert_eq!(report.stored, 4);
    assert_eq!(import::purge_expired(&mut conn, 30, now).unwrap(), 2);
    let left: Vec<String> = (0..4)
        .filter(|i| {
            !recoverydesk::db::auth_events::of_username(&mut conn, &format!("user-{i}"))
                .unwrap()
                .is_empty()
        })
        .map(|i| format!("user-{i}"))
        .collect();
    assert_eq!(left, ["user-2", "user-3"]);
    assert_eq!(import::purge_expired(&mut conn, 30, now).unwrap(), 0);
    // A shorter retention purges more.
    assert_eq!(import::purge_expired(&mut conn, 7, now).unwrap(), 1);
}

/// Everything the desk wrote for this app: the SQLite file and its write-ahead log.
fn stored_bytes(app: &TestApp) -> Vec<u8> {
    let db = std::path::PathBuf::from(app.database_url.trim_start_matches("sqlite://"));
    let mut all = vec![];
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_bearing_line_is_refused_and_absent_from_every_file_the_desk_writes() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
    let t = failed_at();
    let mut lines = vec![];
    for (field, value) in [
        ("password", json!(SECRET)),
        ("smtp_passwd", json!(SECRET)),
        ("apiKey", json!(SECRET)),
        ("client_secret", json!({"value": SECRET})),
    ] {
        let mut line = event(t, "leaky-mailer", "bad_password", Some("acc_1001"));
        line[field] = value;
        lines.push(line);
    }
    lines.push(event(t, "leaky-mailer", "bad_password", Some("acc_1001")));
    let report = super::load(&app, &lines).await;
    assert_eq!(report["stored"], 1);
    assert_eq!(report["refused"].as_array().unwrap().len(), 4);
    // A login_help ticket reads the stored event; nothing secret comes with it.
    let ticket = app
        .create_ticket(
            json!({"kind": "login_help", "requester": "ops@acme.test", "problem": "smtp_535",
                              "smtp_username": "leaky-mailer", "failed_at": rfc3339(t)}),
        )
        .await;
    assert_eq!(ticket["diagnosis"]["events"], 1);
    let stored = stored_bytes(&app);
    assert!(!stored.is_empty());
    assert!(
        !stored.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret reached a file"
    );
}

fn desk(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .args(args)
        .env("DATABASE_URL", format!("sqlite://{}", dir.join("desk.db").display()))
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

#[test]
fn auth_log_import_streams_the_file_reports_each_refused_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let t = Utc::now() - Duration::hours(1);
    let mut password = event(t, "crm-mailer", "bad_password", Some("acc_1001"));
    password["password"] = json!(SECRET);
    let mut bad_result = event(t, "crm-mailer", "denied", None);
    bad_result["result"] = json!("denied");
    let file = dir.path().join("relay.jsonl");
    let mut text = String::new();
    for _ in 0..3 {
        // Three copies of the same good line: stored once.
        text.push_str(&format!(
            "{}\n",
            event(t, "crm-mailer", "bad_password", Some("acc_1001"))
        ));
    }
    text.push_str(&format!("{password}\n"));
    text.push('\n');
    text.push_str("{broken\n");
    text.push_str(&format!("{bad_result}\n"));
    text.push_str(&format!("{}\r\n", event(t, " crm mailer ", "ok", Some("acc_1001"))));
    text.push_str(&format!("{}", event(t - Duration::days(90), "old", "ok", None)));
    std::fs::write(&file, &text).unwrap();

    let out = desk(dir.path(), &["auth-log", "import", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 4: password: a password, key or secret field"),
        "{stderr}"
    );
    assert!(stderr.contains("line 6: not a JSON object"), "{stderr}");
    assert!(
        stderr.contains("line 7: result: \"denied\" is not one of ok, unknown_user"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("line 5"),
        "a blank line is no line to refuse: {stderr}"
    );
    assert!(!format!("{stdout}{stderr}").contains(SECRET));
    assert!(
        stdout.contains(
            "auth-log: 8 read, 2 stored, 2 already present, 1 past the retention period (skipped), 3 refused"
        ),
        "{stdout}"
    );
    // Not a terminal: no progress bar drawn.
    assert!(!stderr.contains('█') && !stderr.contains("B/s"), "{stderr}");

    let db_bytes: Vec<u8> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("desk.db"))
        .flat_map(|e| std::fs::read(e.path()).unwrap_or_default())
        .collect();
    assert!(
        !db_bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the database does not"
    );

    // A clean file (from standard input too) exits 0.
    let clean = dir.path().join("clean.jsonl");
    std::fs::write(&clean, format!("{}\n", event(t, "crm-mailer", "ok", Some("acc_1001")))).unwrap();
    let out = desk(dir.path(), &["auth-log", "import", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("auth-log: 1 read, 1 stored"));
}

/// POSTs `body` with `Transfer-Encoding: chunked` (no length announced) over a plain socket and
/// returns the status code of the answer.
async fn chunked_post_status(app: &TestApp, path: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.token
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        // The server may answer and close before it has read everything.
        if socket.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![];
    let _ = socket.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
