//! Loading the account directory (docs/reference.md#account-directory): one line, one transaction, bans are permanent.

use super::{Desk, ServiceError};
use crate::db::accounts::{self, AccountRecord};
use crate::db::{self, AnyConnection};
use crate::domain::account::{AccountStatus, Username};
use crate::domain::email_address::EmailAddress;
use chrono::NaiveDateTime;
use serde::Deserialize;

/// One import line as written by the provider's export.
#[derive(Debug, Deserialize)]
struct ImportLine {
    id: String,
    username: String,
    email: String,
    status: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    ip_access: Option<IpAccess>,
    #[serde(default)]
    balance_due_cents: Option<i64>,
    #[serde(default)]
    terminated_at: Option<String>,
    #[serde(default)]
    banned_at: Option<String>,
    #[serde(default)]
    dedicated_ips: Option<Vec<String>>,
    /// Fields the desk does not use are ignored, except credentials (refused, never stored).
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Field names that carry credentials: a line with one is refused so nothing secret is kept.
fn is_secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "api_key",
        "apikey",
        "token",
        "private_key",
    ]
    .iter()
    .any(|s| name.contains(s))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IpAccess {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    allowlist: Vec<String>,
}

/// What one import line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    Created,
    Updated,
    /// Refused with a reason; nothing of this line was applied.
    Refused(String),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    pub refused: Vec<(usize, String)>,
    /// Open tickets refused because their account is now banned.
    pub tickets_refused: usize,
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<NaiveDateTime>, String> {
    match value {
        None => Ok(None),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.naive_utc()))
            .map_err(|_| format!("{field}: {text:?} is not an RFC 3339 time")),
    }
}

fn parse_line(text: &str) -> Result<AccountRecord, String> {
    let line: ImportLine = serde_json::from_str(text).map_err(|e| format!("not a valid account object: {e}"))?;
    if let Some(field) = line.other.keys().find(|k| is_secret_field(k)) {
        return Err(format!("{field}: credentials are never stored; remove this field"));
    }
    if line.id.trim().is_empty() || line.id != line.id.trim() {
        return Err("id: must be non-empty, without surrounding spaces".into());
    }
    let username = Username::parse(&line.username).map_err(|e| format!("username: {e}"))?;
    let email = EmailAddress::parse(&line.email).map_err(|e| format!("email: {e}"))?;
    let status = AccountStatus::parse(&line.status).ok_or_else(|| {
        format!(
            "status: {:?} is not one of active, pending_confirmation, terminated, banned",
            line.status
        )
    })?;
    let balance = line.balance_due_cents.unwrap_or(0);
    if balance < 0 {
        return Err("balance_due_cents: must not be negative".into());
    }
    let parent_id = line.parent_id.filter(|p| !p.is_empty());
    if parent_id.as_deref() == Some(line.id.as_str()) {
        return Err("parent_id: an account cannot be its own parent".into());
    }
    let ip_access = line.ip_access.unwrap_or(IpAccess {
        enabled: false,
        allowlist: vec![],
    });
    if let Some(bad) = ip_access.allowlist.iter().find(|e| e.trim().is_empty()) {
        return Err(format!("ip_access.allowlist: empty entry {bad:?}"));
    }
    Ok(AccountRecord {
        id: line.id,
        username: username.as_str().to_string(),
        email: email.as_str().to_string(),
        status,
        parent_id,
        ip_access_enabled: ip_access.enabled,
        allowlist: ip_access.allowlist.into_iter().map(|e| e.trim().to_string()).collect(),
        balance_due_cents: balance,
        terminated_at: parse_time("terminated_at", line.terminated_at.as_deref())?,
        banned_at: parse_time("banned_at", line.banned_at.as_deref())?,
        dedicated_ips: line.dedicated_ips.unwrap_or_default(),
    })
}

