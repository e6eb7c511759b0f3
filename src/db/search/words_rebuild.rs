//! Making every stored PostgreSQL search document again with the desk's word rule
//! (`domain::search::document_words`), once, after migration `2026-12-11-000035_search_words`.
//!
//! Why in the desk and not in the migration: a migration can only split and lowercase with
//! PostgreSQL's `[[:alnum:]]` and `lower()`, which follow the database's locale (in a `C`
//! database no letter outside ASCII is a letter), while searches now compare the desk's words
//! as they are. Documents made by SQL would disagree with searches wherever the two rules do.
//!
//! As the audit chain's backfill does: tickets in id order, a batch per transaction that also
//! moves a cursor, so a start that was killed goes on where it stopped; the tickets of a batch
//! are locked first (the lock order of docs/architecture.md), so a reply appending its words
//! at the same moment waits and is not lost.

use super::super::{AnyConnection, locks, settings, write_transaction};
use crate::domain::search::document_words;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};

/// Set once every document has the desk's words.
pub const REBUILT_KEY: &str = "search_words_rebuilt";
/// The last ticket whose document was made again.
pub const CURSOR_KEY: &str = "search_words_cursor";
/// Documents per transaction.
const BATCH: i64 = 500;

const WRITE: &str = "UPDATE ticket_search s SET document = array_to_tsvector(string_to_array(u.words, ' ')) \
    FROM unnest($1::bigint[], $2::text[]) AS u(id, words) WHERE s.ticket_id = u.id";

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Makes every document again, from the cursor on, unless done; returns how many. Nothing to
/// do on SQLite, whose FTS5 index splits words itself.
pub fn rebuild(conn: &mut AnyConnection) -> QueryResult<usize> {
    if !matches!(conn, AnyConnection::Postgresql(_)) || settings::get(conn, REBUILT_KEY)?.is_some() {
        return Ok(0);
    }
    let mut done = 0;
    while let Some(n) = write_transaction(conn, step)? {
        done += n;
        tracing::info!(documents = done, "making the search documents' words again");
    }
    write_transaction(conn, |conn| -> QueryResult<()> {
        settings::get_or_insert(conn, REBUILT_KEY, || "1".into())?;
        diesel::sql_query("DELETE FROM settings WHERE key = $1")
            .bind::<Text, _>(CURSOR_KEY)
            .execute(conn)?;
        Ok(())
    })?;
    Ok(done)
}

/// One batch after the cursor; `None` when none is left.
fn step(conn: &mut AnyConnection) -> QueryResult<Option<usize>> {
    let cursor: i64 = settings::get(conn, CURSOR_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ids: Vec<i64> =
        diesel::sql_query("SELECT ticket_id AS id FROM ticket_search WHERE ticket_id > $1 ORDER BY ticket_id LIMIT $2")
            .bind::<BigInt, _>(cursor)
            .bind::<BigInt, _>(BATCH)
            .load::<Id>(conn)?
            .into_iter()
            .map(|r| r.id)
            .collect();
    let Some(&last) = ids.last() else {
        return Ok(None);
    };
    locks::lock_tickets(conn, &ids)?;
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(None);
    };
    let texts = diesel::sql_query(super::index::POSTGRES_WHOLE_TEXTS)
        .bind::<Array<BigInt>, _>(&ids)
        .load::<super::index::TicketText>(pg)?;
    let words: Vec<String> = texts.iter().map(|t| document_words(&t.text).join(" ")).collect();
    let written: Vec<i64> = texts.iter().map(|t| t.id).collect();
    diesel::sql_query(WRITE)
        .bind::<Array<BigInt>, _>(&written)
        .bind::<Array<Text>, _>(&words)
        .execute(pg)?;
    diesel::sql_query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind::<Text, _>(CURSOR_KEY)
    .bind::<Text, _>(last.to_string())
    .execute(pg)?;
    Ok(Some(ids.len()))
}
