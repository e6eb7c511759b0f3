//! Four eyes (docs/reference.md#four-eyes-and-the-audit-trail): a grant or reactivation whose
//! guards pass is recorded as a request; a different agent approves it (the guards are
//! checked again then) or rejects it. The rule itself is pure, in
//! `domain::workflow::approval`; this carries it out in one transaction each.

use super::decision::{commit, record_refusal};
use super::loaded::Loaded;
use super::{Actor, Desk, ServiceError};
use crate::db::approvals::{self as rows, ApprovalRow, NewApproval};
use crate::db::tickets::{self as ticket_rows, TicketRow};
use crate::db::{self, AnyConnection};
use crate::domain::event::EventType;
use crate::domain::time_text;
use crate::domain::workflow::approval::{self, ApprovalStatus};
use crate::domain::workflow::{self, Accepted, ActionName, Context, Refusal, Refused, Stage};
use serde_json::{Value, json};
use std::convert::Infallible;

pub use super::loaded::request_view;

fn email_of(label: &str) -> &str {
    label.strip_prefix("agent:").unwrap_or(label)
}

/// `{"id","ticket","action","params","requested_by","requested_at","status"}`; ids are strings.
pub fn approval_json(desk: &Desk, row: &ApprovalRow) -> Value {
    json!({
        "id": row.id.to_string(),
        "ticket": desk.ticket_ref(row.ticket_id),
        "action": row.action,
        "params": serde_json::from_str::<Value>(&row.params).unwrap_or_else(|_| json!({})),
        "requested_by": email_of(&row.requested_by),
        "requested_at": time_text::rfc3339(row.requested_at),
        "status": row.status,
        "decided_by": row.decided_by.as_deref().map(email_of),
        "decided_at": row.decided_at.map(time_text::rfc3339),
        "reason": row.reason,
    })
}

/// Records the request for an action the engine held (inside the action's transaction, the
/// ticket locked): the row and its `approval_requested` event.
pub(crate) fn hold(
    conn: &mut AnyConnection,
    desk: &Desk,
    loaded: &Loaded,
    name: ActionName,
    params: &Value,
    actor: &Actor,
) -> Result<ApprovalRow, ServiceError> {
    let Actor::Agent { id: agent_id, .. } = actor else {
        return Err(ServiceError::Invalid(format!(
            "{} needs an agent's request under four eyes",
            name.as_str()
        )));
    };
    let row = rows::insert(
        conn,
        &NewApproval {
            ticket_id: loaded.row.id,
            action: name.as_str(),
            params,
            requested_by_id: *agent_id,
            requested_by: &actor.label(),
        },
    )?;
    ticket_rows::insert_event(
        conn,
        loaded.row.id,
        EventType::ApprovalRequested,
        &actor.label(),
        &json!({"approval_id": row.id.to_string(), "action": name.as_str(), "params": params,
                "requested_by": actor.label(), "ticket": desk.ticket_ref(loaded.row.id)}),
        None,
    )?;
    Ok(row)
}

/// Closes the ticket's pending requests that are older than 24 hours, each with an
/// `approval_expired` event. Returns how many.
pub(crate) fn expire_stale(conn: &mut AnyConnection, ticket_id: i64) -> Result<usize, ServiceError> {
    let now = db::now();
    let mut expired = 0;
    for row in rows::pending_of(conn, ticket_id)? {
        if request_view(&row).is_expired(now) && rows::close(conn, row.id, "expired", "system", None)? {
            ticket_rows::insert_event(
                conn,
                ticket_id,
                EventType::ApprovalExpired,
                "system",
                &json!({"approval_id": row.id.to_string(), "action": row.action, "requested_by": row.requested_by,
                        "requested_at": time_text::rfc3339(row.requested_at)}),
                None,
            )?;
            expired += 1;
        }
    }
    Ok(expired)
}

/// The `approval_rejected` event of a request closed unapplied: rejected or withdrawn by an
/// agent, or cancelled by the desk (`rejected_by` "system") because its ticket moved on.
fn record_rejection(
    conn: &mut AnyConnection,
    row: &ApprovalRow,
    actor: &Actor,
    rejected_by: &str,
    reason: &str,
    cancelled: bool,
) -> Result<(), ServiceError> {
    ticket_rows::insert_event(
        conn,
        row.ticket_id,
        EventType::ApprovalRejected,
        &actor.label(),
        &json!({"approval_id": row.id.to_string(), "action": row.action, "requested_by": row.requested_by,
                "rejected_by": rejected_by, "reason": reason, "cancelled": cancelled}),
        None,
    )?;
    Ok(())
}

/// What a decision on a request did, for the counters (counted after the commit).
struct Outcome<T> {
    value: Result<T, Refusal>,
    expired: usize,
    counted: Option<&'static str>,
}

