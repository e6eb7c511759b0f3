//! Opening the database: the URL, the SQLite file and its settings, the pool.

use super::{AnyConnection, DbError, Pool};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection};
use std::path::PathBuf;
use std::time::Duration;

/// Where the data lives: an SQLite file (the default) or a PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://…`/`postgresql://…` select PostgreSQL; `sqlite://path` (relative) and
    /// `sqlite:///abs/path` select SQLite. Anything else is refused, so a typo never becomes
    /// an empty SQLite file somewhere (and nothing is created before the check).
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        let Some(path) = url.strip_prefix("sqlite://") else {
            return Err(DbError::BadUrl(refused_form(url)));
        };
        if path.is_empty() || path == ":memory:" {
            return Err(DbError::BadUrl(
                "give a file path after sqlite:// (an in-memory database would lose every ticket)".into(),
            ));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(_))
    }

    /// For messages: the URL without a password.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => match (u.find("://"), u.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let userinfo = &u[scheme + 3..at];
                    let user = userinfo.split(':').next().unwrap_or("");
                    format!("{}{}@{}", &u[..scheme + 3], user, &u[at + 1..])
                }
                _ => u.clone(),
            },
        }
    }
}

/// Why a `DATABASE_URL` is refused. The value itself is not repeated: a keyword/value string
/// or a mistyped URL may carry a password, and this message goes to logs and MTA bounces.
fn refused_form(url: &str) -> String {
    const ACCEPTED: &str = "use sqlite://relative/path, sqlite:///absolute/path or postgres://user@host/db";
    if url.is_empty() {
        return format!("it is empty; {ACCEPTED}");
    }
    if let Some((scheme, _)) = url.split_once("://")
        && !scheme.is_empty()
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return format!("the scheme {scheme:?} is not supported; {ACCEPTED}");
    }
    if url.contains('=') {
        return format!("a keyword/value connection string is not supported; {ACCEPTED}");
    }
    if url.starts_with("sqlite:") {
        return format!("write sqlite:// with two slashes; {ACCEPTED}");
    }
    format!("a bare path is not accepted (write sqlite:// in front of it); {ACCEPTED}")
}

/// An r2d2 manager that picks the backend from the URL, so connection errors keep their real
/// message (the derived `establish` hides it).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(u) => PgConnection::establish(u).map(AnyConnection::Postgresql),
            DatabaseUrl::Sqlite(p) => SqliteConnection::establish(&p.to_string_lossy()).map(AnyConnection::Sqlite),
        }
        .map_err(r2d2::Error::ConnectionError)
    }

    /// The pool's test of a connection it lends. An SQLite connection is a handle on a file
    /// in this process: nothing can break it while it sits in the pool, and `SELECT 1` reads
    /// nothing, so it is not tested. A PostgreSQL connection may have been closed by a server
    /// that restarted: `SELECT 1`.
    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        match conn {
            AnyConnection::Sqlite(_) => Ok(()),
            AnyConnection::Postgresql(_) => r2d2::R2D2Connection::ping(conn).map_err(r2d2::Error::QueryError),
        }
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        r2d2::R2D2Connection::is_broken(conn)
    }
}

/// How much of a savepoint's journal SQLite keeps in memory before it writes it to a
/// temporary file (its default is 64 KiB).
///
/// Why: each received message is written in a savepoint of its group's transaction, so that a
/// failed one does not take the group with it. SQLite journals the pages a savepoint changes,
/// and past 64 KiB it wrote them to a temporary file, two `pwrite` calls a page: 14 % of
/// `import-maildir`'s writing thread (docs/benchmarks.md, "Statements per message"). A
/// message's savepoint changes far less than this, so it stays in memory; a larger one
/// (a thread with big attachments, say) still spills, so memory stays bounded.
pub const SAVEPOINT_JOURNAL_IN_MEMORY: i32 = 4 << 20;

/// Sets SQLite's process-wide options, once, before its first connection (every open in
/// `db` calls it first): they can only be set before SQLite initialises. When something opened SQLite first, the defaults stay
/// (savepoints are slower, nothing else changes) and the log says so.
pub(super) fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        set_process_options();
        // After the options: registering initialises SQLite.
        super::wal_buffer::register();
    });
}

