//! Linking the events written before the chain existed (migration 000017). SQLite has no
//! SHA-256 in SQL, so the desk does it right after the migrations, before it serves.
//!
//! Tickets are taken in id order, a batch at a time, each batch in one transaction that also
//! moves a cursor (the last ticket whose chain is complete): a start that was killed goes on
//! after the cursor instead of starting over. A batch reads its events, links and messages with
//! one range query each, so the whole run is linear in the number of events.

use super::super::schema::{event_hashes, events, messages};
use super::super::{AnyConnection, locks, settings};
use super::{PREFIX_KEY, message_sha256};
use crate::domain::audit::{self, ChainedEvent, GENESIS};
use diesel::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The settings key set once every event written before the chain existed has its link.
pub const BACKFILLED_KEY: &str = "audit_chain_backfilled";

/// The settings key holding the id of the last ticket whose chain the backfill completed.
pub const CURSOR_KEY: &str = "audit_chain_backfill_cursor";

/// Tickets per transaction: small enough that a batch holds the write lock (SQLite) or its
/// ticket rows (PostgreSQL) briefly, large enough that the per-batch queries are few.
pub const BATCH_TICKETS: i64 = 500;

/// How often a long backfill says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The last ticket of the batch: the cursor now.
    pub last_ticket: i64,
    pub tickets: usize,
    /// Links appended.
    pub linked: usize,
}

/// Gives every event without a link its link, ticket by ticket in id order, from the cursor
/// on; once it has found no ticket left it records so and is skipped afterwards. Returns the
/// number of links appended.
pub fn backfill(conn: &mut AnyConnection) -> QueryResult<usize> {
    if settings::get(conn, BACKFILLED_KEY)?.is_some() {
        return Ok(0);
    }
    let (mut linked, mut tickets) = (0, 0);
    let mut last_said = Instant::now();
    while let Some(step) = backfill_step(conn, BATCH_TICKETS)? {
        linked += step.linked;
        tickets += step.tickets;
        if last_said.elapsed() >= PROGRESS_EVERY {
            tracing::info!(
                events = linked,
                tickets,
                last_ticket = step.last_ticket,
                "linking the audit chain of earlier events"
            );
            last_said = Instant::now();
        }
    }
    super::super::write_transaction(conn, |conn| -> QueryResult<()> {
        settings::get_or_insert(conn, BACKFILLED_KEY, || "1".into())?;
        use super::super::schema::settings::dsl as s;
        diesel::delete(s::settings.filter(s::key.eq(CURSOR_KEY))).execute(conn)?;
        Ok(())
    })?;
    Ok(linked)
}

/// Links the next `tickets` tickets with events after the cursor, and moves the cursor to the
/// last of them, in one transaction. `None` when no ticket is left (the cursor stays).
pub fn backfill_step(conn: &mut AnyConnection, tickets: i64) -> QueryResult<Option<Step>> {
    super::super::write_transaction(conn, |conn| -> QueryResult<Option<Step>> {
        let cursor = read_cursor(conn)?;
        let ids: Vec<i64> = events::table
            .filter(events::ticket_id.gt(cursor))
            .select(events::ticket_id)
            .distinct()
            .order(events::ticket_id.asc())
            .limit(tickets)
            .load(conn)?;
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            return Ok(None);
        };
        // The lock `append` expects its caller to hold, taken in id order as every writer of
        // several tickets does; the reads below come after it, so they see every link a
        // concurrent writer (or another instance's backfill) committed before.
        locks::lock_tickets(conn, &ids)?;
        let linked = link_range(conn, first, last)?;
        write_cursor(conn, last)?;
        Ok(Some(Step {
            last_ticket: last,
            tickets: ids.len(),
            linked,
        }))
    })
}