fn agent_id(actor: &Actor) -> Result<i64, ServiceError> {
    match actor {
        Actor::Agent { id, .. } => Ok(*id),
        _ => Err(ServiceError::Invalid(
            "only an agent decides on an approval request".into(),
        )),
    }
}

/// Loads the request and its ticket (locked), and expires what is stale first.
fn load(conn: &mut AnyConnection, id: i64) -> Result<(ApprovalRow, Loaded, usize), ServiceError> {
    let first = rows::find(conn, id)?.ok_or_else(|| ServiceError::NotFound("approval".into()))?;
    // The ticket's lock first (PostgreSQL): two approvals of one request run one after the
    // other, and the second sees the first's decision.
    db::locks::lock_ticket(conn, first.ticket_id)?;
    let expired = expire_stale(conn, first.ticket_id)?;
    let row = rows::find(conn, id)?.ok_or_else(|| ServiceError::NotFound("approval".into()))?;
    let loaded = Loaded::load(conn, row.ticket_id)?;
    Ok((row, loaded, expired))
}

fn finish<T>(desk: &Desk, outcome: Outcome<T>) -> Result<T, ServiceError> {
    for _ in 0..outcome.expired {
        desk.metrics.approval("expired");
    }
    if let Some(what) = outcome.counted {
        desk.metrics.approval(what);
    }
    outcome.value.map_err(|refusal| {
        desk.metrics.refusal(refusal.code.as_str());
        ServiceError::Refused(refusal)
    })
}

/// A different agent approves: the request must be pending and recent, and the action's
/// guards must hold against the ticket as it is now; then it is applied as its requester's,
/// with both agents named. Two approvals at once apply it once.
#[tracing::instrument(level = "debug", skip_all, fields(approval_id = id))]
pub fn approve(conn: &mut AnyConnection, desk: &Desk, id: i64, actor: &Actor) -> Result<TicketRow, ServiceError> {
    let approver = agent_id(actor)?;
    let outcome = db::write_transaction(conn, |conn| -> Result<Outcome<TicketRow>, ServiceError> {
        let (row, loaded, expired) = load(conn, id)?;
        let refused_with = |conn: &mut AnyConnection, refusal: Refusal| -> Result<Outcome<TicketRow>, ServiceError> {
            record_refusal(
                conn,
                row.ticket_id,
                &format!("approve {}", row.action),
                &refusal,
                actor,
                None,
            )?;
            Ok(Outcome {
                value: Err(refusal),
                expired,
                counted: None,
            })
        };
        let params: Value = serde_json::from_str(&row.params).unwrap_or_else(|_| json!({}));
        // The request's parameters were scanned when it was held; the two actions that wait
        // for approval need no facts besides their ticket.
        let outcome = approval::approve(
            &loaded.view(),
            row.action.as_str(),
            &params,
            &request_view(&row),
            approver,
            db::now(),
            |_| Ok::<_, Infallible>(Context::default()),
        );
        let Ok(outcome) = outcome;
        let Accepted { action, decision } = match outcome {
            Ok(accepted) => accepted,
            Err(refused) if approval::is_about_the_request(&refused) => return refused_with(conn, refused.refusal),
            // What the engine held itself no longer names or parses: not this ticket's doing.
            Err(refused) if matches!(refused.stage, Stage::Name | Stage::Parse) => {
                return Err(ServiceError::Refused(refused.refusal));
            }
            Err(Refused { refusal, .. }) => {
                // The ticket moved on (a ban, a reopening…): this request can never apply.
                rows::close(conn, row.id, "cancelled", &actor.label(), Some(refusal.code.as_str()))?;
                record_rejection(conn, &row, actor, "system", refusal.code.as_str(), true)?;
                return refused_with(conn, refusal);
            }
        };
        if !rows::close(conn, row.id, "approved", &actor.label(), None)? {
            return refused_with(
                conn,
                Refusal::new(
                    workflow::ErrorCode::ApprovalNotPending,
                    "this request was decided already",
                ),
            );
        }
        ticket_rows::insert_event(
            conn,
            row.ticket_id,
            EventType::ApprovalApproved,
            &actor.label(),
            &json!({"approval_id": row.id.to_string(), "action": row.action, "params": params,
                    "requested_by": row.requested_by, "approved_by": actor.label()}),
            None,
        )?;
        let requester = Actor::Agent {
            id: row.requested_by_id,
            email: email_of(&row.requested_by).to_string(),
            admin: false,
        };
        let mut details = params.clone();
        if !details.is_object() {
            details = json!({});
        }
        details["approval_id"] = json!(row.id.to_string());
        details["requested_by"] = json!(row.requested_by);
        details["approved_by"] = json!(actor.label());
        let ticket = commit(
            conn,
            desk,
            &loaded,
            decision,
            action.name().as_str(),
            &requester,
            details,
        )?;
        Ok(Outcome {
            value: Ok(ticket),
            expired,
            counted: Some("approved"),
        })
    })?;
    finish(desk, outcome)
}

