//! Keeping the search index in step: a ticket's whole entry written when the ticket is opened
//! or a message of it erased, a new message's words added to it, each at most once per
//! transaction, in the transaction that changed what the entry holds. SQLite keeps one FTS5
//! row per message (`sqlite.rs`), PostgreSQL one `tsvector` per ticket.

use super::AnyConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};
use std::collections::BTreeMap;

/// SQLite's rows: one per message.
mod sqlite;
pub(super) use sqlite::{ROW_BITS, first_row};

/// The same for PostgreSQL (keep in step with `migrations/postgres/…_ticket_search/up.sql`
/// and `…_search_append/up.sql`), with where the next message's text would start in the
/// document's text (`indexed_chars`: its length and the space before the next message), so
/// that appending knows how much of the 262,144 characters is left.
const POSTGRES_WRITE: &str = "INSERT INTO ticket_search (ticket_id, document, indexed_chars) \
    SELECT d.id, strip(to_tsvector('simple', \
            regexp_replace(left(d.head || coalesce(d.thread, ''), 262144), '[^[:alnum:]]+', ' ', 'g'))), \
        least(length(d.head) + coalesce(length(d.thread) + 1, 0), 262144) \
    FROM (SELECT t.id, t.requester_normalized || ' ' || t.subject || ' ' AS head, ( \
            SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id) \
            FROM messages m \
            WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL \
        ) AS thread FROM tickets t WHERE t.id = $1) d \
    ON CONFLICT (ticket_id) DO UPDATE SET document = EXCLUDED.document, indexed_chars = EXCLUDED.indexed_chars";

/// Adds the words of the ticket's messages with the given ids (`$2`) to its PostgreSQL
/// document: the same words as writing it whole, without reading or tokenising the rest of the
/// thread again. The text goes on where the document's text ended (a space between messages,
/// as the whole document has them), cut at the same 262,144 characters. A message a
/// rolled-back savepoint took away is not there to read, and adds nothing.
const POSTGRES_APPEND: &str = "UPDATE ticket_search s SET \
        document = s.document || strip(to_tsvector('simple', \
            regexp_replace(left(n.text, 262144 - s.indexed_chars), '[^[:alnum:]]+', ' ', 'g'))), \
        indexed_chars = least(s.indexed_chars + length(n.text) + 1, 262144) \
    FROM (SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id) AS text \
        FROM messages m \
        WHERE m.ticket_id = $1 AND m.id = ANY($2) AND m.sender_role <> 'system' AND m.redacted_at IS NULL) n \
    WHERE s.ticket_id = $1 AND s.indexed_chars < 262144 AND n.text IS NOT NULL";

/// What a ticket's document is still owed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owed {
    /// Written again from what is stored: a new ticket, an erased message.
    Whole,
    /// These new messages' words added (ids ascending).
    Messages(Vec<i64>),
}

impl Owed {
    fn and(self, more: Owed) -> Owed {
        match (self, more) {
            (Owed::Messages(mut ids), Owed::Messages(more)) => {
                ids.extend(more);
                Owed::Messages(ids)
            }
            _ => Owed::Whole,
        }
    }
}