fn read_cursor(conn: &mut AnyConnection) -> QueryResult<i64> {
    // An unreadable cursor (edited by hand) only costs a full pass: missing links are found
    // again from the rows, never assumed.
    Ok(settings::get(conn, CURSOR_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn write_cursor(conn: &mut AnyConnection, last: i64) -> QueryResult<()> {
    use super::super::schema::settings::dsl as s;
    // An update of the one row (inserted once) rather than delete-and-insert: two instances
    // starting together then queue on the row instead of colliding on its key.
    let updated = diesel::update(s::settings.filter(s::key.eq(CURSOR_KEY)))
        .set(s::value.eq(last.to_string()))
        .execute(conn)?;
    if updated == 0 {
        settings::get_or_insert(conn, CURSOR_KEY, || last.to_string())?;
    }
    Ok(())
}

/// The chain's last link on one ticket as `append` would read it: the link with the highest
/// event id.
struct Tip {
    event_id: i64,
    ticket_ref: String,
    hash: String,
}

/// Appends the missing links of the tickets in `first..=last`, in event id order per ticket,
/// each computed as `append` computes it. Returns how many it appended.
fn link_range(conn: &mut AnyConnection, first: i64, last: i64) -> QueryResult<usize> {
    let links: Vec<(i64, i64, String, String)> = event_hashes::table
        .filter(event_hashes::ticket_id.between(first, last))
        .select((
            event_hashes::ticket_id,
            event_hashes::event_id,
            event_hashes::ticket_ref,
            event_hashes::hash,
        ))
        .load(conn)?;
    let mut linked = std::collections::HashSet::with_capacity(links.len());
    let mut tips: HashMap<i64, Tip> = HashMap::new();
    for (ticket_id, event_id, ticket_ref, hash) in links {
        linked.insert(event_id);
        advance(&mut tips, ticket_id, event_id, ticket_ref, hash);
    }
    let events: Vec<super::super::rows::EventRow> = events::table
        .filter(events::ticket_id.between(first, last))
        .order((events::ticket_id.asc(), events::id.asc()))
        .select(super::super::rows::EventRow::as_select())
        .load(conn)?;
    let missing: Vec<_> = events.into_iter().filter(|e| !linked.contains(&e.id)).collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let mut contents = if missing.iter().any(|e| e.message_ref.is_some()) {
        message_hashes(conn, first, last)?
    } else {
        HashMap::new()
    };
    let prefix = settings::get(conn, PREFIX_KEY)?.unwrap_or_else(|| "RD".into());
    for event in &missing {
        let content = match event.message_ref {
            Some(id) => match contents.get(&id) {
                Some(sha) => Some(sha.clone()),
                // A message filed under another ticket than its event's: read on its own.
                None => {
                    let sha = message_sha256(conn, id)?;
                    if let Some(sha) = &sha {
                        contents.insert(id, sha.clone());
                    }
                    sha
                }
            },
            None => None,
        };
        let (ticket_ref, prev_hash) = match tips.get(&event.ticket_id) {
            Some(tip) => (tip.ticket_ref.clone(), tip.hash.clone()),
            None => (format!("{prefix}-{}", event.ticket_id), GENESIS.to_string()),
        };
        // As the event was written: stored data that is not JSON is hashed as a string.
        let data: Value = serde_json::from_str(&event.data).unwrap_or_else(|_| Value::String(event.data.clone()));
        let at = audit::format_at(event.created_at);
        let link = ChainedEvent {
            id: event.id,
            ticket: &ticket_ref,
            event_type: event.event_type.as_str(),
            actor: &event.actor,
            at: &at,
            data: &data,
            content_sha256: content.as_deref(),
        };
        let hash = link.hash(&prev_hash);
        super::insert_link(conn, &link, event.ticket_id, &prev_hash, &hash)?;
        advance(&mut tips, event.ticket_id, event.id, ticket_ref, hash);
    }
    Ok(missing.len())
}

/// Makes this link the ticket's tip if it is the one with the highest event id so far.
fn advance(tips: &mut HashMap<i64, Tip>, ticket_id: i64, event_id: i64, ticket_ref: String, hash: String) {
    let tip = Tip {
        event_id,
        ticket_ref,
        hash,
    };
    match tips.get_mut(&ticket_id) {
        Some(current) if current.event_id > event_id => {}
        Some(current) => *current = tip,
        None => {
            tips.insert(ticket_id, tip);
        }
    }
}

/// The content hash of every message of these tickets, by message id.
fn message_hashes(conn: &mut AnyConnection, first: i64, last: i64) -> QueryResult<HashMap<i64, String>> {
    Ok(messages::table
        .filter(messages::ticket_id.between(first, last))
        .select((messages::id, messages::subject, messages::body))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, subject, body)| (id, audit::content_sha256(&subject, &body)))
        .collect())
}
