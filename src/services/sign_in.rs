//! The agent sign-in throttle: after 5 failures for one email from one client within 15
//! minutes, or 20 from one client, sign-in answers 429 for 15 minutes.
//!
//! Counting and recording are one step: under the client's key lock (PostgreSQL) or the write
//! lock (SQLite), the failures are counted and this try is recorded as a failure before its
//! password is checked. A burst of parallel tries therefore sees the tries ahead of it, and
//! only the first five reach argon2; the check itself runs with no database connection held.

use super::ServiceError;
use crate::db::locks::{self, KeyLock};
use crate::db::{self, AnyConnection, agents, console as queries};
use crate::domain::throttle::{client_key, locked_until};
use chrono::Duration;

/// After this many failures for one email from one client within the window…
pub const FAILURES_PER_ACCOUNT: usize = 5;
/// …or this many from one client, sign-in answers 429 for the window.
pub const FAILURES_PER_CLIENT: usize = 20;
pub const WINDOW_MINUTES: i64 = 15;

/// A try that may go ahead: the password check still to do, and what it is checked against.
#[derive(Debug)]
pub struct SignInTry {
    attempt_id: i64,
    /// The active agent with that email, if any.
    agent: Option<Candidate>,
    now: chrono::NaiveDateTime,
}

#[derive(Debug)]
struct Candidate {
    id: i64,
    password_hash: String,
    generation: i64,
    must_change: bool,
    expires_at: Option<chrono::NaiveDateTime>,
}

/// Who signed in: the session is issued in the agent's current generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn {
    pub agent_id: i64,
    pub generation: i64,
    /// The password is a one-time password: the console asks for a new one first.
    pub must_change: bool,
}

pub enum Gate {
    Throttled,
    Try(SignInTry),
}

/// Counts the recent failures of (email, client) and of the client, and records this try.
#[tracing::instrument(level = "debug", skip_all)]
pub fn begin(
    conn: &mut AnyConnection,
    email: &str,
    client: &str,
    clock: &crate::clock::Clock,
) -> Result<Gate, ServiceError> {
    let client = client_key(client);
    let window = Duration::minutes(WINDOW_MINUTES);
    // The desk's clock, for the count and the record alike: a test moves it past the lockout.
    let now = clock.naive_now();
    let attempt = db::write_transaction(conn, |conn| -> Result<Option<i64>, ServiceError> {
        // One lock per client covers both counts: every (email, client) pair is in it.
        locks::lock_key(conn, KeyLock::SignInClient, &client)?;
        let (pair, all) = queries::failures_since(conn, email, &client, now - window - window)?;
        let locked = [
            locked_until(&pair, FAILURES_PER_ACCOUNT, window),
            locked_until(&all, FAILURES_PER_CLIENT, window),
        ]
        .into_iter()
        .flatten()
        .any(|until| until > now);
        if locked {
            return Ok(None);
        }
        Ok(Some(queries::record_login_attempt(conn, email, &client, false, now)?))
    })?;
    let Some(attempt_id) = attempt else {
        return Ok(Gate::Throttled);
    };
    let agent = agents::find_by_email(conn, email)?
        .filter(|a| a.active)
        .map(|a| Candidate {
            id: a.id,
            password_hash: a.password_hash,
            generation: a.session_generation,
            must_change: a.password_must_change,
            expires_at: a.password_expires_at,
        });
    Ok(Gate::Try(SignInTry { attempt_id, agent, now }))
}

impl SignInTry {
    /// The argon2 check (slow on purpose): call it without holding a database connection.
    /// Unknown emails are checked against a real hash too, so timing tells nothing; so is a
    /// one-time password past its expiry, which then fails like a wrong one.
    pub fn check(&self, password: &str, dummy_hash: &str) -> Option<SignedIn> {
        let hash = self
            .agent
            .as_ref()
            .map(|a| a.password_hash.as_str())
            .unwrap_or(dummy_hash);
        let valid = crate::crypto::verify_password(password, hash);
        self.agent
            .as_ref()
            .filter(|_| valid)
            .filter(|a| a.expires_at.is_none_or(|until| self.now < until))
            .map(|a| SignedIn {
                agent_id: a.id,
                generation: a.generation,
                must_change: a.must_change,
            })
    }

    pub fn attempt_id(&self) -> i64 {
        self.attempt_id
    }
}

/// A try whose password matched no longer counts as a failure, and a one-time password once
/// used no longer expires (it must still be replaced before anything else).
#[tracing::instrument(level = "debug", skip_all, fields(attempt_id = attempt_id, agent_id = agent_id))]
pub fn succeeded(conn: &mut AnyConnection, attempt_id: i64, agent_id: i64) -> Result<(), ServiceError> {
    db::write_transaction(conn, |conn| {
        queries::mark_login_succeeded(conn, attempt_id)?;
        agents::one_time_password_used(conn, agent_id).map_err(ServiceError::from)
    })
}

/// The agent a console session names, as stored now (a deactivated agent or an older session
/// generation is the caller's to refuse).
#[tracing::instrument(level = "debug", skip_all, fields(agent_id = agent_id))]
pub fn session_agent(conn: &mut AnyConnection, agent_id: i64) -> Result<Option<agents::AgentRow>, ServiceError> {
    Ok(agents::find(conn, agent_id)?)
}

/// Sign-out: every session of the agent ends, not only this browser's.
#[tracing::instrument(level = "debug", skip_all, fields(agent_id = agent_id))]
pub fn end_sessions(conn: &mut AnyConnection, agent_id: i64) -> Result<(), ServiceError> {
    Ok(agents::end_sessions(conn, agent_id)?)
}

/// An API caller by its token's hash: the agent, counted against the rate limit; none for a
/// token that is unknown, revoked or expired (refused before it costs a row).
#[tracing::instrument(level = "debug", skip_all)]
pub fn api_caller(
    conn: &mut AnyConnection,
    desk: &super::Desk,
    token_hash: &str,
) -> Result<Option<(agents::AgentRow, db::api_requests::Admission)>, ServiceError> {
    let now = desk.settings.clock.naive_now();
    // A revoked or expired token is refused from the next request on.
    let Some((agent, token_id)) = agents::agent_for_token(conn, token_hash, now)? else {
        return Ok(None);
    };
    agents::touch_token(conn, token_id, now)?;
    let admission = db::api_requests::admit(conn, token_hash, desk.settings.api_rate_limit, db::now())?;
    Ok(Some((agent, admission)))
}