/// Writes the ticket's search document again from what is stored now: after a ticket is
/// opened or a message erased. In the caller's transaction: inside
/// [`crate::db::write_transaction`] the write waits for the end of the outermost transaction
/// ([`Deferred`]), before its commit.
pub fn reindex(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<()> {
    owe(conn, ticket_id, Owed::Whole)
}

/// Adds a new message's words to its ticket's entry, as [`reindex`] would have them.
///
/// Why not [`reindex`]: writing the whole entry reads and tokenises every message of the
/// thread again, so a reply to a long thread paid for the whole thread (on PostgreSQL 75 % of
/// the database's time under ingestion; on SQLite, removing the replaced row's words with
/// secure-delete a third of an import's time, docs/benchmarks.md).
pub fn index_message(conn: &mut AnyConnection, ticket_id: i64, message_id: i64) -> QueryResult<()> {
    owe(conn, ticket_id, Owed::Messages(vec![message_id]))
}

fn owe(conn: &mut AnyConnection, ticket_id: i64, owed: Owed) -> QueryResult<()> {
    match Deferred::add(conn, ticket_id, owed) {
        None => Ok(()),
        Some(owed) => pay(conn, BTreeMap::from([(ticket_id, owed)])),
    }
}

/// Writes what is owed, in ascending ticket id.
fn pay(conn: &mut AnyConnection, owed: BTreeMap<i64, Owed>) -> QueryResult<()> {
    match conn {
        AnyConnection::Sqlite(c) => sqlite::pay(c, owed),
        AnyConnection::Postgresql(c) => owed.into_iter().try_for_each(|(id, owed)| pay_postgres(c, id, owed)),
    }
}

fn pay_postgres(c: &mut diesel::PgConnection, ticket_id: i64, owed: Owed) -> QueryResult<()> {
    match owed {
        Owed::Whole => diesel::sql_query(POSTGRES_WRITE)
            .bind::<BigInt, _>(ticket_id)
            .execute(c)
            .map(drop),
        Owed::Messages(ids) => diesel::sql_query(POSTGRES_APPEND)
            .bind::<BigInt, _>(ticket_id)
            .bind::<Array<BigInt>, _>(ids)
            .execute(c)
            .map(drop),
    }
}

thread_local! {
    /// What each open [`Deferred`] scope on this thread still owes, by the address of the
    /// connection whose transaction it is.
    static DEFERRED: std::cell::RefCell<Vec<(usize, BTreeMap<i64, Owed>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A transaction's index writes, done once per ticket at its end, in ascending ticket id.
///
/// Why (docs/benchmarks.md, "Release figures"): FTS5 keeps a transaction's new entries in
/// memory only while rowids come in ascending order; a rowid again or lower (a new ticket is
/// written when opened and again with its first message; a batch appends to older tickets)
/// flushes them into a new on-disk segment and sets off merges. Written at once, a batch of
/// 300 imported messages wrote 55,902 pages; written once each in order, one segment.
/// The document is read from what the transaction stored, so a ticket whose savepoint was
/// rolled back is written as it now stands (unchanged). Dropping the scope (an error, a
/// panic) forgets what was owed with the transaction it belonged to.
pub(in crate::db) struct Deferred {
    key: usize,
}

impl Deferred {
    /// Opens a scope for `conn`'s transaction.
    pub(in crate::db) fn begin(conn: &AnyConnection) -> Deferred {
        let key = std::ptr::from_ref(conn) as usize;
        DEFERRED.with(|d| d.borrow_mut().push((key, BTreeMap::new())));
        Deferred { key }
    }

    /// Hands `owed` to a scope of `conn`; gives it back when there is none (write it now).
    fn add(conn: &AnyConnection, ticket_id: i64, owed: Owed) -> Option<Owed> {
        let key = std::ptr::from_ref(conn) as usize;
        DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            let Some((_, pending)) = d.iter_mut().rev().find(|(k, _)| *k == key) else {
                return Some(owed);
            };
            let entry = match pending.remove(&ticket_id) {
                Some(earlier) => earlier.and(owed),
                None => owed,
            };
            pending.insert(ticket_id, entry);
            None
        })
    }

    /// Writes what is owed (call it last in the transaction, before the commit).
    pub(in crate::db) fn finish(self, conn: &mut AnyConnection) -> QueryResult<()> {
        let pending = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            d.iter()
                .rposition(|(k, _)| *k == self.key)
                .map(|at| d.remove(at).1)
                .unwrap_or_default()
        });
        pay(conn, pending)
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let _ = DEFERRED.try_with(|d| {
            let mut d = d.borrow_mut();
            if let Some(at) = d.iter().rposition(|(k, _)| *k == self.key) {
                d.remove(at);
            }
        });
    }
}

#[cfg(test)]
mod tests;
