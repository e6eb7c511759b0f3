//! Queries of the agent console: sign-in throttling, the queue, agents, accounts.

use super::accounts::AccountRow;
use super::rows::TicketRow;
use super::schema::{accounts, agents, login_attempts, tickets};
use super::ticket_filter::Narrowing;
use super::{AnyConnection, now};
use crate::domain::ticket::{Kind, State};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Records a sign-in try; returns its id. A try is recorded as failed before its password is
/// checked and marked succeeded afterwards, so tries still in flight count against the limit.
pub fn record_login_attempt(
    conn: &mut AnyConnection,
    email: &str,
    client_key: &str,
    succeeded: bool,
    at: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::email_normalized.eq(crate::domain::email_address::normalize(email)),
            login_attempts::client_ip.eq(client_key),
            login_attempts::succeeded.eq(succeeded),
            login_attempts::created_at.eq(at),
        ))
        .returning(login_attempts::id)
        .get_result(conn)
}

pub fn mark_login_succeeded(conn: &mut AnyConnection, attempt_id: i64) -> QueryResult<()> {
    diesel::update(login_attempts::table.find(attempt_id))
        .set(login_attempts::succeeded.eq(true))
        .execute(conn)
        .map(|_| ())
}

/// Times of failed sign-ins since `since`: (for this email from this client, from this client).
/// At most a few dozen rows: the throttle stops recording once a key is locked out.
pub fn failures_since(
    conn: &mut AnyConnection,
    email: &str,
    client_key: &str,
    since: NaiveDateTime,
) -> QueryResult<(Vec<NaiveDateTime>, Vec<NaiveDateTime>)> {
    // The client's failures, or (with an address) the failures of that pair.
    let failures = |conn: &mut AnyConnection, email: Option<String>| -> QueryResult<Vec<NaiveDateTime>> {
        let mut query = login_attempts::table
            .filter(login_attempts::client_ip.eq(client_key))
            .filter(login_attempts::succeeded.eq(false))
            .filter(login_attempts::created_at.gt(since))
            .into_boxed();
        if let Some(email) = email {
            query = query.filter(login_attempts::email_normalized.eq(email));
        }
        query.select(login_attempts::created_at).limit(1000).load(conn)
    };
    let pair = failures(conn, Some(crate::domain::email_address::normalize(email)))?;
    let client = failures(conn, None)?;
    Ok((pair, client))
}

/// What the queue shows.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub kind: Option<Kind>,
    pub state: Option<State>,
    /// `Some(None)`: unassigned; `Some(Some(id))`: that agent's.
    pub assignee: Option<Option<i64>>,
    pub q: Option<String>,
    pub q_ticket_id: Option<i64>,
    /// Keyset: tickets waiting since after this (time, id).
    pub after: Option<(NaiveDateTime, i64)>,
    /// Keyset of a search's pages (newest first): tickets with a smaller id.
    pub before_id: Option<i64>,
    pub limit: i64,
    /// `agent`, `customer` or `none` (docs/reference.md#who-acts-next).
    pub waiting_on: Option<String>,
}

/// The open tickets: the WHERE of the partial indexes `tickets_open_queue`,
/// `tickets_open_kind_queue` and `tickets_open_assignee_queue`, character for character.
pub const OPEN_PREDICATE: &str = "tickets.state NOT IN ('resolved', 'refused')";

/// Open tickets (or those of the chosen state), oldest waiting first. With a search (`q`):
/// every ticket it finds, closed ones included unless a state is chosen, newest first
/// (docs/reference.md#search).
pub fn queue(conn: &mut AnyConnection, f: &QueueFilter) -> QueryResult<Vec<TicketRow>> {
    if let Some(text) = f.q.as_deref().and_then(crate::domain::search::SearchText::parse) {
        let filter = super::search::SearchFilter {
            kind: f.kind,
            state: f.state,
            assignee: f.assignee,
            before_id: f.before_id,
            limit: f.limit,
            waiting_on: f.waiting_on.clone(),
        };
        return super::tickets::search(conn, &text, f.q_ticket_id, &filter);
    }
    let open_only = f.state.is_none();
    let narrowing = Narrowing::new(f.kind, f.state, f.assignee, f.waiting_on.as_deref());
    let mut query = narrowing.apply(tickets::table.select(TicketRow::as_select()).into_boxed());
    if open_only {
        // Exactly the predicate of the partial indexes `tickets_open_*`, as literal SQL: SQLite
        // uses a partial index only when the query's WHERE contains the index's WHERE term as
        // written; `state != ? AND state != ?` (or `NOT IN (?, ?)`) does not match it, and the
        // queue then scans and sorts the whole table.
        query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(OPEN_PREDICATE));
    }
    if let Some((at, id)) = f.after {
        // `waiting_since >= at` first, so the index is entered at the cursor (a range seek)
        // instead of being scanned from the start; the OR then skips the rows already shown.
        query = query
            .filter(tickets::waiting_since.ge(at))
            .filter(tickets::waiting_since.gt(at).or(tickets::id.gt(id)));
    }
    query
        .order((tickets::waiting_since.asc(), tickets::id.asc()))
        .limit(f.limit)
        .load(conn)
}

