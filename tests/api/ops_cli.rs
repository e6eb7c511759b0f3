//! The binary as an operator runs it: settings that fail safely, permission errors that say
//! what is wrong, help, completions and man page. Helpers shared with `ops_serve`.

use diesel::prelude::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The binary with a clean environment (only what is given), under `umask`.
pub(crate) fn command(env: &[(&str, &str)], args: &[&str], umask: u32) -> Command {
    command_of(Path::new(env!("CARGO_BIN_EXE_recoverydesk")), env, args, umask)
}

pub(crate) fn command_of(program: &Path, env: &[(&str, &str)], args: &[&str], umask: u32) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env("RUST_LOG", "warn").args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    // SAFETY: umask(2) is async-signal-safe and changes only the child about to exec.
    unsafe {
        command.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    command
}

pub(crate) fn run(env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
    run_with(command(env, args, 0o022), stdin)
}

pub(crate) fn run_with(mut command: Command, stdin: &[u8]) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A binary copied a moment ago can be "busy" while another test's child, forked before
    // the copy's descriptor was closed, has not yet exec'd: try again shortly.
    let mut tries = 0;
    let mut child = loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other.expect("the binary starts"),
        }
    };
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("the binary finishes")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn sqlite(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

pub(crate) fn message(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: ops-{id}@y.test\r\nTo: support@desk.test\r\nSubject: {subject}\r\nMessage-ID: <{id}@y.test>\r\n\r\nPlease help me.\r\n"
    )
    .into_bytes()
}

pub(crate) fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

pub(crate) fn assert_private(path: &Path) {
    let mode = mode(path);
    assert_eq!(mode & 0o007, 0, "{} is open to other users: {mode:o}", path.display());
}

/// `serve` running in the background; SIGKILLed if a test fails before stopping it.
pub(crate) struct Served {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
    /// What it printed up to "is listening on".
    pub(crate) startup: Vec<String>,
}

impl Served {
    pub(crate) fn start(env: &[(&str, &str)]) -> Served {
        Self::start_with_args(env, &["serve"])
    }

    /// `serve` started with these arguments (none: the binary's default command).
    pub(crate) fn start_with_args(env: &[(&str, &str)], args: &[&str]) -> Served {
        let mut env = env.to_vec();
        if !env.iter().any(|(k, _)| *k == "RECOVERYDESK_BIND") {
            env.push(("RECOVERYDESK_BIND", "127.0.0.1:0"));
        }
        env.push(("RUST_LOG", "info"));
        let mut child = command(&env, args, 0o022)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut served = Served {
            child,
            stderr: rx,
            startup: vec![],
        };
        served.startup = served.wait_for("is listening on");
        served
    }

    /// Waits for a line of stderr containing `words`; returns every line read meanwhile.
    pub(crate) fn wait_for(&self, words: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = vec![];
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
                let found = line.contains(words);
                seen.push(line);
                if found {
                    return seen;
                }
            }
        }
        panic!("serve never said {words:?}; it said:\n{}", seen.join("\n"));
    }

    /// The process id of `serve`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (kill -9): no clean-up of any kind, as in a crash.
    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (within `limit`).
    pub(crate) fn terminate(mut self, limit: Duration) -> Option<i32> {
        self.signal_and_wait(limit)
    }

    /// SIGTERM, the exit status, and every line of stderr not read yet, to the last.
    pub(crate) fn stop(mut self, limit: Duration) -> (Option<i32>, Vec<String>) {
        let code = self.signal_and_wait(limit);
        let mut lines = vec![];
        // The reader thread ends, and the channel with it, when the pipe closes.
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(10)) {
            lines.push(line);
        }
        (code, lines)
    }

    fn signal_and_wait(&mut self, limit: Duration) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (id, subject, requester) of every ticket, straight from an SQLite file.
pub(crate) fn tickets_in(db: &Path) -> Vec<(i64, String, String)> {
    use recoverydesk::db::schema::tickets;
    let mut conn = diesel::SqliteConnection::establish(&db.to_string_lossy()).unwrap();
    tickets::table
        .order(tickets::id)
        .select((tickets::id, tickets::subject, tickets::requester))
        .load(&mut conn)
        .unwrap()
}

/// (status, attempts, claimed_by) of every outbox row, oldest first.
pub(crate) fn outbox_in(db: &Path) -> Vec<(String, i32, Option<String>)> {
    use recoverydesk::db::schema::outbox;
    let mut conn = diesel::SqliteConnection::establish(&db.to_string_lossy()).unwrap();
    outbox::table
        .order(outbox::id)
        .select((outbox::status, outbox::attempts, outbox::claimed_by))
        .load(&mut conn)
        .unwrap()
}

