//! Loading the authentication logs (`recoverydesk auth-log import`, `POST /api/v1/auth-events`)
//! and purging them after the retention period (docs/reference.md#kinds-and-states).
//!
//! Lines are read one at a time (a file of any size is never held whole), parsed at the edge
//! into `AuthEvent`s, and written in batches, each batch in one transaction. A line with a
//! password, key or secret field is refused and nothing of it is kept or logged; each refused
//! line is reported with its number and reason and the good lines are kept. An event already
//! stored (an overlapping log imported again) is counted once. Events already older than the
//! retention period are skipped: the purge would remove them anyway.

use super::super::ServiceError;
use crate::db::auth_events::{self, NewAuthEvent};
use crate::db::{self, AnyConnection};
use crate::domain::diagnosis::AuthEvent;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use std::io::BufRead;

/// Events written per transaction.
const ROWS_PER_TRANSACTION: usize = 20_000;
/// A line longer than this is refused (and skipped without being held in memory).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct AuthImportSummary {
    /// Lines (or array elements) read, blank lines aside.
    pub received: usize,
    /// New events stored.
    pub stored: usize,
    /// Events that were already stored.
    pub duplicates: usize,
    /// Events older than the retention period, skipped.
    pub expired: usize,
    /// Each refused line: its number (1-based) and why.
    pub refused: Vec<RefusedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedLine {
    pub line: usize,
    pub reason: String,
}

impl AuthImportSummary {
    /// One line for a terminal.
    pub fn line(&self) -> String {
        format!(
            "auth-log: {} read, {} stored, {} already present, {} past the retention period (skipped), {} refused",
            self.received,
            self.stored,
            self.duplicates,
            self.expired,
            self.refused.len()
        )
    }
}

/// Batches good events and writes them; counts everything.
struct Importer<'c> {
    conn: &'c mut AnyConnection,
    cutoff: DateTime<Utc>,
    pending: Vec<NewAuthEvent>,
    summary: AuthImportSummary,
    /// The connection was tuned for a large load and must be set back.
    bulk: bool,
}

impl<'c> Importer<'c> {
    /// `bulk`: a file of any size (the command), worth a larger page cache while it loads.
    fn new(conn: &'c mut AnyConnection, retention_days: u32, now: DateTime<Utc>, bulk: bool) -> Self {
        // Only a faster load: a failure here changes nothing else.
        let bulk = bulk && auth_events::prepare_bulk_load(conn).is_ok();
        Importer {
            conn,
            cutoff: cutoff(retention_days, now),
            pending: Vec::with_capacity(ROWS_PER_TRANSACTION),
            summary: AuthImportSummary::default(),
            bulk,
        }
    }

    /// Takes one parsed line; returns the refusal reason to report, if any.
    fn take(&mut self, line: usize, parsed: Result<AuthEvent, String>) -> Result<Option<String>, ServiceError> {
        self.summary.received += 1;
        match parsed {
            Ok(event) if event.at < self.cutoff => {
                self.summary.expired += 1;
                Ok(None)
            }
            Ok(event) => {
                self.pending.push(NewAuthEvent::from_event(event));
                if self.pending.len() >= ROWS_PER_TRANSACTION {
                    self.flush()?;
                }
                Ok(None)
            }
            Err(reason) => {
                self.summary.refused.push(RefusedLine {
                    line,
                    reason: reason.clone(),
                });
                Ok(Some(reason))
            }
        }
    }

    fn flush(&mut self) -> Result<(), ServiceError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.pending);
        // In the lookup index's order: each page of it is touched once per batch.
        rows.sort_unstable_by(|a, b| (&a.username, a.channel, a.at).cmp(&(&b.username, b.channel, b.at)));
        let stored = db::write_transaction(self.conn, |conn| auth_events::insert_new(conn, &rows))?;
        self.summary.stored += stored;
        self.summary.duplicates += rows.len() - stored;
        self.pending = rows;
        self.pending.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<AuthImportSummary, ServiceError> {
        self.flush()?;
        Ok(std::mem::take(&mut self.summary))
    }
}

impl Drop for Importer<'_> {
    /// Pooled connections are reused: the usual settings come back however the load ended.
    fn drop(&mut self) {
        if self.bulk {
            let _ = auth_events::finish_bulk_load(self.conn);
        }
    }
}

/// Events logged before this are past the retention period.
pub fn cutoff(retention_days: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(i64::from(retention_days.max(1)))
}

