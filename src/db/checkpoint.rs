//! WAL checkpoints on a thread of their own, for `serve` on SQLite.
//!
//! Why: SQLite copies the WAL back into the database file (a checkpoint) inside the commit
//! that finds the WAL past 1,000 pages, on the committing thread. In `serve` that thread is
//! most often the mail writer, so every few dozen groups one group's callers waited for a
//! copy of 4 MB and two `fsync`s: 9 % of the writer's time under the webhook at 4 clients,
//! and its slowest answers (docs/benchmarks.md, "Checkpoints off the mail writer"). Here the
//! writer defers its own checkpoints and nudges [`Checkpointer`], whose thread checkpoints on
//! its own connection at most ten times a second while mail arrives.
//!
//! A checkpoint changes nothing a reader sees and nothing a commit promised: the WAL is
//! synced before its pages are copied and the database file after (SQLite's own order, at
//! `synchronous = NORMAL` as at `FULL`).

use super::{AnyConnection, DatabaseUrl, open_single};

/// The same beside `import-maildir`'s writer, which waits for it every few batches.
mod batch;
pub use batch::{BATCH_CHECKPOINT_THREAD, BatchCheckpointer};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use std::sync::mpsc;
use std::time::Duration;

/// Pages the WAL may reach before a deferring connection checkpoints after all, itself: the
/// safety net for a checkpoint thread that is missing, failing or slower than the writer.
/// SQLite's default is 1,000 pages (4 MB).
pub const DEFERRED_CHECKPOINT_PAGES: u32 = 10_000;

/// SQLite's default, given back to a pooled connection after it deferred.
pub(crate) const DEFAULT_CHECKPOINT_PAGES: u32 = 1_000;

/// The least time between two checkpoints: commits in between share the next one.
const PAUSE: Duration = Duration::from_millis(100);

/// The longest wait before a checkpoint that could not copy everything (a reader still used
/// old pages) or failed is tried again without a new nudge.
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// A handle that asks the checkpoint thread for a checkpoint soon. The thread stops when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    nudge: mpsc::SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread with its own connection to `url`; `None` on PostgreSQL, which
    /// checkpoints by itself.
    pub fn spawn(url: &DatabaseUrl) -> std::io::Result<Option<Checkpointer>> {
        if !url.is_sqlite() {
            return Ok(None);
        }
        // One waiting nudge is enough: every commit before it is in the WAL already.
        let (nudge, nudges) = mpsc::sync_channel::<()>(1);
        let url = url.clone();
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || run(&url, &nudges))?;
        Ok(Some(Checkpointer { nudge }))
    }

    /// A commit was made: checkpoint soon. Never waits.
    pub fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }
}

fn run(url: &DatabaseUrl, nudges: &mpsc::Receiver<()>) {
    let mut conn = None;
    // After an incomplete or failed checkpoint, the wait before the next try (doubling up to
    // LONGEST_RETRY), and whether the failure was already told: one warning per streak.
    let mut retry: Option<Duration> = None;
    let mut warned = false;
    loop {
        let woken = match retry {
            None => nudges.recv().map_err(|_| ()),
            Some(wait) => match nudges.recv_timeout(wait) {
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
                _ => Ok(()),
            },
        };
        if woken.is_err() {
            return;
        }
        if conn.is_none() {
            conn = open_single(url, false).map_err(|e| e.to_string()).map_or_else(
                |e| {
                    if !warned {
                        tracing::warn!(error = %e, "no connection for WAL checkpoints; commits checkpoint later themselves");
                        warned = true;
                    }
                    None
                },
                Some,
            );
        }
        let done = conn.as_mut().map(checkpoint);
        match done {
            Some(Ok(true)) => {
                retry = None;
                warned = false;
            }
            Some(Ok(false)) => retry = Some(next_retry(retry)),
            Some(Err(e)) => {
                if !warned {
                    tracing::warn!(error = %e, "a WAL checkpoint failed; trying again later");
                    warned = true;
                }
                conn = None;
                retry = Some(next_retry(retry));
            }
            None => retry = Some(next_retry(retry)),
        }
        std::thread::sleep(PAUSE);
    }
}

fn next_retry(previous: Option<Duration>) -> Duration {
    previous.map_or(PAUSE, |wait| (wait * 2).min(LONGEST_RETRY))
}

/// Copies what the WAL holds back into the database file, as far as no reader needs the old
/// pages; never waits for a reader or a writer. True when all of it was copied.
pub fn checkpoint(conn: &mut AnyConnection) -> diesel::QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Done {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        log: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        checkpointed: i32,
    }
    let done: Done = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)?;
    tracing::debug!(
        busy = done.busy,
        wal_pages = done.log,
        copied = done.checkpointed,
        "WAL checkpoint"
    );
    Ok(done.busy == 0 && done.checkpointed >= done.log)
}

