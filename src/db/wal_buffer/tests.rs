//! The WAL-gathering VFS against real SQLite files: what reaches the file, when, and what
//! other connections read.

use super::{LOG_WRITES, syncs_at_level};
use crate::db::open::open_single;
use crate::db::{AnyConnection, DatabaseUrl};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;

fn sqlite(conn: &mut AnyConnection) -> &mut diesel::SqliteConnection {
    match conn {
        AnyConnection::Sqlite(c) => c,
        AnyConnection::Postgresql(_) => unreachable!("an SQLite file"),
    }
}

/// A WAL-mode file with a table, and a connection that syncs every commit (`durable`) or not.
fn database(dir: &tempfile::TempDir) -> DatabaseUrl {
    let url = DatabaseUrl::Sqlite(dir.path().join("wal.db"));
    let mut conn = open_single(&url, false).expect("open");
    sqlite(&mut conn)
        .batch_execute("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, pad TEXT);")
        .expect("schema");
    url
}

/// SQLite's writes to a log on this thread, and those that reached the file, during `work`.
fn log_writes(work: impl FnOnce()) -> (u64, u64) {
    LOG_WRITES.with(|c| c.set((0, 0)));
    work();
    LOG_WRITES.with(std::cell::Cell::get)
}

/// A transaction of `rows` rows of about 1 KB each, numbered from `from`.
fn insert(conn: &mut AnyConnection, from: i64, rows: i64) {
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for n in from..from + rows {
        sql.push_str(&format!("INSERT INTO t (n, pad) VALUES ({n}, printf('%.1000c', 'x'));"));
    }
    sql.push_str("COMMIT;");
    sqlite(conn).batch_execute(&sql).expect("insert");
}

#[derive(diesel::QueryableByName, Debug, PartialEq, Eq)]
struct Tally {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}

fn tally(conn: &mut AnyConnection) -> Tally {
    diesel::sql_query("SELECT count(*) AS rows, coalesce(sum(n), 0) AS total FROM t")
        .get_result(sqlite(conn))
        .expect("tally")
}

/// A new connection reads a sound file holding rows 0 to `rows - 1`, nothing else.
fn assert_holds_rows(url: &DatabaseUrl, rows: i64) {
    let mut reader = open_single(url, false).expect("reader");
    assert_eq!(integrity(&mut reader), ["ok"]);
    assert_eq!(
        tally(&mut reader),
        Tally {
            rows,
            total: (rows - 1) * rows / 2
        }
    );
}

#[test]
fn a_connection_that_syncs_its_commits_writes_each_one_in_one_piece() {
    let dir = tempfile::tempdir().expect("dir");
    let url = database(&dir);
    let mut writer = open_single(&url, true).expect("writer");
    // The first commit also writes the log's header, which SQLite syncs at once.
    let (_, written) = log_writes(|| insert(&mut writer, 0, 40));
    assert_eq!(written, 2);
    let (asked, written) = log_writes(|| insert(&mut writer, 40, 40));
    // Forty rows of 1 KB fill some ten pages, and two writes each (header, page).
    assert!(asked >= 20, "{asked} writes asked");
    assert_eq!(written, 1, "{asked} writes asked, {written} reached the file");
    // Another connection reads what was committed.
    let mut reader = open_single(&url, false).expect("reader");
    assert_eq!(tally(&mut reader).rows, 80);
}

#[test]
fn a_connection_that_does_not_sync_writes_through() {
    let dir = tempfile::tempdir().expect("dir");
    let url = database(&dir);
    let mut normal = open_single(&url, false).expect("normal");
    let (asked, written) = log_writes(|| insert(&mut normal, 0, 40));
    assert!(asked >= 20);
    assert_eq!(written, asked);
    // The level can change both ways on one connection.
    sqlite(&mut normal)
        .batch_execute("PRAGMA synchronous = FULL;")
        .expect("full");
    let (asked, written) = log_writes(|| insert(&mut normal, 40, 40));
    assert!(asked >= 20 && written <= 2, "{asked} asked, {written} written");
    sqlite(&mut normal)
        .batch_execute("PRAGMA synchronous = normal;")
        .expect("normal");
    let (asked, written) = log_writes(|| insert(&mut normal, 80, 40));
    assert_eq!(written, asked);
}

#[test]
fn a_commit_larger_than_the_buffer_goes_out_in_pieces_and_reads_back_whole() {
    let dir = tempfile::tempdir().expect("dir");
    let url = database(&dir);
    let mut writer = open_single(&url, true).expect("writer");
    // About 2 MB: sixteen or more buffers' worth.
    let (asked, written) = log_writes(|| insert(&mut writer, 0, 2000));
    assert!(
        written >= 16 && written * 20 < asked,
        "{asked} asked, {written} written"
    );
    assert_holds_rows(&url, 2000);
}

