//! `recoverydesk backup FILE`: a consistent copy of a live SQLite database.
//!
//! `VACUUM INTO` reads the database in one read transaction, so the copy is a snapshot of one
//! moment even while `serve` and `mailgate` write (WAL mode lets them go on meanwhile), and it
//! comes out compact and with no `-wal` of its own: a single file to keep or move.

use super::{DatabaseUrl, SqliteFileError, check_sqlite_file};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "the database is on PostgreSQL ({0}): back it up with pg_dump, for example \
         `pg_dump --format=custom --file=recoverydesk.dump \"$DATABASE_URL\"`"
    )]
    Postgres(String),
    #[error("{0}")]
    Unusable(String),
    #[error("{0} already exists: give a new file name (a backup never replaces a file)")]
    Exists(PathBuf),
    #[error("writing the backup {0}: {1}")]
    Write(PathBuf, String),
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub bytes: u64,
    pub tickets: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    quick_check: String,
}

/// Copies the database at `url` to `target`, a new file without access for other users. The
/// copy is written beside the target under a temporary name, checked, and renamed into place,
/// so `target` is either a whole, checked backup or absent.
pub fn backup(url: &DatabaseUrl, target: &Path) -> Result<BackupSummary, BackupError> {
    let source = match url {
        DatabaseUrl::Sqlite(path) => path,
        DatabaseUrl::Postgres(_) => return Err(BackupError::Postgres(url.redacted())),
    };
    match check_sqlite_file(source) {
        Ok(()) => {}
        Err(SqliteFileError::Missing) => {
            return Err(BackupError::Unusable(format!(
                "the database {} does not exist: there is nothing to back up",
                source.display()
            )));
        }
        Err(SqliteFileError::Unusable(reason)) => return Err(BackupError::Unusable(reason)),
    }
    if target.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(target.to_path_buf()));
    }
    let write_error = |e: &dyn std::fmt::Display| BackupError::Write(target.to_path_buf(), e.to_string());
    let mut partial = target.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // Left by a backup that was cut short; ours alone (the final name is checked above).
    let _ = std::fs::remove_file(&partial);
    // VACUUM INTO fills an existing empty file and keeps its mode; left to SQLite, the new
    // file would get 0644 less the umask.
    crate::files::create_private_file(&partial).map_err(|e| write_error(&e))?;
    let result = (|| {
        super::open::configure_sqlite();
        let mut conn = SqliteConnection::establish(&source.to_string_lossy()).map_err(|e| write_error(&e))?;
        conn.batch_execute("PRAGMA busy_timeout = 10000;")
            .map_err(|e| write_error(&e))?;
        diesel::sql_query("VACUUM INTO ?")
            .bind::<Text, _>(partial.to_string_lossy())
            .execute(&mut conn)
            .map_err(|e| write_error(&e))?;
        drop(conn);
        let summary = verify(&partial).map_err(|e| write_error(&e))?;
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| write_error(&e))?;
        std::fs::rename(&partial, target).map_err(|e| write_error(&e))?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Opens the copy on its own and checks it before it gets the final name.
fn verify(copy: &Path) -> Result<BackupSummary, String> {
    super::open::configure_sqlite();
    let mut conn = SqliteConnection::establish(&copy.to_string_lossy()).map_err(|e| e.to_string())?;
    let check: Check = diesel::sql_query("PRAGMA quick_check")
        .get_result(&mut conn)
        .map_err(|e| e.to_string())?;
    if check.quick_check != "ok" {
        return Err(format!("the copy failed its check: {}", check.quick_check));
    }
    let tickets = diesel::sql_query("SELECT COUNT(*) AS n FROM tickets")
        .get_result::<Count>(&mut conn)
        .map(|c| c.n)
        .unwrap_or(0);
    let bytes = std::fs::metadata(copy).map_err(|e| e.to_string())?.len();
    Ok(BackupSummary { bytes, tickets })
}
