//! What an operator's tools read: the counters and histograms of `/metrics`, and the JSON log
//! lines of the real binary.

use crate::both_backends;
use crate::helpers::{Console, TestApp, account, reference};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

both_backends!(
    metrics_counters_move_with_mail_forms_refusals_and_sign_ins,
    counters_move
);

const HOOK_TOKEN: &str = "hook-secret-0123456789";

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("metrics answer");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of one series (`name{labels}`), 0 when it is not there yet.
fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

fn moved(before: &str, after: &str, series: &str) -> f64 {
    value(after, series) - value(before, series)
}

async fn counters_move(app: TestApp) {
    let app = app.respawn_with(&[("--inbound-token", HOOK_TOKEN)]).await;
    app.import_accounts(&[account("acc_b", "banned-user", "b@x.test", "banned")]);
    let before = scrape(&app).await;

    let raw = "From: Pat <pat@y.test>\r\nTo: support@localhost\r\nSubject: I forgot my username\r\nMessage-ID: <m1@y.test>\r\n\r\nhello\r\n";
    let posted = app
        .client
        .post(format!("{}/inbound/email", app.address))
        .bearer_auth(HOOK_TOKEN)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::OK);

    let (status, _, _) = app
        .form(
            "/help/forgot-username",
            &[("email", "someone@x.test"), ("details", "hi")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = app.form("/help/forgot-username", &[("email", "not an address")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let t = app
        .create_ticket(json!({"kind": "forgot_username", "requester": "b@x.test"}))
        .await;
    let (status, body) = app
        .action(&reference(&t), "send_username", json!({"account_id": "acc_b"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("account_banned"))
    );

    assert_eq!(
        Console::new(&app).sign_in("admin@localhost", "not the password").await,
        StatusCode::UNAUTHORIZED
    );
    let status_path = app.status_path_of(&reference(&t)).await;
    assert_eq!(app.page(&status_path).await.0, StatusCode::OK);

    // Tickets of the last minute are not in the per-state counts yet (docs/security.md).
    app.clock.advance(chrono::Duration::minutes(2));
    let after = scrape(&app).await;
    for (series, by) in [
        (
            "recoverydesk_inbound_messages_total{channel=\"webhook\",outcome=\"created\"}",
            1.0,
        ),
        (
            "recoverydesk_form_submissions_total{form=\"forgot_username\",result=\"accepted\"}",
            1.0,
        ),
        (
            "recoverydesk_form_submissions_total{form=\"forgot_username\",result=\"invalid\"}",
            1.0,
        ),
        ("recoverydesk_refusals_total{code=\"account_banned\"}", 1.0),
        ("recoverydesk_signin_failures_total", 1.0),
        ("recoverydesk_ingest_duration_seconds_count{channel=\"webhook\"}", 1.0),
        (
            "recoverydesk_http_request_duration_seconds_count{route=\"/help/forgot-username\"}",
            2.0,
        ),
        (
            "recoverydesk_http_request_duration_seconds_count{route=\"/t/{token}\"}",
            1.0,
        ),
    ] {
        assert_eq!(moved(&before, &after, series), by, "{series}\n{after}");
    }
    let token = status_path.trim_start_matches("/t/");
    assert!(!after.contains(token), "a route label is the pattern, never the path");
    // The gauges read from the database are still there, and the build.
    for kept in [
        "recoverydesk_tickets{kind=\"forgot_username\"",
        "# TYPE recoverydesk_outbox_messages gauge",
        "recoverydesk_quarantined_messages ",
        "recoverydesk_build_info{version=\"",
    ] {
        assert!(after.contains(kept), "{kept} missing\n{after}");
    }
    assert!(after.ends_with("# EOF\n"));

    // The sender counts in the process that runs it (here the test's own desk, which
    // delivered the mail above): one `sent` per row now marked sent.
    app.deliver(0).await;
    let sent_rows = app.outbox_status().iter().filter(|r| r.2 == "sent").count();
    assert!(sent_rows > 0);
    let mut own = String::new();
    app.desk.metrics.encode_into(&mut own);
    assert_eq!(
        value(&own, "recoverydesk_outbound_mail_total{result=\"sent\"}"),
        sent_rows as f64
    );
}

/// The server binary with its output captured, killed on drop.
struct Server {
    child: Option<Child>,
    address: String,
}

impl Server {
    fn start(dir: &std::path::Path, format: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
            .arg("serve")
            .env("DATABASE_URL", format!("sqlite://{}", dir.join("desk.db").display()))
            .env("RECOVERYDESK_BIND", format!("127.0.0.1:{port}"))
            .env("RECOVERYDESK_MAIL_DIR", dir.join("mail"))
            .env("RECOVERYDESK_INBOUND_TOKEN", HOOK_TOKEN)
            .env("RECOVERYDESK_TRUSTED_PROXIES", "127.0.0.1")
            .env("RECOVERYDESK_LOG_FORMAT", format)
            .env("RUST_LOG", "info")
            .env_remove("SMTP_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child: Some(child),
            address: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Stops the server (SIGTERM, as systemd does) and returns everything it wrote.
    fn stop(mut self) -> (String, String) {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        let (mut out, mut err) = (String::new(), String::new());
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (out, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The status link the desk mailed (as an .eml file), once the sender has written it.
fn mailed_status_path(mail_dir: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for entry in std::fs::read_dir(mail_dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let unfolded = text.replace("=\r\n", "").replace("=\n", "");
            if let Some(at) = unfolded.find("/t/") {
                let token: String = unfolded[at + 3..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                return format!("/t/{token}");
            }
        }
        assert!(Instant::now() < deadline, "no mail with a status link was written");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_parse_line_by_line_and_carry_no_token_or_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "json");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let secret = "Hunter2-zebra-771";
    let posted = client
        .post(format!("{}/help/forgot-username", server.address))
        .header("X-Forwarded-For", "203.0.113.9")
        .form(&[
            ("email", "pat@x.test"),
            ("details", &format!("my password is {secret} and it fails")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let status_path = mailed_status_path(&dir.path().join("mail"));
    let token = status_path.trim_start_matches("/t/").to_string();
    assert!(token.len() >= 16, "{status_path}");
    let page = client
        .get(format!("{}{status_path}", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page_request_id = page.headers()["x-request-id"].to_str().unwrap().to_string();
    let challenge = "verify-token-abcdefghijklmnop";
    client
        .get(format!("{}/verify/{challenge}?answer=confirm", server.address))
        .send()
        .await
        .unwrap();
    // A message with no sender is quarantined, with a warning written inside the request.
    let quarantined = client
        .post(format!("{}/inbound/email", server.address))
        .bearer_auth(HOOK_TOKEN)
        .body("Subject: no sender\r\n\r\nhello\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(quarantined.status(), StatusCode::OK);
    let hook_request_id = quarantined.headers()["x-request-id"].to_str().unwrap().to_string();
    let (stdout, stderr) = server.stop();

    let mut lines: Vec<Value> = vec![];
    for line in stdout.lines().chain(stderr.lines()).filter(|l| !l.trim().is_empty()) {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(!line.contains(&token), "the status token leaked: {line}");
        assert!(!line.contains(challenge), "the challenge token leaked: {line}");
        assert!(!line.contains(secret), "the secret leaked: {line}");
        assert!(!line.contains(HOOK_TOKEN), "the inbound token leaked: {line}");
        assert!(!line.contains('\u{1b}'), "no colours in JSON: {line}");
        lines.push(parsed);
    }
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "recoverydesk::access").collect();
    let form_line = access
        .iter()
        .find(|l| l["path"] == "/help/forgot-username")
        .expect("the form post is logged");
    assert_eq!(
        form_line["client"], "203.0.113.9",
        "the client behind the trusted proxy"
    );
    assert_eq!(form_line["status"], 303);
    assert!(form_line["duration_ms"].as_f64().is_some());
    let status_line = access
        .iter()
        .find(|l| l["path"] == "/t/[token]")
        .expect("the status page visit is logged, masked");
    assert_eq!(status_line["span"]["request_id"], page_request_id.as_str());
    assert!(access.iter().any(|l| l["path"] == "/verify/[token]"), "{access:?}");
    // The service's own line inside the webhook request carries that request's id.
    let warning = lines
        .iter()
        .find(|l| l["message"] == "inbound message quarantined")
        .expect("the quarantine warning");
    assert_eq!(warning["span"]["request_id"], hook_request_id.as_str());
    assert!(
        lines
            .iter()
            .any(|l| l["message"].as_str().is_some_and(|m| m.contains("is listening on"))),
        "the start line is JSON too"
    );
}

#[test]
fn text_logs_have_no_colour_codes_when_not_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .arg("migrate")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("desk.db").display()),
        )
        .env("RUST_LOG", "info")
        .env_remove("RECOVERYDESK_LOG_FORMAT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("applied migrations"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn an_unknown_log_format_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .arg("migrate")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("desk.db").display()),
        )
        .env("RECOVERYDESK_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("RECOVERYDESK_LOG_FORMAT"), "{stderr}");
}
