//! Secrets are removed before anything is stored: the scanner runs on every customer text.

pub use crate::domain::scrubbed::{Scrubbed, Scrubber};

/// Writes the `redaction` event for secrets removed from what someone sent (the kinds, never
/// the values) and, when `notify` names the person who sent them, mails them to rotate those
/// credentials.
pub(crate) fn record_removed_secrets(
    conn: &mut crate::db::AnyConnection,
    desk: &super::Desk,
    ticket: &crate::db::tickets::TicketRow,
    kinds: &[&str],
    source: &str,
    notify: Option<&str>,
) -> Result<(), super::ServiceError> {
    if kinds.is_empty() {
        return Ok(());
    }
    let data = serde_json::json!({"kinds": kinds, "source": source});
    crate::db::tickets::insert_event(conn, ticket.id, "redaction", "system", &data, None)?;
    if let Some(address) = notify {
        let params = serde_json::json!({"kinds": kinds});
        super::decision::enqueue(
            conn,
            desk,
            ticket,
            address,
            crate::domain::workflow::MailTemplate::RedactionNotice,
            params,
        )?;
    }
    Ok(())
}
