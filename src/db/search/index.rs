//! Keeping the search index in step: a ticket's whole entry written when the ticket is opened
//! or a message of it erased, a new message's words added to it, each at most once per
//! transaction, in the transaction that changed what the entry holds. SQLite keeps one FTS5
//! row per message (`sqlite.rs`), PostgreSQL one `tsvector` per ticket.

use super::AnyConnection;
use crate::domain::search::document_words;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use std::collections::BTreeMap;

/// SQLite's rows: one per message.
mod sqlite;
pub(super) use sqlite::{ROW_BITS, first_row};

/// The same for PostgreSQL: the text of each ticket's document (`$1`, the ids; its head,
/// requester and subject with a space after, then its messages), cut at 262,144 characters,
/// and how many of them it uses; the desk makes the words (`domain::search::document_words`).
/// The cut is made here so that a long thread's text never travels whole. Also what the
/// words' rebuild reads (`words_rebuild.rs`).
pub(super) const POSTGRES_WHOLE_TEXTS: &str = "SELECT d.id, left(d.head || coalesce(d.thread, ''), 262144) AS text, \
        least(length(d.head) + coalesce(length(d.thread) + 1, 0), 262144) AS indexed_chars \
    FROM (SELECT t.id, t.requester_normalized || ' ' || t.subject || ' ' AS head, ( \
            SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id) \
            FROM messages m \
            WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL \
        ) AS thread FROM tickets t WHERE t.id = ANY($1)) d ORDER BY d.id";

const POSTGRES_WRITE: &str = "INSERT INTO ticket_search (ticket_id, document, indexed_chars) \
    VALUES ($1, array_to_tsvector($2), $3) \
    ON CONFLICT (ticket_id) DO UPDATE SET document = EXCLUDED.document, indexed_chars = EXCLUDED.indexed_chars";

/// The new messages' text (`$2`, the ids) cut where the document's 262,144 characters end,
/// and the characters used after it; nothing when the document is full, or when no such
/// message is there to read (a rolled-back savepoint took it away). The document's row is
/// locked for the write that follows (its ticket is locked already: the lock order of
/// docs/architecture.md).
const POSTGRES_APPEND_TEXT: &str = "SELECT left(n.text, 262144 - s.indexed_chars) AS text, \
        least(s.indexed_chars + length(n.text) + 1, 262144) AS indexed_chars \
    FROM ticket_search s, (SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id) AS text \
        FROM messages m \
        WHERE m.ticket_id = $1 AND m.id = ANY($2) AND m.sender_role <> 'system' AND m.redacted_at IS NULL) n \
    WHERE s.ticket_id = $1 AND s.indexed_chars < 262144 AND n.text IS NOT NULL \
    FOR NO KEY UPDATE OF s";

/// Adds words to the stored document: the text goes on where the document's text ended.
const POSTGRES_APPEND: &str = "UPDATE ticket_search SET document = document || array_to_tsvector($2), \
    indexed_chars = $3 WHERE ticket_id = $1";

/// A document's text, cut, and the characters it uses.
#[derive(QueryableByName)]
struct DocumentText {
    #[diesel(sql_type = Text)]
    text: String,
    #[diesel(sql_type = Integer)]
    indexed_chars: i32,
}

/// A ticket's document text (a row of [`POSTGRES_WHOLE_TEXTS`]).
#[derive(QueryableByName)]
pub(super) struct TicketText {
    #[diesel(sql_type = BigInt)]
    pub(super) id: i64,
    #[diesel(sql_type = Text)]
    pub(super) text: String,
    #[diesel(sql_type = Integer)]
    pub(super) indexed_chars: i32,
}

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
        Owed::Whole => {
            let Some(d) = diesel::sql_query(POSTGRES_WHOLE_TEXTS)
                .bind::<Array<BigInt>, _>(vec![ticket_id])
                .get_result::<TicketText>(c)
                .optional()?
            else {
                return Ok(());
            };
            diesel::sql_query(POSTGRES_WRITE)
                .bind::<BigInt, _>(ticket_id)
                .bind::<Array<Text>, _>(document_words(&d.text))
                .bind::<Integer, _>(d.indexed_chars)
                .execute(c)
                .map(drop)
        }
        Owed::Messages(ids) => {
            let Some(n) = diesel::sql_query(POSTGRES_APPEND_TEXT)
                .bind::<BigInt, _>(ticket_id)
                .bind::<Array<BigInt>, _>(ids)
                .get_result::<DocumentText>(c)
                .optional()?
            else {
                return Ok(());
            };
            diesel::sql_query(POSTGRES_APPEND)
                .bind::<BigInt, _>(ticket_id)
                .bind::<Array<Text>, _>(document_words(&n.text))
                .bind::<Integer, _>(n.indexed_chars)
                .execute(c)
                .map(drop)
        }
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