/// Tickets per (kind, state) with at least one ticket, for the queue's counts and `/metrics`.
///
/// No writer ever updates a shared counter row (those rows were where concurrent deliveries
/// queued and deadlocked): triggers append +1/-1 rows to `ticket_count_deltas`, and
/// [`fold_counts`] moves them into the totals of `ticket_counts` every few seconds. One
/// statement reads the totals and the unfolded deltas from one snapshot, so a fold committing
/// meanwhile is seen either entirely or not at all and the counts are exact. Counting the
/// tickets instead reads every entry of an index on each queue page (see docs/benchmarks.md,
/// "Queue counts").
pub fn counts(conn: &mut AnyConnection) -> QueryResult<Vec<(Kind, State, i64)>> {
    const SQL: &str = "SELECT kind, state, CAST(SUM(n) AS BIGINT) AS n FROM \
        (SELECT kind, state, n FROM ticket_counts \
         UNION ALL SELECT kind, state, d AS n FROM ticket_count_deltas) AS c \
        GROUP BY kind, state HAVING SUM(n) > 0 ORDER BY kind, state";
    let rows: Vec<CountRow> = match conn {
        AnyConnection::Sqlite(c) => diesel::sql_query(SQL).load(c)?,
        AnyConnection::Postgresql(c) => diesel::sql_query(SQL).load(c)?,
    };
    rows.into_iter().map(|r| typed_count((r.kind, r.state, r.n))).collect()
}

/// A (kind, state, count) as stored, read back into the vocabulary: an unknown word fails.
fn typed_count((kind, state, n): (String, String, i64)) -> QueryResult<(Kind, State, i64)> {
    let unknown = |e: super::words::UnknownWord| diesel::result::Error::DeserializationError(Box::new(e));
    Ok((
        Kind::try_from(kind).map_err(unknown)?,
        State::try_from(state).map_err(unknown)?,
        n,
    ))
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Moves every delta row into the totals; returns how many (kind, state) totals changed. Call
/// it inside a write transaction. On PostgreSQL one statement deletes the deltas its snapshot
/// sees and adds exactly those (a delta committed meanwhile stays for the next fold), and the
/// fold key lock keeps two instances' folds one after the other; on SQLite the transaction is
/// alone. Writers never wait for a fold: they only insert deltas.
pub fn fold_counts(conn: &mut AnyConnection) -> QueryResult<usize> {
    super::locks::lock_key(conn, super::locks::KeyLock::CountFold, "ticket_counts")?;
    match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "WITH gone AS (DELETE FROM ticket_count_deltas RETURNING kind, state, d) \
             INSERT INTO ticket_counts (kind, state, n) \
             SELECT kind, state, CAST(SUM(d) AS BIGINT) FROM gone GROUP BY kind, state ORDER BY kind, state \
             ON CONFLICT (kind, state) DO UPDATE SET n = ticket_counts.n + EXCLUDED.n",
        )
        .execute(c),
        AnyConnection::Sqlite(c) => {
            let changed = diesel::sql_query(
                "INSERT INTO ticket_counts (kind, state, n) \
                 SELECT kind, state, SUM(d) FROM ticket_count_deltas WHERE true GROUP BY kind, state \
                 ON CONFLICT (kind, state) DO UPDATE SET n = n + excluded.n",
            )
            .execute(c)?;
            diesel::sql_query("DELETE FROM ticket_count_deltas").execute(c)?;
            Ok(changed)
        }
    }
}

