//! Agents and their credentials: adding agents, passwords (the first admin's one-time password
//! included), and named, expiring, revocable API tokens.

use super::ServiceError;
use crate::db::{self, AnyConnection, agents};
use crate::domain::email_address::EmailAddress;
use chrono::{DateTime, Duration, SubsecRound, Utc};

/// How long the first admin's one-time password works if nobody signs in with it.
pub const ONE_TIME_PASSWORD_HOURS: i64 = 24;
/// The password rules: long enough to resist guessing, short enough that argon2 stays cheap.
pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 256;
/// The longest life `--expires-days` may give a token.
pub const TOKEN_MAX_DAYS: i64 = 3650;
const TOKEN_NAME_MAX_CHARS: usize = 100;

/// The rules a new password must follow (`agents add`, `agents password`, the console).
pub fn check_new_password(password: &str) -> Result<(), ServiceError> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(ServiceError::Invalid(format!(
            "password: use at least {PASSWORD_MIN_CHARS} characters"
        )));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(ServiceError::Invalid(format!(
            "password: use at most {PASSWORD_MAX_CHARS} characters"
        )));
    }
    if password.trim() != password {
        return Err(ServiceError::Invalid(
            "password: it may not start or end with a space".into(),
        ));
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(role = role))]
pub fn add_agent(
    conn: &mut AnyConnection,
    email: &str,
    name: &str,
    role: &str,
    password: &str,
) -> Result<i64, ServiceError> {
    let email = EmailAddress::parse(email).map_err(|e| ServiceError::Invalid(format!("email: {e}")))?;
    if name.trim().is_empty() {
        return Err(ServiceError::Invalid("name: is required".into()));
    }
    if role != "agent" && role != "admin" {
        return Err(ServiceError::Invalid(format!("role: {role:?} is not agent or admin")));
    }
    check_new_password(password)?;
    let hash = crate::crypto::hash_password(password).map_err(ServiceError::Invalid)?;
    db::write_transaction(conn, |conn| {
        if agents::find_by_email(conn, email.as_str())?.is_some() {
            return Err(ServiceError::Invalid(format!("email: an agent {email} already exists")));
        }
        Ok(agents::insert(conn, email.as_str(), name.trim(), role, &hash)?)
    })
}

/// `agents password`: the operator sets an agent's password. It ends the agent's sessions and
/// replaces a one-time password.
#[tracing::instrument(level = "debug", skip_all)]
pub fn set_password(conn: &mut AnyConnection, email: &str, password: &str) -> Result<(), ServiceError> {
    check_new_password(password)?;
    let agent = agents::find_by_email(conn, email)?.ok_or_else(|| ServiceError::NotFound(format!("agent {email}")))?;
    let hash = crate::crypto::hash_password(password).map_err(ServiceError::Invalid)?;
    db::write_transaction(conn, |conn| {
        agents::set_password(conn, agent.id, &hash)?;
        Ok(())
    })
}

/// Why the console refused a password change (shown next to the form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeRefused {
    WrongCurrent,
    SameAsCurrent,
    Mismatch,
    Rules(String),
}

/// The console's "change my password": the current password is required, the new one follows
/// the rules and differs from it. Returns the new session generation: every other session of
/// the agent has ended, and the caller issues this browser a fresh cookie.
#[tracing::instrument(level = "debug", skip_all, fields(agent_id = agent_id))]
pub fn change_password(
    conn: &mut AnyConnection,
    agent_id: i64,
    current: &str,
    new: &str,
    again: &str,
) -> Result<Result<i64, ChangeRefused>, ServiceError> {
    let agent = agents::find(conn, agent_id)?
        .filter(|a| a.active)
        .ok_or_else(|| ServiceError::NotFound("agent".into()))?;
    if !crate::crypto::verify_password(current, &agent.password_hash) {
        return Ok(Err(ChangeRefused::WrongCurrent));
    }
    if new != again {
        return Ok(Err(ChangeRefused::Mismatch));
    }
    if new == current {
        return Ok(Err(ChangeRefused::SameAsCurrent));
    }
    if let Err(e) = check_new_password(new) {
        return Ok(Err(ChangeRefused::Rules(e.to_string())));
    }
    let hash = crate::crypto::hash_password(new).map_err(ServiceError::Invalid)?;
    let generation = db::write_transaction(conn, |conn| agents::set_password(conn, agent_id, &hash))?;
    Ok(Ok(generation))
}

/// What `agents token` asks for besides the agent.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub name: String,
    pub expires_days: Option<i64>,
}

impl TokenRequest {
    /// `--name` and `--expires-days` as typed.
    pub fn parse(name: &str, expires_days: Option<&str>) -> Result<TokenRequest, ServiceError> {
        let name = name.trim();
        if name.chars().count() > TOKEN_NAME_MAX_CHARS || name.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(format!(
                "--name: at most {TOKEN_NAME_MAX_CHARS} characters, on one line"
            )));
        }
        let expires_days = match expires_days {
            None => None,
            Some(text) => match text.trim().parse::<i64>() {
                Ok(days) if (1..=TOKEN_MAX_DAYS).contains(&days) => Some(days),
                _ => {
                    return Err(ServiceError::Invalid(format!(
                        "--expires-days must be a whole number of days from 1 to {TOKEN_MAX_DAYS}, not {text:?}"
                    )));
                }
            },
        };
        Ok(TokenRequest {
            name: name.to_string(),
            expires_days,
        })
    }
}

