//! The only place that knows diesel and the differences between SQLite and PostgreSQL.

pub mod accounts;
pub mod agents;
pub mod api_requests;
pub mod auth_events;
pub mod console;
pub mod inbound;
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

/// Run `f` in one write transaction. On SQLite it starts with `BEGIN IMMEDIATE` so that two
/// writers queue on the busy timeout instead of failing when a read lock is upgraded.
pub fn write_transaction<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
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
            Ok(value) => {
                AnsiTransactionManager::commit_transaction(c)?;
                Ok(value)
            }
            Err(e) => {
                AnsiTransactionManager::rollback_transaction(c)?;
                Err(e)
            }
        }
    } else {
        conn.transaction(f)
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
