//! What the agent console shows, assembled for its templates: the queue and the ticket page.
//! The allowed and blocked actions come from the same engine function the API uses.

use super::loaded::Loaded;
use super::ticket_history::history;
pub use super::ticket_history::{AuditEntry, ThreadEntry};
use super::{Desk, ServiceError};
use crate::db::console::{self as queries, QueueFilter};
use crate::db::tickets::TicketRow;
use crate::db::{AnyConnection, accounts, agents, outbox, tickets};
use crate::domain::account::AccountView;
use crate::domain::ticket::{Kind, State};
use crate::domain::time_text;
use crate::domain::verification::{self, Method, Progress};
use crate::domain::workflow::{self, ActionName};
use chrono::NaiveDateTime;
use std::collections::HashMap;

pub struct QueueRow {
    pub ticket_ref: String,
    pub subject: String,
    pub kind: Kind,
    pub state: State,
    pub requester: String,
    pub assignee: Option<String>,
    pub waiting: String,
    pub flagged: bool,
    /// Who acts next, when anything last happened ("12 min" and the absolute UTC time), and
    /// whether the customer did something the assignee has not opened the ticket since.
    pub waiting_on: workflow::WaitingOn,
    pub last_activity: String,
    pub last_activity_at: String,
    pub last_activity_iso: String,
    pub new_activity: bool,
}

pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    pub next_cursor: Option<String>,
    /// (kind, state, count), for the filters' counts.
    pub counts: Vec<(Kind, State, i64)>,
    pub agents: Vec<(String, String)>,
    /// Four eyes: requests waiting for a second agent, oldest first (shown above the queue).
    pub approvals: Vec<super::approvals::ApprovalEntry>,
}

fn filter_is_search(q: &Option<String>) -> bool {
    q.as_deref()
        .and_then(crate::domain::search::SearchText::parse)
        .is_some()
}

/// A search's `cursor` is the id of the last row shown.
pub fn parse_search_cursor(cursor: &str) -> Option<i64> {
    cursor.parse().ok().filter(|id| *id > 0)
}

/// `cursor` is "<unix micros>.<id>" of the last row shown.
pub fn parse_cursor(cursor: &str) -> Option<(NaiveDateTime, i64)> {
    let (micros, id) = cursor.split_once('.')?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    Some((at, id.parse().ok()?))
}

#[tracing::instrument(level = "debug", skip_all)]
pub fn queue(conn: &mut AnyConnection, desk: &Desk, filter: QueueFilter) -> Result<QueuePage, ServiceError> {
    let limit = filter.limit;
    let filter_q = filter.q.clone();
    let mut rows = queries::queue(
        conn,
        &QueueFilter {
            limit: limit + 1,
            ..filter
        },
    )?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    // A search lists newest first and pages by id; the queue pages by (waiting since, id).
    let searching = filter_is_search(&filter_q);
    let next_cursor = more
        .then(|| {
            rows.last().map(|r| {
                if searching {
                    r.id.to_string()
                } else {
                    format!("{}.{}", r.waiting_since.and_utc().timestamp_micros(), r.id)
                }
            })
        })
        .flatten();
    let agent_list = queries::agents(conn)?;
    let emails: HashMap<i64, String> = agent_list.iter().map(|(id, email, ..)| (*id, email.clone())).collect();
    let now = crate::db::now();
    let turns = crate::db::activity::of_tickets(conn, &rows.iter().map(|r| r.id).collect::<Vec<_>>())?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let turn = super::activity::Turn::of(&r, turns.get(&r.id));
            (r, turn)
        })
        .map(|(r, turn)| QueueRow {
            waiting_on: turn.waiting_on,
            last_activity: time_text::age(turn.last_activity_at, now),
            last_activity_at: time_text::minutes_utc(turn.last_activity_at),
            last_activity_iso: time_text::rfc3339(turn.last_activity_at),
            new_activity: turn.new_activity,
            ticket_ref: desk.ticket_ref(r.id),
            kind: r.kind,
            state: r.state,
            waiting: time_text::age(r.waiting_since, now),
            assignee: r.assignee_id.and_then(|id| emails.get(&id).cloned()),
            subject: r.subject,
            requester: r.requester,
            flagged: r.flagged,
        })
        .collect();
    let counts = queries::counts(conn)?;
    let agents = agent_list
        .into_iter()
        .filter(|a| a.4)
        .map(|(_, email, name, ..)| (email, name))
        .collect();
    let approvals = super::approvals::entries(desk, &super::approvals::list_pending(conn)?);
    Ok(QueuePage {
        rows,
        next_cursor,
        counts,
        agents,
        approvals,
    })
}

/// One action on the ticket page: a button (with its fields) or a line saying why not.
pub struct ActionEntry {
    pub name: ActionName,
    pub allowed: bool,
    pub reason: String,
    pub code: String,
    /// The code in plain words (shown first; the code small beside it).
    pub code_words: &'static str,
}

