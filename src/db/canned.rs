//! Canned answers (`canned_answers`).

use super::schema::canned_answers;
use super::{AnyConnection, now};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = canned_answers)]
pub struct CannedRow {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub account_dependent: bool,
}

pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<CannedRow>> {
    canned_answers::table
        .order((canned_answers::title.asc(), canned_answers::id.asc()))
        .select(CannedRow::as_select())
        .load(conn)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<CannedRow>> {
    canned_answers::table
        .find(id)
        .select(CannedRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut AnyConnection, title: &str, body: &str, account_dependent: bool) -> QueryResult<i64> {
    let at = now();
    diesel::insert_into(canned_answers::table)
        .values((
            canned_answers::title.eq(title),
            canned_answers::body.eq(body),
            canned_answers::account_dependent.eq(account_dependent),
            canned_answers::created_at.eq(at),
            canned_answers::updated_at.eq(at),
        ))
        .returning(canned_answers::id)
        .get_result(conn)
}

pub fn delete(conn: &mut AnyConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(canned_answers::table.find(id))
        .execute(conn)
        .map(|n| n == 1)
}

/// Rewrites an answer; false when there is no such answer.
pub fn update(
    conn: &mut AnyConnection,
    id: i64,
    title: &str,
    body: &str,
    account_dependent: bool,
) -> QueryResult<bool> {
    diesel::update(canned_answers::table.find(id))
        .set((
            canned_answers::title.eq(title),
            canned_answers::body.eq(body),
            canned_answers::account_dependent.eq(account_dependent),
            canned_answers::updated_at.eq(now()),
        ))
        .execute(conn)
        .map(|n| n == 1)
}
