//! Authentication events (docs/reference.md#kinds-and-states): batch inserts that skip events already stored, the
//! lookups of one username around a time, the retention purge, and the latest `diagnosis`
//! event of tickets.

use super::AnyConnection;
use super::kept::{Kept, Value};
use super::schema::{auth_events, events};
use crate::domain::diagnosis::{AuthChannel, AuthEvent, AuthResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashMap;

/// Rows per INSERT statement (8 values each, well under SQLite's 32,766 variables).
pub const BATCH_ROWS: usize = 1_000;

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = auth_events)]
pub struct NewAuthEvent {
    pub at: NaiveDateTime,
    pub channel: &'static str,
    pub username: String,
    pub account_id: Option<String>,
    pub client_ip: String,
    pub mechanism: String,
    pub tls: bool,
    pub result: &'static str,
}

impl NewAuthEvent {
    pub fn from_event(event: AuthEvent) -> NewAuthEvent {
        NewAuthEvent {
            at: event.at.naive_utc(),
            channel: event.channel.as_str(),
            username: event.username,
            account_id: event.account_id,
            client_ip: event.client_ip.to_string(),
            mechanism: event.mechanism,
            tls: event.tls,
            result: event.result.as_str(),
        }
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = auth_events)]
pub struct AuthEventRow {
    pub id: i64,
    pub at: NaiveDateTime,
    pub channel: String,
    pub username: String,
    pub account_id: Option<String>,
    pub client_ip: String,
    pub mechanism: String,
    pub tls: bool,
    pub result: String,
}

impl AuthEventRow {
    /// The domain event; None for a row no import could have written.
    pub fn to_event(&self) -> Option<AuthEvent> {
        Some(AuthEvent {
            at: self.at.and_utc(),
            channel: AuthChannel::parse(&self.channel)?,
            username: self.username.clone(),
            account_id: self.account_id.clone(),
            client_ip: self.client_ip.parse().ok()?,
            mechanism: self.mechanism.clone(),
            tls: self.tls,
            result: AuthResult::parse(&self.result)?,
        })
    }
}

/// Settings for a large load on this connection: on SQLite a page cache big enough for the
/// lookup index, so that inserting does not re-read pages from disk. PostgreSQL needs nothing.
pub fn prepare_bulk_load(conn: &mut AnyConnection) -> QueryResult<()> {
    if let AnyConnection::Sqlite(lite) = conn {
        use diesel::connection::SimpleConnection;
        lite.batch_execute("PRAGMA cache_size = -131072; PRAGMA temp_store = MEMORY;")?;
    }
    Ok(())
}

/// Back to the usual settings after [`prepare_bulk_load`] (pooled connections are reused).
pub fn finish_bulk_load(conn: &mut AnyConnection) -> QueryResult<()> {
    if let AnyConnection::Sqlite(lite) = conn {
        use diesel::connection::SimpleConnection;
        lite.batch_execute("PRAGMA cache_size = -2000; PRAGMA temp_store = DEFAULT;")?;
    }
    Ok(())
}

/// Inserts the rows, skipping those already stored (same username, channel, time, result,
/// client address, mechanism and TLS). Returns how many were new. The caller chunks by
/// [`BATCH_ROWS`] and holds the transaction.
pub fn insert_new(conn: &mut AnyConnection, rows: &[NewAuthEvent]) -> QueryResult<usize> {
    let mut inserted = 0;
    for chunk in rows.chunks(BATCH_ROWS) {
        inserted += match conn {
            AnyConnection::Sqlite(lite) => diesel::insert_or_ignore_into(auth_events::table)
                .values(chunk)
                .execute(lite)?,
            AnyConnection::Postgresql(pg) => diesel::insert_into(auth_events::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(pg)?,
        };
    }
    Ok(inserted)
}

/// At most this many events are read around a failure ([`between`]). The statements below
/// spell their limits out: a `LIMIT` bound as a parameter (Diesel's `.limit()`, `.first()`)
/// makes SQLite compile the statement again at every use, three times for each message a
/// diagnosis runs on (docs/benchmarks.md, "The diagnosis's statements").
pub const WINDOW_ROWS: i64 = 2_000;

/// The columns of [`AuthEventRow`], in its order.
const ROW_COLUMNS: &str =
    "SELECT id, at, channel, username, account_id, client_ip, mechanism, tls, result FROM auth_events";

/// The events of one name on one channel: the start of every statement's condition.
fn of_user<'a>(select: &'static str, username: &'a str, channel: AuthChannel) -> Kept<'a> {
    Kept::default()
        .sql(select)
        .sql(" WHERE username = ")
        .bind(Value::Text(username))
        .sql(" AND channel = ")
        .bind(Value::Text(channel.as_str()))
}

/// Those of them from `from` to `to`, both included.
fn in_window<'a>(events: Kept<'a>, from: NaiveDateTime, to: NaiveDateTime) -> Kept<'a> {
    events
        .sql(" AND at >= ")
        .bind(Value::Timestamp(from))
        .sql(" AND at <= ")
        .bind(Value::Timestamp(to))
}

/// A time, read by name.
#[derive(QueryableByName)]
struct At {
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    at: NaiveDateTime,
}

