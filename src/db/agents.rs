//! Agents and their API tokens (stored as SHA-256 hashes, never in clear).

use super::schema::{agents, api_tokens};
use super::{AnyConnection, now};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = agents)]
pub struct AgentRow {
    pub id: i64,
    pub email: String,
    pub email_normalized: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub deactivated_at: Option<NaiveDateTime>,
    /// Sessions issued before this are void (sign-out ends every session of the agent).
    pub sessions_valid_after: Option<NaiveDateTime>,
}

impl AgentRow {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

pub fn count(conn: &mut AnyConnection) -> QueryResult<i64> {
    agents::table.count().get_result(conn)
}

pub fn find_by_email(conn: &mut AnyConnection, email: &str) -> QueryResult<Option<AgentRow>> {
    agents::table
        .filter(agents::email_normalized.eq(crate::domain::email_address::normalize(email)))
        .select(AgentRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<AgentRow>> {
    agents::table
        .find(id)
        .select(AgentRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut AnyConnection, email: &str, name: &str, role: &str, password_hash: &str) -> QueryResult<i64> {
    diesel::insert_into(agents::table)
        .values((
            agents::email.eq(email.trim()),
            agents::email_normalized.eq(crate::domain::email_address::normalize(email)),
            agents::name.eq(name),
            agents::role.eq(role),
            agents::password_hash.eq(password_hash),
            agents::active.eq(true),
            agents::created_at.eq(now()),
        ))
        .returning(agents::id)
        .get_result(conn)
}

pub fn insert_token(conn: &mut AnyConnection, agent_id: i64, token_hash: &str) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::agent_id.eq(agent_id),
            api_tokens::token_hash.eq(token_hash),
            api_tokens::created_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The active agent owning a live token with this hash. A deactivated agent's tokens stop
/// working at once because the join checks `active` on every request.
pub fn agent_for_token(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<Option<AgentRow>> {
    api_tokens::table
        .inner_join(agents::table)
        .filter(api_tokens::token_hash.eq(token_hash))
        .filter(api_tokens::revoked_at.is_null())
        .filter(agents::active.eq(true))
        .select(AgentRow::as_select())
        .first(conn)
        .optional()
}

pub fn end_sessions(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    diesel::update(agents::table.find(id))
        .set(agents::sessions_valid_after.eq(now()))
        .execute(conn)
        .map(|_| ())
}
