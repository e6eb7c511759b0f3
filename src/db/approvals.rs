//! Four-eyes approval requests (migration 000017).

use super::kept::{Kept, Value};
use super::schema::approvals;
use super::{AnyConnection, now};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = approvals)]
pub struct ApprovalRow {
    pub id: i64,
    pub ticket_id: i64,
    pub action: String,
    pub params: String,
    pub requested_by_id: i64,
    pub requested_by: String,
    pub requested_at: NaiveDateTime,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub reason: Option<String>,
}

pub struct NewApproval<'a> {
    pub ticket_id: i64,
    pub action: &'a str,
    pub params: &'a serde_json::Value,
    pub requested_by_id: i64,
    pub requested_by: &'a str,
}

pub fn insert(conn: &mut AnyConnection, a: &NewApproval) -> QueryResult<ApprovalRow> {
    let id: i64 = diesel::insert_into(approvals::table)
        .values((
            approvals::ticket_id.eq(a.ticket_id),
            approvals::action.eq(a.action),
            approvals::params.eq(a.params.to_string()),
            approvals::requested_by_id.eq(a.requested_by_id),
            approvals::requested_by.eq(a.requested_by),
            approvals::requested_at.eq(now()),
            approvals::status.eq("pending"),
        ))
        .returning(approvals::id)
        .get_result(conn)?;
    find(conn, id)?.ok_or(diesel::result::Error::NotFound)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<ApprovalRow>> {
    approvals::table
        .find(id)
        .select(ApprovalRow::as_select())
        .first(conn)
        .optional()
}

/// A ticket's pending requests (expired ones included: the caller decides), oldest first.
pub fn pending_of(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<Vec<ApprovalRow>> {
    // `'pending'` is written into the text, not bound: SQLite prepares a statement again at
    // every use when a bound value decides whether a partial index (`approvals_one_pending`)
    // applies; this one runs for every decision (docs/benchmarks.md).
    on_backend!(conn, |c| Kept::default()
        .sql(
            "SELECT id, ticket_id, action, params, requested_by_id, requested_by, requested_at, status, \
             decided_by, decided_at, reason FROM approvals WHERE ticket_id = ",
        )
        .bind(Value::BigInt(ticket_id))
        .sql(" AND status = 'pending' ORDER BY id")
        .load(c))
}

/// Every pending request made after `since`, oldest first.
pub fn pending_since(conn: &mut AnyConnection, since: NaiveDateTime, limit: i64) -> QueryResult<Vec<ApprovalRow>> {
    approvals::table
        .filter(approvals::status.eq("pending"))
        .filter(approvals::requested_at.gt(since))
        .order(approvals::id.asc())
        .limit(limit)
        .select(ApprovalRow::as_select())
        .load(conn)
}

/// Closes a pending request (compare-and-set on its status): false when it was not pending.
pub fn close(
    conn: &mut AnyConnection,
    id: i64,
    status: &str,
    decided_by: &str,
    reason: Option<&str>,
) -> QueryResult<bool> {
    let rows = diesel::update(
        approvals::table
            .filter(approvals::id.eq(id))
            .filter(approvals::status.eq("pending")),
    )
    .set((
        approvals::status.eq(status),
        approvals::decided_by.eq(decided_by),
        approvals::decided_at.eq(now()),
        approvals::reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(rows == 1)
}