/// [`configure_sqlite`]'s options, before SQLite initialises.
fn set_process_options() {
    // SAFETY: `sqlite3_config` with `SQLITE_CONFIG_STMTJRNL_SPILL` takes one `int`. It is
    // called before this process opens a connection (the `Once` runs first in every open),
    // and SQLite refuses it harmlessly (SQLITE_MISUSE) once initialised.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_config(
            libsqlite3_sys::SQLITE_CONFIG_STMTJRNL_SPILL,
            SAVEPOINT_JOURNAL_IN_MEMORY as std::ffi::c_int,
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        tracing::info!(
            rc,
            "SQLite was initialised before its options were set: savepoint journals spill at 64 KiB"
        );
        return;
    }
    // Each connection is used by one thread at a time (a pool hands it out whole, Diesel's
    // connection is not `Sync`), which SQLite's "multi-thread" mode asks; the default
    // "serialized" mode locks a mutex per connection at every call. Memory statistics
    // (which the desk never reads) lock a process-wide mutex at every allocation. Both
    // were 2-3 % of the import's writing thread (docs/benchmarks.md).
    // SAFETY: both options take no argument but the mode (MEMSTATUS an `int`), before
    // initialisation as above.
    unsafe {
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MULTITHREAD);
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
    }
}

/// Per-connection SQLite settings. WAL is a property of the file and is set once before the
/// pool exists (setting it from many fresh connections at once races).
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas;

impl CustomizeConnection<AnyConnection, r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        if let AnyConnection::Sqlite(c) = conn {
            c.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                .and_then(|()| set_synchronous(c, Synchronous::Normal))
                .map_err(r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// SQLite's `synchronous` levels the desk uses (the numbers are SQLite's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Normal = 1,
    Full = 2,
}

/// The `synchronous` level this connection commits with (SQLite's number).
pub fn synchronous_level(conn: &mut SqliteConnection) -> QueryResult<i32> {
    #[derive(QueryableByName)]
    struct Level {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        synchronous: i32,
    }
    diesel::sql_query("PRAGMA synchronous")
        .get_result::<Level>(conn)
        .map(|l| l.synchronous)
}

/// Sets `synchronous` and reads it back. SQLite answers a setting it does not apply with
/// silence, and a commit acknowledged as durable on a connection that is not would break the
/// promise made to the sender: a level that did not take is an error.
pub fn set_synchronous(conn: &mut SqliteConnection, level: Synchronous) -> QueryResult<()> {
    conn.batch_execute(&format!("PRAGMA synchronous = {};", level as i32))?;
    let now = synchronous_level(conn)?;
    if now != level as i32 {
        return Err(setting_not_applied(format!(
            "PRAGMA synchronous = {level:?} did not take (it is {now})"
        )));
    }
    Ok(())
}

/// Puts the file in WAL mode. SQLite answers with the mode it is in after the request, which
/// is not WAL where the file system cannot share memory between processes: without WAL,
/// readers block the writer and `synchronous = NORMAL` is not crash-safe, so that is an error.
pub fn enable_wal(conn: &mut SqliteConnection) -> QueryResult<()> {
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode = WAL").get_result(conn)?;
    if !mode.journal_mode.eq_ignore_ascii_case("wal") {
        return Err(setting_not_applied(format!(
            "PRAGMA journal_mode = WAL did not take (the journal is {:?})",
            mode.journal_mode
        )));
    }
    Ok(())
}

fn setting_not_applied(message: String) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::Unknown, Box::new(message))
}

/// One connection without a pool, set up as the pool's are (a command that handles one
/// message, such as `mailgate`). `durable`: a commit waits for the disk (`synchronous =
/// FULL`, read back), for a caller that acknowledges what it stored. A missing SQLite file is
/// created by the open: a caller that must never create one checks the file first.
pub fn open_single(url: &DatabaseUrl, durable: bool) -> Result<AnyConnection, DbError> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            configure_sqlite();
            let failed = |e: &dyn std::fmt::Display| DbError::Connect(format!("{}: {e}", path.display()));
            let mut conn = SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| failed(&e))?;
            let level = if durable {
                Synchronous::Full
            } else {
                Synchronous::Normal
            };
            conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                .and_then(|()| set_synchronous(&mut conn, level))
                .map_err(|e| failed(&e))?;
            Ok(AnyConnection::Sqlite(conn))
        }
        DatabaseUrl::Postgres(u) => PgConnection::establish(u)
            .map(AnyConnection::Postgresql)
            .map_err(|e| DbError::Connect(format!("{}: {e}", url.redacted()))),
    }
}

/// Open (creating an SQLite file and its folder if needed) and return a pool.
pub fn open_pool(url: &DatabaseUrl, max_size: u32) -> Result<Pool, DbError> {
    if let DatabaseUrl::Sqlite(path) = url {
        configure_sqlite();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir_all(dir).map_err(|e| DbError::Connect(describe_access_error(dir, &e)))?;
        }
        match check_sqlite_file(path) {
            Ok(()) => {
                if crate::files::open_to_others(path) {
                    tracing::warn!(
                        path = %path.display(),
                        "the database file is readable or writable by other users: it holds customers' mail; \
                         run `chmod o-rwx` on it and on its -wal and -shm files"
                    );
                }
            }
            // Created here with its mode, so SQLite (which gives `-wal`/`-shm` the mode of the
            // database file) never makes any of the three readable by others.
            Err(SqliteFileError::Missing) => {
                crate::files::create_private_file(path)
                    .map(drop)
                    .or_else(|e| {
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| DbError::Connect(describe_access_error(path, &e)))?;
            }
            Err(SqliteFileError::Unusable(reason)) => return Err(DbError::Connect(reason)),
        }
        let mut first = SqliteConnection::establish(&path.to_string_lossy())
            .map_err(|e| DbError::Connect(format!("{}: {e}", path.display())))?;
        first
            .batch_execute("PRAGMA busy_timeout = 10000;")
            .and_then(|()| enable_wal(&mut first))
            .map_err(|e| DbError::Connect(format!("{}: {e}", path.display())))?;
    }
    r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(SqlitePragmas))
        .build(Manager { url: url.clone() })
        .map_err(|e| DbError::Connect(format!("{}: {e}", url.redacted())))
}

