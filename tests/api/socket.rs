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
                .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "mail-socket-con"))
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
    assert!(
        text(&out.stdout).contains("\"outcome\":\"created\""),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(stored(&db, 1), 1);
    assert_eq!(
        served_by_desk(&address).await,
        before + 1,
        "serve stored it, not the mailgate"
    );

    // The same message again: a duplicate, answered by the desk too.
    let out = run(&env, &["mailgate"], &mail(1));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"outcome\":\"duplicate\""),
        "{}",
        text(&out.stdout)
    );
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
    // serve writes now and then on its own (counts, housekeeping): wait for it, as it would.
    diesel::sql_query("PRAGMA busy_timeout = 10000")
        .execute(&mut lock)
        .unwrap();
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
    assert_eq!(
        first_round.len(),
        waiting,
        "every mailgate held up in round 1 deferred: {outcomes:?}"
    );

    // The MTA delivers the 75s again (no desk running now: the stale socket is skipped).
    for n in &deferred {
        let out = run(&env, &["mailgate"], &mail(*n));
        assert_eq!(out.status.code(), Some(0), "redelivery of {n}: {}", text(&out.stderr));
    }
    for n in 0..waiting + burst {
        assert_eq!(stored(&db, n), 1, "message {n} is stored exactly once");
    }
}

/// Hostile or broken peers on the socket: a message cut short is never stored, a request the
/// desk does not understand is refused, and the same message from many senders at once is
/// stored once (the group's transaction sees its own earlier writes).
#[test]
fn the_socket_stores_only_whole_messages_and_each_message_once_under_a_burst() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let env = env_for(&db, &dir.path().join("mail"));
    let env = borrowed(&env);
    let served = Served::start(&env);
    let socket = dir.path().join("desk.db.sock");
    let id = recoverydesk::socket::desk_id(&recoverydesk::db::DatabaseUrl::Sqlite(db.clone())).unwrap();

    // Announced 10,000 bytes, sent a few, then gone: nothing stored, no answer.
    let raw = mail(40);
    let mut cut = UnixStream::connect(&socket).unwrap();
    cut.write_all(format!("RDMAIL1 10000 {id}\n").as_bytes()).unwrap();
    cut.write_all(&raw[..20]).unwrap();
    cut.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = cut.read_to_string(&mut answer);
    assert_eq!(answer, "", "no answer for a message cut short");

    // Not the exchange the desk speaks, or a length that is not a number: refused, nothing read.
    for hello in [
        "GET / HTTP/1.0\n".to_string(),
        format!("RDMAIL1 -5 {id}\n"),
        "\n".into(),
    ] {
        let mut peer = UnixStream::connect(&socket).unwrap();
        peer.write_all(hello.as_bytes()).unwrap();
        let mut answer = String::new();
        peer.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("99 "), "{hello:?} → {answer:?}");
    }

    // The same message from eight mailgates at once, and eight different ones: each stored once.
    let mut children: Vec<(usize, Child)> = (0..8).map(|_| (41, spawn_mailgate(&env, &mail(41)))).collect();
    children.extend((50..58).map(|n| (n, spawn_mailgate(&env, &mail(n)))));
    for (n, child) in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "message {n}: {}", text(&out.stderr));
    }
    assert_eq!(stored(&db, 40), 0, "the message cut short was not stored");
    assert_eq!(stored(&db, 41), 1, "eight deliveries of one message: stored once");
    for n in 50..58 {
        assert_eq!(stored(&db, n), 1, "message {n}");
    }
    drop(served);
}

/// Anything that is not a socket at the socket's path is left alone: `serve` says why it does
/// not listen there, and the mailgate writes to the database itself.
#[test]
fn a_file_in_the_sockets_place_is_left_alone_and_mail_still_flows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let env = env_for(&db, &dir.path().join("mail"));
    let env = borrowed(&env);
    let socket = dir.path().join("desk.db.sock");
    std::fs::write(&socket, b"not a socket").unwrap();
    let served = Served::start(&env);
    assert!(
        served.startup.iter().any(|l| l.contains("is not a socket")),
        "{:?}",
        served.startup
    );
    let out = run(&env, &["mailgate"], &mail(60));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stored(&db, 60), 1);
    assert_eq!(std::fs::read(&socket).unwrap(), b"not a socket");
    drop(served);
}
