//! Recording who acts next after anything happens on a ticket (the rules are
//! `domain::workflow::activity`).

use super::{Actor, Desk, ServiceError};
use crate::db::tickets::TicketRow;
use crate::db::{self, AnyConnection};
use crate::domain::workflow::activity::{
    Activity, AssigneeNotice, WaitingOn, notify_assignee as workflow_notify, waiting_on_after,
};
use crate::mail::outbound::params::{Mail, MailParams};

/// Writes the turn after `activity` on the ticket as it now is, and moves the ticket's
/// `updated_at` with it; returns the ticket as it then is. `customer` says whether the
/// requester or the registered address did it (the assignee's "new activity" mark);
/// `reassigned` forgets what the previous assignee had seen.
pub(crate) fn record(
    conn: &mut AnyConnection,
    row: &TicketRow,
    activity: Activity,
    reassigned: bool,
) -> Result<TicketRow, ServiceError> {
    let at = db::now();
    record_at(conn, row, activity, reassigned, at)?;
    db::tickets::touch(conn, row.id, at)?;
    Ok(TicketRow {
        updated_at: at,
        ..row.clone()
    })
}

/// Writes the turn after `activity` at `at`, for a ticket whose row this transaction has just
/// written with `updated_at` = `at` (a decision's commit): the row is not written again.
pub(crate) fn record_at(
    conn: &mut AnyConnection,
    row: &TicketRow,
    activity: Activity,
    reassigned: bool,
    at: chrono::NaiveDateTime,
) -> Result<(), ServiceError> {
    let state = row.state;
    let existing = db::activity::find(conn, row.id)?;
    let before = match &existing {
        Some(a) => WaitingOn::parse(&a.waiting_on).unwrap_or_else(|| WaitingOn::of_state(state)),
        None => WaitingOn::of_state(state),
    };
    let after = waiting_on_after(state, before, activity);
    db::activity::record(
        conn,
        row.id,
        existing.as_ref(),
        after.as_str(),
        activity.is_customer(),
        reassigned,
        at,
    )?;
    Ok(())
}

/// The template of the mail to the assignee.
pub const NOTIFY_TEMPLATE: &str = "assignee_activity";

/// With `RECOVERYDESK_NOTIFY_ASSIGNEE=on`: tells the ticket's assignee, through the outbox,
/// that the customer did something (`what`: "wrote", say), when the engine's rule
/// (`domain::workflow::activity::notify_assignee`) says so. The mail names the ticket and its
/// subject (as stored, scrubbed) and links the ticket page; it never carries the customer's
/// words. In the caller's transaction, under the ticket's lock, so two customer messages at
/// once make one mail.
pub(crate) fn notify_assignee(
    conn: &mut AnyConnection,
    desk: &Desk,
    row: &TicketRow,
    actor: &Actor,
    what: &str,
) -> Result<(), ServiceError> {
    let (Some(assignee_id), true) = (row.assignee_id, desk.settings.notify_assignee) else {
        return Ok(());
    };
    let assignee = db::agents::find(conn, assignee_id)?;
    let last = db::outbox::latest_of_template(conn, row.id, NOTIFY_TEMPLATE)?;
    let facts = AssigneeNotice {
        enabled: desk.settings.notify_assignee,
        terminal: row.state.is_terminal(),
        assignee: Some(assignee_id),
        assignee_active: assignee.as_ref().is_some_and(|a| a.active),
        assignee_is_requester: assignee
            .as_ref()
            .is_some_and(|a| a.email_normalized == row.requester_normalized),
        acting_agent: match actor {
            Actor::Agent { id, .. } => Some(*id),
            _ => None,
        },
        minutes_since_last: last.map(|at| (db::now() - at).num_minutes()),
    };
    let Some(assignee) = assignee.filter(|_| workflow_notify(facts)) else {
        return Ok(());
    };
    let ticket_ref = desk.ticket_ref(row.id);
    let params = MailParams::from(Mail::AssigneeActivity {
        activity: what.to_string(),
        ticket_url: format!("{}/agent/tickets/{ticket_ref}", desk.settings.base_url),
    });
    crate::mail::outbound::compose::queue_mail(
        conn,
        desk,
        crate::mail::outbound::compose::MailRequest {
            ticket: row,
            to: &assignee.email,
            // Machine-written: it carries Auto-Submitted, so an agent's out-of-office does
            // not answer it into a ticket.
            automatic: true,
            params,
            actor: "system",
        },
    )?;
    Ok(())
}

/// What the customer did, in the words of the assignee's mail, by the decision's action.
pub(crate) fn customer_did(action: &str) -> &'static str {
    match action {
        "confirm_email_challenge" => "answered the email challenge",
        "record_allowlisted_attempts" => "reported which allowlisted networks they tried",
        "customer_reply" => "wrote",
        _ => "acted",
    }
}

/// What the console and the API show of it.
#[derive(Debug, Clone)]
pub struct Turn {
    pub waiting_on: WaitingOn,
    pub last_activity_at: chrono::NaiveDateTime,
    /// Customer activity the assignee has not opened the ticket since.
    pub new_activity: bool,
}

impl Turn {
    pub fn of(row: &TicketRow, activity: Option<&db::activity::ActivityRow>) -> Turn {
        let state = row.state;
        match activity {
            Some(a) => Turn {
                waiting_on: if state.is_terminal() {
                    WaitingOn::None
                } else {
                    WaitingOn::parse(&a.waiting_on).unwrap_or_else(|| WaitingOn::of_state(state))
                },
                last_activity_at: a.last_activity_at,
                new_activity: row.assignee_id.is_some()
                    && a.customer_activity_at
                        .is_some_and(|c| a.assignee_seen_at.is_none_or(|seen| c > seen)),
            },
            None => Turn {
                waiting_on: WaitingOn::of_state(state),
                last_activity_at: row.updated_at,
                new_activity: false,
            },
        }
    }
}

/// When anything last happened on any ticket (the console's live queue polls it).
#[tracing::instrument(level = "debug", skip_all)]
pub fn latest(conn: &mut AnyConnection) -> Result<Option<chrono::NaiveDateTime>, ServiceError> {
    Ok(db::activity::latest(conn)?)
}
