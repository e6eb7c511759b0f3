//! Checkpoints beside a bulk writer (`import-maildir` on SQLite): a thread of their own copies
//! the WAL into the database file while the writer writes its next batches, and every few
//! batches the writer waits until everything it committed is copied.
//!
//! Why the wait: SQLite starts the WAL again from its beginning only when a writer's
//! transaction begins with every frame already copied. A writer that never waits never finds
//! it so, and the WAL grew past the database's own size (345 MiB for 10,000 messages). Waiting
//! every few batches keeps it as small as when the writer checkpointed itself (39 MiB), and
//! the wait is short: the thread has copied the earlier batches meanwhile, so only the last
//! one and the two `fsync`s are left. With the import's parsing threads nicer than its writer
//! (`crate::priority`), the writer's CPU per message fell by a sixth and a rich corpus
//! imported about 9 % faster (docs/benchmarks.md, "The import's checkpoints beside its
//! writer, the writer first"). Tried before the parsing threads were nicer, it gained
//! nothing: the cores were then shared evenly, whichever thread did the copying.
//!
//! Like every checkpoint, it changes nothing a reader sees and nothing a commit promised.

use super::super::{AnyConnection, DatabaseUrl, open_single};
use super::checkpoint;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The name of the checkpointing thread (`top -H`).
pub const BATCH_CHECKPOINT_THREAD: &str = "import-ckpt";

/// The writer's handle on the checkpointing thread. Commits are numbered by the writer, in
/// increasing order.
pub struct BatchCheckpointer {
    requests: mpsc::SyncSender<u64>,
    done: mpsc::Receiver<(u64, bool)>,
    thread: JoinHandle<()>,
}

impl BatchCheckpointer {
    /// Starts the thread with its own connection to `url`; `None` on PostgreSQL, which
    /// checkpoints by itself.
    pub fn spawn(url: &DatabaseUrl) -> std::io::Result<Option<BatchCheckpointer>> {
        if !url.is_sqlite() {
            return Ok(None);
        }
        // A few waiting requests at most: one checkpoint serves every commit before it.
        let (requests, to_copy) = mpsc::sync_channel::<u64>(8);
        let (copied, done) = mpsc::channel::<(u64, bool)>();
        let url = url.clone();
        let thread = std::thread::Builder::new()
            .name(BATCH_CHECKPOINT_THREAD.into())
            .spawn(move || run(&url, &to_copy, &copied))?;
        Ok(Some(BatchCheckpointer { requests, done, thread }))
    }

    /// Commit `commit` is made: copy it soon. Never waits.
    pub fn nudge(&self, commit: u64) {
        let _ = self.requests.try_send(commit);
    }

    /// Waits until a checkpoint begun after commit `commit` has ended. True when it copied
    /// the whole WAL; false when it could not (a reader still used older pages, it failed, or
    /// the thread is gone): the caller then checkpoints itself.
    pub fn copied_through(&self, commit: u64) -> bool {
        if self.requests.send(commit).is_err() {
            return false;
        }
        while let Ok((through, whole)) = self.done.recv() {
            if through >= commit {
                return whole;
            }
        }
        false
    }

    /// Stops the thread and waits for it, so that its connection is closed and no checkpoint
    /// of its own runs beside the caller's last one.
    pub fn finish(self) {
        drop(self.requests);
        if self.thread.join().is_err() {
            tracing::warn!("the import's checkpoint thread panicked");
        }
    }
}