pub struct CheckEntry {
    pub method: Method,
    pub result: Option<bool>,
}

pub struct TicketPage {
    pub ticket: TicketRow,
    pub ticket_ref: String,
    pub kind: Kind,
    pub state: State,
    pub assignee: Option<String>,
    pub account: Option<AccountView>,
    pub sub_users: Vec<(String, String, String)>,
    pub actions: Vec<ActionEntry>,
    pub checklist: Vec<CheckEntry>,
    pub verification_summary: Option<String>,
    /// Supporting evidence for the checklist: a message from the registered address whose
    /// sender authentication passed (docs/reference.md#sender-authentication).
    pub sender_evidence: Option<String>,
    pub thread: Vec<ThreadEntry>,
    pub audit: Vec<AuditEntry>,
    pub agents: Vec<(String, String)>,
    pub current_ip: Option<String>,
    /// The latest credential-failure diagnosis, for the panel of a login_help ticket.
    pub diagnosis: Option<super::diagnosis::DiagnosisPanel>,
    /// (outbox id, template, recipient, status, last error).
    pub mail: Vec<(i64, String, String, String, Option<String>)>,
    /// Who acts next (docs/reference.md#who-acts-next).
    pub waiting_on: workflow::WaitingOn,
    /// Four eyes: this ticket's requests waiting for a second agent.
    pub approvals: Vec<super::approvals::ApprovalEntry>,
    /// Whether the ticket's hash chain holds ("verify this trail").
    pub trail: super::approvals::TrailCheck,
}

#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = id))]
pub fn ticket_page(conn: &mut AnyConnection, desk: &Desk, id: i64) -> Result<TicketPage, ServiceError> {
    let loaded = Loaded::read(conn, id)?;
    let mail_rows = outbox::of_ticket(conn, id)?;
    let history = history(conn, &loaded, &mail_rows)?;
    let sub_users = match &loaded.account {
        Some(a) => queries::sub_users(conn, &a.id)?,
        None => vec![],
    };
    let assignee = match loaded.row.assignee_id {
        Some(aid) => agents::find(conn, aid)?.map(|a| a.email),
        None => None,
    };
    let agents = queries::agents(conn)?
        .into_iter()
        .filter(|a| a.4)
        .map(|(_, email, name, ..)| (email, name))
        .collect();
    let mail = mail_rows
        .iter()
        .map(|m| {
            (
                m.id,
                m.template.clone(),
                m.recipient.clone(),
                m.status.clone(),
                m.last_error.clone(),
            )
        })
        .collect();
    let diagnosis = super::diagnosis::diagnosis_panel(conn, id)?;
    let waiting_on = super::activity::Turn::of(&loaded.row, crate::db::activity::find(conn, id)?.as_ref()).waiting_on;
    let sub_users = effective_sub_users(loaded.account.as_ref(), sub_users);
    let approvals = super::approvals::entries(desk, &super::approvals::pending_of_ticket(conn, id)?);
    let trail = super::approvals::trail_check(conn, desk, id)?;
    Ok(TicketPage {
        waiting_on,
        approvals,
        trail,
        diagnosis,
        ticket_ref: desk.ticket_ref(id),
        kind: loaded.kind(),
        state: loaded.state(),
        assignee,
        account: loaded.account.clone(),
        sub_users,
        actions: action_entries(&loaded),
        checklist: checklist(&loaded),
        verification_summary: verification_summary(&loaded),
        sender_evidence: history.sender_evidence,
        thread: history.thread,
        audit: history.audit,
        agents,
        current_ip: history.current_ip,
        mail,
        ticket: loaded.row,
    })
}

/// Every action of the ticket's kind, with the engine's verdict on it now.
fn action_entries(loaded: &Loaded) -> Vec<ActionEntry> {
    workflow::available_actions(&loaded.view())
        .into_iter()
        .map(|(name, verdict)| match verdict {
            Ok(()) => ActionEntry {
                name,
                allowed: true,
                reason: String::new(),
                code: String::new(),
                code_words: "",
            },
            Err(r) => ActionEntry {
                name,
                allowed: false,
                reason: r.message,
                code: r.code.as_str().to_string(),
                code_words: r.code.label(),
            },
        })
        .collect()
}

/// Each verification method with its latest result in the current round.
fn checklist(loaded: &Loaded) -> Vec<CheckEntry> {
    Method::ALL
        .into_iter()
        .map(|method| CheckEntry {
            method,
            result: loaded
                .checks
                .iter()
                .rev()
                .find(|c| c.method == method)
                .map(|c| c.passed),
        })
        .collect()
}

