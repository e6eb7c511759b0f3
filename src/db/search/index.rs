//! Keeping the search index in step: a ticket's whole entry written when the ticket is opened
//! or a message of it erased, a new message's words added to it, each at most once per
//! transaction, in the transaction that changed what the entry holds. SQLite keeps one FTS5
//! row per message (`sqlite.rs`), PostgreSQL one `tsvector` per ticket.

use super::AnyConnection;
use crate::db::kept::{Kept, Value};
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

/// A ticket's whole document, written: a statement kept prepared ([`Kept`]), its words bound
/// as one text split by PostgreSQL at the spaces (a word is letters and digits, never a
/// space). Its plan reads no table (the conflict is found through the primary key whatever
/// the plan), so a kept plan cannot go stale; planned at every use, parsing and planning were
/// 50 µs of the server's time per received message (docs/benchmarks.md).
fn write_whole_document(
    c: &mut diesel::PgConnection,
    ticket_id: i64,
    words: &[String],
    indexed_chars: i32,
) -> QueryResult<()> {
    let words = words.join(" ");
    Kept::default()
        .sql("INSERT INTO ticket_search (ticket_id, document, indexed_chars) VALUES (")
        .bind(Value::BigInt(ticket_id))
        .sql(", array_to_tsvector(string_to_array(")
        .bind(Value::Text(&words))
        .sql(", ' ')), ")
        .bind(Value::Integer(indexed_chars))
        .sql(
            ") ON CONFLICT (ticket_id) DO UPDATE \
             SET document = EXCLUDED.document, indexed_chars = EXCLUDED.indexed_chars",
        )
        .execute(c)
        .map(drop)
}

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
/// Planned at every use (`sql_query`): a plan kept from a small table could scan it whole
/// as it grows.
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
                // Once each, ascending: after a savepoint rolled back, SQLite gives its
                // message's id again (`AUTOINCREMENT`'s counter went back with it).
                ids.extend(more);
                ids.sort_unstable();
                ids.dedup();
                Owed::Messages(ids)
            }
            _ => Owed::Whole,
        }
    }
}

/// Writes the ticket's search document again from what is stored now: after a message is
/// erased. In the caller's transaction: inside [`crate::db::write_transaction`] the write waits
/// for the end of the outermost transaction ([`Deferred`]), before its commit.
pub fn reindex(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<()> {
    // What this transaction stored of the ticket's text no longer says what it is.
    super::super::memo::forget_search_texts(conn, ticket_id);
    owe(conn, ticket_id, Owed::Whole)
}

/// Writes the search document of a ticket just opened, with its requester's address and
/// subject as stored (and the messages the transaction adds to it).
pub fn index_opened(
    conn: &mut AnyConnection,
    ticket_id: i64,
    requester_normalized: &str,
    subject: &str,
) -> QueryResult<()> {
    let head = HeadText {
        requester: requester_normalized.to_string(),
        subject: subject.to_string(),
    };
    super::super::memo::set_search_head(conn, ticket_id, head);
    owe(conn, ticket_id, Owed::Whole)
}

/// Adds a new message's words to its ticket's entry, as [`reindex`] would have them.
///
/// Why not [`reindex`]: writing the whole entry reads and tokenises every message of the
/// thread again, so a reply to a long thread paid for the whole thread (on PostgreSQL 75 % of
/// the database's time under ingestion; on SQLite, removing the replaced row's words with
/// secure-delete a third of an import's time, docs/benchmarks.md).
///
/// The message's `subject` and the start of its `body`, as stored, are kept with the
/// transaction where they spare a read: on PostgreSQL, and on SQLite for a ticket the
/// transaction opened (a reply's row there needs its ticket's head, read anyway). A savepoint
/// rolled back forgets them with the message (`memo`).
pub fn index_message(
    conn: &mut AnyConnection,
    ticket_id: i64,
    message_id: i64,
    subject: &str,
    body: &str,
) -> QueryResult<()> {
    use super::super::memo;
    if matches!(conn, AnyConnection::Postgresql(_)) || memo::opened_here(conn, ticket_id) {
        let text = BodyText {
            subject: subject.to_string(),
            body: first_chars(body, MESSAGE_BODY_CHARS).to_string(),
        };
        memo::set_search_message(conn, ticket_id, message_id, text);
    }
    owe(conn, ticket_id, Owed::Messages(vec![message_id]))
}

/// What a ticket's search text starts with, as stored: its requester's address and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::db) struct HeadText {
    pub(in crate::db) requester: String,
    pub(in crate::db) subject: String,
}