/// Applies one line in its own transaction, with the ban cascade: the account's descendants
/// become banned through it, and open tickets of every newly banned account are refused.
#[tracing::instrument(level = "debug", skip_all)]
pub fn import_line(conn: &mut AnyConnection, desk: &Desk, text: &str) -> Result<(LineOutcome, usize), ServiceError> {
    let record = match parse_line(text) {
        Ok(r) => r,
        Err(reason) => return Ok((LineOutcome::Refused(reason), 0)),
    };
    db::write_transaction(conn, |conn| {
        lock_for_import(conn, &record.id)?;
        let existing = accounts::find(conn, &record.id)?;
        if let Some(old) = &existing
            && old.status() == AccountStatus::Banned
            && record.status != AccountStatus::Banned
        {
            return Ok((
                LineOutcome::Refused(format!(
                    "account {} is banned and a ban is permanent: status {:?} refused",
                    record.id,
                    record.status.as_str()
                )),
                0,
            ));
        }
        if let Some(other) = accounts::find_by_username(conn, &record.username)?
            && other.id != record.id
        {
            return Ok((
                LineOutcome::Refused(format!(
                    "username {:?} already belongs to account {}",
                    record.username, other.id
                )),
                0,
            ));
        }
        let was_banned = match &existing {
            Some(_) => accounts::load_view(conn, &record.id)?.is_some_and(|a| a.is_banned()),
            None => false,
        };
        accounts::upsert(conn, &record)?;
        let mut now_banned: Vec<String> = vec![];
        let mut view = accounts::load_view(conn, &record.id)?.ok_or(diesel::result::Error::NotFound)?;
        if view.banned_via_parent && !accounts::find(conn, &record.id)?.is_some_and(|r| r.banned_via_parent) {
            // Banned through an ancestor: make it stick, whatever later imports say.
            accounts::set_banned_via_parent(conn, &record.id)?;
            view.banned_via_parent = true;
        }
        if view.is_banned() {
            if !was_banned {
                now_banned.push(record.id.clone());
            }
            now_banned.extend(accounts::mark_descendants_banned(conn, &record.id)?);
        }
        let tickets_refused = if now_banned.is_empty() {
            0
        } else {
            super::tickets::refuse_tickets_of_banned(conn, desk, &now_banned)?
        };
        let outcome = if existing.is_some() {
            LineOutcome::Updated
        } else {
            LineOutcome::Created
        };
        Ok((outcome, tickets_refused))
    })
}

/// On PostgreSQL, locks what a line may change, in the order every transaction takes locks
/// (tickets, then accounts): the open tickets of the account and of its descendants (a ban
/// refuses them), then those accounts. An action on one of those tickets either finishes
/// before the line is applied or decides after it, on the account as the line left it.
fn lock_for_import(conn: &mut AnyConnection, id: &str) -> Result<(), ServiceError> {
    if !matches!(conn, AnyConnection::Postgresql(_)) {
        return Ok(());
    }
    let mut ids = vec![id.to_string()];
    ids.extend(accounts::descendants(conn, id)?);
    let open = crate::db::tickets::open_ids_for_accounts(conn, &ids)?;
    db::locks::lock_tickets(conn, &open)?;
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    db::locks::lock_accounts(conn, &refs)?;
    Ok(())
}

/// Imports JSON Lines from a reader, line by line (files can be large).
#[tracing::instrument(level = "debug", skip_all)]
pub fn import(
    conn: &mut AnyConnection,
    desk: &Desk,
    reader: impl std::io::BufRead,
    mut on_refused: impl FnMut(usize, &str),
) -> Result<ImportSummary, ServiceError> {
    let mut summary = ImportSummary::default();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let reason = format!("unreadable line: {e}");
                on_refused(number, &reason);
                summary.refused.push((number, reason));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let (outcome, refused_tickets) = import_line(conn, desk, &line)?;
        summary.tickets_refused += refused_tickets;
        match outcome {
            LineOutcome::Created => summary.created += 1,
            LineOutcome::Updated => summary.updated += 1,
            LineOutcome::Refused(reason) => {
                on_refused(number, &reason);
                summary.refused.push((number, reason));
            }
        }
    }
    Ok(summary)
}