#[test]
fn mailgate_defers_on_every_bad_setting_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let good = sqlite(&db);
    let cases: &[(&str, &str)] = &[
        ("RECOVERYDESK_MAX_MESSAGE_BYTES", "25MB"),
        ("RECOVERYDESK_MAX_MESSAGE_BYTES", "-1"),
        ("RECOVERYDESK_MAX_MESSAGE_BYTES", "0"),
        ("RECOVERYDESK_AUTH_LOG_RETENTION_DAYS", "a month"),
        ("RECOVERYDESK_FORM_RATE_LIMIT", "many"),
        ("RECOVERYDESK_BASE_URL", "ftp://desk.test"),
        ("RECOVERYDESK_TRUSTED_PROXIES", "10.0.0.1, the-proxy"),
        ("RECOVERYDESK_SUPPORT_ADDRESS", "support..desk@desk.test"),
        ("RECOVERYDESK_ADMIN_EMAIL", "admin"),
        ("RECOVERYDESK_TICKET_PREFIX", "R-D"),
        ("RECOVERYDESK_BIND", "everywhere"),
        ("RECOVERYDESK_SECRET_KEY", "short"),
        ("SMTP_URL", "gopher://relay.test"),
        ("DATABASE_URL", "desk.db"),
        ("DATABASE_URL", "mysql://u:hunter2@h/db"),
        ("DATABASE_URL", "host=h user=u password=hunter2 dbname=d"),
        // Refused by the command-line parser itself (an empty path), found by a review.
        ("RECOVERYDESK_SOCKET", ""),
        ("SMTP_CA_FILE", ""),
    ];
    for (name, value) in cases {
        let mut env = vec![("DATABASE_URL", good.as_str()), ("RECOVERYDESK_SECRET_KEY", SECRET)];
        env.retain(|(k, _)| k != name);
        env.push((name, value));
        let out = run(&env, &["mailgate"], &message("bad-setting", "hello"));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{name}={value:?} must defer: {stderr}");
        assert!(
            stderr.contains(name),
            "{name}={value:?}: the message names it: {stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(out.stdout.is_empty());
        // Every other command refuses it the same way, before touching anything.
        let out = run(&env, &["migrate"], b"");
        assert_ne!(out.status.code(), Some(0), "{name}={value:?}: migrate must refuse it");
        assert!(text(&out.stderr).contains(name), "{}", text(&out.stderr));
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{name}={value:?}: nothing may be created"
        );
    }
    let out = run(&[("DATABASE_URL", good.as_str())], &["mailgate", "--no-such-flag"], b"");
    assert_eq!(out.status.code(), Some(64), "only a command line it cannot parse is 64");
}

#[test]
fn an_oversize_message_bounces_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir.path().join("desk.db"));
    let env = [("DATABASE_URL", db.as_str()), ("RECOVERYDESK_SECRET_KEY", SECRET)];
    assert_eq!(run(&env, &["migrate"], b"").status.code(), Some(0));
    let small = [
        ("DATABASE_URL", db.as_str()),
        ("RECOVERYDESK_SECRET_KEY", SECRET),
        ("RECOVERYDESK_MAX_MESSAGE_BYTES", "2097152"),
    ];
    let big = [message("big", "photos"), vec![b'x'; 3 << 20]].concat();
    let out = run(&small, &["mailgate"], &big);
    // The MTA quotes all of this in the bounce to the sender.
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(65), "{shown}");
    assert!(shown.contains("too large") && shown.contains("2.0 MB"), "{shown}");
    for internal in ["RECOVERYDESK", "recoverydesk", "bytes (", "Usage", "error:"] {
        assert!(!shown.contains(internal), "{internal:?} shown to the sender: {shown}");
    }
}

#[test]
fn a_permission_problem_names_the_path_and_the_user() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to run the binary as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let folder = dir.path().join("state");
    std::fs::create_dir(&folder).unwrap();
    let db = folder.join("desk.db");
    let url = sqlite(&db);
    let env = [("DATABASE_URL", url.as_str()), ("RECOVERYDESK_SECRET_KEY", SECRET)];
    assert_eq!(run(&env, &["migrate"], b"").status.code(), Some(0));
    // The build's copy may sit where that user cannot reach it.
    let program = dir.path().join("recoverydesk");
    std::fs::copy(env!("CARGO_BIN_EXE_recoverydesk"), &program).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |folder_mode: u32| {
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(folder_mode)).unwrap();
        let mut command = command_of(&program, &env, &["mailgate"], 0o022);
        command.uid(65534).gid(65534);
        run_with(command, &message("perm", "hello"))
    };
    // The folder cannot be searched: the file looks absent, but it is not.
    let out = as_nobody(0o700);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("permission denied on"), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(stderr.contains("uid 65534"), "{stderr}");
    assert!(!stderr.contains("does not exist"), "{stderr}");
    // The folder can be searched, the file is not theirs.
    let out = as_nobody(0o755);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("permission denied on") && stderr.contains("uid 65534"),
        "{stderr}"
    );
    // The file is theirs, the folder is not: SQLite could not create its -wal and -shm there.
    std::os::unix::fs::chown(&db, Some(65534), Some(65534)).unwrap();
    let out = as_nobody(0o755);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains(&format!("permission denied on {} for uid 65534", folder.display()))
            && stderr.contains("-wal and -shm"),
        "{stderr}"
    );
}

#[test]
fn help_says_which_commands_create_the_database() {
    let help = text(&run(&[], &["--help"], b"").stdout);
    assert!(
        help.contains("Every command except `mailgate` creates the database"),
        "{help}"
    );
    assert!(help.contains("`mailgate` never creates one"), "{help}");
    let help = text(&run(&[], &["backup", "--help"], b"").stdout);
    assert!(
        help.contains("neither created nor migrated") && help.contains("pg_dump"),
        "{help}"
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    let out = run(&[], &["completions", "bash"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bash = text(&out.stdout);
    assert!(
        bash.contains("complete") && bash.contains("mailgate") && bash.contains("backup"),
        "{bash}"
    );
    let out = run(&[], &["completions", "zsh"], b"");
    assert!(text(&out.stdout).starts_with("#compdef recoverydesk"));
    assert_eq!(run(&[], &["completions", "tcsh"], b"").status.code(), Some(64));
    let out = run(&[], &["man"], b"");
    let page = text(&out.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH recoverydesk"), "{page}");
    assert!(page.contains("DATABASE_URL") && page.contains("mailgate"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[], &["man", "--dir", dir.path().to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dir.path().join("recoverydesk.1").exists());
    assert!(dir.path().join("recoverydesk-backup.1").exists());
}