/// Why an SQLite database file cannot be used as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteFileError {
    /// Nothing at that path (and its folder could be searched): it may be created.
    Missing,
    /// It exists but this user cannot use it, or it is not a file: the reason, naming the path
    /// and the user.
    Unusable(String),
}

/// Checks that the database file exists and this process may read and write it, telling
/// "does not exist" apart from "exists, but not for you" (a folder that cannot be searched
/// makes the file look absent to a plain existence check).
pub fn check_sqlite_file(path: &std::path::Path) -> Result<(), SqliteFileError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SqliteFileError::Missing),
        Err(e) => return Err(SqliteFileError::Unusable(describe_access_error(path, &e))),
        Ok(meta) if !meta.is_file() => {
            return Err(SqliteFileError::Unusable(format!(
                "the database path {} is not a file",
                path.display()
            )));
        }
        Ok(_) => {}
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(drop)
        .map_err(|e| SqliteFileError::Unusable(describe_access_error(path, &e)))?;
    // SQLite creates `-wal` and `-shm` beside the file when they are missing, so the folder
    // must then be writable too (when both exist, a folder owned by someone else still works).
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name).exists()
    };
    if beside("-wal") && beside("-shm") {
        return Ok(());
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let dir_c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()))
        .map_err(|_| SqliteFileError::Unusable(format!("the folder {} has a NUL in its name", dir.display())))?;
    // SAFETY: access(2) only reads the NUL-terminated path it is given.
    if unsafe { libc::access(dir_c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(SqliteFileError::Unusable(format!(
            "{} (SQLite keeps its -wal and -shm files beside the database)",
            describe_access_error(dir, &e)
        )));
    }
    Ok(())
}

/// "permission denied: /var/lib/recoverydesk/recoverydesk.db as uid 999 (nobody); …" — the
/// path and the user, which is what an operator needs to fix ownership or the MTA's pipe user.
fn describe_access_error(path: &std::path::Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!(
            "permission denied on {} for {}: the file and its -wal and -shm must be readable and \
             writable by this user, and every folder above it searchable (x) by it",
            path.display(),
            crate::files::current_user()
        )
    } else {
        format!("{}: {e}", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_lends_an_sqlite_connection_without_a_statement() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let pool = open_pool(&DatabaseUrl::Sqlite(dir.path().join("p.db")), 1).expect("a pool");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        pool.get().expect("a connection").set_instrumentation(
            move |event: diesel::connection::InstrumentationEvent<'_>| {
                if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
                    record.lock().expect("not poisoned").push(query.to_string());
                }
            },
        );
        // A pool of one lends the same connection again, tested or not.
        drop(pool.get().expect("the same connection"));
        assert_eq!(seen.lock().expect("not poisoned").clone(), Vec::<String>::new());
    }

    #[test]
    fn urls_select_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/recoverydesk.db").unwrap(),
            DatabaseUrl::Sqlite("data/recoverydesk.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert_eq!(
            DatabaseUrl::parse("postgres://u:secret@h:5432/db").unwrap().redacted(),
            "postgres://u@h:5432/db"
        );
    }

    #[test]
    fn other_forms_are_refused_naming_the_setting_and_never_the_password() {
        for (url, says) in [
            ("x.db", "bare path"),
            ("/var/lib/desk.db", "bare path"),
            ("sqlite:x.db", "two slashes"),
            ("sqlite://", "file path"),
            ("sqlite://:memory:", "in-memory"),
            ("mysql://u:hunter2@h/db", "\"mysql\" is not supported"),
            ("postgress://u:hunter2@h/db", "\"postgress\" is not supported"),
            ("host=h user=u password=hunter2 dbname=d", "keyword/value"),
            ("", "empty"),
        ] {
            let message = DatabaseUrl::parse(url).unwrap_err().to_string();
            assert!(message.starts_with("DATABASE_URL: "), "{url}: {message}");
            assert!(message.contains(says), "{url}: {message}");
            assert!(!message.contains("hunter2"), "{url}: {message}");
        }
    }
}
