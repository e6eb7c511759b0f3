//! The binary serving: private files whatever the umask, backup and restore while it runs, the
//! warning about a database open to others, and a clean stop on SIGTERM.

use crate::ops_cli::{SECRET, Served, assert_private, message, outbox_in, run, sqlite, text, tickets_in, wait_until};
use crate::smtp_capture::SmtpCapture;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn files_are_private_whatever_the_umask_and_a_backup_restores_the_same_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/desk.db");
    let url = sqlite(&db);
    let mail_dir = dir.path().join("mail");
    let mail_dir_text = mail_dir.to_string_lossy().into_owned();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("RECOVERYDESK_MAIL_DIR", mail_dir_text.as_str()),
    ];
    let out = run(&env, &["migrate"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_private(&db);
    assert_private(&dir.path().join("data"));

    let served = Served::start(&env);
    for (id, subject) in [("m1", "I forgot my username"), ("m2", "Locked out by IP")] {
        let out = run(&env, &["mailgate"], &message(id, subject));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    // The sender in `serve` writes the acknowledgements as .eml files.
    let emls = || -> Vec<PathBuf> {
        std::fs::read_dir(&mail_dir)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until("two .eml files", Duration::from_secs(20), || emls().len() >= 2);
    assert_private(&mail_dir);
    for eml in emls() {
        assert_private(&eml);
    }
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        assert!(path.exists(), "{} exists while serve runs", path.display());
        assert_private(&path);
    }

    // A backup while serve runs.
    let backup = dir.path().join("desk-backup.db");
    let out = run(&env, &["backup", backup.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("2 tickets"), "{}", text(&out.stderr));
    assert_private(&backup);
    assert!(!dir.path().join("desk-backup.db.partial").exists());
    let out = run(&env, &["backup", backup.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1), "never replaces a file");
    assert!(text(&out.stderr).contains("already exists"), "{}", text(&out.stderr));
    assert_eq!(served.terminate(Duration::from_secs(20)), Some(0));

    // Restore as docs/operations.md says: the copy in place of the database file, in a fresh
    // directory; the desk opens it (migrate) and has the same tickets.
    let fresh = tempfile::tempdir().unwrap();
    let restored = fresh.path().join("desk.db");
    std::fs::copy(&backup, &restored).unwrap();
    let restored_url = sqlite(&restored);
    let out = run(&[("DATABASE_URL", restored_url.as_str())], &["migrate"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let original = tickets_in(&db);
    assert_eq!(original.len(), 2);
    assert_eq!(tickets_in(&restored), original);
    // The restored desk recognises a redelivery of mail it had before the backup.
    let out = run(
        &[("DATABASE_URL", restored_url.as_str())],
        &["mailgate"],
        &message("m1", "I forgot my username"),
    );
    assert!(text(&out.stdout).contains("duplicate"), "{}", text(&out.stdout));
}

#[test]
fn backup_is_for_sqlite_and_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("b.db");
    let out = run(
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/desk")],
        &["backup", target.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("pg_dump"), "{}", text(&out.stderr));
    let missing = sqlite(&dir.path().join("missing.db"));
    let out = run(
        &[("DATABASE_URL", missing.as_str())],
        &["backup", target.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not exist"), "{}", text(&out.stderr));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing created"
    );
}

#[test]
fn serve_warns_when_the_database_is_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let url = sqlite(&db);
    let env = [("DATABASE_URL", url.as_str())];
    assert_eq!(run(&env, &["migrate"], b"").status.code(), Some(0));
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let served = Served::start(&env);
    let startup = served.startup.join("\n");
    assert!(startup.contains("readable or writable by other users"), "{startup}");
    assert!(
        startup.contains(&db.display().to_string()),
        "the warning names the file: {startup}"
    );
}

#[test]
fn sigterm_mid_delivery_lets_it_finish_and_nothing_is_sent_twice() {
    let smtp = SmtpCapture::start();
    smtp.answer_slowly(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let url = sqlite(&db);
    let smtp_url = smtp.url();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("RECOVERYDESK_SECRET_KEY", SECRET),
        ("SMTP_URL", smtp_url.as_str()),
    ];
    assert_eq!(run(&env, &["migrate"], b"").status.code(), Some(0));
    for (id, subject) in [("s1", "I forgot my username"), ("s2", "Locked out by IP")] {
        let out = run(&env, &["mailgate"], &message(id, subject));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let queued = outbox_in(&db).len();
    assert!(queued >= 2, "two acknowledgements wait");

    let served = Served::start(&env);
    wait_until("the first message on the wire", Duration::from_secs(20), || {
        smtp.data_ended() == 1
    });
    // Mid-delivery: the peer has the message and has not answered yet.
    assert_eq!(served.terminate(Duration::from_secs(20)), Some(0));
    assert_eq!(smtp.messages().len(), 1, "the delivery in progress was finished");
    let rows = outbox_in(&db);
    assert_eq!(rows[0], ("sent".to_string(), 1, None), "{rows:?}");
    for row in &rows[1..] {
        assert_eq!(
            row,
            &("pending".to_string(), 0, None),
            "not begun, released at once: {rows:?}"
        );
    }

    // Started again: the rest goes out, the first never again.
    smtp.answer_slowly(Duration::ZERO);
    let served = Served::start(&env);
    wait_until("every acknowledgement", Duration::from_secs(20), || {
        outbox_in(&db).iter().all(|r| r.0 == "sent")
    });
    assert_eq!(served.terminate(Duration::from_secs(20)), Some(0));
    let sent = smtp.messages();
    assert_eq!(sent.len(), queued, "each mail exactly once");
    let mut ids: Vec<String> = sent.iter().filter_map(|m| m.header("Message-ID")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), queued, "no message twice");
}
