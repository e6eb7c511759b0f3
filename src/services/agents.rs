//! Adding agents, issuing API tokens, and the first admin of an empty database.

use super::ServiceError;
use crate::db::{self, AnyConnection, agents};
use crate::domain::email_address::EmailAddress;

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
    if password.chars().count() < 12 {
        return Err(ServiceError::Invalid("password: use at least 12 characters".into()));
    }
    let hash = crate::crypto::hash_password(password).map_err(ServiceError::Invalid)?;
    db::write_transaction(conn, |conn| {
        if agents::find_by_email(conn, email.as_str())?.is_some() {
            return Err(ServiceError::Invalid(format!("email: an agent {email} already exists")));
        }
        Ok(agents::insert(conn, email.as_str(), name.trim(), role, &hash)?)
    })
}

/// A new API token for an agent: returned once, stored only as its SHA-256 hash.
pub fn issue_token(conn: &mut AnyConnection, email: &str) -> Result<String, ServiceError> {
    let agent = agents::find_by_email(conn, email)?
        .filter(|a| a.active)
        .ok_or_else(|| ServiceError::NotFound(format!("active agent {email}")))?;
    let token = crate::crypto::random_token();
    agents::insert_token(conn, agent.id, &crate::crypto::sha256_hex(&token))?;
    Ok(token)
}

/// On a database with no agent, creates the admin and returns its one-time password.
pub fn bootstrap_admin(conn: &mut AnyConnection, admin_email: &str) -> Result<Option<String>, ServiceError> {
    if agents::count(conn)? > 0 {
        return Ok(None);
    }
    let password = crate::crypto::random_token();
    let hash = crate::crypto::hash_password(&password).map_err(ServiceError::Invalid)?;
    db::write_transaction(conn, |conn| {
        // Two instances starting together on one database: only one creates the admin.
        if agents::count(conn)? > 0 {
            return Ok(None);
        }
        agents::insert(conn, admin_email, "Administrator", "admin", &hash)?;
        Ok(Some(password.clone()))
    })
}
