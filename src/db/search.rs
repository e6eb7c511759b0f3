//! Ticket search (docs/reference.md#search): the index of migration
//! `2026-12-07-000013_ticket_search`, kept in step in the transaction that changes what it
//! holds, and the two ways a search is answered (exact lookups first, then words).

use super::AnyConnection;
use super::schema::{accounts, tickets};
use super::tickets::TicketRow;
use crate::domain::search::SearchText;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

/// The ticket's search document, as the migration's backfill writes it (keep in step with
/// `migrations/sqlite/2026-12-07-000013_ticket_search/up.sql`). Binds the ticket id.
const SQLITE_WRITE: &str = "INSERT INTO ticket_search (rowid, document) \
    SELECT t.id, substr(t.requester_normalized || ' ' || t.subject || ' ' || coalesce(( \
        SELECT group_concat(m.subject || ' ' || substr(m.body, 1, 32768), ' ' ORDER BY m.id) \
        FROM messages m \
        WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL \
    ), ''), 1, 262144) \
    FROM tickets t WHERE t.id = ?";

/// The same for PostgreSQL (keep in step with `migrations/postgres/…_ticket_search/up.sql`).
const POSTGRES_WRITE: &str = "INSERT INTO ticket_search (ticket_id, document) \
    SELECT t.id, strip(to_tsvector('simple', regexp_replace(left(t.requester_normalized || ' ' || t.subject || ' ' || coalesce(( \
        SELECT string_agg(m.subject || ' ' || left(m.body, 32768), ' ' ORDER BY m.id) \
        FROM messages m \
        WHERE m.ticket_id = t.id AND m.sender_role <> 'system' AND m.redacted_at IS NULL \
    ), ''), 262144), '[^[:alnum:]]+', ' ', 'g'))) \
    FROM tickets t WHERE t.id = $1 \
    ON CONFLICT (ticket_id) DO UPDATE SET document = EXCLUDED.document";

