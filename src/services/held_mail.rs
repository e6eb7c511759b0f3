//! Held mail: an automatic mail over the per-recipient hourly cap waits in the outbox (`held`)
//! until an agent lets it go. Letting it go is written to the ticket's log like every other
//! thing an agent does, so the audit trail says who sent it.

use super::{Actor, ServiceError};
use crate::db::{self, AnyConnection, locks, outbox, tickets};
use serde_json::json;

/// Sends the held mail `mail_id` of ticket `ticket_id`: `false` when it is not a held mail of
/// that ticket (sent already, or never held), and nothing is written.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id, mail_id = mail_id))]
pub fn release(conn: &mut AnyConnection, ticket_id: i64, mail_id: i64, by: &Actor) -> Result<bool, ServiceError> {
    db::write_transaction(conn, |conn| -> Result<bool, ServiceError> {
        // Tickets before outbox rows (docs/architecture.md, "Locks and their order").
        locks::lock_ticket(conn, ticket_id)?;
        let Some(mail) = outbox::release_held(conn, mail_id, ticket_id)? else {
            return Ok(false);
        };
        tickets::insert_event(
            conn,
            ticket_id,
            crate::domain::event::EventType::MailReleased,
            &by.label(),
            &json!({"outbox_id": mail.id, "to": mail.recipient, "template": mail.template}),
            None,
        )?;
        Ok(true)
    })
}
