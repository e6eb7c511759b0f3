//! The command-line channels of inbound mail: the MTA pipe and the maildir import.

use crate::config::Settings;
use crate::crypto::SecretKey;
use crate::db::{self, AnyConnection, DatabaseUrl};
use crate::services::inbound::{IngestError, Outcome, Prepared, store_prepared};
use crate::services::{Desk, ServiceError};
use diesel::connection::SimpleConnection;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Opens the database for the mailgate without ever creating it: a missing file, an
/// unreachable server or a schema not yet migrated is a reason to retry later, not to start an
/// empty desk beside the real one.
pub fn open_existing(settings: &Settings) -> Result<(AnyConnection, Desk), String> {
    // Checked first: opening an SQLite file that is not there would create an empty one.
    if let DatabaseUrl::Sqlite(path) = &settings.database_url {
        match db::check_sqlite_file(path) {
            Ok(()) => {}
            Err(db::SqliteFileError::Missing) => {
                return Err(format!(
                    "the database {} does not exist (run `recoverydesk migrate` or start the desk first)",
                    path.display()
                ));
            }
            Err(db::SqliteFileError::Unusable(reason)) => return Err(reason),
        }
    }
    // Acknowledged to the MTA means stored: a power cut must not lose it.
    let mut conn = db::open_single(&settings.database_url, true).map_err(|e| e.to_string())?;
    match db::schema_is_current(&mut conn) {
        Ok(true) => {}
        Ok(false) => {
            return Err("the database schema is missing or not up to date (run `recoverydesk migrate`)".into());
        }
        Err(e) => return Err(format!("cannot read the database schema: {e}")),
    }
    let secret = match &settings.secret_key {
        Some(text) => SecretKey::parse(text)?,
        None => match db::settings::get(&mut conn, "secret_key").map_err(|e| e.to_string())? {
            Some(stored) => SecretKey::parse(&stored)?,
            None => return Err("the desk has no secret key yet (start `recoverydesk serve` once)".into()),
        },
    };
    Ok((
        conn,
        Desk {
            settings: Arc::new(settings.clone()),
            secret,
            quiet: false,
            // A process of its own: what it counts dies with it (nothing scrapes it).
            metrics: Arc::new(crate::telemetry::Metrics::new()),
        },
    ))
}

/// What the sender reads in the bounce of a message that is too large: plain words, no
/// setting names or internals.
pub fn too_large_for_sender(limit: u64) -> String {
    let size = if limit >= 1024 * 1024 {
        format!("{:.1} MB", limit as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", limit.div_ceil(1024))
    };
    format!(
        "Your message is too large for the support desk, which accepts messages of up to \
         {size} including attachments. Please send it again without large attachments."
    )
}

/// One line to the system's mail log (syslog, facility mail), where the operator looks for
/// the MTA's own lines; nothing is written when there is no syslog.
pub fn operator_log(message: &str) {
    let Ok(text) = std::ffi::CString::new(message.replace('\0', " ")) else {
        return;
    };
    // SAFETY: both strings are NUL-terminated and live across the calls; "%s" makes syslog
    // read exactly one string argument, so the message is never taken as a format.
    unsafe {
        libc::openlog(c"recoverydesk".as_ptr(), libc::LOG_PID, libc::LOG_MAIL);
        libc::syslog(libc::LOG_WARNING, c"%s".as_ptr(), text.as_ptr());
        libc::closelog();
    }
}

/// The message files of a maildir (`new/` and `cur/`), or of a plain folder, oldest first. Hidden files and `tmp/` (deliveries in progress) are skipped.
pub fn maildir_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let subdirs: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .map(|d| dir.join(d))
        .filter(|d| d.is_dir())
        .collect();
    let folders = if subdirs.is_empty() {
        vec![dir.to_path_buf()]
    } else {
        subdirs
    };
    let mut files = vec![];
    for folder in folders {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            // The directory entry's own type, without a `stat` per file (10,000 of them were
            // 1 % of an import's writing thread); a link is followed, as before.
            let file = match entry.file_type() {
                Ok(kind) if kind.is_file() => true,
                Ok(kind) if kind.is_dir() => false,
                _ => path.is_file(),
            };
            if file && !hidden {
                files.push(path);
            }
        }
    }
    // Maildir names start with the delivery time: by name is oldest first, so a reply comes
    // after the message it answers, whichever of new/ and cur/ holds each.
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then_with(|| a.cmp(b)));
    Ok(files)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub appended: usize,
    pub duplicate: usize,
    pub quarantined: usize,
    /// Larger than RECOVERYDESK_MAX_MESSAGE_BYTES.
    pub rejected: usize,
    /// Could not be read or stored (reported on stderr; running the import again retries them).
    pub failed: usize,
}