#[derive(diesel::QueryableByName)]
struct Check {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

/// A reader on another thread checks, all along, that it never sees a commit in part: each
/// commit adds ten rows whose numbers sum to a known total. Checkpoints copy the log into the
/// file meanwhile, and a rolled-back transaction leaves nothing.
#[test]
fn readers_see_every_commit_whole_while_it_is_written_and_checkpointed() {
    let dir = tempfile::tempdir().expect("dir");
    let url = database(&dir);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (url, done) = (url.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reader = open_single(&url, false).expect("reader");
            let mut seen = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let Tally { rows, total } = tally(&mut reader);
                assert_eq!(rows % 10, 0, "a commit seen in part: {rows} rows");
                assert_eq!(total, (rows - 1) * rows / 2, "rows seen with other contents");
                assert!(rows >= seen, "a commit went missing");
                seen = rows;
            }
            seen
        })
    };
    let mut writer = open_single(&url, true).expect("writer");
    for commit in 0..300 {
        insert(&mut writer, commit * 10, 10);
        if commit % 50 == 49 {
            sqlite(&mut writer)
                .batch_execute(
                    "BEGIN IMMEDIATE; INSERT INTO t (n) VALUES (-1); ROLLBACK; PRAGMA wal_checkpoint(PASSIVE);",
                )
                .expect("rollback and checkpoint");
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.join().expect("the reader's checks held");
    assert!(seen <= 3000);
    assert_holds_rows(&url, 3000);
}

/// SQLite refuses a new level inside a transaction, but the VFS saw the pragma first and
/// buffers: the commit, not synced, still reaches the file before it is published (the
/// barrier's write), and another connection reads it.
#[test]
fn a_level_refused_inside_a_transaction_still_shows_every_commit() {
    let dir = tempfile::tempdir().expect("dir");
    let url = database(&dir);
    let mut normal = open_single(&url, false).expect("normal");
    let refused = sqlite(&mut normal).batch_execute("BEGIN; PRAGMA synchronous = FULL;");
    assert!(refused.is_err(), "SQLite refuses it in a transaction");
    sqlite(&mut normal).batch_execute("ROLLBACK;").expect("rollback");
    let (asked, written) = log_writes(|| insert(&mut normal, 0, 40));
    assert!(written < asked, "buffered, as the VFS believes the level");
    let mut reader = open_single(&url, false).expect("reader");
    assert_eq!(tally(&mut reader).rows, 40);
    // The barrier found a commit that was not synced: from then on, the connection writes
    // through.
    let (asked, written) = log_writes(|| insert(&mut normal, 40, 40));
    assert_eq!(written, asked);
    assert_eq!(tally(&mut reader).rows, 80);
}

#[test]
fn full_and_extra_sync_every_commit() {
    for level in ["2", "3", "FULL", "full", "Extra"] {
        assert!(syncs_at_level(level.as_bytes()), "{level}");
    }
    // SQLite reads " 2" and " Extra " as its default; "22" it does sync, but not knowing it
    // only costs the gathering.
    for level in [
        "0", "1", "normal", "OFF", "yes", "on", "", "22", "fullish", " 2", " Extra ",
    ] {
        assert!(!syncs_at_level(level.as_bytes()), "{level}");
    }
}

/// With a cache of ten pages, a transaction of 300 KB writes pages to the log before its
/// end (a spill); it is then rolled back.
fn spill_and_roll_back(conn: &mut AnyConnection) {
    let rows: String = (1_000_000..1_000_300)
        .map(|n| format!("INSERT INTO t (n, pad) VALUES ({n}, printf('%.1000c', 'a'));"))
        .collect();
    sqlite(conn)
        .batch_execute(&format!("PRAGMA cache_size = 10; BEGIN IMMEDIATE;{rows}ROLLBACK;"))
        .expect("spill, then roll back");
}

fn integrity(conn: &mut AnyConnection) -> Vec<String> {
    diesel::sql_query("PRAGMA integrity_check")
        .load::<Check>(sqlite(conn))
        .expect("check")
        .into_iter()
        .map(|c| c.integrity_check)
        .collect()
}

/// A connection that syncs its commits spills part of a transaction into the log (a cache of
/// ten pages), rolls it back, and sits idle, as a pooled connection does. Another connection
/// commits frames at the same places. The first one's next read must not write the
/// rolled-back frames over them (found by a review: the database then failed its integrity
/// check).
#[test]
fn a_rolled_back_spill_is_never_written_over_another_connections_commit() {
    let dir = tempfile::tempdir().expect("dir");
    let url = database(&dir);
    let mut spiller = open_single(&url, true).expect("spiller");
    let mut committer = open_single(&url, true).expect("committer");
    for conn in [&mut spiller, &mut committer] {
        sqlite(conn)
            .batch_execute("PRAGMA wal_autocheckpoint = 0;")
            .expect("no checkpoints");
    }
    let (asked, written) = log_writes(|| spill_and_roll_back(&mut spiller));
    assert!(
        asked > written,
        "the spill was buffered: {asked} asked, {written} written"
    );
    insert(&mut committer, 0, 300);
    let (_, written) = log_writes(|| {
        tally(&mut spiller);
    });
    assert_eq!(written, 0, "a read wrote to the log");
    assert_holds_rows(&url, 300);
}

/// The same, but the log restarts first (a TRUNCATE checkpoint), and the connection that
/// rolled back is closed: closing must not write the old frames either, or the last
/// connection's checkpoint copies them into the database file.
#[test]
fn a_rolled_back_spill_is_not_written_at_close_after_the_log_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    let url = database(&dir);
    let mut spiller = open_single(&url, true).expect("spiller");
    let mut committer = open_single(&url, true).expect("committer");
    spill_and_roll_back(&mut spiller);
    sqlite(&mut committer)
        .batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("truncate");
    insert(&mut committer, 0, 350);
    let (_, written) = log_writes(|| drop(spiller));
    assert_eq!(written, 0, "closing wrote to the log");
    drop(committer);
    assert_holds_rows(&url, 350);
}
