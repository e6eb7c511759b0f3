//! Tickets and accounts as the JSON API (and later the console) shows them.

use super::loaded::Loaded;
use super::{Desk, ServiceError};
use crate::db::tickets::{self as ticket_rows, TicketFilter, TicketRow};
use crate::db::{AnyConnection, accounts, agents, outbox};
use crate::domain::account::AccountView;
pub use crate::domain::time_text::rfc3339;
use crate::domain::workflow;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The ticket fields of docs/reference.md#json-api, plus a few an agent needs.
pub fn ticket_json(desk: &Desk, row: &TicketRow, assignee: Option<&str>) -> Value {
    json!({
        "ref": desk.ticket_ref(row.id),
        "kind": row.kind,
        "state": row.state,
        "state_reason": row.state_reason,
        "subject": row.subject,
        "requester": row.requester,
        "account_id": row.account_id,
        "assignee": assignee,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
        // Filled in by the callers that read events (`diagnosis::latest_for`).
        "diagnosis": Value::Null,
        "channel": row.channel,
        "flagged": row.flagged,
        "auto_generated": row.auto_generated,
        "version": row.version,
    })
}

/// docs/reference.md#who-acts-next: `waiting_on` and `last_activity_at` (and whether the
/// assignee has customer activity to read).
fn add_turn(ticket: &mut Value, row: &TicketRow, activity: Option<&crate::db::activity::ActivityRow>) {
    let turn = super::activity::Turn::of(row, activity);
    ticket["waiting_on"] = json!(turn.waiting_on.as_str());
    ticket["last_activity_at"] = json!(rfc3339(turn.last_activity_at));
    ticket["new_activity"] = json!(turn.new_activity);
}

fn assignee_email(conn: &mut AnyConnection, row: &TicketRow) -> Result<Option<String>, ServiceError> {
    Ok(match row.assignee_id {
        Some(id) => agents::find(conn, id)?.map(|a| a.email),
        None => None,
    })
}

/// One ticket with its events (oldest first), the actions the engine allows now (and why not
/// the others), and its outgoing mail with delivery status.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = id))]
pub fn ticket_details(conn: &mut AnyConnection, desk: &Desk, id: i64) -> Result<Value, ServiceError> {
    let loaded = Loaded::read(conn, id)?;
    let assignee = assignee_email(conn, &loaded.row)?;
    let mut ticket = ticket_json(desk, &loaded.row, assignee.as_deref());
    add_turn(&mut ticket, &loaded.row, crate::db::activity::find(conn, id)?.as_ref());
    if let Some(diagnosis) = super::diagnosis::latest_for(conn, &[&loaded.row])?.remove(&id) {
        ticket["diagnosis"] = diagnosis;
    }
    let messages: HashMap<i64, ticket_rows::MessageRow> = ticket_rows::messages_of(conn, id)?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let events: Vec<Value> = ticket_rows::events_of(conn, id)?
        .into_iter()
        .map(|e| {
            let mut data: Value = serde_json::from_str(&e.data).unwrap_or_else(|_| json!({}));
            if let Some(m) = e.message_ref.and_then(|r| messages.get(&r)) {
                data["message_id"] = json!(m.id);
                data["body"] = json!(m.body);
                data["subject"] = json!(m.subject);
                if let Some(from) = &m.from_address {
                    data["from"] = json!(from);
                }
                if let Some(to) = &m.to_address {
                    data["to"] = json!(to);
                }
                if m.redacted_at.is_some() {
                    data["redacted"] = json!(true);
                }
            }
            // Every message event lists its attachments, possibly none.
            if e.event_type.carries_message() && data.get("attachments").is_none() {
                data["attachments"] = json!([]);
            }
            json!({"id": e.id, "type": e.event_type, "at": rfc3339(e.created_at), "actor": e.actor, "data": data})
        })
        .collect();
    let actions: Vec<Value> = workflow::available_actions(&loaded.view())
        .into_iter()
        .map(|(name, verdict)| match verdict {
            Ok(()) => json!({"name": name.as_str(), "allowed": true}),
            Err(r) => json!({"name": name.as_str(), "allowed": false, "reason": r.message, "code": r.code.as_str()}),
        })
        .collect();
    // Delivery status only: links inside mail (status page, email challenge) are for the
    // recipient's eyes, never for agents or integrations.
    let mail: Vec<Value> = outbox::of_ticket(conn, id)?
        .into_iter()
        .map(|m| {
            json!({"id": m.id, "template": m.template, "to": m.recipient, "status": m.status,
                   "attempts": m.attempts, "last_error": m.last_error, "message_id": m.message_id,
                   "created_at": rfc3339(m.created_at), "sent_at": m.sent_at.map(rfc3339),
                   "bounced_at": m.bounced_at.map(rfc3339), "bounce_reason": m.bounce_reason})
        })
        .collect();
    ticket["events"] = json!(events);
    ticket["actions"] = json!(actions);
    ticket["mail"] = json!(mail);
    ticket["account"] = loaded.account.as_ref().map(account_json).unwrap_or(Value::Null);
    ticket["verification"] = json!({
        "round": loaded.row.verification_round,
        "checks": loaded.checks.iter().map(|c| json!({"method": c.method.as_str(), "passed": c.passed})).collect::<Vec<_>>(),
    });
    Ok(ticket)
}

