//! The only place that knows diesel and the differences between SQLite and PostgreSQL.

pub mod accounts;
pub mod activity;
pub mod agents;
pub mod api_requests;
pub mod approvals;
pub mod audit;
pub mod auth_events;
pub mod backup;
pub mod canned;
pub mod console;
pub mod erase;
pub mod event_row;
pub mod imap;
pub mod inbound;
pub mod locks;
pub mod outbox;
pub mod schema;
pub mod search;
pub mod settings;
pub mod submissions;
pub mod tickets;

use chrono::{NaiveDateTime, SubsecRound};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::PathBuf;
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL: {0}")]
    BadUrl(String),
    #[error("could not open the database: {0}")]
    Connect(String),
    #[error("could not apply migrations: {0}")]
    Migration(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

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

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        r2d2::R2D2Connection::ping(conn).map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Per-connection SQLite settings. WAL is a property of the file and is set once before the
/// pool exists (setting it from many fresh connections at once races).
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas;

impl CustomizeConnection<AnyConnection, r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        if let AnyConnection::Sqlite(c) = conn {
            c.batch_execute(sqlite_pragmas(false))
                .map_err(r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Each SQLite connection's settings. `durable`: a commit waits for the disk (`FULL`), for a
/// caller that acknowledges what it stored; the pool's writers ask for it per transaction.
fn sqlite_pragmas(durable: bool) -> &'static str {
    if durable {
        "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
    } else {
        "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
    }
}

/// One connection without a pool, set up as the pool's are (a command that handles one
/// message, such as `mailgate`); `durable` as for [`sqlite_pragmas`]. A missing SQLite file
/// is created by the open: a caller that must never create one checks the file first.
pub fn open_single(url: &DatabaseUrl, durable: bool) -> Result<AnyConnection, DbError> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let failed = |e: &dyn std::fmt::Display| DbError::Connect(format!("{}: {e}", path.display()));
            let mut conn = SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| failed(&e))?;
            conn.batch_execute(sqlite_pragmas(durable)).map_err(|e| failed(&e))?;
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
            .batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
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

/// Apply pending migrations of the connection's backend; returns the versions applied.
pub fn run_migrations(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    let migrations = match conn {
        AnyConnection::Sqlite(_) => SQLITE_MIGRATIONS,
        AnyConnection::Postgresql(_) => POSTGRES_MIGRATIONS,
    };
    conn.run_pending_migrations(migrations)
        .map(|versions| versions.iter().map(|v| v.to_string()).collect())
        .map_err(|e| DbError::Migration(e.to_string()))
}

/// Whether the database has our schema with nothing pending (mailgate never migrates). One
/// query that only reads: how many of this binary's migrations the database has applied.
/// (Diesel's own check creates its bookkeeping table if missing, a write, and reads every
/// applied version.)
pub fn schema_is_current(conn: &mut AnyConnection) -> Result<bool, DbError> {
    use diesel::migration::MigrationSource;
    let migrations = match conn {
        AnyConnection::Sqlite(_) => SQLITE_MIGRATIONS,
        AnyConnection::Postgresql(_) => POSTGRES_MIGRATIONS,
    };
    let versions: Vec<String> = MigrationSource::<diesel::sqlite::Sqlite>::migrations(&migrations)
        .map_err(|e| DbError::Migration(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    if versions.iter().any(|v| !v.chars().all(|c| c.is_ascii_alphanumeric())) {
        return Err(DbError::Migration("a migration version is not alphanumeric".into()));
    }
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    // The versions are this binary's own (checked above), so they can be written inline.
    let list = versions.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(",");
    let sql = format!("SELECT COUNT(*) AS n FROM __diesel_schema_migrations WHERE version IN ({list})");
    match diesel::sql_query(sql).get_result::<Applied>(conn) {
        Ok(applied) => Ok(applied.n == versions.len() as i64),
        // No bookkeeping table: nothing was ever migrated here.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("no such table") || info.message().contains("does not exist") =>
        {
            Ok(false)
        }
        Err(e) => Err(DbError::Query(e)),
    }
}

/// How many times a write transaction is tried before its error is answered.
pub const WRITE_ATTEMPTS: u32 = 6;

/// An SQLite attempt that failed busy after this long had its busy timeout (10 s) waited out
/// already: it is not tried again.
const SQLITE_BUSY_WAITED_OUT: Duration = Duration::from_secs(5);

/// An error worth running the whole transaction again for: a PostgreSQL serialization failure
/// (40001) or deadlock (40P01), or SQLite still busy after its busy timeout. Anything else
/// (a constraint, a refusal, a lost connection) is answered at once.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

impl Transient for diesel::result::Error {
    fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
            // diesel maps 40P01 and SQLITE_BUSY to `Unknown`; their messages are fixed by the
            // servers (PostgreSQL's `lc_messages` is English on the servers we support).
            Error::DatabaseError(_, info) => {
                let m = info.message();
                m.contains("deadlock detected")
                    || m.contains("could not serialize access")
                    || m.contains("database is locked")
                    || m.contains("database table is locked")
            }
            _ => false,
        }
    }
}

impl Transient for DbError {
    fn is_transient(&self) -> bool {
        matches!(self, DbError::Query(e) if e.is_transient())
    }
}

/// Run `f` in one write transaction. On SQLite it starts with `BEGIN IMMEDIATE` so that two
/// writers queue on the busy timeout instead of failing when a read lock is upgraded.
///
/// A transient failure (see [`Transient`]) rolls back and runs `f` again, up to
/// [`WRITE_ATTEMPTS`] times with a randomised pause, before the error reaches the caller: a
/// deadlock between two deliveries is the database choosing a loser, not a reason to answer
/// 503. `f` must therefore be re-runnable: everything it does goes through `conn`, and nothing
/// it does outside the transaction (files, mail, counters in memory) may happen twice.
/// Inside an outer transaction `f` runs once, as a savepoint: only the outermost one retries.
pub fn write_transaction<T, E>(
    conn: &mut AnyConnection,
    mut f: impl FnMut(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error> + Transient,
{
    if in_transaction(conn) {
        return conn.transaction(f);
    }
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    let mut attempt = 1;
    loop {
        let started = std::time::Instant::now();
        match write_transaction_once(conn, &mut f) {
            // On SQLite a busy error that came after the busy timeout had already been waited
            // out means the database stays locked: answering now keeps `mailgate`'s promise of
            // "locked for more than 10 s → 75" instead of holding the MTA for a minute.
            Err(e)
                if e.is_transient()
                    && attempt < WRITE_ATTEMPTS
                    && !(sqlite && started.elapsed() >= SQLITE_BUSY_WAITED_OUT)
                    && !in_transaction(conn) =>
            {
                tracing::warn!(
                    attempt,
                    "write transaction hit a deadlock, serialization failure or busy database; retrying"
                );
                std::thread::sleep(retry_pause(attempt));
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Exponential with full jitter: 2 ms, 4 ms, … up to 64 ms, each scaled by a random factor
/// in [0.5, 1.5), so two transactions that collided do not collide again in step.
fn retry_pause(attempt: u32) -> Duration {
    let base_ms = 2u64 << attempt.min(5);
    let mut byte = [0u8; 1];
    let jitter = match getrandom::fill(&mut byte) {
        Ok(()) => u64::from(byte[0]),
        Err(_) => 128,
    };
    Duration::from_micros(base_ms * (500 + jitter * 1000 / 256))
}

/// Whether `conn` is inside a transaction already.
pub fn in_transaction(conn: &mut AnyConnection) -> bool {
    let depth = match conn {
        AnyConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
        AnyConnection::Postgresql(c) => AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
    };
    // A broken transaction manager counts as "inside": never start another on it.
    !matches!(depth, Ok(None))
}

fn write_transaction_once<T, E>(
    conn: &mut AnyConnection,
    f: &mut impl FnMut(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    // The search documents of the tickets this transaction touched are written once each,
    // at its end (`search::Deferred`).
    let run = |conn: &mut AnyConnection, f: &mut dyn FnMut(&mut AnyConnection) -> Result<T, E>| {
        let deferred = search::Deferred::begin(conn);
        let value = f(conn)?;
        deferred.finish(conn)?;
        Ok(value)
    };
    if let AnyConnection::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
        let outcome = run(conn, f);
        let AnyConnection::Sqlite(c) = conn else {
            unreachable!("the backend of a connection never changes")
        };
        match outcome {
            Ok(value) => match AnsiTransactionManager::commit_transaction(c) {
                Ok(()) => Ok(value),
                Err(e) => {
                    // A commit that failed busy leaves the transaction open: end it so the
                    // connection can run the next attempt.
                    let _ = AnsiTransactionManager::rollback_transaction(c);
                    Err(e.into())
                }
            },
            Err(e) => {
                AnsiTransactionManager::rollback_transaction(c)?;
                Err(e)
            }
        }
    } else {
        conn.transaction(|c| run(c, f))
    }
}

/// Runs `f` with SQLite commits that survive a power cut (`synchronous = FULL`): used where a
/// message is acknowledged as stored to its sender. PostgreSQL commits are durable anyway.
/// A connection that cannot be switched to durable commits runs nothing: acknowledging a
/// message on a commit that may not survive a power cut would break the promise.
pub fn with_durable_commits<T, E: From<diesel::result::Error>>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E> {
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    if sqlite {
        conn.batch_execute("PRAGMA synchronous = FULL;")?;
    }
    let result = f(conn);
    if sqlite && let Err(e) = conn.batch_execute("PRAGMA synchronous = NORMAL;") {
        // Only slower commits follow from this; the pool keeps working.
        tracing::warn!(error = %e, "could not return the connection to synchronous=NORMAL");
    }
    result
}

/// The one row (or none) of a query on a key, read without `LIMIT`: Diesel's `.first()` binds
/// its `LIMIT 1` as a parameter, and SQLite recompiles a statement whose `LIMIT` is a bound
/// parameter every time it is bound again, defeating the statement cache on the hottest
/// queries. Only for queries that match at most a few rows.
pub fn at_most_one<T>(rows: QueryResult<Vec<T>>) -> QueryResult<Option<T>> {
    rows.map(|rows| rows.into_iter().next())
}

/// Now, in UTC, to the microsecond: both backends store and return exactly this.
pub fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

/// Is the database reachable (for `/healthz`)?
pub fn ping(conn: &mut AnyConnection) -> bool {
    diesel::sql_query("SELECT 1").execute(conn).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

    struct Info(&'static str);

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn failure(message: &'static str) -> Error {
        Error::DatabaseError(DatabaseErrorKind::Unknown, Box::new(Info(message)))
    }

    fn rows(conn: &mut AnyConnection) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result::<N>(conn)
            .unwrap()
            .n
    }

    #[test]
    fn a_deadlock_or_busy_database_runs_the_whole_transaction_again_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open_pool(&DatabaseUrl::Sqlite(dir.path().join("t.db")), 1).unwrap();
        let mut conn = pool.get().unwrap();
        conn.batch_execute("CREATE TABLE t (n INTEGER NOT NULL)").unwrap();

        // Fails twice (a deadlock, then a busy database), then succeeds: one row, from the
        // third run; the first two were rolled back.
        let mut runs = 0;
        let outcome: Result<i32, Error> = write_transaction(&mut conn, |c| {
            runs += 1;
            diesel::sql_query("INSERT INTO t (n) VALUES (1)").execute(c)?;
            match runs {
                1 => Err(failure("deadlock detected")),
                2 => Err(failure("database is locked")),
                _ => Ok(runs),
            }
        });
        assert_eq!(outcome.unwrap(), 3);
        assert_eq!(rows(&mut conn), 1);

        // A constraint or a refusal is answered at once.
        let mut runs = 0;
        let outcome: Result<(), Error> = write_transaction(&mut conn, |_| {
            runs += 1;
            Err(failure("UNIQUE constraint failed: t.n"))
        });
        assert!(outcome.is_err());
        assert_eq!(runs, 1);

        // A database that stays deadlocked: bounded, then the error.
        let mut runs = 0;
        let outcome: Result<(), Error> = write_transaction(&mut conn, |c| {
            runs += 1;
            diesel::sql_query("INSERT INTO t (n) VALUES (2)").execute(c)?;
            Err(Error::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                Box::new(Info("could not serialize access")),
            ))
        });
        assert!(outcome.unwrap_err().is_transient());
        assert_eq!(runs, WRITE_ATTEMPTS);
        assert_eq!(rows(&mut conn), 1);
        assert!(!in_transaction(&mut conn), "the connection is usable again");
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
