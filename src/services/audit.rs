//! The audit trail's export and verification (docs/reference.md#four-eyes-and-the-audit-trail).

use super::{Desk, ServiceError};
use crate::db::tickets::EventRow;
use crate::db::{AnyConnection, audit as chain};
use crate::domain::audit::{self, Broken, ChainedEvent, GENESIS};
use serde_json::Value;

/// A ticket's events as JSON Lines: one canonical object per line plus `prev_hash` and
/// `hash`, exactly as `audit verify FILE` checks them.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id))]
pub fn export(conn: &mut AnyConnection, desk: &Desk, ticket_id: i64) -> Result<String, ServiceError> {
    crate::db::tickets::find(conn, ticket_id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
    let mut out = String::new();
    for entry in chain::chain_of(conn, ticket_id)? {
        let (Some(event), Some(link)) = (entry.event, entry.link) else {
            // An event without a link (or a link without its event) cannot be exported as
            // chained: the line says so, and verifying the file stops there.
            out.push_str(&format!(
                "{{\"error\":\"no hash recorded\",\"id\":{},\"ticket\":\"{}\"}}\n",
                entry.id,
                desk.ticket_ref(ticket_id)
            ));
            continue;
        };
        let line = chained(&event, &link, |e| e.export_line(&link.prev_hash, &link.hash));
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// The event as its chain link hashed it (the export and the check must read it alike).
fn chained<R>(event: &EventRow, link: &chain::HashRow, f: impl FnOnce(&ChainedEvent) -> R) -> R {
    let data = serde_json::from_str(&event.data).unwrap_or_else(|_| Value::String(event.data.clone()));
    let at = audit::format_at(event.created_at);
    f(&ChainedEvent {
        id: event.id,
        ticket: &link.ticket_ref,
        event_type: event.event_type.as_str(),
        actor: &event.actor,
        at: &at,
        data: &data,
        content_sha256: link.content_sha256.as_deref(),
    })
}

/// Checks one ticket's chain in the database, and each message's text against its content
/// hash unless it was erased. The number of events checked, or the first broken link.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id))]
pub fn verify_ticket(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
) -> Result<Result<usize, Broken>, ServiceError> {
    let fallback = desk.ticket_ref(ticket_id);
    let mut prev = GENESIS.to_string();
    let mut checked = 0;
    for entry in chain::chain_of(conn, ticket_id)? {
        let ticket = entry.link.as_ref().map_or(fallback.clone(), |l| l.ticket_ref.clone());
        let broken = |why: &str| {
            Ok(Err(Broken {
                ticket: ticket.clone(),
                event: Some(entry.id),
                why: why.to_string(),
            }))
        };
        let Some(link) = entry.link else {
            return broken("no hash was recorded for this event");
        };
        let Some(event) = entry.event else {
            return broken("the event is gone from the log, its hash is still there");
        };
        if link.prev_hash != prev {
            return broken("its link does not follow the ticket's previous event (an event was removed or inserted)");
        }
        let computed = chained(&event, &link, |e| e.hash(&link.prev_hash));
        if computed != link.hash {
            return broken("the event is not what was hashed when it was written");
        }
        if let Some(message_id) = event.message_ref {
            match (chain::message_text(conn, message_id)?, link.content_sha256.as_deref()) {
                (Some((_, _, true)), Some(_)) => {}
                (Some((subject, body, false)), Some(sha)) if audit::content_sha256(&subject, &body) == sha => {}
                (Some(_), Some(_)) => return broken("the message's text is not the text that was hashed"),
                (None, _) => return broken("the event's message is gone"),
                (Some(_), None) => return broken("the message's content hash is missing"),
            }
        }
        prev = link.hash;
        checked += 1;
    }
    Ok(Ok(checked))
}

/// Checks every ticket's chain: the number of events checked, or the first broken link.
#[tracing::instrument(level = "debug", skip_all)]
pub fn verify_database(conn: &mut AnyConnection, desk: &Desk) -> Result<Result<usize, Broken>, ServiceError> {
    let mut checked = 0;
    for id in chain::ticket_ids(conn)? {
        match verify_ticket(conn, desk, id)? {
            Ok(n) => checked += n,
            Err(broken) => return Ok(Err(broken)),
        }
    }
    Ok(Ok(checked))
}
