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
    /// Every session cookie carries the generation it was issued in; sign-out and a password
    /// change bump it, and a cookie of another generation is refused (compared exactly).
    pub session_generation: i64,
    /// The password is a one-time password: the console shows nothing but the change form.
    pub password_must_change: bool,
    /// A one-time password never used stops working at this time.
    pub password_expires_at: Option<NaiveDateTime>,
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

/// An API token as `agents tokens` and the console list it (never the token, not even its hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: i64,
    pub agent_id: i64,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert_token(
    conn: &mut AnyConnection,
    agent_id: i64,
    token_hash: &str,
    name: &str,
    expires_at: Option<NaiveDateTime>,
) -> QueryResult<i64> {
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::agent_id.eq(agent_id),
            api_tokens::token_hash.eq(token_hash),
            api_tokens::name.eq(name),
            api_tokens::created_at.eq(now()),
            api_tokens::expires_at.eq(expires_at),
        ))
        .returning(api_tokens::id)
        .get_result(conn)
}

/// The active agent owning a live token with this hash, and the token's id. A token is live
/// until it is revoked or expires; a deactivated agent's tokens stop working at once because
/// the join checks `active` on every request.
pub fn agent_for_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<(AgentRow, i64)>> {
    api_tokens::table
        .inner_join(agents::table)
        .filter(api_tokens::token_hash.eq(token_hash))
        .filter(api_tokens::revoked_at.is_null())
        .filter(api_tokens::expires_at.is_null().or(api_tokens::expires_at.gt(at)))
        .filter(agents::active.eq(true))
        .select((AgentRow::as_select(), api_tokens::id))
        .first(conn)
        .optional()
}

/// Keeps `last_used_at` to the minute: one write a minute per token, not one per request.
pub fn touch_token(conn: &mut AnyConnection, token_id: i64, at: NaiveDateTime) -> QueryResult<()> {
    let a_minute_ago = at - chrono::Duration::minutes(1);
    diesel::update(
        api_tokens::table.find(token_id).filter(
            api_tokens::last_used_at
                .is_null()
                .or(api_tokens::last_used_at.lt(a_minute_ago)),
        ),
    )
    .set(api_tokens::last_used_at.eq(at))
    .execute(conn)
    .map(|_| ())
}

/// An agent's tokens that are not revoked (expired ones included), newest first.
pub fn tokens_of(conn: &mut AnyConnection, agent_id: i64) -> QueryResult<Vec<TokenRow>> {
    api_tokens::table
        .filter(api_tokens::agent_id.eq(agent_id))
        .filter(api_tokens::revoked_at.is_null())
        .order(api_tokens::id.desc())
        .select(TokenRow::as_select())
        .load(conn)
}

/// Every token not revoked, with its agent's email, newest first (the admins' console page).
pub fn all_tokens(conn: &mut AnyConnection) -> QueryResult<Vec<(TokenRow, String)>> {
    api_tokens::table
        .inner_join(agents::table)
        .filter(api_tokens::revoked_at.is_null())
        .order(api_tokens::id.desc())
        .select((TokenRow::as_select(), agents::email))
        .load(conn)
}

pub fn find_token(conn: &mut AnyConnection, token_id: i64) -> QueryResult<Option<TokenRow>> {
    api_tokens::table
        .find(token_id)
        .select(TokenRow::as_select())
        .first(conn)
        .optional()
}

/// Revokes a live token; false when there is no such token or it was revoked already.
pub fn revoke_token(conn: &mut AnyConnection, token_id: i64, at: NaiveDateTime) -> QueryResult<bool> {
    let rows = diesel::update(
        api_tokens::table
            .find(token_id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(at))
    .execute(conn)?;
    Ok(rows == 1)
}

/// Ends every session of the agent issued up to now: the generation moves on.
pub fn end_sessions(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    diesel::update(agents::table.find(id))
        .set((
            agents::sessions_valid_after.eq(now()),
            agents::session_generation.eq(agents::session_generation + 1),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A one-time password: to be replaced at the first sign-in, void if unused by `expires_at`.
pub fn mark_one_time_password(conn: &mut AnyConnection, id: i64, expires_at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(agents::table.find(id))
        .set((
            agents::password_must_change.eq(true),
            agents::password_expires_at.eq(Some(expires_at)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The one-time password was used to sign in: it no longer expires (it must still be changed).
pub fn one_time_password_used(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    diesel::update(agents::table.find(id).filter(agents::password_expires_at.is_not_null()))
        .set(agents::password_expires_at.eq(None::<NaiveDateTime>))
        .execute(conn)
        .map(|_| ())
}

/// A new password hash; ends every session (the generation moves on) and clears the one-time
/// marks. Returns the new generation.
pub fn set_password(conn: &mut AnyConnection, id: i64, password_hash: &str) -> QueryResult<i64> {
    diesel::update(agents::table.find(id))
        .set((
            agents::password_hash.eq(password_hash),
            agents::password_must_change.eq(false),
            agents::password_expires_at.eq(None::<NaiveDateTime>),
            agents::sessions_valid_after.eq(now()),
            agents::session_generation.eq(agents::session_generation + 1),
        ))
        .returning(agents::session_generation)
        .get_result(conn)
}
