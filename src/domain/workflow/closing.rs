//! Ending a ticket by an agent's refusal, and an admin's `reopen` of it
//! (docs/reference.md#who-acts-next).

use super::{
    BANNED_REASON, Decision, Effect, ErrorCode, MailTemplate, Recipient, Refusal, TicketView,
    VERIFICATION_FAILED_REASON,
};
use crate::domain::ticket::State;

/// Why an agent refuses a request: one of a list (the customer is told in words that depend
/// on it), plus the agent's free text (kept on the ticket, never mailed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    CannotVerify,
    NotAuthorised,
    Duplicate,
    OutOfScope,
    Abusive,
    Other,
}

impl RefuseReason {
    pub const ALL: [RefuseReason; 6] = [
        RefuseReason::CannotVerify,
        RefuseReason::NotAuthorised,
        RefuseReason::Duplicate,
        RefuseReason::OutOfScope,
        RefuseReason::Abusive,
        RefuseReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::CannotVerify => "cannot_verify",
            RefuseReason::NotAuthorised => "not_authorised",
            RefuseReason::Duplicate => "duplicate",
            RefuseReason::OutOfScope => "out_of_scope",
            RefuseReason::Abusive => "abusive",
            RefuseReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<RefuseReason> {
        RefuseReason::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// Words for the agent choosing it.
    pub fn label(self) -> &'static str {
        match self {
            RefuseReason::CannotVerify => "We cannot verify who is asking",
            RefuseReason::NotAuthorised => "The requester may not ask for this",
            RefuseReason::Duplicate => "Duplicate of another request",
            RefuseReason::OutOfScope => "Not something support can do",
            RefuseReason::Abusive => "Abusive or fraudulent",
            RefuseReason::Other => "Another reason",
        }
    }

    /// What the requester reads (mail and status page). Nothing here depends on an account:
    /// a stranger who asked learns nothing from it.
    pub fn customer_words(self) -> &'static str {
        match self {
            RefuseReason::CannotVerify => {
                "We could not confirm that this request comes from someone entitled to make it, so we cannot act on it."
            }
            RefuseReason::NotAuthorised => {
                "Only the holder of an account, writing from its registered address, can ask for this, so we cannot act on it."
            }
            RefuseReason::Duplicate => {
                "This request repeats another one we are already handling; we will answer you there."
            }
            RefuseReason::OutOfScope => "This is not something our support team can do for you.",
            RefuseReason::Abusive => "We will not act on this request.",
            RefuseReason::Other => "We could not take this request further.",
        }
    }

    /// The words for a ticket's `state_reason`, when it is one of ours.
    pub fn words_for(state_reason: Option<&str>) -> Option<&'static str> {
        state_reason
            .and_then(RefuseReason::parse)
            .map(RefuseReason::customer_words)
    }
}

/// A refusal the policy made (a ban, a failed verification) can never be reopened.
pub fn is_policy_reason(reason: Option<&str>) -> bool {
    matches!(reason, Some(BANNED_REASON | VERIFICATION_FAILED_REASON))
}

/// `refuse`: the ticket ends with the chosen reason, the agent's words as a note, and the
/// requester told in the reason's words.
pub(super) fn refuse(ticket: &TicketView, reason: RefuseReason, text: &str) -> Decision {
    let decision = Decision::to(ticket, State::Refused)
        .because(reason.as_str())
        .with(Effect::mail(
            MailTemplate::RequestRefused { reason },
            Recipient::Requester,
        ));
    if text.is_empty() {
        decision
    } else {
        decision.with(Effect::Note {
            body: format!("Refused ({}): {text}", reason.label()),
        })
    }
}

/// `reopen` may be asked for only on a ticket an agent refused.
pub(super) fn check_reopen(ticket: &TicketView) -> Result<(), Refusal> {
    if ticket.state != State::Refused || !ticket.kind.states().contains(&ticket.state) {
        return Err(super::not_in_state(ticket, super::ActionName::Reopen));
    }
    // A banned account's ticket stays refused, whoever refused it first.
    if ticket.account_is_banned() {
        return Err(super::banned_refusal());
    }
    if is_policy_reason(ticket.state_reason) {
        return Err(Refusal::new(
            ErrorCode::RefusedByPolicy,
            "the policy refused this ticket (a banned account or a failed verification): it can never be reopened",
        ));
    }
    Ok(())
}

/// `reopen`: back to the kind's first open state (an ip_lockout's verification starts afresh).
pub(super) fn reopen(ticket: &TicketView, text: &str) -> Decision {
    Decision::to(ticket, ticket.kind.initial_state())
        .with(Effect::StartVerificationRound)
        .with(Effect::Note {
            body: format!("Reopened: {text}"),
        })
}

/// Only admins reopen (403 `forbidden` for anyone else).
pub fn check_role(name: super::ActionName, is_admin: bool) -> Result<(), Refusal> {
    if name == super::ActionName::Reopen && !is_admin {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "only an admin can reopen a refused ticket",
        ));
    }
    Ok(())
}
