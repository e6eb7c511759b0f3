//! The SQLite search index: one FTS5 row per message (migration
//! `2026-12-10-000034_search_by_message`, which writes the same rows for stored tickets; keep
//! the two in step).
//!
//! A ticket's rows have the rowids `ticket id × 2^20 + n`: n = 0 holds its requester's address
//! and subject, n = 1, 2, … each indexed message in order, with the requester and subject
//! again. The rowids keep a ticket's rows together and in the ticket's order, which is what
//! lets a search read matches newest ticket first and stop after a page. A reply adds one row;
//! nothing is deleted except by an erase, whose rewrite deletes the ticket's rows with
//! `secure-delete` on (the migration's setting), so erased words leave the index's pages in
//! the erasing transaction.
//!
//! Every statement writes one row: a statement that may write several opens a statement
//! savepoint, and FTS5 writes its pending entries to disk at every savepoint
//! (`fts5SavepointMethod`), a segment per ticket of a group (docs/benchmarks.md).

use super::{BodyText, HeadText, Known, Owed};
use crate::db::kept::{Kept, Value};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::SqliteConnection;

/// Rowids per ticket: `ticket id << ROW_BITS` is its first row.
pub(in crate::db::search) const ROW_BITS: u32 = 20;

/// The characters of a ticket's text that are indexed: its requester and subject, then its
/// messages, a space after each.
const MAX_CHARS: i64 = 262_144;

/// The first rowid of `ticket_id`'s rows; `None` for an id too large for the scheme (above
/// 2^43), which is not indexed.
pub(in crate::db::search) fn first_row(ticket_id: i64) -> Option<i64> {
    (0..1 << (63 - ROW_BITS))
        .contains(&ticket_id)
        .then_some(ticket_id << ROW_BITS)
}

/// The ticket's requester and subject (row 0, and the start of every message row), with the
/// characters they use of [`MAX_CHARS`] (a space after them).
fn head(ticket_id: i64) -> Kept<'static> {
    Kept::default()
        .sql(
            "SELECT requester_normalized || ' ' || subject AS text, \
             length(requester_normalized || ' ' || subject || ' ') AS chars FROM tickets WHERE id = ",
        )
        .bind(Value::BigInt(ticket_id))
}

/// What one message's row is made of: the ticket's head, the message's subject and the start
/// of its body (at most [`BODY_BYTES`] bytes, which hold its first 32,768 characters). No row
/// for the desk's automatic mail, an erased message, or a message of another ticket.
///
/// Why the cutting is done here and not with SQLite's `substr` and `length` (as the migration
/// does): those walk the text a character at a time, twice per message, 8 % of the import
/// writer's instructions (docs/benchmarks.md); a text shorter than the cut needs no walk.
fn message(message_id: i64, ticket_id: i64) -> Kept<'static> {
    Kept::default()
        .sql(
            "SELECT t.requester_normalized || ' ' || t.subject AS head, m.subject AS subject, \
             substr(CAST(m.body AS BLOB), 1, 131072) AS body \
             FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.id = ",
        )
        .bind(Value::BigInt(message_id))
        .sql(" AND m.ticket_id = ")
        .bind(Value::BigInt(ticket_id))
        .sql(" AND m.sender_role <> 'system' AND m.redacted_at IS NULL")
}

/// Bytes of a body read for its row (the `131072` of [`message`]'s SQL): 32,768 characters
/// are at most 4 bytes each.
const BODY_BYTES: usize = 4 * BODY_CHARS;
const _: () = assert!(BODY_BYTES == 131_072);
/// Characters of a message's body that are indexed.
const BODY_CHARS: usize = 32_768;

#[derive(QueryableByName)]
struct MessageText {
    #[diesel(sql_type = Text)]
    head: String,
    #[diesel(sql_type = Text)]
    subject: String,
    /// `None` for an empty body (SQLite's `substr` of an empty blob is NULL).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
    body: Option<Vec<u8>>,
}

