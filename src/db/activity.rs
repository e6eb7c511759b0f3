//! Who acts next on each ticket (`ticket_activity`, one row per ticket).

use super::kept::{Kept, Value};
use super::schema::ticket_activity;
use super::{AnyConnection, now};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ticket_activity)]
pub struct ActivityRow {
    pub ticket_id: i64,
    pub waiting_on: String,
    pub last_activity_at: NaiveDateTime,
    pub customer_activity_at: Option<NaiveDateTime>,
    pub assignee_seen_at: Option<NaiveDateTime>,
}

/// The ticket's row, `None` when it has none; not read for a ticket this transaction opened
/// and wrote no row for (every new ticket's first turn).
pub fn find(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<Option<ActivityRow>> {
    if super::memo::has_no_activity_row(conn, ticket_id) {
        return Ok(None);
    }
    super::at_most_one(on_backend!(conn, |c| ticket_activity::table
        .find(ticket_id)
        .select(ActivityRow::as_select())
        .load(c)))
}

pub fn of_tickets(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<HashMap<i64, ActivityRow>> {
    Ok(ticket_activity::table
        .filter(ticket_activity::ticket_id.eq_any(ids))
        .select(ActivityRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| (r.ticket_id, r))
        .collect())
}

/// Writes the turn after an activity at `at`, over the ticket's row as it was read
/// (`existing`, `None` for a ticket without one yet); `customer` moves the customer's last
/// activity too, `reset_seen` forgets what the assignee had seen.
pub fn record(
    conn: &mut AnyConnection,
    ticket_id: i64,
    existing: Option<&ActivityRow>,
    waiting_on: &str,
    customer: bool,
    reset_seen: bool,
    at: NaiveDateTime,
) -> QueryResult<()> {
    match existing {
        Some(row) => {
            let customer_at = if customer { Some(at) } else { row.customer_activity_at };
            let seen = if reset_seen { None } else { row.assignee_seen_at };
            // Kept prepared (`Kept`): Diesel compiles an `UPDATE` again at every use.
            on_backend!(&mut *conn, |c| Kept::default()
                .sql("UPDATE ticket_activity SET waiting_on = ")
                .bind(Value::Text(waiting_on))
                .sql(", last_activity_at = ")
                .bind(Value::Timestamp(at))
                .sql(", customer_activity_at = ")
                .bind(Value::OptionalTimestamp(customer_at))
                .sql(", assignee_seen_at = ")
                .bind(Value::OptionalTimestamp(seen))
                .sql(" WHERE ticket_id = ")
                .bind(Value::BigInt(ticket_id))
                .execute(c))?;
        }
        None => {
            on_backend!(&mut *conn, |c| diesel::insert_into(ticket_activity::table)
                .values((
                    ticket_activity::ticket_id.eq(ticket_id),
                    ticket_activity::waiting_on.eq(waiting_on),
                    ticket_activity::last_activity_at.eq(at),
                    ticket_activity::customer_activity_at.eq(customer.then_some(at)),
                ))
                .execute(c))?;
        }
    }
    super::memo::set_activity_written(conn, ticket_id);
    Ok(())
}

/// The assignee opened the ticket: customer activity before now is no longer new to them.
pub fn mark_seen(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<()> {
    diesel::update(ticket_activity::table.find(ticket_id))
        .set(ticket_activity::assignee_seen_at.eq(now()))
        .execute(conn)
        .map(|_| ())
}

/// The newest activity on any ticket: the queue's live updates watch it move.
pub fn latest(conn: &mut AnyConnection) -> QueryResult<Option<NaiveDateTime>> {
    ticket_activity::table
        .select(diesel::dsl::max(ticket_activity::last_activity_at))
        .first(conn)
}
