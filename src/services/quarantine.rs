//! Quarantined mail, for admins: one service behind the API (`/api/v1/quarantine`) and the
//! console (`/agent/quarantine`), so both list, page, download and retry the same way. Who may
//! call it is decided at the edge (the admin extractors); what a retry does is ingestion's.

use super::inbound::{IngestError, Ingested};
use super::{Actor, Desk, ServiceError};
use crate::db::inbound::{self as store, QuarantineRow};
use crate::db::{AnyConnection, DbError};

/// One page of quarantined messages, newest first.
#[derive(Debug)]
pub struct QuarantinePage {
    pub messages: Vec<QuarantineRow>,
    /// The id to pass as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<String>,
}

/// Up to `size` messages older than the message `cursor` names (the newest without one). A
/// cursor that names no quarantined message is bad input, not an empty page: a client that
/// loops on pages must not take it for the end.
#[tracing::instrument(level = "debug", skip_all, fields(size = size))]
pub fn page(conn: &mut AnyConnection, cursor: Option<&str>, size: usize) -> Result<QuarantinePage, ServiceError> {
    let before = match cursor.filter(|c| !c.is_empty()) {
        Some(id) => match store::quarantined(conn, id)? {
            Some(row) => Some((row.received_at, row.id)),
            None => {
                return Err(ServiceError::Invalid(
                    "cursor: use the next_cursor of a previous page".into(),
                ));
            }
        },
        None => None,
    };
    // One more than asked tells whether another page follows.
    let limit = i64::try_from(size.saturating_add(1)).unwrap_or(i64::MAX);
    let mut messages = store::list_quarantine(conn, before, limit)?;
    let more = messages.len() > size;
    messages.truncate(size);
    let next_cursor = if more {
        messages.last().map(|q| q.id.clone())
    } else {
        None
    };
    Ok(QuarantinePage { messages, next_cursor })
}

/// One quarantined message, its raw bytes included (kept after redaction).
#[tracing::instrument(level = "debug", skip_all)]
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<QuarantineRow, ServiceError> {
    store::quarantined(conn, id)?.ok_or_else(|| ServiceError::NotFound("quarantined message".into()))
}

/// Runs ingestion on the message again (after an upgrade, say). It leaves quarantine when it
/// now becomes a ticket; otherwise it stays, with the new reason. The admin who asked is named
/// in the log line, whichever door they came through.
#[tracing::instrument(level = "debug", skip_all)]
pub fn retry(conn: &mut AnyConnection, desk: &Desk, id: &str, by: &Actor) -> Result<Ingested, ServiceError> {
    let outcome = super::inbound::retry_quarantined(conn, desk, id).map_err(|e| match e {
        // The message was accepted once; a lower limit since is the caller's to hear about.
        IngestError::TooLarge { .. } => ServiceError::Invalid(e.to_string()),
        IngestError::Temporary(reason) => ServiceError::Db(DbError::Connect(reason)),
    })?;
    let done = outcome.ok_or_else(|| ServiceError::NotFound("quarantined message".into()))?;
    tracing::info!(quarantine = %id, by = %by.label(), outcome = done.outcome.as_str(),
                   ticket = done.ticket.as_deref().unwrap_or(""), "quarantined message retried");
    Ok(done)
}
