//! Write transactions: `BEGIN IMMEDIATE` on SQLite, retries of transient failures, and
//! durable commits where a message is acknowledged to its sender.

use super::open::{Synchronous, set_synchronous};
use super::{AnyConnection, DbError};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;
use std::time::Duration;

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
        // A savepoint: what it learns is kept only if it is released (`memo`).
        let memo = super::memo::Frame::begin(conn);
        let outcome = conn.transaction(f);
        if outcome.is_ok() {
            memo.release();
        }
        return outcome;
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
        // What the transaction learns of its locks and chains, forgotten at its end.
        let _memo = super::memo::Frame::begin(conn);
        let deferred = super::search::Deferred::begin(conn);
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
    if let AnyConnection::Sqlite(c) = conn {
        set_synchronous(c, Synchronous::Full)?;
    }
    let result = f(conn);
    if let AnyConnection::Sqlite(c) = conn
        && let Err(e) = set_synchronous(c, Synchronous::Normal)
    {
        // Only slower commits follow from this; the pool keeps working.
        tracing::warn!(error = %e, "could not return the connection to synchronous=NORMAL");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;
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
        let pool = super::super::open_pool(&super::super::DatabaseUrl::Sqlite(dir.path().join("t.db")), 1).unwrap();
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
    fn durable_commits_are_checked_and_refused_where_sqlite_cannot_give_them() {
        let dir = tempfile::tempdir().unwrap();
        let pool = super::super::open_pool(&super::super::DatabaseUrl::Sqlite(dir.path().join("d.db")), 1).unwrap();
        let mut conn = pool.get().unwrap();
        let level = |c: &mut AnyConnection| match c {
            AnyConnection::Sqlite(s) => super::super::synchronous_level(s).unwrap(),
            AnyConnection::Postgresql(_) => unreachable!("an SQLite pool"),
        };
        assert_eq!(level(&mut conn), 1, "pooled connections commit with NORMAL");
        let inside = with_durable_commits(&mut conn, |c| Ok::<_, Error>(level(c))).unwrap();
        assert_eq!(inside, 2, "FULL while the acknowledged write runs");
        assert_eq!(level(&mut conn), 1, "and NORMAL again after it");

        // Inside a transaction SQLite refuses to change the level: nothing runs, and the
        // caller hears why instead of acknowledging a commit that may not survive a power cut.
        let mut ran = false;
        let outcome: Result<(), Error> = conn.transaction(|c| {
            with_durable_commits(c, |_| {
                ran = true;
                Ok(())
            })
        });
        assert!(outcome.unwrap_err().to_string().contains("transaction"));
        assert!(!ran);
    }

    #[test]
    fn a_journal_that_cannot_be_wal_is_an_error() {
        // An in-memory database keeps its journal in memory whatever is asked.
        let mut memory = SqliteConnection::establish(":memory:").unwrap();
        let message = super::super::enable_wal(&mut memory).unwrap_err().to_string();
        assert!(message.contains("journal_mode = WAL did not take"), "{message}");
        assert!(message.contains("memory"), "{message}");
        memory.batch_execute("SELECT 1").unwrap();
    }
}