/// What an indexed message adds to it, as stored: its subject and the first
/// [`MESSAGE_BODY_CHARS`] characters of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::db) struct BodyText {
    pub(in crate::db) subject: String,
    pub(in crate::db) body: String,
}

/// Characters of a message's body in the document (the `32768` of the SQL above).
const MESSAGE_BODY_CHARS: usize = 32_768;
/// Characters of a document (the `262144` of the SQL above).
const DOCUMENT_CHARS: usize = 262_144;

/// PostgreSQL's `left(text, n)`: the first `n` characters.
fn first_chars(text: &str, n: usize) -> &str {
    if text.len() <= n {
        return text;
    }
    text.char_indices().nth(n).map_or(text, |(at, _)| &text[..at])
}

/// A ticket's document text and the characters it uses, made as [`POSTGRES_WHOLE_TEXTS`]
/// makes them, from the head and the messages' texts (in the order of their ids).
fn whole_text(head: &HeadText, messages: &[(i64, BodyText)]) -> (String, i32) {
    let head = format!("{} {} ", head.requester, head.subject);
    let texts: Vec<&BodyText> = messages.iter().map(|(_, text)| text).collect();
    let thread = (!texts.is_empty()).then(|| thread_text(&texts));
    let used = head.chars().count() + thread.as_deref().map_or(0, |t| t.chars().count() + 1);
    let full = format!("{head}{}", thread.unwrap_or_default());
    (first_chars(&full, DOCUMENT_CHARS).to_string(), chars_used(used))
}

/// The text added by new messages (in the order of their ids) to a document that uses
/// `indexed_chars`, and the characters it uses after, as [`POSTGRES_APPEND_TEXT`] makes them.
fn appended_text(indexed_chars: i32, messages: &[&BodyText]) -> (String, i32) {
    let text = thread_text(messages);
    let room = DOCUMENT_CHARS.saturating_sub(usize::try_from(indexed_chars).unwrap_or(0));
    let used = usize::try_from(indexed_chars).unwrap_or(0) + text.chars().count() + 1;
    (first_chars(&text, room).to_string(), chars_used(used))
}

/// `string_agg(subject || ' ' || left(body, 32768), ' ' ORDER BY id)`.
fn thread_text(messages: &[&BodyText]) -> String {
    messages
        .iter()
        .map(|m| format!("{} {}", m.subject, m.body))
        .collect::<Vec<_>>()
        .join(" ")
}

fn chars_used(n: usize) -> i32 {
    i32::try_from(n.min(DOCUMENT_CHARS)).unwrap_or(i32::MAX)
}

fn owe(conn: &mut AnyConnection, ticket_id: i64, owed: Owed) -> QueryResult<()> {
    match Deferred::add(conn, ticket_id, owed) {
        None => Ok(()),
        Some(owed) => pay(conn, BTreeMap::from([(ticket_id, owed)])),
    }
}

/// Writes what is owed, in ascending ticket id.
fn pay(conn: &mut AnyConnection, owed: BTreeMap<i64, Owed>) -> QueryResult<()> {
    let owed: Vec<(i64, Owed, Option<Known>)> = owed
        .into_iter()
        .map(|(id, owed)| {
            let known = known_texts(conn, id, &owed);
            (id, owed, known)
        })
        .collect();
    match conn {
        AnyConnection::Sqlite(c) => sqlite::pay(c, owed),
        AnyConnection::Postgresql(c) => owed
            .into_iter()
            .try_for_each(|(id, owed, known)| pay_postgres(c, id, owed, known)),
    }
}