fn run(url: &DatabaseUrl, to_copy: &mpsc::Receiver<u64>, copied: &mpsc::Sender<(u64, bool)>) {
    let mut conn: Option<AnyConnection> = None;
    // One warning per import: the writer checkpoints itself meanwhile, so nothing is lost.
    let mut warned = false;
    let mut warn_once = |what: &str, e: &dyn std::fmt::Display| {
        if !std::mem::replace(&mut warned, true) {
            tracing::warn!(error = %e, "{what}; the import's writer checkpoints itself");
        }
    };
    while let Ok(mut through) = to_copy.recv() {
        // The latest commit asked for: one checkpoint copies every one before it too.
        while let Ok(later) = to_copy.try_recv() {
            through = through.max(later);
        }
        if conn.is_none() {
            conn = open_single(url, false)
                .map_err(|e| warn_once("no connection for the import's checkpoints", &e))
                .ok();
        }
        let whole = match conn.as_mut().map(checkpoint) {
            Some(Ok(whole)) => whole,
            Some(Err(e)) => {
                warn_once("an import checkpoint failed", &e);
                conn = None;
                false
            }
            None => false,
        };
        if copied.send((through, whole)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;

    /// A connection to a new database file in WAL mode, which checkpoints only when asked
    /// (as the import's writer).
    fn wal_writer(url: &DatabaseUrl) -> AnyConnection {
        let mut writer = open_single(url, false).expect("writer");
        writer
            .batch_execute("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
            .expect("WAL, no checkpoints of its own");
        writer
    }

    /// A batch of about 100 pages, committed on `writer`.
    fn write_batch(writer: &mut AnyConnection) {
        writer
            .batch_execute(
                "BEGIN; CREATE TABLE IF NOT EXISTS t (x BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
                 INSERT INTO t SELECT randomblob(3000) FROM n; COMMIT;",
            )
            .expect("a batch");
    }

    #[test]
    fn the_wal_stays_as_small_as_a_few_batches_and_everything_reaches_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("import.db");
        let url = DatabaseUrl::Sqlite(path.clone());
        let mut writer = wal_writer(&url);
        let wal = |p: &std::path::Path| std::fs::metadata(format!("{}-wal", p.display())).map_or(0, |m| m.len());
        let checkpointer = BatchCheckpointer::spawn(&url).expect("thread").expect("SQLite has one");
        let mut largest = 0;
        for commit in 1..=24u64 {
            write_batch(&mut writer);
            if commit % 4 == 0 {
                assert!(checkpointer.copied_through(commit), "commit {commit} copied whole");
            } else {
                checkpointer.nudge(commit);
            }
            largest = largest.max(wal(&path));
        }
        checkpointer.finish();
        // Six times four batches of about 100 pages of 4 KiB: without the waits the WAL holds
        // all 24 (about 10 MB); with them it starts again after every fourth.
        assert!(largest > 100 * 4096, "a batch went through the WAL: {largest} bytes");
        assert!(largest < 6 * 100 * 4096, "the WAL reached {largest} bytes");
        let rows: i64 = {
            #[derive(diesel::QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let mut reader = open_single(&url, false).expect("reader");
            diesel::RunQueryDsl::get_result::<Count>(diesel::sql_query("SELECT count(*) AS n FROM t"), &mut reader)
                .expect("count")
                .n
        };
        assert_eq!(rows, 2400);
    }

    #[test]
    fn a_reader_holding_old_pages_makes_the_wait_say_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite(dir.path().join("import.db"));
        let mut writer = wal_writer(&url);
        write_batch(&mut writer);
        let mut reader = open_single(&url, false).expect("reader");
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM t;")
            .expect("a snapshot");
        write_batch(&mut writer);
        let checkpointer = BatchCheckpointer::spawn(&url).expect("thread").expect("SQLite has one");
        assert!(
            !checkpointer.copied_through(2),
            "the reader's snapshot holds the second batch back"
        );
        reader.batch_execute("COMMIT;").expect("reader done");
        assert!(checkpointer.copied_through(2));
        checkpointer.finish();
    }

    #[test]
    fn a_thread_without_a_connection_answers_not_whole_and_stops() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite(dir.path().join("no such folder").join("import.db"));
        let checkpointer = BatchCheckpointer::spawn(&url).expect("thread").expect("SQLite has one");
        checkpointer.nudge(1);
        assert!(!checkpointer.copied_through(2), "nothing could be copied");
        assert!(!checkpointer.copied_through(3), "and it still answers");
        checkpointer.finish();
    }

    #[test]
    fn postgres_has_no_checkpoint_thread() {
        let url = DatabaseUrl::Postgres("postgres://nobody@127.0.0.1:1/none".into());
        assert!(BatchCheckpointer::spawn(&url).expect("nothing to start").is_none());
    }
}
