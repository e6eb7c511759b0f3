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
    /// (agent id, password hash) of an active agent with that email, if any.
    agent: Option<(i64, String)>,
}

pub enum Gate {
    Throttled,
    Try(SignInTry),
}

/// Counts the recent failures of (email, client) and of the client, and records this try.
pub fn begin(conn: &mut AnyConnection, email: &str, client: &str) -> Result<Gate, ServiceError> {
    let client = client_key(client);
    let window = Duration::minutes(WINDOW_MINUTES);
    let attempt = db::write_transaction(conn, |conn| -> Result<Option<i64>, ServiceError> {
        // One lock per client covers both counts: every (email, client) pair is in it.
        locks::lock_key(conn, KeyLock::SignInClient, &client)?;
        let now = db::now();
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
        Ok(Some(queries::record_login_attempt(conn, email, &client, false)?))
    })?;
    let Some(attempt_id) = attempt else {
        return Ok(Gate::Throttled);
    };
    let agent = agents::find_by_email(conn, email)?
        .filter(|a| a.active)
        .map(|a| (a.id, a.password_hash));
    Ok(Gate::Try(SignInTry { attempt_id, agent }))
}

impl SignInTry {
    /// The argon2 check (slow on purpose): call it without holding a database connection.
    /// Unknown emails are checked against a real hash too, so timing tells nothing.
    pub fn check(&self, password: &str, dummy_hash: &str) -> Option<i64> {
        let hash = self.agent.as_ref().map(|(_, h)| h.as_str()).unwrap_or(dummy_hash);
        let valid = crate::crypto::verify_password(password, hash);
        self.agent.as_ref().filter(|_| valid).map(|(id, _)| *id)
    }

    pub fn attempt_id(&self) -> i64 {
        self.attempt_id
    }
}

/// A try whose password matched no longer counts as a failure.
pub fn succeeded(conn: &mut AnyConnection, attempt_id: i64) -> Result<(), ServiceError> {
    db::write_transaction(conn, |conn| {
        queries::mark_login_succeeded(conn, attempt_id).map_err(ServiceError::from)
    })
}
