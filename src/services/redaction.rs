//! Secrets are removed before anything is stored: the scanner runs on every customer text.

use crate::domain::redact::SecretKind;
pub use crate::domain::scrubbed::{Scrubbed, Scrubber};

/// Writes the `redaction` event for secrets removed from what someone sent (the kinds, never
/// the values) and, when `notify` names the person who sent them, mails them to rotate those
/// credentials.
pub(crate) fn record_removed_secrets(
    conn: &mut crate::db::AnyConnection,
    desk: &super::Desk,
    ticket: &crate::db::tickets::TicketRow,
    found: &[SecretKind],
    source: &str,
    notify: Option<&str>,
) -> Result<(), super::ServiceError> {
    if found.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = found.iter().map(|k| k.as_str()).collect();
    let data = serde_json::json!({"kinds": kinds, "source": source});
    crate::db::tickets::insert_event(
        conn,
        ticket.id,
        crate::domain::event::EventType::Redaction,
        "system",
        &data,
        None,
    )?;
    if let Some(address) = notify {
        let mail = crate::mail::outbound::templates::Mail::RedactionNotice { kinds: found.to_vec() };
        super::decision::enqueue(conn, desk, ticket, address, mail.into())?;
    }
    Ok(())
}
