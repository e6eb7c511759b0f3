//! The local socket between `mailgate` and a running `serve` (docs/mail-setup.md,
//! docs/reference.md#inbound-mail). The mailgate hands the raw message to the desk, which
//! parses it, has the group-commit writer store it, and answers after the durable commit; the
//! mailgate exits with that answer. With no desk listening, the mailgate ingests directly.
//!
//! The exchange, one message per connection:
//! - mailgate → desk: `RDMAIL1 <length> <desk id>\n` and then exactly `<length>` bytes;
//! - desk → mailgate: one line `<status> <text>\n`: `0 <JSON line>` stored (or duplicate or
//!   quarantined), `65 <words for the sender>` too large, `75 <reason>` not stored, `99
//!   <reason>` not this desk or too busy: the mailgate ingests directly instead.
//!
//! A message cut short (the mailgate killed while writing) is never stored: the desk reads
//! the announced length or nothing. Anything going wrong after the message was sent is "in
//! doubt" for the mailgate (75): the MTA delivers again and duplicate detection stores it
//! exactly once.

use crate::config::Settings;
use crate::db::DatabaseUrl;
use crate::services::Desk;
use crate::services::group_commit::Writer;
use crate::services::inbound::IngestError;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const HELLO: &str = "RDMAIL1";
/// Connections served at once; beyond this the mailgate is told to ingest by itself.
const MAX_CONNECTIONS: usize = 128;
/// How long the desk waits for a mailgate to send its message.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a mailgate waits for the desk's answer before it gives up (75).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Which desk a socket belongs to: a hash of the canonical SQLite path or of the PostgreSQL
/// URL, so a mailgate never hands mail to a desk on another database.
///
/// A path is hashed with 128-bit FNV-1a, not SHA-256: it only tells two databases apart,
/// between two processes of one user (the socket is owner-only), and SHA-256's first use in
/// a process detects the CPU's features with CPUID instructions, each a trap to the
/// hypervisor in a virtual machine (docs/benchmarks.md, "A process per message"). A URL,
/// which may hold a password, keeps SHA-256: FNV-1a can be undone step by step, and a
/// password guessed from the id would be cheap. A mailgate and a desk of different versions
/// that disagree only send the mail the long way (the mailgate stores it).
pub fn desk_id(url: &DatabaseUrl) -> Option<String> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let identity = format!("sqlite:{}", std::fs::canonicalize(path).ok()?.display());
            Some(format!("{:032x}", fnv1a_128(identity.as_bytes())))
        }
        DatabaseUrl::Postgres(url) => {
            use sha2::Digest;
            Some(hex::encode(
                &sha2::Sha256::digest(format!("postgres:{url}").as_bytes())[..16],
            ))
        }
    }
}

/// The 128-bit FNV-1a hash (offset basis and prime from the FNV specification).
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET_BASIS: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u128::from(*byte)).wrapping_mul(PRIME)
    })
}

/// `serve`'s side: the listening socket and its acceptor thread. Dropping it stops accepting.
pub struct SocketServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SocketServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SocketServer({})", self.path.display())
    }
}