/// Sets how many WAL pages this connection's commits let pass before they checkpoint
/// themselves: [`DEFERRED_CHECKPOINT_PAGES`] on the mail writer's connection, which leaves its
/// checkpoints to a [`Checkpointer`]; [`DEFAULT_CHECKPOINT_PAGES`] given back before the
/// connection returns to the pool (`services::group_commit`). Nothing to do on PostgreSQL.
pub(crate) fn set_autocheckpoint(conn: &mut AnyConnection, pages: u32) {
    if let AnyConnection::Sqlite(c) = conn
        && let Err(e) = c.batch_execute(&format!("PRAGMA wal_autocheckpoint = {pages};"))
    {
        // Only where the checkpoint runs follows from this, never what is stored.
        tracing::warn!(error = %e, pages, "could not set wal_autocheckpoint");
    }
}

/// How many WAL pages this connection's commits let pass before they checkpoint (tests).
#[cfg(test)]
pub(crate) fn wal_autocheckpoint(conn: &mut AnyConnection) -> i32 {
    #[derive(diesel::QueryableByName)]
    struct Pages {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        wal_autocheckpoint: i32,
    }
    diesel::sql_query("PRAGMA wal_autocheckpoint")
        .get_result::<Pages>(conn)
        .expect("read")
        .wal_autocheckpoint
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many WAL frames there are and how many are copied into the database file, from
    /// the WAL index SQLite shares between connections (the `-shm` file: `mxFrame` at byte
    /// 16, `nBackfill` at byte 96, in the machine's byte order).
    fn wal_frames(db: &std::path::Path) -> (u32, u32) {
        let shm = std::fs::read(format!("{}-shm", db.display())).expect("the WAL index");
        let at = |offset: usize| u32::from_ne_bytes(shm[offset..offset + 4].try_into().expect("four bytes"));
        (at(16), at(96))
    }

    /// Waits (20 s at most, then fails saying `what`) until `frames` WAL frames are copied.
    fn wait_until_copied(db: &std::path::Path, frames: u32, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while wal_frames(db).1 < frames {
            assert!(std::time::Instant::now() < deadline, "{what}: {:?}", wal_frames(db));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An SQLite file (no migrations) and a pooled connection that defers its checkpoints.
    fn deferring_writer(dir: &tempfile::TempDir) -> (std::path::PathBuf, DatabaseUrl, super::super::PooledConnection) {
        let path = dir.path().join("desk.db");
        let url = DatabaseUrl::Sqlite(path.clone());
        let pool = super::super::open_pool(&url, 2).expect("pool");
        let mut conn = pool.get().expect("connection");
        set_autocheckpoint(&mut conn, DEFERRED_CHECKPOINT_PAGES);
        assert_eq!(wal_autocheckpoint(&mut conn), DEFERRED_CHECKPOINT_PAGES as i32);
        (path, url, conn)
    }

    #[test]
    fn a_nudge_copies_the_wal_the_deferring_connection_left_into_the_database_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (path, url, mut conn) = deferring_writer(&dir);
        conn.batch_execute(
            "CREATE TABLE t (x TEXT); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) \
             INSERT INTO t SELECT randomblob(3000) FROM n;",
        )
        .expect("written");
        let (frames, copied) = wal_frames(&path);
        assert!(frames > 1_000, "past SQLite's own threshold: {frames}");
        assert_eq!(copied, 0, "the writing connection did not checkpoint");

        let checkpointer = Checkpointer::spawn(&url).expect("thread").expect("SQLite has one");
        checkpointer.nudge();
        wait_until_copied(&path, frames, "no checkpoint");
        assert_eq!(wal_frames(&path), (frames, frames));
    }

    #[test]
    fn a_checkpoint_a_reader_held_back_is_finished_without_another_nudge() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (path, url, mut writer) = deferring_writer(&dir);
        let insert = |conn: &mut AnyConnection| {
            conn.batch_execute(
                "CREATE TABLE IF NOT EXISTS t (x TEXT); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 INSERT INTO t SELECT randomblob(3000) FROM n;",
            )
            .expect("written")
        };
        insert(&mut writer);
        let (before_reader, _) = wal_frames(&path);
        // A reader's snapshot keeps the pages written after it from being copied.
        let mut reader = open_single(&url, false).expect("reader");
        reader.batch_execute("BEGIN; SELECT count(*) FROM t;").expect("read");
        insert(&mut writer);
        let (frames, _) = wal_frames(&path);
        assert!(frames > before_reader);

        let checkpointer = Checkpointer::spawn(&url).expect("thread").expect("SQLite has one");
        checkpointer.nudge();
        wait_until_copied(&path, before_reader, "no checkpoint");
        assert!(wal_frames(&path).1 < frames, "the reader held the rest back");
        reader.batch_execute("COMMIT;").expect("reader done");
        // No nudge: the thread tries again by itself.
        wait_until_copied(&path, frames, "not finished");
    }

    #[test]
    fn postgres_has_no_checkpoint_thread() {
        let url = DatabaseUrl::Postgres("postgres://nobody@127.0.0.1:1/none".into());
        assert!(Checkpointer::spawn(&url).expect("nothing to start").is_none());
    }
}