/// Writes the ticket's search document again from what is stored now: after a ticket is
/// opened, a message or note added, or one erased. In the caller's transaction.
pub fn reindex(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<()> {
    match conn {
        AnyConnection::Sqlite(c) => {
            diesel::sql_query("DELETE FROM ticket_search WHERE rowid = ?")
                .bind::<BigInt, _>(ticket_id)
                .execute(c)?;
            diesel::sql_query(SQLITE_WRITE)
                .bind::<BigInt, _>(ticket_id)
                .execute(c)?;
        }
        AnyConnection::Postgresql(c) => {
            diesel::sql_query(POSTGRES_WRITE)
                .bind::<BigInt, _>(ticket_id)
                .execute(c)?;
        }
    }
    Ok(())
}

/// What else a search is narrowed by, and its page (newest first).
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub kind: Option<String>,
    pub state: Option<String>,
    /// `Some(None)`: unassigned; `Some(Some(id))`: that agent's.
    pub assignee: Option<Option<i64>>,
    /// Keyset: only tickets with a smaller id.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Tickets matching `text`, newest first, closed ones included unless `f.state` says
/// otherwise. `ticket_id` is the number when the text reads as a reference.
///
/// When any ticket has the whole text exactly (its reference, its requester's address, or an
/// id, username or registered address of its account), those tickets are the answer: B-tree
/// lookups, whatever the size of the desk. Otherwise, the tickets whose search document
/// holds every word.
pub fn search(
    conn: &mut AnyConnection,
    text: &SearchText,
    ticket_id: Option<i64>,
    f: &SearchFilter,
) -> QueryResult<Vec<TicketRow>> {
    let exact = Exact::find(conn, text, ticket_id)?;
    let ids = if exact.any(conn)? {
        exact.page(conn, f)?
    } else if text.words().is_empty() {
        Vec::new()
    } else {
        word_matches(conn, text, f)?
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    tickets::table
        .filter(tickets::id.eq_any(ids))
        .order(tickets::id.desc())
        .select(TicketRow::as_select())
        .load(conn)
}

/// What the whole text names exactly. Each kind is its own indexed query (an OR of them lets
/// PostgreSQL's planner walk the primary key backwards through a million rows).
struct Exact {
    ticket_id: Option<i64>,
    requester: Option<String>,
    accounts: Vec<String>,
}

type Predicate =
    Box<dyn BoxableExpression<tickets::table, <AnyConnection as diesel::Connection>::Backend, SqlType = Bool>>;

impl Exact {
    fn find(conn: &mut AnyConnection, text: &SearchText, ticket_id: Option<i64>) -> QueryResult<Exact> {
        let exact = text.exact();
        let lower = text.exact_lower();
        let accounts = if exact.is_empty() {
            Vec::new()
        } else {
            accounts::table
                .filter(
                    accounts::id
                        .eq(exact)
                        .or(accounts::username.eq(exact))
                        .or(accounts::email_normalized.eq(lower)),
                )
                .select(accounts::id)
                .limit(100)
                .load(conn)?
        };
        Ok(Exact {
            ticket_id,
            requester: (!lower.is_empty()).then(|| lower.to_string()),
            accounts,
        })
    }

    fn predicates(&self) -> Vec<Predicate> {
        let mut out: Vec<Predicate> = Vec::new();
        if let Some(id) = self.ticket_id {
            out.push(Box::new(tickets::id.eq(id)));
        }
        if let Some(requester) = &self.requester {
            out.push(Box::new(tickets::requester_normalized.eq(requester.clone())));
        }
        if !self.accounts.is_empty() {
            out.push(Box::new(
                tickets::account_id.eq_any(self.accounts.clone()).assume_not_null(),
            ));
        }
        out
    }

    /// Whether any ticket, of any state, has the text exactly.
    fn any(&self, conn: &mut AnyConnection) -> QueryResult<bool> {
        for predicate in self.predicates() {
            if tickets::table
                .filter(predicate)
                .select(tickets::id)
                .first::<i64>(conn)
                .optional()?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One page of them, newest first, narrowed by `f`.
    fn page(&self, conn: &mut AnyConnection, f: &SearchFilter) -> QueryResult<Vec<i64>> {
        let mut ids: Vec<i64> = Vec::new();
        for predicate in self.predicates() {
            ids.extend(page_of(conn, predicate, f)?);
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.truncate(f.limit.max(0) as usize);
        Ok(ids)
    }
}

/// Ids of the tickets matching `predicate` and `f`, newest first, one page.
fn page_of(conn: &mut AnyConnection, predicate: Predicate, f: &SearchFilter) -> QueryResult<Vec<i64>> {
    let mut query = tickets::table.select(tickets::id).filter(predicate).into_boxed();
    if let Some(kind) = &f.kind {
        query = query.filter(tickets::kind.eq(kind.clone()));
    }
    if let Some(state) = &f.state {
        query = query.filter(tickets::state.eq(state.clone()));
    }
    match f.assignee {
        Some(Some(id)) => query = query.filter(tickets::assignee_id.eq(id)),
        Some(None) => query = query.filter(tickets::assignee_id.is_null()),
        None => {}
    }
    if let Some(before) = f.before_id {
        query = query.filter(tickets::id.lt(before));
    }
    query.order(tickets::id.desc()).limit(f.limit).load(conn)
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Ids of the tickets whose document holds every word, newest first, narrowed by `f`.
fn word_matches(conn: &mut AnyConnection, text: &SearchText, f: &SearchFilter) -> QueryResult<Vec<i64>> {
    let c = match conn {
        AnyConnection::Sqlite(c) => c,
        AnyConnection::Postgresql(_) => return postgres::word_matches(conn, text, f),
    };
    // FTS5 hands out matches in rowid order: read newest first, a common word stops after
    // one page and a rare one costs its doclist. CROSS JOIN keeps the index outside, each hit
    // probing the ticket by its key.
    let (clauses, limit) = filter_clauses(f, "ticket_search.rowid", |_| "?".to_string());
    let sql = format!(
        "SELECT ticket_search.rowid AS id FROM ticket_search CROSS JOIN tickets ON tickets.id = ticket_search.rowid \
         WHERE ticket_search MATCH ?{clauses} ORDER BY ticket_search.rowid DESC LIMIT {limit}"
    );
    let query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
    bind_all(query, text.fts5_query(), &[], f).load::<Id>(c).map(ids)
}

/// PostgreSQL's GIN index answers "which documents hold these words" in no order, and slowly
/// for common words (it intersects posting lists of hundreds of thousands of entries: 35–70 ms
/// at a million tickets for two or three common words); walking the documents newest first
/// answers common words within a page but reads the whole table for a word no ticket has. The
/// planner cannot tell the two apart for a word outside its statistics. So the walk goes first,
/// over bounded windows of the newest documents, and only what it leaves open is asked of the
/// GIN index (docs/benchmarks.md, "Release figures, 2026-12-06 (PostgreSQL)").
mod postgres {
    use super::{AnyConnection, Id, SearchFilter, bind_all, filter_clauses, ids, page_of};
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

    const MATCH: &str = "@@ plainto_tsquery('simple', regexp_replace($1, '[^[:alnum:]]+', ' ', 'g'))";

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
        let words = text.plain_words();
        let mut found: Vec<i64> = Vec::new();
        // Every document with an id below `below` is still to be read. Ticket ids come from a
        // sequence: a window of ids holds at most that many documents.
        let mut below = f.before_id.map_or(highest + 1, |b| b.min(highest + 1));
        for (i, window) in WINDOWS.into_iter().enumerate() {
            if below <= lowest || (i > 0 && found.is_empty()) {
                break;
            }
            let from = below.saturating_sub(window);
            found.extend(walk(pg(conn), &words, f, Some((from, below)), f.limit - found.len() as i64)?);
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
        bind_all(query, words.to_string(), &bounds, &f).load::<Id>(c).map(ids)
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
        .map(ids)
    }
}

/// The SQL of `f`'s narrowing (` AND …`, the k-th parameter written by `param(k)`) and the
/// LIMIT's parameter. `id_column` is the search table's ticket id, for the keyset bound.
fn filter_clauses(f: &SearchFilter, id_column: &str, mut param: impl FnMut(usize) -> String) -> (String, String) {
    let mut clauses = String::new();
    let mut k = 1;
    let mut next = || {
        k += 1;
        param(k)
    };
    if f.kind.is_some() {
        clauses += &format!(" AND tickets.kind = {}", next());
    }
    if f.state.is_some() {
        clauses += &format!(" AND tickets.state = {}", next());
    }
    match f.assignee {
        Some(Some(_)) => clauses += &format!(" AND tickets.assignee_id = {}", next()),
        Some(None) => clauses += " AND tickets.assignee_id IS NULL",
        None => {}
    }
    if f.before_id.is_some() {
        clauses += &format!(" AND {id_column} < {}", next());
    }
    let limit = next();
    (clauses, limit)
}

fn ids(rows: Vec<Id>) -> Vec<i64> {
    rows.into_iter().map(|r| r.id).collect()
}

/// Binds, in the order `filter_clauses` numbered them: the words, `extra` (bounds the SQL
/// reads as `$2`, `$3`, …), then `f`'s narrowing and its limit.
fn bind_all<'f, DB>(
    query: diesel::query_builder::BoxedSqlQuery<'f, DB, diesel::query_builder::SqlQuery>,
    words: String,
    extra: &[i64],
    f: &SearchFilter,
) -> diesel::query_builder::BoxedSqlQuery<'f, DB, diesel::query_builder::SqlQuery>
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<Text> + diesel::sql_types::HasSqlType<BigInt>,
    String: diesel::serialize::ToSql<Text, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
{
    let mut query = query.bind::<Text, _>(words);
    for value in extra {
        query = query.bind::<BigInt, _>(*value);
    }
    if let Some(kind) = &f.kind {
        query = query.bind::<Text, _>(kind.clone());
    }
    if let Some(state) = &f.state {
        query = query.bind::<Text, _>(state.clone());
    }
    if let Some(Some(id)) = f.assignee {
        query = query.bind::<BigInt, _>(id);
    }
    if let Some(before) = f.before_id {
        query = query.bind::<BigInt, _>(before);
    }
    query.bind::<BigInt, _>(f.limit)
}