/// Listens on `path` (owner-only), replacing a stale socket left by a desk that died, but
/// never a live one or anything that is not a socket.
pub fn listen(path: &Path, writer: Writer, desk: Desk) -> Result<SocketServer, String> {
    let id = desk_id(&desk.settings.database_url).ok_or("the database file cannot be resolved")?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket; leaving it alone",
                path.display()
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!("another desk listens on {} already", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("removing the stale socket {}: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let active = Arc::new(AtomicUsize::new(0));
    let acceptor = {
        let (stop, active) = (stop.clone(), active.clone());
        std::thread::Builder::new()
            .name("mail-socket".into())
            .spawn(move || accept_loop(&listener, &stop, &active, &writer, &desk, &id))
            .map_err(|e| e.to_string())?
    };
    Ok(SocketServer {
        path: path.to_path_buf(),
        stop,
        active,
        acceptor: Some(acceptor),
    })
}

impl SocketServer {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, removes the socket, and lets the deliveries in progress finish (up to
    /// `grace`).
    pub fn stop(mut self, grace: Duration) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let deadline = std::time::Instant::now() + grace;
        while self.active.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: &UnixListener,
    stop: &AtomicBool,
    active: &Arc<AtomicUsize>,
    writer: &Writer,
    desk: &Desk,
    id: &str,
) {
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    while !stop.load(Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the listener this function borrows.
        let ready = unsafe { libc::poll(&mut poll, 1, 200) };
        if ready <= 0 {
            continue;
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = (&stream).write_all(b"99 the desk is busy\n");
            continue;
        }
        let (active, writer, desk, id) = (active.clone(), writer.clone(), desk.clone(), id.to_string());
        let spawned = std::thread::Builder::new()
            .name("mail-socket-conn".into())
            .spawn(move || {
                serve_one(stream, &writer, &desk, &id);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            tracing::error!("no thread for a mailgate connection");
        }
    }
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
}

/// One mailgate's message: read it whole, store it through the writer, answer.
fn serve_one(stream: UnixStream, writer: &Writer, desk: &Desk, id: &str) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let mut reader = BufReader::new(&stream);
    let mut hello = Vec::new();
    if (&mut reader).take(200).read_until(b'\n', &mut hello).is_err() {
        return;
    }
    let hello = String::from_utf8_lossy(&hello);
    let mut words = hello.split_whitespace();
    let (Some(HELLO), Some(length), Some(their_id)) = (words.next(), words.next(), words.next()) else {
        let _ = (&stream).write_all(b"99 not a mailgate request this desk understands\n");
        return;
    };
    if their_id != id {
        let _ = (&stream).write_all(b"99 this socket belongs to a desk on another database\n");
        return;
    }
    let limit = desk.settings.max_message_bytes;
    let Ok(length) = length.parse::<u64>() else {
        let _ = (&stream).write_all(b"99 bad length\n");
        return;
    };
    if length > limit {
        let line = format!("65 {}\n", crate::mailgate::too_large_for_sender(limit));
        let _ = (&stream).write_all(line.as_bytes());
        return;
    }
    let mut raw = vec![0u8; length as usize];
    // Cut short: the mailgate died or gave up; nothing is stored and nobody is answered.
    if reader.read_exact(&mut raw).is_err() {
        return;
    }
    let line = match writer.ingest_blocking(desk, &raw, "mailgate") {
        Ok(ingested) => format!("0 {}\n", serde_json::to_string(&ingested).unwrap_or_default()),
        Err(IngestError::TooLarge { limit, .. }) => format!("65 {}\n", crate::mailgate::too_large_for_sender(limit)),
        Err(IngestError::Temporary(reason)) => format!("75 {}\n", reason.replace('\n', " ")),
    };
    let _ = (&stream).write_all(line.as_bytes());
}

/// What became of a message offered to the desk's socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// No desk took it (none listening, another database, too busy): ingest directly.
    NoDesk,
    /// The desk's answer: its exit status and text.
    Answered { status: u8, text: String },
    /// Sent, but no answer came: it may or may not be stored (75; the MTA delivers again).
    InDoubt(String),
}

/// `mailgate`'s side: offers `raw` to the desk listening on the settings' socket, if any.
pub fn deliver(settings: &Settings, raw: &[u8]) -> Delivery {
    let Some(path) = &settings.socket else {
        return Delivery::NoDesk;
    };
    let Ok(stream) = UnixStream::connect(path) else {
        return Delivery::NoDesk;
    };
    let Some(id) = desk_id(&settings.database_url) else {
        return Delivery::NoDesk;
    };
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let _ = stream.set_write_timeout(Some(ANSWER_TIMEOUT));
    let hello = format!("{HELLO} {} {id}\n", raw.len());
    let sent = (&stream)
        .write_all(hello.as_bytes())
        .and_then(|()| (&stream).write_all(raw))
        .and_then(|()| (&stream).flush());
    let mut answer = Vec::new();
    let read = (&stream).take(64 * 1024).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let line = answer.lines().next().unwrap_or("");
    let (status, text) = line.split_once(' ').unwrap_or((line, ""));
    match status.parse::<u8>() {
        Ok(99) if answer.ends_with('\n') => Delivery::NoDesk,
        Ok(status @ (0 | 65 | 75)) if answer.ends_with('\n') => Delivery::Answered {
            status,
            text: text.to_string(),
        },
        _ => Delivery::InDoubt(match (sent, read) {
            (Err(e), _) | (Ok(()), Err(e)) => format!("the desk's socket failed: {e}"),
            (Ok(()), Ok(_)) => "the desk closed the socket without an answer".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::fnv1a_128;

    /// The test vectors published with FNV: a desk and a mailgate built apart agree.
    #[test]
    fn the_desk_id_hash_is_fnv_1a_128() {
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
        assert_eq!(fnv1a_128(b"foobar"), 0x343e1662793c64bf6f0d3597ba446f18);
    }
}
