//! Ticket search (docs/reference.md#search): the index of migration
//! `2026-12-07-000013_ticket_search`, kept in step in the transaction that changes what it
//! holds, and the two ways a search is answered (exact lookups first, then words).

use super::AnyConnection;
use super::rows::TicketRow;
use super::schema::{accounts, tickets};
use crate::domain::search::SearchText;
use crate::domain::ticket::{Kind, State};
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
    pub kind: Option<Kind>,
    pub state: Option<State>,
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
    if let Some(kind) = f.kind {
        query = query.filter(tickets::kind.eq(kind.as_str()));
    }
    if let Some(state) = f.state {
        query = query.filter(tickets::state.eq(state.as_str()));
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

/// Above this many matches a word is common: PostgreSQL reads the index newest first and stops
/// after a page; below, it takes the matches from the GIN index and sorts them.
const POSTGRES_FEW_MATCHES: i64 = 2000;

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Ids of the tickets whose document holds every word, newest first, narrowed by `f`. The
/// index is read in id order from the newest, so a common word stops after one page.
fn word_matches(conn: &mut AnyConnection, text: &SearchText, f: &SearchFilter) -> QueryResult<Vec<i64>> {
    if let AnyConnection::Postgresql(c) = conn {
        // The planner cannot tell a rare word from a common one and may walk the whole
        // primary key for a rare one: ask the GIN index first, for a bounded number.
        let few: Vec<Id> = diesel::sql_query(format!(
            "SELECT ticket_id AS id FROM ticket_search \
             WHERE document @@ plainto_tsquery('simple', regexp_replace($1, '[^[:alnum:]]+', ' ', 'g')) \
             LIMIT {}",
            POSTGRES_FEW_MATCHES + 1
        ))
        .bind::<Text, _>(text.plain_words())
        .load(c)?;
        if (few.len() as i64) <= POSTGRES_FEW_MATCHES {
            let ids: Vec<i64> = few.into_iter().map(|r| r.id).collect();
            return page_of(conn, Box::new(tickets::id.eq_any(ids)), f);
        }
    }
    let mut clauses = String::new();
    let mut n = 1;
    let mut next = |sqlite: bool| {
        n += 1;
        if sqlite { "?".to_string() } else { format!("${n}") }
    };
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    if f.kind.is_some() {
        clauses += &format!(" AND tickets.kind = {}", next(sqlite));
    }
    if f.state.is_some() {
        clauses += &format!(" AND tickets.state = {}", next(sqlite));
    }
    match f.assignee {
        Some(Some(_)) => clauses += &format!(" AND tickets.assignee_id = {}", next(sqlite)),
        Some(None) => clauses += " AND tickets.assignee_id IS NULL",
        None => {}
    }
    let id_column = if sqlite {
        "ticket_search.rowid"
    } else {
        "ticket_search.ticket_id"
    };
    if f.before_id.is_some() {
        clauses += &format!(" AND {id_column} < {}", next(sqlite));
    }
    let limit = next(sqlite);
    let sql = if sqlite {
        // CROSS JOIN keeps the index outside: it is read newest first and each hit probes
        // the ticket by its key.
        format!(
            "SELECT ticket_search.rowid AS id FROM ticket_search CROSS JOIN tickets ON tickets.id = ticket_search.rowid \
             WHERE ticket_search MATCH ?{clauses} ORDER BY ticket_search.rowid DESC LIMIT {limit}"
        )
    } else {
        format!(
            "SELECT ticket_search.ticket_id AS id FROM ticket_search JOIN tickets ON tickets.id = ticket_search.ticket_id \
             WHERE ticket_search.document @@ plainto_tsquery('simple', regexp_replace($1, '[^[:alnum:]]+', ' ', 'g')){clauses} \
             ORDER BY ticket_search.ticket_id DESC LIMIT {limit}"
        )
    };
    match conn {
        AnyConnection::Sqlite(c) => {
            let query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
            bind_all(query, text.fts5_query(), f).load::<Id>(c)
        }
        AnyConnection::Postgresql(c) => {
            let query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            bind_all(query, text.plain_words(), f).load::<Id>(c)
        }
    }
    .map(|rows| rows.into_iter().map(|r| r.id).collect())
}

fn bind_all<'f, DB>(
    query: diesel::query_builder::BoxedSqlQuery<'f, DB, diesel::query_builder::SqlQuery>,
    words: String,
    f: &SearchFilter,
) -> diesel::query_builder::BoxedSqlQuery<'f, DB, diesel::query_builder::SqlQuery>
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<Text> + diesel::sql_types::HasSqlType<BigInt>,
    String: diesel::serialize::ToSql<Text, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
{
    let mut query = query.bind::<Text, _>(words);
    if let Some(kind) = f.kind {
        query = query.bind::<Text, _>(kind.as_str().to_string());
    }
    if let Some(state) = f.state {
        query = query.bind::<Text, _>(state.as_str().to_string());
    }
    if let Some(Some(id)) = f.assignee {
        query = query.bind::<BigInt, _>(id);
    }
    if let Some(before) = f.before_id {
        query = query.bind::<BigInt, _>(before);
    }
    query.bind::<BigInt, _>(f.limit)
}