impl MessageText {
    /// The row's text and the characters the whole message uses, exactly as the migration's
    /// SQL makes them: `head || ' ' || substr(x, 1, MAX_CHARS - used)` and `length(x)`, where
    /// `x = subject || ' ' || substr(body, 1, 32768)`.
    fn part(&self, used: i64) -> Part {
        let body = utf8_prefix(self.body.as_deref().unwrap_or_default());
        let x = format!("{} {}", self.subject, sqlite_substr(body, BODY_CHARS));
        let left = usize::try_from(MAX_CHARS - used).unwrap_or(0);
        Part {
            text: format!("{} {}", self.head, sqlite_substr(&x, left)),
            chars: sqlite_length(&x) as i64,
        }
    }
}

/// The longest valid UTF-8 start of `bytes` (a body cut at [`BODY_BYTES`] may end inside a
/// character).
fn utf8_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// SQLite's `substr(text, 1, n)`: the first `n` characters, ending early at a NUL.
fn sqlite_substr(text: &str, n: usize) -> &str {
    super::first_chars(text.find('\0').map_or(text, |nul| &text[..nul]), n)
}

/// SQLite's `length(text)`: the characters before the first NUL.
fn sqlite_length(text: &str) -> usize {
    text.find('\0').map_or(text, |nul| &text[..nul]).chars().count()
}

