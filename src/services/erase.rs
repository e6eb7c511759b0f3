//! Erase: an admin blanks a stored message or note after the fact (its text, HTML,
//! attachments and raw copy), the event log keeps every event and gains a `redaction` event
//! naming who erased which event, and no copy is left in the database files.

use super::loaded::Loaded;
use super::{Actor, ServiceError};
use crate::db::tickets::{self as ticket_rows, TicketRow};
use crate::db::{self, AnyConnection, erase};
use crate::domain::event::EventType;
use serde_json::json;

/// What an erase did.
#[derive(Debug, Clone)]
pub enum Erased {
    /// Blanked now.
    Now(TicketRow),
    /// It had been erased before: nothing more to do.
    Already(TicketRow),
}

/// Erases the message or note of event `event_id` on ticket `ticket_id`. Admins only: the
/// entry points check the role (403 `forbidden`), and this refuses anyone else as well.
/// Unknown ticket or event → `NotFound`; an event without a message or note → `Invalid`.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id, event_id = event_id))]
pub fn erase_message(
    conn: &mut AnyConnection,
    ticket_id: i64,
    event_id: i64,
    actor: &Actor,
) -> Result<Erased, ServiceError> {
    if !actor.is_admin() {
        return Err(ServiceError::Invalid("only an admin can erase a message".into()));
    }
    let erased = erase::with_secure_delete(conn, |conn| {
        db::write_transaction(conn, |conn| {
            let loaded = Loaded::load(conn, ticket_id)?;
            let event = erase::event_of_ticket(conn, ticket_id, event_id)?
                .ok_or_else(|| ServiceError::NotFound("event".into()))?;
            let Some(message_ref) = event.message_ref else {
                return Err(ServiceError::Invalid(format!(
                    "event {event_id} ({}) holds no message or note to erase",
                    event.event_type
                )));
            };
            let message = erase::message(conn, message_ref)?.ok_or_else(|| ServiceError::NotFound("message".into()))?;
            if message.redacted_at.is_some() && message.body == erase::ERASED {
                return Ok(Erased::Already(loaded.row));
            }
            erase::blank_message(conn, &message)?;
            ticket_rows::insert_event(
                conn,
                ticket_id,
                EventType::Redaction,
                &actor.label(),
                &json!({"erased": true, "event_id": event_id, "event_type": event.event_type,
                        "message_id": message.id, "by": actor.label(),
                        "blanked": ["subject", "text", "html", "attachments", "raw"]}),
                None,
            )?;
            Ok(Erased::Now(loaded.row))
        })
    })?;
    if let Erased::Now(_) = &erased {
        // Outside the transaction: a checkpoint or VACUUM cannot run inside one.
        if !erase::purge_old_copies(conn)? {
            tracing::warn!(
                ticket_id,
                event_id,
                "erased, but a reader held the WAL: it is truncated at the next checkpoint"
            );
        }
    }
    Ok(erased)
}