pub struct TicketPage {
    pub tickets: Vec<Value>,
    pub next_cursor: Option<String>,
}

#[tracing::instrument(level = "debug", skip_all)]
pub fn list_tickets(conn: &mut AnyConnection, desk: &Desk, filter: TicketFilter) -> Result<TicketPage, ServiceError> {
    let limit = filter.limit;
    let mut rows = ticket_rows::list(
        conn,
        &TicketFilter {
            limit: limit + 1,
            ..filter
        },
    )?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let mut emails: HashMap<i64, String> = HashMap::new();
    let mut diagnoses = super::diagnosis::latest_for(conn, &rows.iter().collect::<Vec<_>>())?;
    let turns = crate::db::activity::of_tickets(conn, &rows.iter().map(|r| r.id).collect::<Vec<_>>())?;
    let mut tickets = Vec::with_capacity(rows.len());
    for row in &rows {
        let assignee = match row.assignee_id {
            Some(id) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = emails.entry(id)
                    && let Some(agent) = agents::find(conn, id)?
                {
                    slot.insert(agent.email);
                }
                emails.get(&id).cloned()
            }
            None => None,
        };
        let mut ticket = ticket_json(desk, row, assignee.as_deref());
        add_turn(&mut ticket, row, turns.get(&row.id));
        if let Some(diagnosis) = diagnoses.remove(&row.id) {
            ticket["diagnosis"] = diagnosis;
        }
        tickets.push(ticket);
    }
    Ok(TicketPage { tickets, next_cursor })
}

/// The account as in docs/reference.md#account-directory plus its effective status.
pub fn account_json(a: &AccountView) -> Value {
    json!({
        "id": a.id,
        "username": a.username,
        "email": a.email,
        "status": a.status.as_str(),
        "effective_status": a.effective_status().as_str(),
        "banned_via_parent": a.banned_via_parent,
        "parent_id": a.parent_id,
        "ip_access": {"enabled": a.ip_access_enabled, "allowlist": a.allowlist},
        "balance_due_cents": a.balance_due_cents,
        "dedicated_ips": a.dedicated_ips,
    })
}

#[tracing::instrument(level = "debug", skip_all)]
pub fn account_details(conn: &mut AnyConnection, id: &str) -> Result<Value, ServiceError> {
    let row = accounts::find(conn, id)?.ok_or_else(|| ServiceError::NotFound("account".into()))?;
    let terminated_at = row.terminated_at.map(rfc3339);
    let banned_at = row.banned_at.map(rfc3339);
    let view = accounts::view_of(conn, row)?;
    let mut json = account_json(&view);
    json["terminated_at"] = json!(terminated_at);
    json["banned_at"] = json!(banned_at);
    Ok(json)
}