/// A new API token for an agent: returned once, stored only as its SHA-256 hash.
#[tracing::instrument(level = "debug", skip_all)]
pub fn issue_token(conn: &mut AnyConnection, email: &str) -> Result<String, ServiceError> {
    issue_named_token(conn, email, &TokenRequest::default(), Utc::now())
}

/// A named token, expiring `expires_days` after `now` if asked.
#[tracing::instrument(level = "debug", skip_all)]
pub fn issue_named_token(
    conn: &mut AnyConnection,
    email: &str,
    request: &TokenRequest,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let agent = agents::find_by_email(conn, email)?
        .filter(|a| a.active)
        .ok_or_else(|| ServiceError::NotFound(format!("active agent {email}")))?;
    let token = crate::crypto::random_token();
    let expires_at = request
        .expires_days
        .map(|days| (now + Duration::days(days)).naive_utc().trunc_subsecs(6));
    agents::insert_token(
        conn,
        agent.id,
        &crate::crypto::sha256_hex(&token),
        &request.name,
        expires_at,
    )?;
    Ok(token)
}

/// `agents tokens --email E`: the agent's tokens, newest first.
#[tracing::instrument(level = "debug", skip_all)]
pub fn list_tokens(conn: &mut AnyConnection, email: &str) -> Result<Vec<agents::TokenRow>, ServiceError> {
    let agent = agents::find_by_email(conn, email)?.ok_or_else(|| ServiceError::NotFound(format!("agent {email}")))?;
    Ok(agents::tokens_of(conn, agent.id)?)
}

/// Every live token with its agent's address, for the admins' page.
#[tracing::instrument(level = "debug", skip_all)]
pub fn all_tokens(conn: &mut AnyConnection) -> Result<Vec<(agents::TokenRow, String)>, ServiceError> {
    Ok(agents::all_tokens(conn)?)
}

/// Revokes a token: the next request with it answers 401.
#[tracing::instrument(level = "debug", skip_all, fields(token_id = token_id))]
pub fn revoke_token(conn: &mut AnyConnection, token_id: i64, now: DateTime<Utc>) -> Result<(), ServiceError> {
    let at = now.naive_utc().trunc_subsecs(6);
    let revoked = db::write_transaction(conn, |conn| agents::revoke_token(conn, token_id, at))?;
    if revoked {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!("live API token {token_id}")))
    }
}

/// On a database with no agent, creates the admin and returns its one-time password, which
/// must be replaced at the first sign-in and stops working after 24 hours unused.
#[tracing::instrument(level = "debug", skip_all)]
pub fn bootstrap_admin(
    conn: &mut AnyConnection,
    admin_email: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, ServiceError> {
    if agents::count(conn)? > 0 {
        return Ok(None);
    }
    let password = crate::crypto::random_token();
    let hash = crate::crypto::hash_password(&password).map_err(ServiceError::Invalid)?;
    let expires_at = (now + Duration::hours(ONE_TIME_PASSWORD_HOURS))
        .naive_utc()
        .trunc_subsecs(6);
    db::write_transaction(conn, |conn| {
        // Two instances starting together on one database: only one creates the admin.
        if agents::count(conn)? > 0 {
            return Ok(None);
        }
        let id = agents::insert(conn, admin_email, "Administrator", "admin", &hash)?;
        agents::mark_one_time_password(conn, id, expires_at)?;
        Ok(Some(password.clone()))
    })
}

/// Every agent, active first (the admins' page).
#[tracing::instrument(level = "debug", skip_all)]
pub fn list(conn: &mut AnyConnection) -> Result<Vec<db::console::AgentListing>, ServiceError> {
    Ok(db::console::agents(conn)?)
}

/// An admin deactivates an agent: their sessions and API tokens stop working at once (both
/// check `active`). False when there was no such active agent.
#[tracing::instrument(level = "debug", skip_all, fields(agent_id = id))]
pub fn deactivate(conn: &mut AnyConnection, id: i64) -> Result<bool, ServiceError> {
    Ok(db::console::deactivate_agent(conn, id)?)
}

/// The id of the agent with this address, if there is one (the queue's assignee filter).
#[tracing::instrument(level = "debug", skip_all)]
pub fn id_by_email(conn: &mut AnyConnection, email: &str) -> Result<Option<i64>, ServiceError> {
    Ok(agents::find_by_email(conn, email)?.map(|a| a.id))
}

/// Whether the agent still signs in with a one-time password that must be replaced.
#[tracing::instrument(level = "debug", skip_all, fields(agent_id = agent_id))]
pub fn must_change_password(conn: &mut AnyConnection, agent_id: i64) -> Result<bool, ServiceError> {
    Ok(agents::find(conn, agent_id)?.is_some_and(|a| a.password_must_change))
}
