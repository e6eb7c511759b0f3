//! A real IMAP server for the tests: Debian's dovecot-imapd on a random port, with a throwaway
//! passdb and maildir in a temporary directory. As root the mailbox belongs to `nobody`
//! (dovecot refuses uid 0). Without dovecot, `Dovecot::start` says SKIPPED loudly and returns
//! None; with RECOVERYDESK_REQUIRE_DOVECOT=1 (CI) it fails instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "desk";
pub const PASSWORD: &str = "imap-pass-0123";

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    uid: u32,
    gid: u32,
    delivered: usize,
}

fn dovecot_binary() -> Option<PathBuf> {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn user_name() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Dovecot {
    /// A fresh server, or None (and a loud SKIPPED) when dovecot is not installed.
    pub fn start() -> Option<Dovecot> {
        if dovecot_binary().is_none() {
            assert!(
                std::env::var("RECOVERYDESK_REQUIRE_DOVECOT").as_deref() != Ok("1"),
                "RECOVERYDESK_REQUIRE_DOVECOT=1 but dovecot is not installed (apt-get install dovecot-imapd)"
            );
            eprintln!(
                "SKIPPED: dovecot is not installed (apt-get install dovecot-imapd), so this IMAP test did not run"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = unsafe { libc::geteuid() } == 0;
        // Dovecot refuses to give mail to uid 0: as root, the mailbox belongs to `nobody`.
        let (uid, gid) = if root {
            (65534, 65534)
        } else {
            unsafe { (libc::getuid(), libc::getgid()) }
        };
        let (internal, login) = if root {
            ("dovecot".to_string(), "dovenull".to_string())
        } else {
            (user_name(), user_name())
        };
        let d = dir.path();
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        set_mode(d, 0o755);
        std::fs::write(d.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let port = free_port();
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols = imap\nlisten = 127.0.0.1\n\
             ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\nmail_location = maildir:~/Maildir\n\
             default_internal_user = {internal}\ndefault_login_user = {login}\n{group}\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/home/%u\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n",
            d = d.display(),
            group = if root {
                String::new()
            } else {
                format!("default_internal_group = {}\n", user_name())
            },
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let maildir = d.join("home").join(USER).join("Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        chown_tree(&d.join("home"), uid, gid);
        let mut server = Dovecot {
            dir,
            port,
            child: None,
            uid,
            gid,
            delivered: 0,
        };
        server.launch();
        Some(server)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn launch(&mut self) {
        let child = Command::new(dovecot_binary().unwrap())
            .arg("-F")
            .arg("-c")
            .arg(self.conf())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "dovecot did not listen: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM to the master, which ends the IMAP processes) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("home").join(USER).join("Maildir")
    }

    /// Puts a message in the INBOX (a file in `new/`, as a local delivery agent does).
    pub fn deliver(&mut self, raw: &[u8]) {
        self.delivered += 1;
        let name = format!(
            "{:010}.M{}P{}.test",
            1_700_000_000 + self.delivered,
            self.delivered,
            std::process::id()
        );
        let tmp = self.maildir().join("tmp").join(&name);
        std::fs::write(&tmp, raw).unwrap();
        std::os::unix::fs::chown(&tmp, Some(self.uid), Some(self.gid)).unwrap();
        std::fs::rename(&tmp, self.maildir().join("new").join(&name)).unwrap();
    }

    /// Messages in a folder (`INBOX` or another), and how many of them are flagged \Seen.
    pub fn count(&self, folder: &str) -> (usize, usize) {
        let dir = if folder == "INBOX" {
            self.maildir()
        } else {
            self.maildir().join(format!(".{folder}"))
        };
        let mut total = 0;
        let mut seen = 0;
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(dir.join(sub)).into_iter().flatten().flatten() {
                total += 1;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.rsplit_once(":2,").is_some_and(|(_, flags)| flags.contains('S')) {
                    seen += 1;
                }
            }
        }
        (total, seen)
    }

    /// A new UIDVALIDITY for the INBOX, as a server restored from backup or rebuilt would have.
    pub fn reset_uid_validity(&self, value: u32) {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(self.conf())
            .args([
                "mailbox",
                "update",
                "-u",
                USER,
                "--uid-validity",
                &value.to_string(),
                "INBOX",
            ])
            .output()
            .expect("doveadm runs");
        assert!(
            out.status.success(),
            "doveadm: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("imap://{USER}@127.0.0.1:{}/INBOX", self.port)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::chown(path, Some(uid), Some(gid));
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}
