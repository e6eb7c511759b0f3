//! `mailgate` handing mail to a running `serve` over the local socket (docs/mail-setup.md):
//! the real binary, a real SQLite file, `serve` killed with SIGKILL while mailgates wait.

use crate::ops_cli::{SECRET, Served, command, run, sqlite, text, wait_until};
use diesel::prelude::*;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

fn env_for(db: &Path, mail_dir: &Path) -> Vec<(String, String)> {
    vec![
        ("DATABASE_URL".into(), sqlite(db)),
        ("RECOVERYDESK_SECRET_KEY".into(), SECRET.into()),
        ("RECOVERYDESK_MAIL_DIR".into(), mail_dir.display().to_string()),
    ]
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn mail(n: usize) -> Vec<u8> {
    format!(
        "From: sock-{n}@y.test\r\nTo: support@desk.test\r\nSubject: I forgot my username {n}\r\n\
         Message-ID: <sock-{n}@y.test>\r\n\r\nPlease help me, message {n}.\r\n"
    )
    .into_bytes()
}

fn spawn_mailgate(env: &[(&str, &str)], raw: &[u8]) -> Child {
    let mut child = command(env, &["mailgate"], 0o022)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailgate starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(raw).expect("the message is written");
    drop(stdin);
    child
}

/// How many deliveries of each Message-ID the database holds (created or appended: stored).
fn stored(db: &Path, n: usize) -> usize {
    use recoverydesk::db::schema::inbound_messages as im;
    let mut conn = SqliteConnection::establish(&db.to_string_lossy()).unwrap();
    im::table
        .filter(im::message_id.eq(format!("<sock-{n}@y.test>")))
        .filter(im::outcome.eq_any(["created", "appended"]))
        .count()
        .get_result::<i64>(&mut conn)
        .unwrap() as usize
}

/// Threads of `serve` serving one mailgate connection each.
fn socket_connections(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "mail-socket-con")
                })
                .count()
        })
        .unwrap_or(0)
}

/// The `mailgate` counter of serve's own metrics: how many messages serve itself stored.
async fn served_by_desk(address: &str) -> usize {
    let body = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    body.lines()
        .filter(|l| l.starts_with("recoverydesk_inbound_messages_total") && l.contains("channel=\"mailgate\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as usize
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailgate_hands_mail_to_the_running_desk_over_an_owner_only_socket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let mut env = env_for(&db, &dir.path().join("mail"));
    let port = free_port();
    let env_with_bind = {
        let mut e = env.clone();
        e.push(("RECOVERYDESK_BIND".into(), format!("127.0.0.1:{port}")));
        e
    };
    let served = Served::start(&borrowed(&env_with_bind));
    env.retain(|(k, _)| k != "RECOVERYDESK_BIND");
    let env = borrowed(&env);
    let socket = dir.path().join("desk.db.sock");
    let meta = std::fs::symlink_metadata(&socket).expect("serve made its socket beside the database");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner only");

    let address = format!("http://127.0.0.1:{port}");
    let before = served_by_desk(&address).await;
    let out = run(&env, &["mailgate"], &mail(1));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"outcome\":\"created\""), "{}", text(&out.stdout));
    assert_eq!(stored(&db, 1), 1);
    assert_eq!(served_by_desk(&address).await, before + 1, "serve stored it, not the mailgate");

    // The same message again: a duplicate, answered by the desk too.
    let out = run(&env, &["mailgate"], &mail(1));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"outcome\":\"duplicate\""), "{}", text(&out.stdout));
    assert_eq!(stored(&db, 1), 1);

    // A desk on another database does not take this mailgate's mail through a shared socket.
    let other_db = dir.path().join("other.db");
    let mut other = env_for(&other_db, &dir.path().join("mail"));
    other.push(("RECOVERYDESK_SOCKET".into(), socket.display().to_string()));
    let out = run(&borrowed(&other), &["mailgate"], &mail(2));
    assert_eq!(out.status.code(), Some(75), "no database there: {}", text(&out.stderr));
    assert_eq!(stored(&db, 2), 0, "not stored in the wrong desk");

    // Stopped: the socket goes, and the mailgate writes to the database itself.
    assert_eq!(served.terminate(Duration::from_secs(30)), Some(0));
    assert!(!socket.exists(), "the socket was removed at the stop");
    let out = run(&env, &["mailgate"], &mail(3));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stored(&db, 3), 1);
}

/// The crash test: `serve` is killed (SIGKILL) while mailgates wait on the socket for
/// their group's commit. Each mailgate exits 0 only for a message that is stored, and 75
/// otherwise; delivering the 75s again stores each exactly once.
#[test]
fn killing_serve_while_mailgates_wait_loses_nothing_acknowledged_and_stores_redeliveries_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let env = env_for(&db, &dir.path().join("mail"));
    let env = borrowed(&env);
    let waiting = 6;
    let mut outcomes: Vec<(usize, Option<i32>, String)> = vec![];

    // Round 1: the writer is held up by a lock this test takes, so every mailgate is waiting
    // on the socket when serve dies.
    let served = Served::start(&env);
    let pid = served.pid();
    let mut lock = SqliteConnection::establish(&db.to_string_lossy()).unwrap();
    diesel::sql_query("BEGIN IMMEDIATE").execute(&mut lock).unwrap();
    let children: Vec<(usize, Child)> = (0..waiting).map(|n| (n, spawn_mailgate(&env, &mail(n)))).collect();
    wait_until("every mailgate connected to serve", Duration::from_secs(30), || {
        socket_connections(pid) == waiting
    });
    served.kill9();
    diesel::sql_query("ROLLBACK").execute(&mut lock).unwrap();
    for (n, child) in children {
        let out = child.wait_with_output().unwrap();
        outcomes.push((n, out.status.code(), text(&out.stderr)));
    }

    // Round 2: no lock; serve is killed while a burst of mailgates is on its way, so some are
    // answered, some are cut off and some find no desk and write directly.
    let served = Served::start(&env);
    let pid = served.pid();
    let burst = 20;
    let children: Vec<(usize, Child)> = (waiting..waiting + burst)
        .map(|n| (n, spawn_mailgate(&env, &mail(n))))
        .collect();
    wait_until("a mailgate connected to serve", Duration::from_secs(30), || {
        socket_connections(pid) > 0 || children.iter().all(|(n, _)| stored(&db, *n) > 0)
    });
    served.kill9();
    for (n, child) in children {
        let out = child.wait_with_output().unwrap();
        outcomes.push((n, out.status.code(), text(&out.stderr)));
    }

    let mut deferred = vec![];
    for (n, code, stderr) in &outcomes {
        match code {
            Some(0) => assert_eq!(stored(&db, *n), 1, "message {n} was acknowledged, so it is stored once"),
            Some(75) => deferred.push(*n),
            other => panic!("message {n}: exit {other:?} (only 0 or 75 may happen): {stderr}"),
        }
    }
    let first_round: Vec<&usize> = deferred.iter().filter(|n| **n < waiting).collect();
    assert_eq!(first_round.len(), waiting, "every mailgate held up in round 1 deferred: {outcomes:?}");

    // The MTA delivers the 75s again (no desk running now: the stale socket is skipped).
    for n in &deferred {
        let out = run(&env, &["mailgate"], &mail(*n));
        assert_eq!(out.status.code(), Some(0), "redelivery of {n}: {}", text(&out.stderr));
    }
    for n in 0..waiting + burst {
        assert_eq!(stored(&db, n), 1, "message {n} is stored exactly once");
    }
}
