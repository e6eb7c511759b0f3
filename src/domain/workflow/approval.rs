//! Four eyes (docs/reference.md#four-eyes-and-the-audit-trail): which actions wait for a
//! second agent, who may approve them, and for how long a request stands.

use super::apply::{Accepted, Facts, Named, Refused, Role, Stage, apply_with};
use super::{Action, ActionName, ErrorCode, Refusal, TicketView};
use chrono::{Duration, NaiveDateTime};

/// A request older than this is expired: it can no longer be approved.
pub const APPROVAL_VALID_HOURS: i64 = 24;

/// `RECOVERYDESK_FOUR_EYES`: off by default, so that the quick start works with one admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FourEyes {
    #[default]
    Off,
    On,
}

impl FourEyes {
    pub fn parse(text: &str) -> Option<FourEyes> {
        match text.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Some(FourEyes::On),
            "off" | "false" | "no" | "0" | "" => Some(FourEyes::Off),
            _ => None,
        }
    }
}

/// Whether this action, once its guards pass, becomes an approval request instead of being
/// applied: the two that change the directory in the customer's favour.
pub fn needs_approval(policy: FourEyes, name: ActionName) -> bool {
    policy == FourEyes::On && matches!(name, ActionName::GrantIpAccess | ActionName::ReactivateAccount)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    /// Withdrawn by its requester, or closed because the ticket moved on.
    Cancelled,
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Cancelled => "cancelled",
            ApprovalStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Rejected,
            ApprovalStatus::Cancelled,
            ApprovalStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What the rule needs to know of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestView {
    pub status: ApprovalStatus,
    /// The agent who asked.
    pub requested_by: i64,
    pub requested_at: NaiveDateTime,
}

impl RequestView {
    /// Pending, but older than [`APPROVAL_VALID_HOURS`].
    pub fn is_expired(&self, now: NaiveDateTime) -> bool {
        self.status == ApprovalStatus::Pending && now - self.requested_at >= Duration::hours(APPROVAL_VALID_HOURS)
    }

    /// Pending and still within its time: it holds the action on its ticket.
    pub fn is_live(&self, now: NaiveDateTime) -> bool {
        self.status == ApprovalStatus::Pending && !self.is_expired(now)
    }
}

/// May `agent` approve this request now? Only a pending, unexpired request, and only by
/// someone other than its requester. (The action's own guards are checked again after this,
/// by the engine, against the ticket as it is at that moment.)
pub fn may_approve(request: &RequestView, agent: i64, now: NaiveDateTime) -> Result<(), Refusal> {
    still_open(request, now)?;
    if agent == request.requested_by {
        return Err(Refusal::new(
            ErrorCode::SameAgent,
            "four eyes: a different agent must approve this request, not the one who asked for it",
        ));
    }
    Ok(())
}

/// Approving `request` by `agent`: the request's own rule first (pending, recent, another
/// agent), then the action through [`apply_with`] in the usual order, against the ticket as
/// it is now (with this request no longer holding its action). A refusal of the request
/// itself is at [`Stage::Request`]; any later one means the ticket moved on.
pub fn approve<F: Facts, E>(
    ticket: &TicketView,
    name: impl Named,
    params: &serde_json::Value,
    request: &RequestView,
    agent: i64,
    now: NaiveDateTime,
    prepare: impl FnOnce(&mut Action) -> Result<F, E>,
) -> Result<Result<Accepted, Refused>, E> {
    if let Err(refusal) = may_approve(request, agent, now) {
        return Ok(Err(Refused {
            stage: Stage::Request,
            name: name.action_name().ok(),
            refusal,
        }));
    }
    let held = name.action_name().ok();
    let others: Vec<ActionName> = ticket
        .pending_approvals
        .iter()
        .copied()
        .filter(|p| Some(*p) != held)
        .collect();
    let now_view = TicketView {
        pending_approvals: &others,
        ..ticket.clone()
    };
    // The requester's own role: only `reopen` needs an admin, and it is never held.
    apply_with(&now_view, name, params, Role::Agent, prepare)
}

/// Whether a refusal at approval is about the request itself (it stays as it is) rather than
/// the ticket, which moved on so that the request can never apply.
pub fn is_about_the_request(refused: &Refused) -> bool {
    refused.stage == Stage::Request
}

/// What a rejection by `agent` becomes: a rejection, or a withdrawal when the requester
/// takes back their own request.
pub fn may_reject(request: &RequestView, agent: i64, now: NaiveDateTime) -> Result<ApprovalStatus, Refusal> {
    still_open(request, now)?;
    Ok(if agent == request.requested_by {
        ApprovalStatus::Cancelled
    } else {
        ApprovalStatus::Rejected
    })
}

fn still_open(request: &RequestView, now: NaiveDateTime) -> Result<(), Refusal> {
    if request.status == ApprovalStatus::Expired || request.is_expired(now) {
        return Err(Refusal::new(
            ErrorCode::ApprovalExpired,
            format!("this request is older than {APPROVAL_VALID_HOURS} hours: ask again"),
        ));
    }
    if request.status != ApprovalStatus::Pending {
        return Err(Refusal::new(
            ErrorCode::ApprovalNotPending,
            format!("this request was {} already", request.status.as_str()),
        ));
    }
    Ok(())
}

pub(crate) fn pending_refusal(name: ActionName) -> Refusal {
    Refusal::new(
        ErrorCode::ApprovalPending,
        format!(
            "{} is waiting for a second agent's approval on this ticket",
            name.as_str()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + Duration::hours(hours)
    }

    fn request(status: ApprovalStatus) -> RequestView {
        RequestView {
            status,
            requested_by: 1,
            requested_at: at(0),
        }
    }

    #[test]
    fn only_grants_and_reactivations_wait_and_only_with_four_eyes_on() {
        for name in ActionName::ALL {
            let expected = matches!(name, ActionName::GrantIpAccess | ActionName::ReactivateAccount);
            assert_eq!(needs_approval(FourEyes::On, name), expected, "{name:?}");
            assert!(!needs_approval(FourEyes::Off, name), "{name:?}");
        }
        assert_eq!(FourEyes::parse("on"), Some(FourEyes::On));
        assert_eq!(FourEyes::parse("OFF"), Some(FourEyes::Off));
        assert_eq!(FourEyes::parse("maybe"), None);
    }

    #[test]
    fn the_requester_never_approves_their_own_request() {
        let r = request(ApprovalStatus::Pending);
        assert_eq!(may_approve(&r, 1, at(1)).unwrap_err().code, ErrorCode::SameAgent);
        assert_eq!(may_approve(&r, 2, at(1)), Ok(()));
    }

    #[test]
    fn a_request_stands_for_24_hours() {
        let r = request(ApprovalStatus::Pending);
        assert!(r.is_live(at(23)));
        assert_eq!(may_approve(&r, 2, at(23)), Ok(()));
        assert!(r.is_expired(at(24)));
        assert_eq!(may_approve(&r, 2, at(24)).unwrap_err().code, ErrorCode::ApprovalExpired);
        assert_eq!(may_reject(&r, 2, at(25)).unwrap_err().code, ErrorCode::ApprovalExpired);
    }

    #[test]
    fn a_decided_request_is_not_pending_for_anyone() {
        let expired = request(ApprovalStatus::Expired);
        assert_eq!(
            may_approve(&expired, 2, at(1)).unwrap_err().code,
            ErrorCode::ApprovalExpired
        );
        for status in [
            ApprovalStatus::Approved,
            ApprovalStatus::Rejected,
            ApprovalStatus::Cancelled,
        ] {
            let r = request(status);
            assert!(!r.is_live(at(1)));
            for agent in [1, 2] {
                assert_eq!(
                    may_approve(&r, agent, at(1)).unwrap_err().code,
                    ErrorCode::ApprovalNotPending
                );
                assert_eq!(
                    may_reject(&r, agent, at(1)).unwrap_err().code,
                    ErrorCode::ApprovalNotPending
                );
            }
            assert_eq!(ApprovalStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ApprovalStatus::parse("expired"), Some(ApprovalStatus::Expired));
    }

    #[test]
    fn approval_checks_the_guards_again_against_the_ticket_as_it_is_now() {
        use crate::domain::account::{AccountStatus, sample_account};
        use crate::domain::ticket::{Kind, State};
        use crate::domain::workflow::{Context, Decision};
        use std::convert::Infallible;
        let params = serde_json::json!({"ip": "198.51.100.77"});
        let approve = |ticket: &TicketView, request: &RequestView, agent, when| -> Result<Decision, Refused> {
            let Ok(outcome) = approve(ticket, ActionName::GrantIpAccess, &params, request, agent, when, |_| {
                Ok::<_, Infallible>(Context::default())
            });
            outcome.map(|accepted| accepted.decision)
        };
        let pending = [ActionName::GrantIpAccess];
        let active = sample_account(AccountStatus::Active);
        let ticket = TicketView {
            kind: Kind::IpLockout,
            state: State::OwnershipVerified,
            state_reason: None,
            requester: "ops@acme.test",
            account: Some(&active),
            checks: &[],
            attempts_on_record: true,
            pending_approvals: &pending,
        };
        let r = request(ApprovalStatus::Pending);
        // The request being approved does not hold its own action.
        let decision = approve(&ticket, &r, 2, at(1)).expect("approved");
        assert_eq!(decision.state, State::Resolved);
        // The requester, an old request, a decided one: refused before any guard.
        for (agent, when, request, code) in [
            (1, at(1), r, ErrorCode::SameAgent),
            (2, at(30), r, ErrorCode::ApprovalExpired),
            (
                2,
                at(1),
                request(ApprovalStatus::Approved),
                ErrorCode::ApprovalNotPending,
            ),
        ] {
            let refused = approve(&ticket, &request, agent, when).unwrap_err();
            assert_eq!(refused.refusal.code, code);
            assert!(is_about_the_request(&refused));
        }
        // A ban imported since the request: account_banned, and the request can never apply.
        let banned = sample_account(AccountStatus::Banned);
        let now_banned = TicketView {
            account: Some(&banned),
            ..ticket.clone()
        };
        let refused = approve(&now_banned, &r, 2, at(1)).unwrap_err();
        assert_eq!(refused.refusal.code, ErrorCode::AccountBanned);
        assert!(!is_about_the_request(&refused));
        // A ticket that moved on (reopened: ownership is verified afresh).
        let reopened = TicketView {
            state: State::AttemptsReported,
            ..ticket.clone()
        };
        assert_eq!(
            approve(&reopened, &r, 2, at(1)).unwrap_err().refusal.code,
            ErrorCode::OwnershipNotVerified
        );
    }

    #[test]
    fn another_agent_rejects_and_the_requester_withdraws() {
        let r = request(ApprovalStatus::Pending);
        assert_eq!(may_reject(&r, 2, at(1)), Ok(ApprovalStatus::Rejected));
        assert_eq!(may_reject(&r, 1, at(1)), Ok(ApprovalStatus::Cancelled));
    }
}