/// What the transaction knows of the text a ticket is owed, so that nothing is read back.
enum Known {
    /// Opened in this transaction: its head and every indexed message it got here.
    Whole {
        head: HeadText,
        messages: Vec<(i64, BodyText)>,
    },
    /// Each of the new messages' texts, in the order of their ids.
    Messages(Vec<BodyText>),
}

/// `None` when any part was not stored by this transaction as it stands (a ticket opened
/// before it, a message erased, a savepoint rolled back): then the text is read.
fn known_texts(conn: &AnyConnection, ticket_id: i64, owed: &Owed) -> Option<Known> {
    use super::super::memo;
    match owed {
        Owed::Whole => memo::take_search_head(conn, ticket_id).map(|head| Known::Whole {
            head,
            messages: memo::take_search_messages_of(conn, ticket_id),
        }),
        Owed::Messages(ids) => ids
            .iter()
            .map(|id| memo::take_search_message(conn, ticket_id, *id))
            .collect::<Option<Vec<_>>>()
            .map(Known::Messages),
    }
}

/// The document's characters used, its row locked for the write that follows (as
/// [`POSTGRES_APPEND_TEXT`] locks it); nothing when it is full.
const POSTGRES_DOCUMENT_ROOM: &str =
    "SELECT indexed_chars FROM ticket_search WHERE ticket_id = $1 AND indexed_chars < 262144 FOR NO KEY UPDATE";

#[derive(QueryableByName)]
struct Room {
    #[diesel(sql_type = Integer)]
    indexed_chars: i32,
}

/// How a ticket's document is written on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Whole, replacing what was there.
    Whole,
    /// The words of new messages added to it.
    Added,
}

fn pay_postgres(c: &mut diesel::PgConnection, ticket_id: i64, owed: Owed, known: Option<Known>) -> QueryResult<()> {
    // How the document is written, the text whose words are written, and the characters
    // then used.
    let (write, text, indexed_chars) = match (owed, known) {
        (Owed::Whole, Some(Known::Whole { head, messages })) => {
            let (text, indexed_chars) = whole_text(&head, &messages);
            (Write::Whole, text, indexed_chars)
        }
        (Owed::Messages(_), Some(Known::Messages(texts))) => {
            let Some(room) = diesel::sql_query(POSTGRES_DOCUMENT_ROOM)
                .bind::<BigInt, _>(ticket_id)
                .get_result::<Room>(c)
                .optional()?
            else {
                return Ok(());
            };
            let (text, indexed_chars) = appended_text(room.indexed_chars, &texts.iter().collect::<Vec<_>>());
            (Write::Added, text, indexed_chars)
        }
        (Owed::Whole, _) => {
            let Some(d) = diesel::sql_query(POSTGRES_WHOLE_TEXTS)
                .bind::<Array<BigInt>, _>(vec![ticket_id])
                .get_result::<TicketText>(c)
                .optional()?
            else {
                return Ok(());
            };
            (Write::Whole, d.text, d.indexed_chars)
        }
        (Owed::Messages(ids), _) => {
            let Some(n) = diesel::sql_query(POSTGRES_APPEND_TEXT)
                .bind::<BigInt, _>(ticket_id)
                .bind::<Array<BigInt>, _>(ids)
                .get_result::<DocumentText>(c)
                .optional()?
            else {
                return Ok(());
            };
            (Write::Added, n.text, n.indexed_chars)
        }
    };
    let words = document_words(&text);
    if write == Write::Whole {
        return write_whole_document(c, ticket_id, &words, indexed_chars);
    }
    diesel::sql_query(POSTGRES_APPEND)
        .bind::<BigInt, _>(ticket_id)
        .bind::<Array<Text>, _>(words)
        .bind::<Integer, _>(indexed_chars)
        .execute(c)
        .map(drop)
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
