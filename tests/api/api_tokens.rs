//! API tokens are named, expiring and revocable (from the command line and the console), and
//! `agents password` sets a password from stdin (docs/reference.md#commands, docs/security.md).

use crate::both_backends;
use crate::credentials::{get_with, session_cookie};
use crate::helpers::{Backend, Console, TestApp};
use reqwest::StatusCode;
use std::io::Write;
use std::process::{Command, Output, Stdio};

// ---------------------------------------------------------------------------------------------
// API tokens
// ---------------------------------------------------------------------------------------------

fn desk(database_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env("RECOVERYDESK_SECRET_KEY", "ab".repeat(64))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        // A command that refuses its arguments exits without reading its input; the pipe
        // is then closed under the write, which is the command's answer, not a failure here.
        match input.write_all(text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
            _ => {}
        }
    }
    drop(input);
    child.wait_with_output().expect("the binary finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn api_status(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(format!("{}/api/v1/tickets", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

both_backends!(
    a_revoked_token_gets_401_at_once_and_leaves_the_list,
    revoke_from_the_command_line
);

both_backends!(
    a_command_always_ends_with_an_exit_code_never_a_signal,
    commands_end_with_a_code
);

/// A command's exit status is its answer (an MTA reads `mailgate`'s). On PostgreSQL, OpenSSL's
/// exit handler once freed its state while a pool thread was still connecting, and about one
/// command in twenty died of a segmentation fault after its work was done; sixty runs saw it
/// nearly every time.
async fn commands_end_with_a_code(app: TestApp) {
    use std::os::unix::process::ExitStatusExt;
    for run in 0..60 {
        let out = desk(
            &app.database_url,
            &["agents", "tokens", "--email", "admin@localhost"],
            None,
        );
        assert_eq!(
            out.status.signal(),
            None,
            "run {run}: killed by a signal: {}",
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "run {run}: {}", text(&out.stderr));
    }
}

async fn revoke_from_the_command_line(app: TestApp) {
    let url = app.database_url.clone();
    let out = desk(
        &url,
        &[
            "agents",
            "token",
            "--email",
            "admin@localhost",
            "--name",
            "ci deploys",
            "--expires-days",
            "30",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = text(&out.stdout).trim().to_string();
    let out = desk(
        &url,
        &["agents", "token", "--email", "admin@localhost", "--name", "backup job"],
        None,
    );
    let second = text(&out.stdout).trim().to_string();
    assert_eq!(api_status(&app, &first).await, StatusCode::OK);
    assert_eq!(api_status(&app, &second).await, StatusCode::OK);

    let out = desk(&url, &["agents", "tokens", "--email", "admin@localhost"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(!listed.contains(&first) && !listed.contains(&second), "never the token");
    let line_of = |listed: &str, name: &str| -> Vec<String> {
        listed
            .lines()
            .find(|l| l.split('\t').nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from\n{listed}"))
            .split('\t')
            .map(str::to_string)
            .collect()
    };
    let ci = line_of(&listed, "ci deploys");
    assert_ne!(ci[3], "never", "used once above: {listed}");
    assert_ne!(ci[4], "never", "it expires: {listed}");
    assert_eq!(ci[5], "live");
    assert_eq!(line_of(&listed, "backup job")[4], "never");

    let out = desk(&url, &["agents", "revoke-token", "--id", &ci[0]], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(api_status(&app, &first).await, StatusCode::UNAUTHORIZED, "at once");
    assert_eq!(
        api_status(&app, &second).await,
        StatusCode::OK,
        "the other one still works"
    );
    let out = desk(&url, &["agents", "tokens", "--email", "admin@localhost"], None);
    assert!(!text(&out.stdout).contains("ci deploys"), "{}", text(&out.stdout));
    let out = desk(&url, &["agents", "revoke-token", "--id", &ci[0]], None);
    assert_eq!(out.status.code(), Some(1), "revoked already");

    for bad in ["0", "-3", "abc", "99999", ""] {
        let flag = format!("--expires-days={bad}");
        let out = desk(&url, &["agents", "token", "--email", "admin@localhost", &flag], None);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(text(&out.stdout).trim().is_empty(), "no token printed for {bad:?}");
        assert!(text(&out.stderr).contains("--expires-days"), "{}", text(&out.stderr));
    }
}

both_backends!(an_expired_token_gets_401, expired_token);

async fn expired_token(app: TestApp) {
    let request = recoverydesk::services::agents::TokenRequest::parse("short-lived", Some("1")).unwrap();
    let token = recoverydesk::services::agents::issue_named_token(
        &mut app.conn(),
        "admin@localhost",
        &request,
        app.clock.now(),
    )
    .unwrap();
    assert_eq!(api_status(&app, &token).await, StatusCode::OK);
    app.clock
        .advance(chrono::Duration::days(1) + chrono::Duration::seconds(1));
    assert_eq!(api_status(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api_status(&app, &app.token).await,
        StatusCode::OK,
        "a token without expiry lasts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_revokes_a_token_from_the_console() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let request = recoverydesk::services::agents::TokenRequest::parse("<script>x</script>", None).unwrap();
    let token = recoverydesk::services::agents::issue_named_token(
        &mut app.conn(),
        "admin@localhost",
        &request,
        app.clock.now(),
    )
    .unwrap();
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = console.get("/agent/admin/tokens").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains(&token) && !page.contains(&app.token), "never a token");
    assert!(
        page.contains("&#60;script&#62;x") && !page.contains("<script>x"),
        "{page}"
    );
    let id = page
        .split("/agent/admin/tokens/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let (status, _, _) = console
        .post(&format!("/agent/admin/tokens/{id}/revoke"), &[("csrf", "forged")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api_status(&app, &token).await, StatusCode::OK);
    let (status, _, page) = console
        .submit("/agent/admin/tokens", &format!("/agent/admin/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("Token {id} revoked")));
    assert_eq!(api_status(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(api_status(&app, &app.token).await, StatusCode::OK);

    // An agent who is not an admin sees neither the page nor the button's effect.
    recoverydesk::services::agents::add_agent(
        &mut app.conn(),
        "sam@desk.test",
        "Sam",
        "agent",
        "a long enough password",
    )
    .unwrap();
    let sam = Console::new(&app);
    assert_eq!(
        sam.sign_in("sam@desk.test", "a long enough password").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(sam.get("/agent/admin/tokens").await.0, StatusCode::FORBIDDEN);
    let csrf = sam.csrf("/agent").await;
    let admin_token_id = {
        let list = recoverydesk::services::agents::list_tokens(&mut app.conn(), "admin@localhost").unwrap();
        list.last().unwrap().id
    };
    let (status, _, _) = sam
        .post(
            &format!("/agent/admin/tokens/{admin_token_id}/revoke"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api_status(&app, &app.token).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_password_sets_a_password_from_stdin_and_ends_sessions() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let signed_in = session_cookie(&app, "admin@localhost", &app.admin_password).await;
    let url = app.database_url.clone();
    let out = desk(
        &url,
        &["agents", "password", "--email", "admin@localhost", "--password-stdin"],
        Some("too short\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("at least 12"), "{}", text(&out.stderr));
    let out = desk(
        &url,
        &["agents", "password", "--email", "nobody@desk.test", "--password-stdin"],
        Some("long enough password\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    let out = desk(
        &url,
        &["agents", "password", "--email", "admin@localhost"],
        Some("long enough password\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(64),
        "--password-stdin is required (a usage error)"
    );
    assert_eq!(get_with(&app, &signed_in, "/agent").await.0, StatusCode::OK);

    let out = desk(
        &url,
        &["agents", "password", "--email", "admin@localhost", "--password-stdin"],
        Some("set from the shell\nsecond line ignored\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("set from the shell"), "never echoed");
    assert_eq!(
        get_with(&app, &signed_in, "/agent").await.1.as_deref(),
        Some("/agent/login"),
        "sessions ended"
    );
    let console = Console::new(&app);
    assert_eq!(
        console.sign_in("admin@localhost", &app.admin_password).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        console.sign_in("admin@localhost", "set from the shell").await,
        StatusCode::SEE_OTHER
    );
}