#[derive(QueryableByName)]
struct Part {
    #[diesel(sql_type = Text)]
    text: String,
    #[diesel(sql_type = BigInt)]
    chars: i64,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// How much of a ticket's index is written.
#[derive(QueryableByName, Debug, Clone, Copy)]
struct Extent {
    #[diesel(sql_type = BigInt)]
    message_rows: i64,
    #[diesel(sql_type = BigInt)]
    indexed_chars: i64,
}

/// Extents to record once every row is written.
#[derive(Default)]
struct Extents {
    new: Vec<(i64, Extent)>,
    moved: Vec<(i64, Extent)>,
    gone: Vec<i64>,
}

/// Writes what tickets are owed, in ascending ticket id: the ticket's rows again from what is
/// stored (opened, a message erased), or rows for its new messages (ascending). The extents are recorded after every row: a statement on another table
/// between FTS5 writes would flush FTS5's pending entries if it opened a statement savepoint
/// (an `INSERT OR REPLACE` does), and one segment per ticket is what this order avoids.
///
/// A ticket opened by this transaction is written from what the transaction stored (`known`),
/// without reading it back. A reply's row needs its ticket's head, which only a read gives.
pub(super) fn pay(c: &mut SqliteConnection, owed: Vec<(i64, Owed, Option<Known>)>) -> QueryResult<()> {
    let mut extents = Extents::default();
    for (ticket_id, owed, known) in owed {
        match (owed, known) {
            (Owed::Whole, Some(Known::Whole { head, messages })) => {
                write_opened(c, ticket_id, &head, &messages, &mut extents)?;
            }
            (Owed::Whole, _) => write_whole(c, ticket_id, &mut extents)?,
            (Owed::Messages(ids), _) => add_messages(c, ticket_id, &ids, &mut extents)?,
        }
    }
    for ticket_id in extents.gone {
        Kept::default()
            .sql("DELETE FROM ticket_search_extent WHERE ticket_id = ")
            .bind(Value::BigInt(ticket_id))
            .execute(c)?;
    }
    for (ticket_id, e) in extents.moved {
        Kept::default()
            .sql("UPDATE ticket_search_extent SET message_rows = ")
            .bind(Value::BigInt(e.message_rows))
            .sql(", indexed_chars = ")
            .bind(Value::BigInt(e.indexed_chars))
            .sql(" WHERE ticket_id = ")
            .bind(Value::BigInt(ticket_id))
            .execute(c)?;
    }
    for (ticket_id, e) in extents.new {
        Kept::default()
            .sql("INSERT INTO ticket_search_extent (ticket_id, message_rows, indexed_chars) VALUES (")
            .bind(Value::BigInt(ticket_id))
            .sql(", ")
            .bind(Value::BigInt(e.message_rows))
            .sql(", ")
            .bind(Value::BigInt(e.indexed_chars))
            .sql(")")
            .execute(c)?;
    }
    Ok(())
}

/// How much of the ticket's index is written, if any.
fn extent(c: &mut SqliteConnection, ticket_id: i64) -> QueryResult<Option<Extent>> {
    Kept::default()
        .sql("SELECT message_rows, indexed_chars FROM ticket_search_extent WHERE ticket_id = ")
        .bind(Value::BigInt(ticket_id))
        .get_result::<Extent>(c)
        .optional()
}

/// Writes the ticket's rows again from what is stored. A ticket that is gone loses its rows.
fn write_whole(c: &mut SqliteConnection, ticket_id: i64, extents: &mut Extents) -> QueryResult<()> {
    let Some(first) = first_row(ticket_id) else {
        tracing::warn!(ticket_id, "ticket id too large for the search index; not indexed");
        return Ok(());
    };
    let stale = Kept::default()
        .sql("SELECT rowid AS id FROM ticket_search WHERE rowid >= ")
        .bind(Value::BigInt(first))
        .sql(" AND rowid < ")
        .bind(Value::BigInt(first + (1 << ROW_BITS)))
        .load::<Id>(c)?;
    for row in stale {
        Kept::default()
            .sql("DELETE FROM ticket_search WHERE rowid = ")
            .bind(Value::BigInt(row.id))
            .execute(c)?;
    }
    let had = extent(c, ticket_id)?.is_some();
    let head = head(ticket_id).get_result::<Part>(c).optional()?;
    let Some(head) = head else {
        if had {
            extents.gone.push(ticket_id);
        }
        return Ok(());
    };
    insert_row(c, first, &head.text)?;
    let messages = Kept::default()
        .sql("SELECT id FROM messages WHERE ticket_id = ")
        .bind(Value::BigInt(ticket_id))
        .sql(" AND sender_role <> 'system' AND redacted_at IS NULL ORDER BY id")
        .load::<Id>(c)?;
    let start = Extent {
        message_rows: 0,
        indexed_chars: head.chars.min(MAX_CHARS),
    };
    let ids: Vec<i64> = messages.into_iter().map(|m| m.id).collect();
    let written = append(c, ticket_id, first, start, &ids)?;
    if had {
        extents.moved.push((ticket_id, written));
    } else {
        extents.new.push((ticket_id, written));
    }
    Ok(())
}

/// Writes the rows of a ticket this transaction opened, as [`write_whole`] would read them: a
/// new ticket's id was never used before (`AUTOINCREMENT`), so it has no rows and no extent
/// to replace.
fn write_opened(
    c: &mut SqliteConnection,
    ticket_id: i64,
    head: &HeadText,
    messages: &[(i64, BodyText)],
    extents: &mut Extents,
) -> QueryResult<()> {
    let Some(first) = first_row(ticket_id) else {
        tracing::warn!(ticket_id, "ticket id too large for the search index; not indexed");
        return Ok(());
    };
    let head_text = format!("{} {}", head.requester, head.subject);
    let head_chars = sqlite_length(&format!("{head_text} ")) as i64;
    insert_row(c, first, &head_text)?;
    let start = Extent {
        message_rows: 0,
        indexed_chars: head_chars.min(MAX_CHARS),
    };
    let written = append_rows(c, first, start, messages, |_, (_, m)| {
        Ok(Some(MessageText {
            head: head_text.clone(),
            subject: m.subject.clone(),
            body: Some(m.body.as_bytes().to_vec()),
        }))
    })?;
    extents.new.push((ticket_id, written));
    Ok(())
}

/// Adds rows for the ticket's new messages `ids` (ascending), after the rows it has.
fn add_messages(c: &mut SqliteConnection, ticket_id: i64, ids: &[i64], extents: &mut Extents) -> QueryResult<()> {
    let (Some(before), Some(first)) = (extent(c, ticket_id)?, first_row(ticket_id)) else {
        // Not indexed yet (or not indexable): all of it.
        return write_whole(c, ticket_id, extents);
    };
    let now = append(c, ticket_id, first, before, ids)?;
    if now.message_rows != before.message_rows || now.indexed_chars != before.indexed_chars {
        extents.moved.push((ticket_id, now));
    }
    Ok(())
}

/// Writes a row for each of the messages `ids` that is indexed, while characters are left.
fn append(c: &mut SqliteConnection, ticket_id: i64, first: i64, extent: Extent, ids: &[i64]) -> QueryResult<Extent> {
    append_rows(c, first, extent, ids, |c, &id| {
        message(id, ticket_id).get_result::<MessageText>(c).optional()
    })
}

/// Writes a row for each message of `messages` that has a text (`text_of`, asked only while
/// characters are left), after the rows `extent` counts.
fn append_rows<M>(
    c: &mut SqliteConnection,
    first: i64,
    mut extent: Extent,
    messages: &[M],
    mut text_of: impl FnMut(&mut SqliteConnection, &M) -> QueryResult<Option<MessageText>>,
) -> QueryResult<Extent> {
    for m in messages {
        // The cap on characters also bounds the rows: each message uses at least two.
        if extent.indexed_chars >= MAX_CHARS || extent.message_rows + 1 >= 1 << ROW_BITS {
            break;
        }
        let row = text_of(c, m)?;
        let Some(part) = row.map(|row| row.part(extent.indexed_chars)) else {
            continue;
        };
        extent.message_rows += 1;
        insert_row(c, first + extent.message_rows, &part.text)?;
        extent.indexed_chars = (extent.indexed_chars + part.chars + 1).min(MAX_CHARS);
    }
    Ok(extent)
}

fn insert_row(c: &mut SqliteConnection, rowid: i64, text: &str) -> QueryResult<()> {
    Kept::default()
        .sql("INSERT INTO ticket_search (rowid, document) VALUES (")
        .bind(Value::BigInt(rowid))
        .sql(", ")
        .bind(Value::Text(text))
        .sql(")")
        .execute(c)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::Connection;
    use proptest::prelude::*;

    #[derive(QueryableByName)]
    struct Sqlite {
        #[diesel(sql_type = Text)]
        cut: String,
        #[diesel(sql_type = BigInt)]
        chars: i64,
    }

    /// What SQLite's own `substr(t, 1, n)` and `length(t)` give.
    fn sqlite(c: &mut SqliteConnection, text: &str, n: usize) -> (String, usize) {
        let r: Sqlite = diesel::sql_query("SELECT substr(?1, 1, ?2) AS cut, length(?1) AS chars")
            .bind::<Text, _>(text)
            .bind::<BigInt, _>(n as i64)
            .get_result(c)
            .unwrap();
        (r.cut, r.chars as usize)
    }

    proptest! {
        /// The cut and the count are SQLite's, for texts of every width of character, with
        /// NULs, and cuts before, inside and past the end.
        #[test]
        fn the_cut_and_the_count_are_sqlites(
            text in proptest::collection::vec(prop_oneof![
                Just('a'), Just(' '), Just('\0'), Just('é'), Just('€'), Just('𝄞'), any::<char>()
            ], 0..40).prop_map(|c| c.into_iter().collect::<String>()),
            n in 0usize..45,
        ) {
            let mut c = SqliteConnection::establish(":memory:").unwrap();
            let (cut, chars) = sqlite(&mut c, &text, n);
            prop_assert_eq!(sqlite_substr(&text, n), cut.as_str());
            prop_assert_eq!(sqlite_length(&text), chars);
        }
    }

    #[test]
    fn a_body_cut_inside_a_character_keeps_the_characters_before_it() {
        let body = "é".repeat(3).into_bytes();
        assert_eq!(utf8_prefix(&body[..5]), "éé");
        assert_eq!(utf8_prefix(&body), "ééé");
        assert_eq!(utf8_prefix(&[]), "");
    }

    /// The first 32,768 characters always fit the bytes read, whatever their width.
    #[test]
    fn the_bytes_read_hold_the_characters_indexed() {
        let widest = "𝄞".repeat(BODY_CHARS + 10);
        let read = &widest.as_bytes()[..BODY_BYTES];
        assert_eq!(
            sqlite_substr(utf8_prefix(read), BODY_CHARS),
            sqlite_substr(&widest, BODY_CHARS)
        );
    }
}