impl ImportSummary {
    pub fn total(&self) -> usize {
        self.created + self.appended + self.duplicate + self.quarantined + self.rejected + self.failed
    }

    pub fn line(&self, dir: &Path) -> String {
        format!(
            "imported {} messages from {}: {} created, {} appended, {} duplicate, {} quarantined, {} rejected, {} failed",
            self.total(),
            dir.display(),
            self.created,
            self.appended,
            self.duplicate,
            self.quarantined,
            self.rejected,
            self.failed
        )
    }
}

/// Messages written per transaction by `import-maildir`.
pub const IMPORT_BATCH: usize = 250;

/// Batches written by `import-maildir` between two moments when its writer waits until the
/// whole WAL is copied into the database file (and one after the last). A checkpoint waits for
/// two `fdatasync`s, of the WAL and of the database file; after every batch they were a fifth
/// of an import's time (docs/benchmarks.md). Four bound the WAL at four batches (32 MiB at most
/// for mail with attachments, 8 MiB with a checkpoint after each). The batches in between are
/// copied by a thread beside the writer ([`crate::db::checkpoint::BatchCheckpointer`]).
pub const IMPORT_BATCHES_PER_CHECKPOINT: usize = 4;

/// The name of `import-maildir`'s parsing threads.
pub const IMPORT_PARSER_THREAD: &str = "import-parse";

/// A file read and prepared by an import worker.
enum Read {
    Prepared(Result<Prepared, IngestError>),
    Unreadable(String),
}

/// Imports the files in order: read, parsed and scanned on every core (one worker per core,
/// each taking every n-th file), written by this thread in transactions of
/// [`IMPORT_BATCH`] messages (each in a savepoint of its own), with the WAL copied into the
/// database file by a thread beside it and whole after every [`IMPORT_BATCHES_PER_CHECKPOINT`]
/// of them and at the end, and a progress bar on a terminal.
pub fn import_files(conn: &mut AnyConnection, desk: &Desk, files: &[PathBuf]) -> Result<ImportSummary, ServiceError> {
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} messages, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    if sqlite {
        // Checkpoints come between batches, not in the middle of a commit.
        conn.batch_execute("PRAGMA wal_autocheckpoint = 0;")?;
    }
    // Copies the WAL while the next batches are written; `None` on PostgreSQL, or when no
    // thread could be started (this thread then checkpoints itself, as it waits anyway).
    let checkpointer = if sqlite {
        crate::db::checkpoint::BatchCheckpointer::spawn(&desk.settings.database_url).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no checkpoint thread for the import; the writer checkpoints itself");
            None
        })
    } else {
        None
    };
    let mut summary = ImportSummary::default();
    let outcome = std::thread::scope(|scope| -> Result<(), ServiceError> {
        let mut queues = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Read>(IMPORT_BATCH);
            queues.push(rx);
            // Named for `top -H` and for the test that checks their priority.
            let spawned = std::thread::Builder::new()
                .name(IMPORT_PARSER_THREAD.into())
                .spawn_scoped(scope, move || {
                    // The writer first: a parsing thread only works ahead into its queue.
                    if let Err(e) =
                        crate::priority::lower_this_threads_priority(crate::priority::IMPORT_PARSER_NICENESS)
                    {
                        tracing::debug!(error = %e, "an import parsing thread keeps its priority");
                    }
                    for path in files.iter().skip(worker).step_by(workers) {
                        let read = match std::fs::read(path) {
                            Ok(raw) => Read::Prepared(crate::services::inbound::prepare(desk, &raw)),
                            Err(e) => Read::Unreadable(e.to_string()),
                        };
                        if tx.send(read).is_err() {
                            break;
                        }
                    }
                });
            // Its files are then reported as failed ("the import worker stopped"): a second
            // run imports them.
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start an import parsing thread");
            }
        }
        let mut batch: Vec<(&PathBuf, Prepared)> = Vec::with_capacity(IMPORT_BATCH);
        let mut batches = 0usize;
        for (index, path) in files.iter().enumerate() {
            let read = queues[index % workers]
                .recv()
                .unwrap_or_else(|_| Read::Unreadable("the import worker stopped".into()));
            match read {
                Read::Prepared(Ok(prepared)) => batch.push((path, prepared)),
                Read::Prepared(Err(IngestError::TooLarge { size, limit })) => {
                    bar.suspend(|| eprintln!("{}: {size} bytes, larger than {limit}: not imported", path.display()));
                    summary.rejected += 1;
                    bar.inc(1);
                }
                Read::Prepared(Err(IngestError::Temporary(reason))) | Read::Unreadable(reason) => {
                    bar.suspend(|| eprintln!("{}: {reason}", path.display()));
                    summary.failed += 1;
                    bar.inc(1);
                }
            }
            if batch.len() >= IMPORT_BATCH {
                write_batch(conn, desk, &mut batch, &mut summary, &bar)?;
                batches += 1;
                let due = batches.is_multiple_of(IMPORT_BATCHES_PER_CHECKPOINT);
                // Whether the WAL is copied as far as it must be now. Waiting for the copy
                // every few batches is what lets the next transaction start the WAL again.
                let copied = match &checkpointer {
                    Some(c) if due => c.copied_through(batches as u64),
                    Some(c) => {
                        c.nudge(batches as u64);
                        true
                    }
                    None => !(sqlite && due),
                };
                if !copied {
                    checkpoint(conn)?;
                }
            }
        }
        write_batch(conn, desk, &mut batch, &mut summary, &bar)?;
        Ok(())
    });
    // The thread's connection closed first: the last checkpoint below runs alone.
    if let Some(c) = checkpointer {
        c.finish();
    }
    let outcome = outcome.and_then(|()| if sqlite { checkpoint(conn) } else { Ok(()) });
    if sqlite {
        let _ = conn.batch_execute("PRAGMA wal_autocheckpoint = 1000;");
    }
    outcome?;
    bar.finish_and_clear();
    Ok(summary)
}

