//! Ticket search (docs/reference.md#search): the index of migration
//! `2026-12-07-000013_ticket_search`, kept in step in the transaction that changes what it
//! holds, and the two ways a search is answered (exact lookups first, then words).

use super::AnyConnection;
use super::schema::{accounts, tickets};
use crate::domain::search::SearchText;
use crate::domain::ticket::{Kind, State};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

/// The word search on PostgreSQL: bounded newest-first windows, then the GIN index.
mod postgres;

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
/// opened, a message or note added, or one erased. In the caller's transaction: inside
/// [`super::write_transaction`] the write waits for the end of the outermost transaction
/// ([`Deferred`]), before its commit.
pub fn reindex(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<()> {
    if Deferred::add(conn, ticket_id) {
        return Ok(());
    }
    write_document(conn, ticket_id)
}

fn write_document(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<()> {
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

thread_local! {
    /// The tickets to write again at the end of each open [`Deferred`] scope on this thread,
    /// by the address of the connection whose transaction it is.
    static DEFERRED: std::cell::RefCell<Vec<(usize, std::collections::BTreeSet<i64>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A transaction's reindexing, done once per ticket at its end, in ascending ticket id.
///
/// Why (docs/benchmarks.md, "Release figures"): FTS5 keeps a transaction's new entries in
/// memory only while rowids come in ascending order; a rowid again or lower (a new ticket is
/// written when opened and again with its first message; a batch appends to older tickets)
/// flushes them into a new on-disk segment and sets off merges. Written at once, a batch of
/// 300 imported messages wrote 55,902 pages; written once each in order, one segment.
/// The document is read from what the transaction stored, so a ticket whose savepoint was
/// rolled back is written as it now stands (unchanged). Dropping the scope (an error, a
/// panic) forgets the pending tickets with the transaction they belonged to.
pub(super) struct Deferred {
    key: usize,
}

impl Deferred {
    /// Opens a scope for `conn`'s transaction.
    pub(super) fn begin(conn: &AnyConnection) -> Deferred {
        let key = std::ptr::from_ref(conn) as usize;
        DEFERRED.with(|d| d.borrow_mut().push((key, std::collections::BTreeSet::new())));
        Deferred { key }
    }

    /// Whether a scope of `conn` took the ticket (false: write it now).
    fn add(conn: &AnyConnection, ticket_id: i64) -> bool {
        let key = std::ptr::from_ref(conn) as usize;
        DEFERRED.with(|d| {
            d.borrow_mut()
                .iter_mut()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, ids)| ids.insert(ticket_id))
                .is_some()
        })
    }

    /// Writes the pending documents (call it last in the transaction, before the commit).
    pub(super) fn finish(self, conn: &mut AnyConnection) -> QueryResult<()> {
        let ids = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            d.iter()
                .rposition(|(k, _)| *k == self.key)
                .map(|at| d.remove(at).1)
                .unwrap_or_default()
        });
        ids.into_iter().try_for_each(|id| write_document(conn, id))
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
    // FTS5 hands out matches in rowid order: read newest first, a common word stops after
    // one page and a rare one costs its doclist. CROSS JOIN keeps the index outside, each hit
    // probing the ticket by its key.
    let (clauses, limit) = filter_clauses(f, "ticket_search.rowid", |_| "?".to_string());
    let sql = format!(
        "SELECT ticket_search.rowid AS id FROM ticket_search CROSS JOIN tickets ON tickets.id = ticket_search.rowid \
         WHERE ticket_search MATCH ?{clauses} ORDER BY ticket_search.rowid DESC LIMIT {limit}"
    );
    let query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
    bind_all(query, text.fts5_query(), &[], f).load::<Id>(c).map(id_list)
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
        clauses += &format!(
            " AND tickets.id IN (SELECT ticket_id FROM ticket_activity WHERE waiting_on = {})",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DatabaseUrl, open_pool, run_migrations, write_transaction};
    use diesel::result::Error;

    fn add_ticket(conn: &mut AnyConnection, id: i64, requester: &str) {
        diesel::sql_query(
            "INSERT INTO tickets (id, kind, state, subject, requester, requester_normalized, status_token_hash, \
             status_token_salt, channel, waiting_since, created_at, updated_at) \
             VALUES (?, 'general', 'awaiting_agent', 'help', ?, ?, 'none:' || ?, '', 'mail', \
             CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(requester)
        .bind::<Text, _>(requester)
        .bind::<BigInt, _>(id)
        .execute(conn)
        .unwrap();
    }

    fn add_message(conn: &mut AnyConnection, ticket: i64, body: &str) {
        diesel::sql_query(
            "INSERT INTO messages (ticket_id, direction, sender_role, subject, body, created_at) \
             VALUES (?, 'in', 'requester', 'help', ?, CURRENT_TIMESTAMP)",
        )
        .bind::<BigInt, _>(ticket)
        .bind::<Text, _>(body)
        .execute(conn)
        .unwrap();
    }

    /// The tickets whose document holds `word` (or every document's ticket, for `None`).
    fn found(conn: &mut AnyConnection, word: Option<&str>) -> Vec<i64> {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let rows = match word {
            Some(w) => {
                diesel::sql_query("SELECT rowid AS id FROM ticket_search WHERE ticket_search MATCH ? ORDER BY rowid")
                    .bind::<Text, _>(w.to_string())
                    .load::<Id>(conn)
            }
            None => diesel::sql_query("SELECT rowid AS id FROM ticket_search ORDER BY rowid").load::<Id>(conn),
        };
        rows.unwrap().into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_transaction_writes_each_touched_document_once_at_its_end_with_every_message() {
        let dir = tempfile::tempdir().unwrap();
        let pool = open_pool(&DatabaseUrl::Sqlite(dir.path().join("s.db")), 1).unwrap();
        let mut conn = pool.get().unwrap();
        run_migrations(&mut conn).unwrap();

        // As a batch of mail does: two tickets, their first messages and a reply, the higher
        // id first. Nothing is written to the index before the transaction's end; at its end
        // every word of every message is there.
        write_transaction(&mut conn, |c| -> Result<(), Error> {
            add_ticket(c, 7, "a@example.test");
            reindex(c, 7)?;
            add_ticket(c, 3, "b@example.test");
            reindex(c, 3)?;
            add_message(c, 7, "alphaword");
            reindex(c, 7)?;
            add_message(c, 3, "betaword");
            reindex(c, 3)?;
            add_message(c, 7, "gammaword");
            reindex(c, 7)?;
            assert_eq!(found(c, None), Vec::<i64>::new(), "written at the end, not at once");
            Ok(())
        })
        .unwrap();
        assert_eq!(found(&mut conn, Some("alphaword")), vec![7]);
        assert_eq!(found(&mut conn, Some("gammaword")), vec![7]);
        assert_eq!(found(&mut conn, Some("betaword")), vec![3]);

        // A transaction that fails leaves nothing pending: the next reindex outside any
        // transaction writes at once.
        let failed = write_transaction(&mut conn, |c| -> Result<(), Error> {
            add_message(c, 3, "deltaword");
            reindex(c, 3)?;
            Err(Error::RollbackTransaction)
        });
        assert!(failed.is_err());
        assert_eq!(found(&mut conn, Some("deltaword")), Vec::<i64>::new());
        add_message(&mut conn, 3, "epsilonword");
        reindex(&mut conn, 3).unwrap();
        assert_eq!(found(&mut conn, Some("epsilonword")), vec![3]);

        // Nor does one that panics (the writer thread goes on with its next group).
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = write_transaction(&mut conn, |c| -> Result<(), Error> {
                reindex(c, 7)?;
                panic!("a bug in the middle of a transaction");
            });
        }));
        assert!(panicked.is_err());
        assert!(!DEFERRED.with(|d| d.borrow().iter().any(|(_, ids)| ids.contains(&7))));
        add_message(&mut conn, 7, "zetaword");
        reindex(&mut conn, 7).unwrap();
        assert_eq!(found(&mut conn, Some("zetaword")), vec![7]);
    }
}
