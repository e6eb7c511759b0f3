//! The hash chain's rows (`event_hashes`): appended with each event, in its transaction, and
//! read back to export and verify (docs/reference.md#four-eyes-and-the-audit-trail).

use super::memo::ChainHead;
use super::rows::EventRow;
use super::schema::{event_hashes, events, messages, tickets};
use super::{AnyConnection, settings};
use crate::domain::audit::{self, ChainedEvent, GENESIS};
use crate::domain::event::EventType;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

mod backfill;
pub use backfill::{BACKFILLED_KEY, BATCH_TICKETS, CURSOR_KEY, Step, backfill, backfill_step};

/// The settings key holding the ticket prefix the chain names new tickets with (written by
/// every command that migrates, read by every writer, `mailgate` included).
pub const PREFIX_KEY: &str = "ticket_prefix";

/// Records the ticket prefix for the chain (each start: the prefix in force now).
pub fn record_prefix(conn: &mut AnyConnection, prefix: &str) -> QueryResult<()> {
    if settings::get(conn, PREFIX_KEY)?.as_deref() == Some(prefix) {
        return Ok(());
    }
    use super::schema::settings::dsl as s;
    use diesel::result::{DatabaseErrorKind, Error};
    super::write_transaction(conn, |conn| {
        diesel::delete(s::settings.filter(s::key.eq(PREFIX_KEY))).execute(conn)?;
        match diesel::insert_into(s::settings)
            .values((s::key.eq(PREFIX_KEY), s::value.eq(prefix)))
            .execute(conn)
        {
            // Another instance starting at the same moment wrote it first.
            Ok(_) | Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(()),
            Err(e) => Err(e),
        }
    })
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = event_hashes)]
pub struct HashRow {
    pub event_id: i64,
    pub ticket_id: i64,
    pub ticket_ref: String,
    pub content_sha256: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// What one event is, as the chain sees it (before its hash is known).
pub struct Appended<'a> {
    pub id: i64,
    pub ticket_id: i64,
    pub event_type: &'a str,
    pub actor: &'a str,
    pub data: &'a Value,
    pub content: Content<'a>,
    pub at: NaiveDateTime,
}

/// The message an event is about, as the chain hashes it: its subject and body as stored.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// The event is about no message.
    None,
    /// A stored message: its text is read back.
    Stored(i64),
    /// A message this transaction has just written (its id), with the text it wrote: not read
    /// back.
    Written { id: i64, subject: &'a str, body: &'a str },
}

impl Content<'_> {
    /// The id of the message the event points at (the event's `message_ref`).
    pub fn message_ref(&self) -> Option<i64> {
        match *self {
            Content::None => None,
            Content::Stored(id) | Content::Written { id, .. } => Some(id),
        }
    }
}

/// Appends the event's link to its ticket's chain. The caller holds the ticket's row lock
/// (PostgreSQL) or the write lock (SQLite), so the previous link cannot change meanwhile and
/// two writers never fork the chain.
pub fn append(conn: &mut AnyConnection, e: &Appended) -> QueryResult<()> {
    let last = match super::memo::chain_head(conn, e.ticket_id) {
        Some(ChainHead::Link { ticket_ref, hash }) => Some((ticket_ref, hash)),
        Some(ChainHead::Empty) => None,
        None => last_link(conn, e.ticket_id)?,
    };
    let (ticket_ref, prev_hash) = match last {
        Some(found) => found,
        None => (ticket_ref_for(conn, e.ticket_id)?, GENESIS.to_string()),
    };
    let content = match e.content {
        Content::None => None,
        Content::Stored(id) => message_sha256(conn, id)?,
        Content::Written { subject, body, .. } => Some(audit::content_sha256(subject, body)),
    };
    let at = audit::format_at(e.at);
    let event = ChainedEvent {
        id: e.id,
        ticket: &ticket_ref,
        event_type: e.event_type,
        actor: e.actor,
        at: &at,
        data: e.data,
        content_sha256: content.as_deref(),
    };
    let hash = event.hash(&prev_hash);
    insert_link(conn, &event, e.ticket_id, &prev_hash, &hash)
}