/// One transaction for the batch; a message whose writes failed is tried again alone.
fn write_batch(
    conn: &mut AnyConnection,
    desk: &Desk,
    batch: &mut Vec<(&PathBuf, Prepared)>,
    summary: &mut ImportSummary,
    bar: &indicatif::ProgressBar,
) -> Result<(), ServiceError> {
    if batch.is_empty() {
        return Ok(());
    }
    let stored = db::write_transaction(conn, |conn| -> Result<Vec<_>, ServiceError> {
        Ok(batch
            .iter()
            .map(|(_, prepared)| store_prepared(conn, desk, prepared, "maildir", None))
            .collect())
    });
    let answers = match stored {
        Ok(answers) => answers,
        Err(e) => {
            bar.suspend(|| {
                eprintln!(
                    "a batch of {} messages failed ({e}); importing them one by one",
                    batch.len()
                )
            });
            batch
                .iter()
                .map(|_| Err(IngestError::Temporary(e.to_string())))
                .collect()
        }
    };
    for ((path, prepared), answer) in batch.drain(..).zip(answers) {
        let answer = match answer {
            Err(IngestError::Temporary(_)) => store_prepared(conn, desk, &prepared, "maildir", None),
            other => other,
        };
        match answer {
            Ok(done) => match done.outcome {
                Outcome::Created => summary.created += 1,
                Outcome::Appended => summary.appended += 1,
                Outcome::Duplicate => summary.duplicate += 1,
                Outcome::Quarantined => summary.quarantined += 1,
            },
            Err(IngestError::TooLarge { size, limit }) => {
                bar.suspend(|| eprintln!("{}: {size} bytes, larger than {limit}: not imported", path.display()));
                summary.rejected += 1;
            }
            Err(IngestError::Temporary(reason)) => {
                bar.suspend(|| eprintln!("{}: {reason}", path.display()));
                summary.failed += 1;
            }
        }
        bar.inc(1);
    }
    Ok(())
}

/// Moves what the batches wrote from the WAL into the database file, so the WAL stays small
/// (as far as no reader needs the old pages: the import goes on either way).
fn checkpoint(conn: &mut AnyConnection) -> Result<(), ServiceError> {
    db::checkpoint::checkpoint(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is listed: regular files and links to them, in `cur/` and `new/`, by name; never
    /// a folder, a link to one, a dangling link, a hidden file or `tmp/`.
    #[test]
    fn a_maildir_lists_its_files_and_links_to_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["cur", "new", "tmp", "cur/sub"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for file in ["cur/2:2,S", "new/1", "cur/.hidden", "tmp/0", "cur/sub/9"] {
            std::fs::write(root.join(file), b"x").unwrap();
        }
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("mail"), b"x").unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("mail"), root.join("cur/3-link")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join("cur/4-dir-link")).unwrap();
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("new/5-dangling")).unwrap();
        let names: Vec<String> = maildir_files(root)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["new/1", "cur/2:2,S", "cur/3-link"]);
    }
}
