//! A mail writer's own connection, kept from one group to the next.
//!
//! Why: a connection taken from the pool for every group paid, before the group's first
//! write, the pool's check-out test (`SELECT 1`, a round trip on PostgreSQL: one per received
//! message, since PostgreSQL's groups hold one message) and, on SQLite, `synchronous` set to
//! `FULL` and read back, `wal_autocheckpoint` deferred, and both given back after the commit:
//! five statements for a group of one to four messages (docs/benchmarks.md, "The writer keeps
//! its connection"). Kept (`db::KeptConnection`), the connection is set up once. It is tested
//! again only after it sat idle, and it goes back to the pool, its settings restored, after a
//! group that failed, so a broken connection is never used for two groups.
//!
//! The settings hold because nothing else uses this connection: the writer's thread owns it,
//! and no code run inside a group changes `synchronous` (`with_durable_commits`, which does,
//! runs only on connections of their own, never nested in a group).

use crate::db::checkpoint::{DEFAULT_CHECKPOINT_PAGES, DEFERRED_CHECKPOINT_PAGES, set_autocheckpoint};
use crate::db::{self, AnyConnection, KeptConnection, Pool, Synchronous};

/// The connection of one writer thread; given back to the pool when dropped.
pub struct WriterConnection {
    kept: KeptConnection,
}

/// Why no connection could be had for a group.
#[derive(Debug)]
pub enum NoConnection {
    Pool(diesel::r2d2::PoolError),
    /// SQLite would not commit durably on it (`synchronous = FULL` did not take).
    NotDurable(diesel::result::Error),
}

impl std::fmt::Display for NoConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoConnection::Pool(e) => write!(f, "{e}"),
            NoConnection::NotDurable(e) => write!(f, "commits would not be durable: {e}"),
        }
    }
}

impl WriterConnection {
    pub fn new(pool: Pool) -> WriterConnection {
        WriterConnection {
            kept: KeptConnection::new(pool, "mail writer", restore_pool_settings),
        }
    }

    /// The connection for the next group: the kept one (tested first if it sat idle), else one
    /// from the pool, set up for the writer. On SQLite its commits are durable
    /// (`synchronous = FULL`, read back) and leave their checkpoints to the checkpoint thread
    /// (`db::checkpoint`).
    pub fn get(&mut self) -> Result<&mut AnyConnection, NoConnection> {
        self.kept.get(
            |conn| {
                if let AnyConnection::Sqlite(c) = conn {
                    // The pool's connection, still at NORMAL, goes back to it unchanged.
                    db::set_synchronous(c, Synchronous::Full).map_err(NoConnection::NotDurable)?;
                }
                set_autocheckpoint(conn, DEFERRED_CHECKPOINT_PAGES);
                Ok(())
            },
            NoConnection::Pool,
        )
    }

    /// A group was written on the kept connection and committed: it stays.
    pub fn succeeded(&mut self) {
        self.kept.succeeded();
    }

    /// A group failed on the kept connection: it goes back to the pool, its settings restored,
    /// and the next group takes another.
    pub fn failed(&mut self) {
        self.kept.failed();
    }
}

/// The pool's settings again, for a connection the writer gives back.
fn restore_pool_settings(conn: &mut AnyConnection) {
    set_autocheckpoint(conn, DEFAULT_CHECKPOINT_PAGES);
    if let AnyConnection::Sqlite(c) = conn
        && let Err(e) = db::set_synchronous(c, Synchronous::Normal)
    {
        // Only slower commits follow from this; the pool keeps working.
        tracing::warn!(error = %e, "could not return the connection to synchronous=NORMAL");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `synchronous` and `wal_autocheckpoint`.
    fn read(conn: &mut AnyConnection) -> (i32, i32) {
        let AnyConnection::Sqlite(c) = conn else {
            unreachable!("an SQLite pool")
        };
        let level = db::synchronous_level(c).expect("a pragma reads");
        (level, crate::db::checkpoint::wal_autocheckpoint(conn))
    }

    fn pool_of_one(dir: &tempfile::TempDir) -> Pool {
        let url = db::DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("w.db").display())).expect("a url");
        db::open_pool(&url, 1).expect("a pool")
    }

    #[test]
    fn the_kept_connection_commits_durably_and_goes_back_to_the_pool_as_it_came() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let pool = pool_of_one(&dir);
        let mut writer = WriterConnection::new(pool.clone());
        let conn = writer.get().expect("a connection");
        let writing = (Synchronous::Full as i32, DEFERRED_CHECKPOINT_PAGES as i32);
        let pooled = (Synchronous::Normal as i32, DEFAULT_CHECKPOINT_PAGES as i32);
        assert_eq!(read(conn), writing);
        writer.succeeded();
        // Kept: the pool of one has nothing to lend meanwhile.
        assert!(
            pool.try_get().is_none(),
            "the writer keeps its connection between groups"
        );
        let again = writer.get().expect("the same connection");
        assert_eq!(read(again), writing);
        writer.failed();
        let mut returned = pool.try_get().expect("given back after a failed group");
        assert_eq!(read(&mut returned), pooled);
        drop(returned);
        writer.get().expect("another connection for the next group");
        drop(writer);
        let mut returned = pool.try_get().expect("given back when the writer stops");
        assert_eq!(read(&mut returned), pooled);
    }
}
