//! The only place that knows diesel and the differences between SQLite and PostgreSQL.

/// Runs `$body` with `$c` bound to the backend's own connection instead of `AnyConnection`.
/// Why: the derived `AnyConnection` writes out a query's whole SQL text at every execution,
/// twice (to bind it, and to ask whether it may be kept prepared): 14 % of the import writer's
/// instructions (docs/benchmarks.md). The backend's own connection keeps the prepared statement
/// by the query's type and writes nothing out. For the statements every message runs; the
/// query must be generic over the backend (any DSL query not built for `MultiBackend`).
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($c) => $body,
            $crate::db::AnyConnection::Postgresql($c) => $body,
        }
    };
}

/// Inserts one row with `$insert` (built with `$c`, the backend's own connection, as in
/// [`on_backend!`]) and returns its `id`, `$id` on PostgreSQL (`RETURNING`).
///
/// Why not `RETURNING` on SQLite too: SQLite runs such an insert to its end, keeps its answer
/// in a temporary B-tree and then reads it back, at every insert (docs/benchmarks.md, "What an
/// insert's RETURNING costs"). The id is the rowid (every table this is used on has an `INTEGER
/// PRIMARY KEY`), which `last_insert_rowid()` gives on the same connection right after; an
/// insert made by a trigger does not change it once the trigger is done. A plain insert adds
/// exactly one row; anything else is an error, never an older id.
macro_rules! insert_returning_id {
    ($conn:expr, $id:expr, |$c:ident| $insert:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($c) => {
                diesel::RunQueryDsl::execute($insert, &mut *$c).and_then(|rows| $crate::db::inserted_rowid(rows, $c))
            }
            $crate::db::AnyConnection::Postgresql($c) => diesel::RunQueryDsl::get_result($insert.returning($id), $c),
        }
    };
}

diesel::define_sql_function! {
    /// SQLite's rowid of the last row this connection inserted.
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

/// The rowid of the row an insert that touched `rows` rows just added on `conn`: an error
/// unless it added exactly one (`insert_returning_id!`).
pub(crate) fn inserted_rowid(rows: usize, conn: &mut diesel::SqliteConnection) -> QueryResult<i64> {
    if rows != 1 {
        return Err(diesel::result::Error::NotFound);
    }
    diesel::select(last_insert_rowid()).get_result(conn)
}

pub mod accounts;
pub mod activity;
pub mod agents;
pub mod api_requests;
pub mod approvals;
pub mod audit;
pub mod auth_events;
pub mod backup;
pub mod canned;
pub mod checkpoint;
pub mod console;
pub mod erase;
pub mod imap;
pub mod inbound;
mod kept;
mod kept_connection;
pub mod locks;
mod memo;
mod open;
pub mod outbox;
mod rows;
pub mod schema;
pub mod search;
pub mod settings;
pub mod submissions;
mod ticket_filter;
pub mod tickets;
mod transaction;
mod wal_buffer;
pub mod words;

pub use kept_connection::{IDLE_BEFORE_TEST, KeptConnection};
pub use open::{
    DatabaseUrl, Manager, SqliteFileError, Synchronous, check_sqlite_file, enable_wal, open_pool, open_single,
    set_synchronous, synchronous_level,
};
pub use transaction::{Transient, WRITE_ATTEMPTS, in_transaction, with_durable_commits, write_transaction};

use chrono::{NaiveDateTime, SubsecRound};
use diesel::prelude::*;
use diesel::r2d2;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

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

/// Ids bound in one statement at most when a list may be long: SQLite refuses more than
/// 32,766 variables in one statement.
pub const MAX_BOUND_IDS: usize = 10_000;

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
    use diesel::connection::SimpleConnection;

    fn table_with_a_trigger() -> diesel::SqliteConnection {
        let mut conn = diesel::SqliteConnection::establish(":memory:").expect("in memory");
        conn.batch_execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT UNIQUE); \
             CREATE TABLE side (id INTEGER PRIMARY KEY, y TEXT); \
             INSERT INTO side (id, y) VALUES (1000, 'far ahead'); \
             CREATE TRIGGER t_side AFTER INSERT ON t BEGIN INSERT INTO side (y) VALUES (NEW.x); END;",
        )
        .expect("schema");
        conn
    }

    #[test]
    fn the_id_of_an_insert_is_its_own_row_not_what_its_trigger_inserted() {
        let mut conn = table_with_a_trigger();
        for (x, expected) in [("a", 1), ("b", 2)] {
            let rows = diesel::sql_query("INSERT INTO t (x) VALUES (?)")
                .bind::<diesel::sql_types::Text, _>(x)
                .execute(&mut conn)
                .expect("inserted");
            assert_eq!(inserted_rowid(rows, &mut conn).expect("one row"), expected);
        }
    }

    #[test]
    fn an_insert_that_added_nothing_has_no_id_not_an_older_one() {
        let mut conn = table_with_a_trigger();
        let insert = |conn: &mut diesel::SqliteConnection| {
            diesel::sql_query("INSERT OR IGNORE INTO t (x) VALUES ('same')")
                .execute(conn)
                .expect("ran")
        };
        let first = insert(&mut conn);
        assert_eq!(inserted_rowid(first, &mut conn).expect("added"), 1);
        let again = insert(&mut conn);
        assert_eq!(again, 0);
        assert!(matches!(
            inserted_rowid(again, &mut conn),
            Err(diesel::result::Error::NotFound)
        ));
    }
}
