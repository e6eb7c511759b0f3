//! A ticket as the engine decides on it: its row, its account, the checks of the current
//! round and the actions waiting for a second agent. Loaded by every use case that decides,
//! shown by every screen that lists what may happen.

use super::ServiceError;
use crate::db::approvals::ApprovalRow;
use crate::db::tickets::TicketRow;
use crate::db::{self, AnyConnection, accounts, tickets};
use crate::domain::account::AccountView;
use crate::domain::ticket::{Kind, State};
use crate::domain::verification::{CheckRecord, Method};
use crate::domain::workflow::TicketView;
use crate::domain::workflow::approval::{ApprovalStatus, RequestView};

/// A ticket as loaded for a decision.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub row: TicketRow,
    pub account: Option<AccountView>,
    pub checks: Vec<CheckRecord>,
    /// Actions waiting for a second agent on this ticket (four eyes), still live.
    pub pending: Vec<crate::domain::workflow::ActionName>,
}

impl Loaded {
    /// Loads a ticket to decide on it and write: on PostgreSQL its row, then its account's row,
    /// are locked (`FOR NO KEY UPDATE`) for the rest of the transaction before they are read, so the
    /// guards and the writes see one state (an import that bans the account waits, or goes
    /// first). Call it inside the write transaction; screens that only show use [`Loaded::read`].
    pub fn load(conn: &mut AnyConnection, id: i64) -> Result<Loaded, ServiceError> {
        let row = tickets::find_locked(conn, id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
        if let Some(account_id) = &row.account_id {
            db::locks::lock_accounts(conn, &[account_id.as_str()])?;
        }
        Loaded::from_row(conn, row)
    }

    /// Loads a ticket to show it: no lock.
    pub fn read(conn: &mut AnyConnection, id: i64) -> Result<Loaded, ServiceError> {
        let row = tickets::find(conn, id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
        Loaded::from_row(conn, row)
    }

    pub fn from_row(conn: &mut AnyConnection, row: TicketRow) -> Result<Loaded, ServiceError> {
        let account = match &row.account_id {
            Some(id) => accounts::load_view(conn, id)?,
            None => None,
        };
        let checks = tickets::checks_of_round(conn, row.id, row.verification_round)?
            .into_iter()
            .filter_map(|(method, passed)| Method::parse(&method).map(|method| CheckRecord { method, passed }))
            .collect();
        let now = db::now();
        let pending = db::approvals::pending_of(conn, row.id)?
            .iter()
            .filter(|a| request_view(a).is_live(now))
            .filter_map(|a| crate::domain::workflow::ActionName::parse(&a.action).ok())
            .collect();
        Ok(Loaded {
            row,
            account,
            checks,
            pending,
        })
    }

    pub fn kind(&self) -> Kind {
        self.row.kind
    }

    pub fn state(&self) -> State {
        self.row.state
    }

    pub fn view(&self) -> TicketView<'_> {
        TicketView {
            kind: self.kind(),
            state: self.state(),
            state_reason: self.row.state_reason.as_deref(),
            requester: &self.row.requester,
            account: self.account.as_ref(),
            checks: &self.checks,
            attempts_on_record: self.row.attempts_on_record,
            pending_approvals: &self.pending,
        }
    }
}

/// What the four-eyes rules read of a stored request.
pub fn request_view(row: &ApprovalRow) -> RequestView {
    RequestView {
        status: ApprovalStatus::parse(&row.status).unwrap_or(ApprovalStatus::Cancelled),
        requested_by: row.requested_by_id,
        requested_at: row.requested_at,
    }
}
