//! Recording who acts next after anything happens on a ticket (the rules are
//! `domain::workflow::activity`).

use super::ServiceError;
use crate::db::tickets::TicketRow;
use crate::db::{self, AnyConnection};
use crate::domain::workflow::activity::{Activity, WaitingOn, waiting_on_after};

/// Writes the turn after `activity` on the ticket as it now is. `customer` says whether the
/// requester or the registered address did it (the assignee's "new activity" mark);
/// `reassigned` forgets what the previous assignee had seen.
pub(crate) fn record(
    conn: &mut AnyConnection,
    row: &TicketRow,
    activity: Activity,
    reassigned: bool,
) -> Result<(), ServiceError> {
    let state = row.state;
    let before = match db::activity::find(conn, row.id)? {
        Some(a) => WaitingOn::parse(&a.waiting_on).unwrap_or_else(|| WaitingOn::of_state(state)),
        None => WaitingOn::of_state(state),
    };
    let after = waiting_on_after(state, before, activity);
    db::activity::record(conn, row.id, after.as_str(), activity.is_customer(), reassigned)?;
    Ok(())
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