/// The chain's last link: the name it gives the ticket, and the link's hash.
fn last_link(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<Option<(String, String)>> {
    // The newest link, found by its id in a subquery: one statement, kept prepared. `.first()`
    // binds its LIMIT, and SQLite prepares such a statement again at every use
    // (super::at_most_one); two statements would cost PostgreSQL a round trip more.
    let newest = diesel::alias!(event_hashes as newest);
    super::at_most_one(
        event_hashes::table
            .filter(
                event_hashes::event_id.nullable().eq(newest
                    .filter(newest.field(event_hashes::ticket_id).eq(ticket_id))
                    .select(diesel::dsl::max(newest.field(event_hashes::event_id)))
                    .single_value()),
            )
            .select((event_hashes::ticket_ref, event_hashes::hash))
            .load(conn),
    )
}

/// Stores `event`'s link of ticket `ticket_id`'s chain: the hash of the event over `prev_hash`.
/// The transaction remembers it as the chain's last link (`memo`): its next event on the ticket
/// does not read it back.
fn insert_link(
    conn: &mut AnyConnection,
    event: &ChainedEvent<'_>,
    ticket_id: i64,
    prev_hash: &str,
    hash: &str,
) -> QueryResult<()> {
    on_backend!(&mut *conn, |c| diesel::insert_into(event_hashes::table)
        .values((
            event_hashes::event_id.eq(event.id),
            event_hashes::ticket_id.eq(ticket_id),
            event_hashes::ticket_ref.eq(event.ticket),
            event_hashes::content_sha256.eq(event.content_sha256),
            event_hashes::prev_hash.eq(prev_hash),
            event_hashes::hash.eq(hash),
        ))
        .execute(c))?;
    let head = ChainHead::Link {
        ticket_ref: event.ticket.to_string(),
        hash: hash.to_string(),
    };
    super::memo::set_chain_head(conn, ticket_id, head);
    Ok(())
}

fn ticket_ref_for(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<String> {
    let prefix = match super::memo::prefix(conn) {
        Some(known) => known,
        None => {
            let prefix = settings::get(conn, PREFIX_KEY)?.unwrap_or_else(|| "RD".into());
            super::memo::set_prefix(conn, &prefix);
            prefix
        }
    };
    Ok(format!("{prefix}-{ticket_id}"))
}

/// The content hash of a stored message's text as it is now.
pub fn message_sha256(conn: &mut AnyConnection, message_id: i64) -> QueryResult<Option<String>> {
    Ok(super::at_most_one(
        messages::table
            .find(message_id)
            .select((messages::subject, messages::body))
            .load::<(String, String)>(conn),
    )?
    .map(|(subject, body)| audit::content_sha256(&subject, &body)))
}

/// One place in a ticket's chain: an event and its link, either of which may be missing.
pub struct ChainEntry {
    pub id: i64,
    pub event: Option<EventRow>,
    pub link: Option<HashRow>,
}

/// One ticket's events with their links, oldest first. A link whose event is gone is kept as
/// an event-less entry: the verifier reports it.
pub fn chain_of(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<Vec<ChainEntry>> {
    let events: Vec<EventRow> = events::table
        .filter(events::ticket_id.eq(ticket_id))
        .order(events::id.asc())
        .select(EventRow::as_select())
        .load(conn)?;
    let mut links: std::collections::HashMap<i64, HashRow> = event_hashes::table
        .filter(event_hashes::ticket_id.eq(ticket_id))
        .select(HashRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|h| (h.event_id, h))
        .collect();
    let mut out: Vec<ChainEntry> = events
        .into_iter()
        .map(|e| ChainEntry {
            id: e.id,
            link: links.remove(&e.id),
            event: Some(e),
        })
        .collect();
    out.extend(links.into_values().map(|link| ChainEntry {
        id: link.event_id,
        event: None,
        link: Some(link),
    }));
    out.sort_by_key(|entry| entry.id);
    Ok(out)
}

/// Ids of every ticket that has events or links, in order (for `audit verify`).
pub fn ticket_ids(conn: &mut AnyConnection) -> QueryResult<Vec<i64>> {
    let mut ids: Vec<i64> = tickets::table.select(tickets::id).order(tickets::id.asc()).load(conn)?;
    // Links whose ticket is gone are checked too (their events are gone with it).
    let orphans: Vec<i64> = event_hashes::table
        .select(event_hashes::ticket_id)
        .distinct()
        .load(conn)?;
    ids.extend(orphans);
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The message text of each message event, for checking it against its content hash:
/// (subject, body, erased).
pub fn message_text(conn: &mut AnyConnection, message_id: i64) -> QueryResult<Option<(String, String, bool)>> {
    Ok(messages::table
        .find(message_id)
        .select((messages::subject, messages::body, messages::redacted_at))
        .first::<(String, String, Option<NaiveDateTime>)>(conn)
        .optional()?
        .map(|(s, b, r)| (s, b, r.is_some())))
}

/// The `directory_change` events of these tickets, newest first (an account's page).
pub fn directory_changes(conn: &mut AnyConnection, ticket_ids: &[i64]) -> QueryResult<Vec<EventRow>> {
    events::table
        .filter(events::ticket_id.eq_any(ticket_ids))
        .filter(events::event_type.eq(EventType::DirectoryChange.as_str()))
        .order(events::id.desc())
        .limit(200)
        .select(EventRow::as_select())
        .load(conn)
}