/// Imports JSON Lines from `reader`. `on_refused(line, reason)` hears of each refused line as
/// it is met; `on_progress(bytes)` of the bytes read so far.
#[tracing::instrument(level = "debug", skip_all, fields(retention_days = retention_days))]
pub fn import_lines<R: BufRead>(
    conn: &mut AnyConnection,
    retention_days: u32,
    mut reader: R,
    mut on_refused: impl FnMut(usize, &str),
    mut on_progress: impl FnMut(u64),
) -> Result<AuthImportSummary, ServiceError> {
    let mut importer = Importer::new(conn, retention_days, Utc::now(), true);
    let mut buffer = Vec::with_capacity(1024);
    let mut number = 0usize;
    let mut read_so_far = 0u64;
    loop {
        let (bytes, too_long) = read_bounded_line(&mut reader, &mut buffer, MAX_LINE_BYTES)
            .map_err(|e| ServiceError::Invalid(format!("reading the log: {e}")))?;
        if bytes == 0 {
            break;
        }
        number += 1;
        read_so_far += bytes as u64;
        let parsed = if too_long {
            Err(format!("longer than {MAX_LINE_BYTES} bytes"))
        } else {
            match std::str::from_utf8(&buffer) {
                Ok(text) if text.trim().is_empty() => {
                    on_progress(read_so_far);
                    continue;
                }
                Ok(text) => AuthEvent::parse_line(text),
                Err(_) => Err("not UTF-8 text".to_string()),
            }
        };
        if let Some(reason) = importer.take(number, parsed)? {
            on_refused(number, &reason);
        }
        if number.is_multiple_of(1024) {
            on_progress(read_so_far);
        }
    }
    on_progress(read_so_far);
    importer.finish()
}

/// Imports the elements of a JSON array (the API); element N is reported as line N.
#[tracing::instrument(level = "debug", skip_all, fields(retention_days = retention_days, lines = values.len()))]
pub fn import_values(
    conn: &mut AnyConnection,
    retention_days: u32,
    values: &[Value],
) -> Result<AuthImportSummary, ServiceError> {
    let mut importer = Importer::new(conn, retention_days, Utc::now(), false);
    for (index, value) in values.iter().enumerate() {
        importer.take(index + 1, AuthEvent::from_json(value))?;
    }
    importer.finish()
}

/// Reads one line (without its end) into `buffer`, keeping at most `limit` bytes of it.
/// Returns the bytes consumed (0 at the end) and whether the line was longer than `limit`.
fn read_bounded_line<R: BufRead>(reader: &mut R, buffer: &mut Vec<u8>, limit: usize) -> std::io::Result<(usize, bool)> {
    buffer.clear();
    let mut consumed = 0;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        if !too_long {
            if buffer.len() + chunk.len() > limit {
                too_long = true;
                buffer.clear();
            } else {
                buffer.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        consumed += used;
        if done.is_some() {
            break;
        }
    }
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    Ok((consumed, too_long))
}

/// Deletes the events logged more than `retention_days` before `now`; returns how many.
#[tracing::instrument(level = "debug", skip_all, fields(retention_days = retention_days))]
pub fn purge_expired(conn: &mut AnyConnection, retention_days: u32, now: DateTime<Utc>) -> Result<usize, ServiceError> {
    let cutoff = cutoff(retention_days, now).naive_utc();
    Ok(auth_events::purge_before(conn, cutoff)?)
}

/// How often `serve` purges.
pub fn purge_interval() -> std::time::Duration {
    std::time::Duration::from_secs(3600)
}

/// The purge `serve` runs in the background: once at start, then every hour.
pub async fn purge_periodically(pool: db::Pool, retention_days: u32) {
    loop {
        let pool_now = pool.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut conn = pool_now.get().map_err(|e| e.to_string())?;
            purge_expired(&mut conn, retention_days, Utc::now()).map_err(|e| e.to_string())
        })
        .await;
        match outcome {
            Ok(Ok(0)) => {}
            Ok(Ok(deleted)) => tracing::info!(deleted, retention_days, "purged expired authentication events"),
            Ok(Err(e)) => tracing::error!(error = %e, "purging authentication events failed; retrying later"),
            Err(e) => tracing::error!(error = %e, "the authentication-event purge stopped unexpectedly"),
        }
        tokio::time::sleep(purge_interval()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_one_at_a_time_with_a_bound() {
        let input = b"short\r\n0123456789abcdef\nlast";
        let mut reader = std::io::BufReader::with_capacity(4, &input[..]);
        let mut buffer = vec![];
        assert_eq!(read_bounded_line(&mut reader, &mut buffer, 10).unwrap(), (7, false));
        assert_eq!(buffer, b"short");
        assert_eq!(read_bounded_line(&mut reader, &mut buffer, 10).unwrap(), (17, true));
        assert!(buffer.is_empty(), "an overlong line is not kept");
        assert_eq!(read_bounded_line(&mut reader, &mut buffer, 10).unwrap(), (4, false));
        assert_eq!(buffer, b"last");
        assert_eq!(read_bounded_line(&mut reader, &mut buffer, 10).unwrap(), (0, false));
    }
}