/// Where an ip_lockout's verification stands, once it started.
fn verification_summary(loaded: &Loaded) -> Option<String> {
    if loaded.kind() != Kind::IpLockout || loaded.row.verification_round == 0 {
        return None;
    }
    Some(match verification::evaluate(&loaded.checks) {
        Progress::Verified => "Ownership verified.".to_string(),
        Progress::Failed => format!(
            "Verification failed ({} failed checks).",
            verification::MAX_FAILED_CHECKS
        ),
        Progress::InProgress {
            passed_methods,
            failed_checks,
            email_challenge_passed,
        } => format!(
            "{} of {} passed methods{}; {} of {} failed checks allowed used.",
            passed_methods.len(),
            verification::REQUIRED_PASSED_METHODS,
            if email_challenge_passed {
                ""
            } else {
                " (the email challenge is still needed)"
            },
            failed_checks,
            verification::MAX_FAILED_CHECKS
        ),
    })
}

/// An account as the console's account search lists it.
pub struct AccountListing {
    pub id: String,
    pub username: String,
    pub email: String,
    pub status: String,
    pub banned_via_parent: bool,
}

/// How many accounts one search shows.
pub const ACCOUNT_SEARCH_LIMIT: usize = 50;

/// `GET /agent/accounts?q=`: by id, username or registered address (exact, then prefix).
#[tracing::instrument(level = "debug", skip_all)]
pub fn account_search(conn: &mut AnyConnection, text: &str) -> Result<Vec<AccountListing>, ServiceError> {
    Ok(queries::search_accounts(conn, text, ACCOUNT_SEARCH_LIMIT as i64)?
        .into_iter()
        .map(|a| AccountListing {
            id: a.id,
            username: a.username,
            email: a.email,
            status: a.status,
            banned_via_parent: a.banned_via_parent,
        })
        .collect())
}

pub struct AccountPage {
    pub account: AccountView,
    pub terminated_at: Option<String>,
    pub banned_at: Option<String>,
    pub sub_users: Vec<(String, String, String)>,
    pub tickets: Vec<(String, String, String, String)>,
    /// The desk's changes to this account, newest first: (when, ticket, what, by, approved by).
    pub changes: Vec<(String, String, String, String, String)>,
}

/// The sub-users of a banned account are banned, whatever their own records say.
fn effective_sub_users(
    parent: Option<&AccountView>,
    subs: Vec<(String, String, String)>,
) -> Vec<(String, String, String)> {
    let banned = parent.is_some_and(AccountView::is_banned);
    subs.into_iter()
        .map(|(id, name, status)| {
            let status = if banned {
                crate::domain::account::AccountStatus::Banned.as_str().to_string()
            } else {
                status
            };
            (id, name, status)
        })
        .collect()
}

/// The assignee opened the ticket: the customer's activity so far is no longer new to them.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id, agent_id = agent_id))]
pub fn opened_by(conn: &mut AnyConnection, ticket_id: i64, agent_id: i64) -> Result<(), ServiceError> {
    if tickets::find(conn, ticket_id)?.is_some_and(|t| t.assignee_id == Some(agent_id)) {
        crate::db::activity::mark_seen(conn, ticket_id)?;
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all)]
pub fn account_page(conn: &mut AnyConnection, desk: &Desk, id: &str) -> Result<AccountPage, ServiceError> {
    let row = accounts::find(conn, id)?.ok_or_else(|| ServiceError::NotFound("account".into()))?;
    let terminated_at = row.terminated_at.map(time_text::day);
    let banned_at = row.banned_at.map(time_text::day);
    let account = accounts::view_of(conn, row)?;
    let sub_users = effective_sub_users(Some(&account), queries::sub_users(conn, id)?);
    let ticket_rows = queries::tickets_of_account(conn, id, 100)?;
    let ids: Vec<i64> = ticket_rows.iter().map(|t| t.id).collect();
    let changes = crate::db::audit::directory_changes(conn, &ids)?
        .into_iter()
        .filter_map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).ok()?;
            (data["account_id"].as_str() == Some(id)).then(|| {
                let text = |k: &str| {
                    data[k]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches("agent:")
                        .to_string()
                };
                let what = match (text("change").as_str(), text("entry")) {
                    ("allowlist_add", entry) => format!("allowlist + {entry}"),
                    (change, _) => change.to_string(),
                };
                (
                    time_text::minutes(e.created_at),
                    desk.ticket_ref(e.ticket_id),
                    what,
                    e.actor.trim_start_matches("agent:").to_string(),
                    text("approved_by"),
                )
            })
        })
        .collect();
    let tickets = ticket_rows
        .into_iter()
        .map(|t| {
            (
                desk.ticket_ref(t.id),
                t.subject,
                t.kind.to_string(),
                t.state.to_string(),
            )
        })
        .collect();
    Ok(AccountPage {
        changes,
        account,
        terminated_at,
        banned_at,
        sub_users,
        tickets,
    })
}
