//! The word search on PostgreSQL.
//!
//! PostgreSQL's GIN index answers "which documents hold these words" in no order, and slowly
//! for common words (it intersects posting lists of hundreds of thousands of entries: 35–70 ms
//! at a million tickets for two or three common words); walking the documents newest first
//! answers common words within a page but reads the whole table for a word no ticket has. The
//! planner cannot tell the two apart for a word outside its statistics. So the walk goes first,
//! over bounded windows of the newest documents, and only what it leaves open is asked of the
//! GIN index (docs/benchmarks.md, "Release figures, 2026-12-06 (PostgreSQL)").

use super::{AnyConnection, Id, SearchFilter, bind_all, filter_clauses, id_list, page_of};
use crate::db::schema::tickets;
use crate::domain::search::SearchText;
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

/// Ids (so at most that many documents) read newest first before the index is asked: words
/// in one ticket of 40 fill a page of 51 within the first window (under 1 ms at a
/// million); the second is read only when the first found matches, so that the rest of the
/// page is likely near.
const WINDOWS: [i64; 2] = [2_000, 20_000];

/// At most this many matches are taken from the GIN index and paged here; with more, the
/// words are common enough for the walk to find a page soon.
const FEW_MATCHES: i64 = 5_000;

/// Ticket ids looked up per query when the index's matches are paged through the filters.
const CHUNK: usize = 500;

/// The search's words against the stored lexemes as they are: both sides are made by the
/// desk's one rule (`domain::search`), so PostgreSQL's parser and its locale have no say.
const MATCH: &str = "@@ $1::tsquery";

fn pg(conn: &mut AnyConnection) -> &mut PgConnection {
    match conn {
        AnyConnection::Postgresql(c) => c,
        AnyConnection::Sqlite(_) => unreachable!("the PostgreSQL search runs on PostgreSQL only"),
    }
}

pub(super) fn word_matches(conn: &mut AnyConnection, text: &SearchText, f: &SearchFilter) -> QueryResult<Vec<i64>> {
    let Some((lowest, highest)) = id_range(pg(conn))? else {
        return Ok(Vec::new());
    };
    if f.limit <= 0 {
        return Ok(Vec::new());
    }
    let words = text.tsquery();
    let mut found: Vec<i64> = Vec::new();
    // Every document with an id below `below` is still to be read. Ticket ids come from a
    // sequence: a window of ids holds at most that many documents.
    let mut below = f.before_id.map_or(highest + 1, |b| b.min(highest + 1));
    for (i, window) in WINDOWS.into_iter().enumerate() {
        if below <= lowest || (i > 0 && found.is_empty()) {
            break;
        }
        let from = below.saturating_sub(window);
        found.extend(walk(
            pg(conn),
            &words,
            f,
            Some((from, below)),
            f.limit - found.len() as i64,
        )?);
        if found.len() as i64 >= f.limit {
            return Ok(found);
        }
        below = from;
    }
    if below <= lowest {
        return Ok(found);
    }
    let mut few = index_matches(pg(conn), &words, below)?;
    if few.len() as i64 > FEW_MATCHES {
        let rest = SearchFilter {
            before_id: Some(below),
            ..f.clone()
        };
        found.extend(walk(pg(conn), &words, &rest, None, f.limit - found.len() as i64)?);
        return Ok(found);
    }
    few.sort_unstable_by(|a, b| b.cmp(a));
    for chunk in few.chunks(CHUNK) {
        let rest = SearchFilter {
            limit: f.limit - found.len() as i64,
            ..f.clone()
        };
        found.extend(page_of(conn, Box::new(tickets::id.eq_any(chunk.to_vec())), &rest)?);
        if found.len() as i64 >= f.limit {
            break;
        }
    }
    Ok(found)
}

/// The matches narrowed by `f`, newest first, at most `limit`: among the documents with
/// ids in `window` (from, below), or among all of them with `None`.
fn walk(
    c: &mut PgConnection,
    words: &str,
    f: &SearchFilter,
    window: Option<(i64, i64)>,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    // The window is a subquery with a LIMIT: PostgreSQL reads it by the primary key,
    // newest first, and cannot turn it into a scan of the GIN index or of the table.
    let (source, bounds, f) = match window {
        Some((from, below)) => (
            format!(
                "(SELECT ticket_id, document FROM ticket_search WHERE ticket_id >= $2 AND ticket_id < $3 \
                 ORDER BY ticket_id DESC LIMIT {})",
                below - from
            ),
            vec![from, below],
            SearchFilter {
                before_id: None,
                limit,
                ..f.clone()
            },
        ),
        None => ("ticket_search".to_string(), vec![], SearchFilter { limit, ..f.clone() }),
    };
    let offset = bounds.len();
    let (clauses, limit_param) = filter_clauses(&f, "s.ticket_id", |k| format!("${}", k + offset));
    let sql = format!(
        "SELECT s.ticket_id AS id FROM {source} s JOIN tickets ON tickets.id = s.ticket_id \
         WHERE s.document {MATCH}{clauses} ORDER BY s.ticket_id DESC LIMIT {limit_param}"
    );
    let query = diesel::sql_query(sql).into_boxed::<Pg>();
    bind_all(query, words.to_string(), &bounds, &f)
        .load::<Id>(c)
        .map(id_list)
}

#[derive(QueryableByName)]
struct Range {
    #[diesel(sql_type = Nullable<BigInt>)]
    lowest: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    highest: Option<i64>,
}

/// The smallest and the largest id in the index (two reads of its primary key), `None`
/// when it is empty.
fn id_range(c: &mut PgConnection) -> QueryResult<Option<(i64, i64)>> {
    let r: Range = diesel::sql_query("SELECT min(ticket_id) AS lowest, max(ticket_id) AS highest FROM ticket_search")
        .get_result(c)?;
    Ok(r.lowest.zip(r.highest))
}

/// Up to `FEW_MATCHES + 1` ids of the documents below `below` holding every word, from
/// the GIN index, in no order.
fn index_matches(c: &mut PgConnection, words: &str, below: i64) -> QueryResult<Vec<i64>> {
    diesel::sql_query(format!(
        "SELECT ticket_id AS id FROM ticket_search WHERE document {MATCH} AND ticket_id < $2 LIMIT {}",
        FEW_MATCHES + 1
    ))
    .bind::<Text, _>(words.to_string())
    .bind::<BigInt, _>(below)
    .load::<Id>(c)
    .map(id_list)
}
