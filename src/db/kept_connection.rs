//! A pooled connection that a long-running worker keeps from one piece of work to the next.
//!
//! Why: every check-out from the pool tests the connection first (`SELECT 1`, a round trip on
//! PostgreSQL). The mail writer paid it for every group it wrote, and the mail sender twice
//! for every mail it sent (once to make its links, once to record the delivery): on
//! PostgreSQL a round trip per message each (docs/benchmarks.md, "The writer keeps its
//! connection" and "… the sender's connection"). Kept, a connection is tested again only after
//! it sat idle for [`IDLE_BEFORE_TEST`] (a PostgreSQL restart while no work came), or when its
//! keeper asks for it because it waited on something else (the sender, after each SMTP
//! exchange). A keeper gives it back to the pool after any failure, so a broken connection is
//! never used for two pieces of work, and the pool's own test sorts it out.

use super::{AnyConnection, Pool, PooledConnection, ping};
use std::time::{Duration, Instant};

/// A kept connection idle this long is tested before it is used again.
pub const IDLE_BEFORE_TEST: Duration = Duration::from_secs(1);

struct Held {
    conn: PooledConnection,
    last_used: Instant,
    /// Tested before its next use whatever `last_used` says
    /// ([`KeptConnection::test_before_next_use`]).
    test_due: bool,
}

/// One worker's connection; given back to the pool when dropped.
pub struct KeptConnection {
    pool: Pool,
    held: Option<Held>,
    /// Undoes, before the connection goes back to the pool, what the keeper set up on it.
    tear_down: fn(&mut AnyConnection),
    /// Names the keeper in the log.
    keeper: &'static str,
}

impl KeptConnection {
    pub fn new(pool: Pool, keeper: &'static str, tear_down: fn(&mut AnyConnection)) -> KeptConnection {
        KeptConnection {
            pool,
            held: None,
            tear_down,
            keeper,
        }
    }

    /// The kept connection (tested first if it sat idle for [`IDLE_BEFORE_TEST`]), else one
    /// from the pool, on which `set_up` runs first: if that fails, the connection goes back
    /// as it came.
    pub fn get<E>(
        &mut self,
        set_up: impl FnOnce(&mut AnyConnection) -> Result<(), E>,
        no_connection: impl FnOnce(diesel::r2d2::PoolError) -> E,
    ) -> Result<&mut AnyConnection, E> {
        if let Some(held) = &mut self.held
            && (held.test_due || held.last_used.elapsed() >= IDLE_BEFORE_TEST)
        {
            if ping(&mut held.conn) {
                held.test_due = false;
            } else {
                tracing::info!(
                    keeper = self.keeper,
                    "a kept connection failed its test; taking another"
                );
                self.give_back();
            }
        }
        if self.held.is_none() {
            let mut conn = self.pool.get().map_err(no_connection)?;
            set_up(&mut conn)?;
            self.held = Some(Held {
                conn,
                last_used: Instant::now(),
                test_due: false,
            });
        }
        let held = self.held.as_mut().expect("a connection was just kept");
        Ok(&mut held.conn)
    }

    /// The work on the kept connection went well: it stays, counted as busy from now.
    pub fn succeeded(&mut self) {
        if let Some(held) = &mut self.held {
            held.last_used = Instant::now();
        }
    }

    /// The work on the kept connection failed: it goes back to the pool (whose check-out test
    /// or `has_broken` sorts out a broken one), and the next piece of work takes another.
    pub fn failed(&mut self) {
        self.give_back();
    }

    fn give_back(&mut self) {
        if let Some(mut held) = self.held.take() {
            (self.tear_down)(&mut held.conn);
        }
    }

    /// The kept connection is tested before its next use, however recently it was used: the
    /// keeper waited on something else (the mail sender on an SMTP exchange) and a failure of
    /// its next step would cost more than a round trip.
    pub fn test_before_next_use(&mut self) {
        if let Some(held) = &mut self.held {
            held.test_due = true;
        }
    }
}

impl Drop for KeptConnection {
    fn drop(&mut self) {
        self.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::{Connection, InstrumentationEvent};
    use std::sync::{Arc, Mutex};

    fn pool_of_one(dir: &tempfile::TempDir) -> Pool {
        let url = super::super::DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("k.db").display()))
            .expect("a url");
        super::super::open_pool(&url, 1).expect("a pool")
    }

    fn no_pool(e: diesel::r2d2::PoolError) -> String {
        e.to_string()
    }

    #[test]
    fn a_kept_connection_is_tested_after_sitting_idle_or_when_its_keeper_asks() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut kept = KeptConnection::new(pool_of_one(&dir), "test", |_| {});
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let conn = kept.get(|_| Ok(()), no_pool).expect("a connection");
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                record.lock().expect("not poisoned").push(query.to_string());
            }
        });
        kept.succeeded();
        kept.get(|_| Ok(()), no_pool).expect("kept, not idle");
        assert!(
            seen.lock().expect("not poisoned").is_empty(),
            "a busy connection is not tested"
        );
        kept.held.as_mut().expect("kept").last_used = Instant::now()
            .checked_sub(IDLE_BEFORE_TEST)
            .expect("the clock has run for a second");
        kept.get(|_| Ok(()), no_pool).expect("kept after its test");
        kept.succeeded();
        kept.get(|_| Ok(()), no_pool).expect("kept, busy again");
        kept.test_before_next_use();
        kept.get(|_| Ok(()), no_pool)
            .expect("kept after the test its keeper asked for");
        kept.get(|_| Ok(()), no_pool).expect("kept, tested once");
        let tests = seen.lock().expect("not poisoned").clone();
        assert_eq!(tests.len(), 2, "one test after sitting idle, one asked for: {tests:?}");
        assert!(tests.iter().all(|t| t.contains("SELECT 1")), "{tests:?}");
    }

    #[test]
    fn a_connection_is_set_up_once_kept_and_torn_down_when_given_back() {
        static TORN_DOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = tempfile::tempdir().expect("a temporary folder");
        let pool = pool_of_one(&dir);
        let mut kept = KeptConnection::new(pool.clone(), "test", |_| {
            TORN_DOWN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let mut set_ups = 0;
        for _ in 0..3 {
            kept.get(
                |_| {
                    set_ups += 1;
                    Ok::<(), String>(())
                },
                no_pool,
            )
            .expect("a connection");
            kept.succeeded();
        }
        assert_eq!(set_ups, 1, "set up once, then kept");
        assert!(
            pool.try_get().is_none(),
            "the pool of one has nothing to lend meanwhile"
        );
        kept.failed();
        assert_eq!(TORN_DOWN.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(pool.try_get().is_some(), "given back after a failure");
        let refused = kept.get(|_| Err("no".to_string()), no_pool);
        assert_eq!(refused.err().as_deref(), Some("no"));
        assert!(pool.try_get().is_some(), "a connection whose set-up failed goes back");
        drop(kept);
        assert_eq!(
            TORN_DOWN.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "nothing held, nothing torn down"
        );
    }
}