/// Another agent rejects the request (or its requester withdraws it): nothing is applied.
#[tracing::instrument(level = "debug", skip_all, fields(approval_id = id))]
pub fn reject(
    conn: &mut AnyConnection,
    desk: &Desk,
    id: i64,
    reason: &str,
    actor: &Actor,
) -> Result<TicketRow, ServiceError> {
    let agent = agent_id(actor)?;
    let reason = crate::domain::scrubbed::Scrubber::default().scrub(reason).into_string();
    let outcome = db::write_transaction(conn, |conn| -> Result<Outcome<TicketRow>, ServiceError> {
        let (row, loaded, expired) = load(conn, id)?;
        let status = match approval::may_reject(&request_view(&row), agent, db::now()) {
            Ok(status) => status,
            Err(refusal) => {
                record_refusal(
                    conn,
                    row.ticket_id,
                    &format!("reject {}", row.action),
                    &refusal,
                    actor,
                    None,
                )?;
                return Ok(Outcome {
                    value: Err(refusal),
                    expired,
                    counted: None,
                });
            }
        };
        if !rows::close(conn, row.id, status.as_str(), &actor.label(), Some(&reason))? {
            return Err(ServiceError::Conflict);
        }
        let cancelled = status == ApprovalStatus::Cancelled;
        record_rejection(conn, &row, actor, &actor.label(), &reason, cancelled)?;
        Ok(Outcome {
            value: Ok(loaded.row.clone()),
            expired,
            counted: Some("rejected"),
        })
    })?;
    finish(desk, outcome)
}

/// The ticket a request is about, if there is such a request.
#[tracing::instrument(level = "debug", skip_all, fields(approval_id = id))]
pub fn ticket_of(conn: &mut AnyConnection, id: i64) -> Result<Option<i64>, ServiceError> {
    Ok(rows::find(conn, id)?.map(|r| r.ticket_id))
}

/// Pending requests still within their 24 hours, oldest first.
#[tracing::instrument(level = "debug", skip_all)]
pub fn list_pending(conn: &mut AnyConnection) -> Result<Vec<ApprovalRow>, ServiceError> {
    let since = db::now() - chrono::Duration::hours(approval::APPROVAL_VALID_HOURS);
    Ok(rows::pending_since(conn, since, 500)?)
}

/// A ticket's live pending requests, oldest first (for its page).
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id))]
pub fn pending_of_ticket(conn: &mut AnyConnection, ticket_id: i64) -> Result<Vec<ApprovalRow>, ServiceError> {
    let now = db::now();
    Ok(rows::pending_of(conn, ticket_id)?
        .into_iter()
        .filter(|r| request_view(r).is_live(now))
        .collect())
}

/// A pending request as the console shows it (the ticket's panel, the queue's list).
pub struct ApprovalEntry {
    pub id: i64,
    pub ticket_ref: String,
    pub action: String,
    /// "grant_ip_access 198.51.100.77": what would be applied.
    pub what: String,
    pub requested_by: String,
    pub requested_by_id: i64,
    pub requested_at: String,
    pub age: String,
}

pub fn entries(desk: &Desk, rows: &[ApprovalRow]) -> Vec<ApprovalEntry> {
    let now = db::now();
    rows.iter()
        .map(|r| {
            let params: Value = serde_json::from_str(&r.params).unwrap_or_else(|_| json!({}));
            let label = ActionName::parse(&r.action).map_or_else(|_| r.action.clone(), |a| a.label().to_string());
            let what = match params.get("ip").and_then(Value::as_str) {
                Some(ip) => format!("{label}: {ip}"),
                None => label.to_string(),
            };
            ApprovalEntry {
                id: r.id,
                ticket_ref: desk.ticket_ref(r.ticket_id),
                action: r.action.clone(),
                what,
                requested_by: email_of(&r.requested_by).to_string(),
                requested_by_id: r.requested_by_id,
                requested_at: time_text::minutes(r.requested_at),
                age: time_text::age(r.requested_at, now),
            }
        })
        .collect()
}

/// The console's "verify this trail" line for one ticket.
pub struct TrailCheck {
    pub ok: bool,
    pub events: usize,
    pub broken: String,
}

#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id))]
pub fn trail_check(conn: &mut AnyConnection, desk: &Desk, ticket_id: i64) -> Result<TrailCheck, ServiceError> {
    Ok(match super::audit::verify_ticket(conn, desk, ticket_id)? {
        Ok(events) => TrailCheck {
            ok: true,
            events,
            broken: String::new(),
        },
        Err(broken) => TrailCheck {
            ok: false,
            events: 0,
            broken: broken.to_string(),
        },
    })
}
