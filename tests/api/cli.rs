//! The real binary, as an operator runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn desk(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recoverydesk"))
        .args(args)
        .env("DATABASE_URL", format!("sqlite://{}", dir.join("desk.db").display()))
        .env("RUST_LOG", "warn")
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

#[test]
fn accounts_import_reports_each_refused_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"id":"acc_1","username":"a","email":"a@x.test","status":"banned"}"#, "\n",
            r#"{"id":"acc_1","username":"a","email":"a@x.test","status":"active"}"#, "\n",
            "\n",
            "{broken\n",
            r#"{"id":"acc_2","username":"b","email":"b@x.test","status":"active","ip_access":{"enabled":true,"allowlist":["203.0.113.7"]}}"#, "\n",
        ),
    )
    .unwrap();
    let out = desk(dir.path(), &["accounts", "import", file.to_str().unwrap()], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 2: account acc_1 is banned and a ban is permanent"),
        "{stderr}"
    );
    assert!(stderr.contains("line 4: not a valid account object"), "{stderr}");
    assert!(stderr.contains("2 created, 0 updated, 2 refused"), "{stderr}");

    let clean = dir.path().join("clean.jsonl");
    std::fs::write(
        &clean,
        r#"{"id":"acc_2","username":"b","email":"b@x.test","status":"terminated","balance_due_cents":100}"#,
    )
    .unwrap();
    let out = desk(dir.path(), &["accounts", "import", clean.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("0 created, 1 updated, 0 refused"));
}

#[test]
fn agents_are_added_with_a_password_from_stdin_and_tokens_print_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = desk(
        dir.path(),
        &[
            "agents",
            "add",
            "--email",
            "ann@desk.test",
            "--name",
            "Ann",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = desk(
        dir.path(),
        &[
            "agents",
            "add",
            "--email",
            "bob@desk.test",
            "--name",
            "Bob",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("at least 12 characters"));

    let out = desk(dir.path(), &["agents", "token", "--email", "ann@desk.test"], None);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let token = stdout.trim_end_matches('\n');
    assert_eq!(stdout.lines().count(), 1, "the token alone on stdout: {stdout:?}");
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    let stored = std::fs::read(dir.path().join("desk.db")).unwrap();
    assert!(
        !stored.windows(token.len()).any(|w| w == token.as_bytes()),
        "the token is stored only hashed"
    );

    let out = desk(dir.path(), &["agents", "token", "--email", "nobody@desk.test"], None);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn help_explains_every_command_and_option() {
    let dir = tempfile::tempdir().unwrap();
    let out = desk(dir.path(), &["--help"], None);
    let help = text(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "accounts",
        "agents",
        "DATABASE_URL",
        "RECOVERYDESK_BIND",
        "RECOVERYDESK_BASE_URL",
        "RECOVERYDESK_SUPPORT_ADDRESS",
        "RECOVERYDESK_ADMIN_EMAIL",
        "RECOVERYDESK_INBOUND_TOKEN",
        "SMTP_URL",
        "RECOVERYDESK_MAIL_DIR",
        "RECOVERYDESK_TRUSTED_PROXIES",
        "RECOVERYDESK_TICKET_PREFIX",
        "RECOVERYDESK_MAX_MESSAGE_BYTES",
        "RECOVERYDESK_AUTH_LOG_RETENTION_DAYS",
        "RECOVERYDESK_SECRET_KEY",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    let out = desk(dir.path(), &["agents", "add", "--help"], None);
    assert!(text(&out.stdout).contains("--password-stdin"));
    let out = desk(dir.path(), &["migrate"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dir.path().join("desk.db").exists(), "migrate creates the database");
}
