//! `import-maildir`'s threads, watched from outside while the real binary imports: its
//! parsing threads run nicer than its writing thread, so that the writer, which every message
//! goes through, wins a contended core.

use recoverydesk::mailgate::IMPORT_PARSER_THREAD;
use recoverydesk::priority::IMPORT_PARSER_NICENESS;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A thread's name and niceness, from `/proc/<pid>/task/<tid>/`.
fn thread_of(task: &Path) -> Option<(String, i32)> {
    let name = std::fs::read_to_string(task.join("comm")).ok()?;
    let stat = std::fs::read_to_string(task.join("stat")).ok()?;
    // The fields after the name in parentheses (which may hold spaces): state is the first,
    // niceness the 17th (field 19 of proc(5)).
    let after_name = stat.rsplit_once(')')?.1;
    let niceness = after_name.split_whitespace().nth(16)?.parse().ok()?;
    Some((name.trim_end().to_string(), niceness))
}

#[test]
fn the_import_parses_at_a_lower_priority_than_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("desk.db").display());
    let desk = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_recoverydesk"));
        command
            .env("DATABASE_URL", &url)
            .env("RECOVERYDESK_MAIL_DIR", dir.path().join("outgoing"))
            .env("RUST_LOG", "error");
        command
    };
    let migrated = desk().arg("migrate").output().unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let maildir = dir.path().join("archive");
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    // Enough to keep the parsing threads alive for a while in a debug build.
    let count = 400;
    for n in 0..count {
        let raw = format!(
            "From: nice{n}@y.test\r\nTo: support@desk.test\r\nSubject: I forgot my username\r\n\
             Message-ID: <nice{n}@y.test>\r\n\r\n{}\r\n",
            "Please help me find my username. ".repeat(60)
        );
        std::fs::write(maildir.join(format!("cur/{n:06}:2,S")), raw).unwrap();
    }
    let mut import = desk()
        .arg("import-maildir")
        .arg(&maildir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tasks = Path::new("/proc").join(import.id().to_string()).join("task");
    let main = tasks.join(import.id().to_string());
    // Every niceness each thread was seen with, by thread id.
    let mut parsers: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let mut writer = vec![];
    let deadline = Instant::now() + Duration::from_secs(120);
    while import.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if let Some((_, niceness)) = thread_of(&main) {
            writer.push(niceness);
        }
        for task in std::fs::read_dir(&tasks).into_iter().flatten().flatten() {
            if let Some((name, niceness)) = thread_of(&task.path())
                && name == IMPORT_PARSER_THREAD
            {
                parsers
                    .entry(task.file_name().to_string_lossy().into_owned())
                    .or_default()
                    .push(niceness);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = import.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{count} created")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ours = recoverydesk::priority::this_threads_niceness().unwrap();
    assert!(!writer.is_empty(), "the import's writing thread was never seen");
    assert!(
        writer.iter().all(|&n| n == ours),
        "the writer keeps the priority it was started with: {writer:?}"
    );
    assert!(!parsers.is_empty(), "no {IMPORT_PARSER_THREAD} thread was seen");
    let expected = (ours + IMPORT_PARSER_NICENESS).min(19);
    for (tid, seen) in &parsers {
        // A thread seen before its first statement ran may still show the writer's niceness.
        let settled = seen.last().copied();
        assert_eq!(settled, Some(expected), "parsing thread {tid} ran at {seen:?}");
    }
}