/// Tickets by (kind, state) as `/metrics` shows them: those created before `settled_before`
/// only. The running counts less the few young tickets, so no scan of the whole table.
pub fn settled_counts(
    conn: &mut AnyConnection,
    settled_before: chrono::NaiveDateTime,
) -> QueryResult<Vec<(Kind, State, i64)>> {
    let young: Vec<(String, String, i64)> = tickets::table
        .filter(tickets::created_at.ge(settled_before))
        .group_by((tickets::kind, tickets::state))
        .select((tickets::kind, tickets::state, diesel::dsl::count_star()))
        .load(conn)?;
    let mut all = counts(conn)?;
    for young in young {
        let (kind, state, n) = typed_count(young)?;
        if let Some(entry) = all.iter_mut().find(|(k, s, _)| *k == kind && *s == state) {
            entry.2 -= n;
        }
    }
    all.retain(|(_, _, n)| *n > 0);
    Ok(all)
}

/// An agent as the console lists it: (id, email, name, role, active).
pub type AgentListing = (i64, String, String, String, bool);

/// Every agent, active first.
pub fn agents(conn: &mut AnyConnection) -> QueryResult<Vec<AgentListing>> {
    agents::table
        .order((agents::active.desc(), agents::email_normalized.asc()))
        .select((agents::id, agents::email, agents::name, agents::role, agents::active))
        .load(conn)
}

pub fn deactivate_agent(conn: &mut AnyConnection, id: i64) -> QueryResult<bool> {
    let rows = diesel::update(agents::table.find(id).filter(agents::active.eq(true)))
        .set((agents::active.eq(false), agents::deactivated_at.eq(now())))
        .execute(conn)?;
    Ok(rows == 1)
}

/// (id, username, effective status) of the sub-users of an account: a sub-user of a banned
/// parent is banned, whatever its own record says.
pub fn sub_users(conn: &mut AnyConnection, parent_id: &str) -> QueryResult<Vec<(String, String, String)>> {
    let rows: Vec<(String, String, String, bool)> = accounts::table
        .filter(accounts::parent_id.eq(parent_id))
        .order(accounts::id.asc())
        .select((
            accounts::id,
            accounts::username,
            accounts::status,
            accounts::banned_via_parent,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, username, status, via_parent)| {
            let status = if via_parent { "banned".to_string() } else { status };
            (id, username, status)
        })
        .collect())
}

pub fn tickets_of_account(conn: &mut AnyConnection, account_id: &str, limit: i64) -> QueryResult<Vec<TicketRow>> {
    tickets::table
        .filter(tickets::account_id.eq(account_id))
        .order(tickets::id.desc())
        .limit(limit)
        .select(TicketRow::as_select())
        .load(conn)
}

/// Accounts for the console's account search: those whose id, username or registered address
/// is the text exactly, then those where one of them starts with it; by id, at most `limit`.
/// Every lookup is an index range (`accounts` primary key, `username` unique index,
/// `accounts_email_normalized`), whatever the size of the directory. No text: the first
/// accounts by id.
pub fn search_accounts(conn: &mut AnyConnection, text: &str, limit: i64) -> QueryResult<Vec<AccountRow>> {
    let text = text.trim();
    if text.is_empty() {
        return accounts::table
            .order(accounts::id.asc())
            .limit(limit)
            .select(AccountRow::as_select())
            .load(conn);
    }
    let lower = crate::domain::email_address::normalize(text);
    let mut found: Vec<AccountRow> = accounts::table
        .filter(
            accounts::id
                .eq(text)
                .or(accounts::username.eq(text))
                .or(accounts::email_normalized.eq(&lower)),
        )
        .order(accounts::id.asc())
        .limit(limit)
        .select(AccountRow::as_select())
        .load(conn)?;
    // The highest code point after the text bounds every string that starts with it.
    let upper = format!("{text}\u{10FFFF}");
    let upper_lower = format!("{lower}\u{10FFFF}");
    let starting: Vec<AccountRow> = accounts::table
        .filter(
            accounts::id
                .ge(text)
                .and(accounts::id.lt(&upper))
                .or(accounts::username.ge(text).and(accounts::username.lt(&upper)))
                .or(accounts::email_normalized
                    .ge(&lower)
                    .and(accounts::email_normalized.lt(&upper_lower))),
        )
        .order(accounts::id.asc())
        .limit(limit + found.len() as i64)
        .select(AccountRow::as_select())
        .load(conn)?;
    for row in starting {
        // A collation other than byte order may bring rows that do not start with the text.
        let starts =
            row.id.starts_with(text) || row.username.starts_with(text) || row.email_normalized.starts_with(&lower);
        if starts && !found.iter().any(|f| f.id == row.id) {
            found.push(row);
        }
    }
    found.truncate(limit.max(0) as usize);
    Ok(found)
}