/// Events of `username` on `channel` from `from` to `to` (both included), oldest first; at most
/// [`WINDOW_ROWS`], the latest ones when there are more.
pub fn between(
    conn: &mut AnyConnection,
    username: &str,
    channel: AuthChannel,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<AuthEventRow>> {
    let mut rows: Vec<AuthEventRow> =
        on_backend!(conn, |c| in_window(of_user(ROW_COLUMNS, username, channel), from, to)
            .sql(" ORDER BY at DESC, id DESC LIMIT 2000")
            .load(c))?;
    rows.reverse();
    Ok(rows)
}

/// How many events of `username` lie from `from` to `to`, and the earliest of them (when
/// [`between`] had more than its limit).
pub fn count_between(
    conn: &mut AnyConnection,
    username: &str,
    channel: AuthChannel,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    let count = auth_events::table
        .filter(auth_events::username.eq(username))
        .filter(auth_events::channel.eq(channel.as_str()))
        .filter(auth_events::at.ge(from))
        .filter(auth_events::at.le(to))
        .count()
        .get_result(conn)?;
    let first: Vec<At> = on_backend!(conn, |c| in_window(
        of_user("SELECT at FROM auth_events", username, channel),
        from,
        to
    )
    .sql(" ORDER BY at ASC LIMIT 1")
    .load(c))?;
    Ok((count, first.into_iter().next().map(|row| row.at)))
}

/// The first success of `username` strictly after `after`, up to `until`.
pub fn first_success_after(
    conn: &mut AnyConnection,
    username: &str,
    channel: AuthChannel,
    after: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Option<AuthEventRow>> {
    let rows: Vec<AuthEventRow> = on_backend!(conn, |c| of_user(ROW_COLUMNS, username, channel)
        .sql(" AND at > ")
        .bind(Value::Timestamp(after))
        .sql(" AND at <= ")
        .bind(Value::Timestamp(until))
        .sql(" AND result = ")
        .bind(Value::Text(AuthResult::Ok.as_str()))
        .sql(" ORDER BY at ASC LIMIT 1")
        .load(c))?;
    Ok(rows.into_iter().next())
}

/// The time of the latest failure of `username` from `from` to `to`.
pub fn latest_failure(
    conn: &mut AnyConnection,
    username: &str,
    channel: AuthChannel,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    let rows: Vec<At> = on_backend!(conn, |c| in_window(
        of_user("SELECT at FROM auth_events", username, channel),
        from,
        to
    )
    .sql(" AND result <> ")
    .bind(Value::Text(AuthResult::Ok.as_str()))
    .sql(" ORDER BY at DESC LIMIT 1")
    .load(c))?;
    Ok(rows.into_iter().next().map(|row| row.at))
}

/// Whether the relay or gateway ever accepted `username` as a user (any event but
/// `unknown_user`) in the logs still held.
pub fn known_as_user(conn: &mut AnyConnection, username: &str, channel: AuthChannel) -> QueryResult<bool> {
    on_backend!(conn, |c| diesel::select(diesel::dsl::exists(
        auth_events::table
            .filter(auth_events::username.eq(username))
            .filter(auth_events::channel.eq(channel.as_str()))
            .filter(auth_events::result.ne(AuthResult::UnknownUser.as_str())),
    ))
    .get_result(c))
}

/// The account the latest event naming one says owns `username`.
pub fn owner_of(conn: &mut AnyConnection, username: &str, channel: AuthChannel) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Owner {
        #[diesel(sql_type = diesel::sql_types::Text)]
        account_id: String,
    }
    let rows: Vec<Owner> = on_backend!(conn, |c| of_user(
        "SELECT account_id FROM auth_events",
        username,
        channel
    )
    .sql(" AND account_id IS NOT NULL ORDER BY at DESC LIMIT 1")
    .load(c))?;
    Ok(rows.into_iter().next().map(|row| row.account_id))
}

/// Deletes events logged before `cutoff`, a slice at a time so that writers are never held up
/// for long. Returns how many were deleted. (No index on `at`: the slices scan the table, which
/// once an hour costs less than the index would cost every import.)
pub fn purge_before(conn: &mut AnyConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    const SLICE: i64 = 10_000;
    let mut deleted = 0;
    loop {
        let ids: Vec<i64> = auth_events::table
            .filter(auth_events::at.lt(cutoff))
            .limit(SLICE)
            .select(auth_events::id)
            .load(conn)?;
        if ids.is_empty() {
            return Ok(deleted);
        }
        deleted += diesel::delete(auth_events::table.filter(auth_events::id.eq_any(&ids))).execute(conn)?;
        if (ids.len() as i64) < SLICE {
            return Ok(deleted);
        }
    }
}

/// How many events are held (for summaries and tests).
pub fn count(conn: &mut AnyConnection) -> QueryResult<i64> {
    auth_events::table.count().get_result(conn)
}

/// The latest `diagnosis` event of each ticket: its data and when it was written.
pub fn latest_diagnoses(
    conn: &mut AnyConnection,
    ticket_ids: &[i64],
) -> QueryResult<HashMap<i64, (String, String, NaiveDateTime)>> {
    if ticket_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, String, String, NaiveDateTime)> = events::table
        .filter(events::ticket_id.eq_any(ticket_ids))
        .filter(events::event_type.eq(crate::domain::event::EventType::Diagnosis.as_str()))
        .order(events::id.desc())
        .select((events::ticket_id, events::data, events::actor, events::created_at))
        .load(conn)?;
    let mut latest = HashMap::new();
    for (ticket_id, data, actor, at) in rows {
        latest.entry(ticket_id).or_insert((data, actor, at));
    }
    Ok(latest)
}

/// Everything stored of one username (for tests and the benchmark).
pub fn of_username(conn: &mut AnyConnection, username: &str) -> QueryResult<Vec<AuthEventRow>> {
    auth_events::table
        .filter(auth_events::username.eq(username))
        .order(auth_events::at.asc())
        .select(AuthEventRow::as_select())
        .load(conn)
}
