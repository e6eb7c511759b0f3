//! Ticket search (docs/reference.md#search): the index of migration
//! `2026-12-07-000013_ticket_search`, kept in step in the transaction that changes what it
//! holds, and the two ways a search is answered (exact lookups first, then words).

use super::AnyConnection;
use super::schema::{accounts, tickets};
use crate::domain::search::SearchText;
use crate::domain::ticket::{Kind, State};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

/// Writing the index: whole documents, appended messages, once per transaction.
mod index;
/// The word search on PostgreSQL: bounded newest-first windows, then the GIN index.
mod postgres;
/// PostgreSQL's stored documents made again with the desk's word rule, once, at start.
mod words_rebuild;

pub(super) use index::{BodyText, Deferred, HeadText};
pub use index::{index_message, index_opened, reindex};
pub use words_rebuild::{REBUILT_KEY as WORDS_REBUILT_KEY, rebuild as rebuild_postgres_words};

/// What else a search is narrowed by, and its page (newest first).
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub kind: Option<Kind>,
    pub state: Option<State>,
    /// `Some(None)`: unassigned; `Some(Some(id))`: that agent's.
    pub assignee: Option<Option<i64>>,
    /// Keyset: only tickets with a smaller id.
    pub before_id: Option<i64>,
    pub limit: i64,
    /// `agent`, `customer` or `none`: whose turn it is (docs/reference.md#who-acts-next).
    pub waiting_on: Option<String>,
}

impl SearchFilter {
    /// The same narrowing, `limit` rows.
    fn with_limit(&self, limit: i64) -> SearchFilter {
        SearchFilter { limit, ..self.clone() }
    }
}

/// Tickets matching `text`, newest first, closed ones included unless `f.state` says
/// otherwise. `ticket_id` is the number when the text reads as a reference.
///
/// When any ticket has the whole text exactly (its reference, its requester's address, or an
/// id, username or registered address of its account), those tickets are the answer: B-tree
/// lookups, whatever the size of the desk. Otherwise, the tickets whose search document
/// holds every word.
///
/// The ids only: the rows are loaded by `db::tickets::search`, which owns the ticket row.
pub fn ids(
    conn: &mut AnyConnection,
    text: &SearchText,
    ticket_id: Option<i64>,
    f: &SearchFilter,
) -> QueryResult<Vec<i64>> {
    let exact = Exact::find(conn, text, ticket_id)?;
    let ids = if exact.any(conn)? {
        exact.page(conn, f)?
    } else if text.words().is_empty() {
        Vec::new()
    } else {
        word_matches(conn, text, f)?
    };
    Ok(ids)
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
    let narrowing = super::ticket_filter::Narrowing::new(f.kind, f.state, f.assignee, f.waiting_on.as_deref());
    let mut query = narrowing.apply(tickets::table.select(tickets::id).filter(predicate).into_boxed());
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
    sqlite_word_matches(c, text, f)
}

/// SQLite: FTS5 hands out matching rows in rowid order, and a ticket's rows are numbered
/// together after its id (`index::first_row`): read newest first, a common word stops after a
/// page and a rare one costs its doclist. CROSS JOIN keeps the index outside, each hit probing
/// the ticket by its key. A ticket with several matching messages comes once per message, so
/// rows are read until a page holds enough tickets; the next read starts below the last ticket
/// seen, so each read finds at least one new ticket or the end.
fn sqlite_word_matches(c: &mut diesel::SqliteConnection, text: &SearchText, f: &SearchFilter) -> QueryResult<Vec<i64>> {
    let limit = f.limit.max(0) as usize;
    // A ticket's rows: those of its messages that match, and its own row (requester, subject).
    let rows_per_read = f.limit.max(1).saturating_mul(4).min(2_000);
    let mut ids: Vec<i64> = Vec::new();
    // Below this rowid: the first row of the cursor's ticket (or of the last ticket read).
    let mut below = f
        .before_id
        .map(|before| index::first_row(before).unwrap_or(if before > 0 { i64::MAX } else { 0 }));
    while ids.len() < limit {
        let read = SearchFilter {
            before_id: below,
            ..f.with_limit(rows_per_read)
        };
        let (clauses, limit_param) = filter_clauses(&read, "ticket_search.rowid", |_| "?".to_string());
        let sql = format!(
            "SELECT ticket_search.rowid >> {bits} AS id FROM ticket_search \
             CROSS JOIN tickets ON tickets.id = ticket_search.rowid >> {bits} \
             WHERE ticket_search MATCH ?{clauses} ORDER BY ticket_search.rowid DESC LIMIT {limit_param}",
            bits = index::ROW_BITS,
        );
        let query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
        let rows = bind_all(query, text.fts5_query(), &[], &read).load::<Id>(c)?;
        let complete = (rows.len() as i64) < rows_per_read;
        for row in &rows {
            if ids.last() != Some(&row.id) && ids.len() < limit {
                ids.push(row.id);
            }
        }
        match (complete, ids.last()) {
            (false, Some(&last)) => below = index::first_row(last),
            _ => break,
        }
    }
    Ok(ids)
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
    if f.waiting_on.is_some() {
        // Probed per match, as the queue does (db::ticket_filter): `tickets.id IN (SELECT …)`
        // read every ticket waiting on that side first (130 ms at a million tickets against
        // 3 ms, docs/benchmarks.md).
        clauses += &format!(
            " AND EXISTS (SELECT 1 FROM ticket_activity a WHERE a.ticket_id = tickets.id AND a.waiting_on = {})",
            next()
        );
    }
    if f.before_id.is_some() {
        clauses += &format!(" AND {id_column} < {}", next());
    }
    let limit = next();
    (clauses, limit)
}

fn id_list(rows: Vec<Id>) -> Vec<i64> {
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
    if let Some(kind) = f.kind {
        query = query.bind::<Text, _>(kind.as_str().to_string());
    }
    if let Some(state) = f.state {
        query = query.bind::<Text, _>(state.as_str().to_string());
    }
    if let Some(Some(id)) = f.assignee {
        query = query.bind::<BigInt, _>(id);
    }
    if let Some(waiting_on) = &f.waiting_on {
        query = query.bind::<Text, _>(waiting_on.clone());
    }
    if let Some(before) = f.before_id {
        query = query.bind::<BigInt, _>(before);
    }
    query.bind::<BigInt, _>(f.limit)
}
