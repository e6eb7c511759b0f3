//! The only place that knows diesel and the differences between SQLite and PostgreSQL.

pub mod accounts;
pub mod agents;
pub mod auth_events;
pub mod console;
pub mod erase;
pub mod inbound;
pub mod locks;
pub mod outbox;
pub mod schema;
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
    #[error("database URL {0:?}: {1}")]
    BadUrl(String, String),
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
    /// `postgres://…`/`postgresql://…` select PostgreSQL; `sqlite://path` (relative),
    /// `sqlite:///abs/path` and a bare path select SQLite.
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path == ":memory:" {
            return Err(DbError::BadUrl(
                url.into(),
                "give a file path (an in-memory database would lose every ticket)".into(),
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
            c.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                .map_err(r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Open (creating an SQLite file and its folder if needed) and return a pool.
pub fn open_pool(url: &DatabaseUrl, max_size: u32) -> Result<Pool, DbError> {
    if let DatabaseUrl::Sqlite(path) = url {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Connect(format!("{}: {e}", dir.display())))?;
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

/// Whether the database has our schema with nothing pending (mailgate never migrates).
pub fn schema_is_current(conn: &mut AnyConnection) -> Result<bool, DbError> {
    let migrations = match conn {
        AnyConnection::Sqlite(_) => SQLITE_MIGRATIONS,
        AnyConnection::Postgresql(_) => POSTGRES_MIGRATIONS,
    };
    conn.has_pending_migration(migrations)
        .map(|pending| !pending)
        .map_err(|e| DbError::Migration(e.to_string()))
}

/// How many times a write transaction is tried before its error is answered.
pub const WRITE_ATTEMPTS: u32 = 6;

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
    let mut attempt = 1;
    loop {
        match write_transaction_once(conn, &mut f) {
            Err(e) if e.is_transient() && attempt < WRITE_ATTEMPTS && !in_transaction(conn) => {
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
    if let AnyConnection::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
        let outcome = f(conn);
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
        conn.transaction(|c| f(c))
    }
}

/// Runs `f` with SQLite commits that survive a power cut (`synchronous = FULL`): used where a
/// message is acknowledged as stored to its sender. PostgreSQL commits are durable anyway.
pub fn with_durable_commits<T>(conn: &mut AnyConnection, f: impl FnOnce(&mut AnyConnection) -> T) -> T {
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    if sqlite {
        let _ = conn.batch_execute("PRAGMA synchronous = FULL;");
    }
    let result = f(conn);
    if sqlite {
        let _ = conn.batch_execute("PRAGMA synchronous = NORMAL;");
    }
    result
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
        assert_eq!(DatabaseUrl::parse("x.db").unwrap(), DatabaseUrl::Sqlite("x.db".into()));
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(DatabaseUrl::parse("sqlite://:memory:").is_err());
        assert_eq!(
            DatabaseUrl::parse("postgres://u:secret@h:5432/db").unwrap().redacted(),
            "postgres://u@h:5432/db"
        );
    }
}
