//! ip_lockout, step by step as the IP lock-out help article says: try your allowlisted IPs, report it, verify
//! ownership (email challenge plus another method), then grant one public address or network.

use super::{
    Action, ActionName, Decision, Effect, ErrorCode, MailTemplate, Refusal, TicketView, VERIFICATION_FAILED_REASON,
    account_not_linked, banned_refusal, mail_account_then_update_requester, not_in_state,
};
use crate::domain::ticket::State;
use crate::domain::verification::{self, CheckRecord, Method, Progress};

pub(super) fn check(ticket: &TicketView, name: ActionName) -> Result<(), Refusal> {
    use State::*;
    let state = ticket.state;
    match name {
        ActionName::RecordAllowlistedAttempts => match state {
            AwaitingAllowlistedAttempts | AttemptsReported => Ok(()),
            _ => Err(not_in_state(ticket, name)),
        },
        ActionName::StartOwnershipVerification => match state {
            AwaitingAllowlistedAttempts => Err(Refusal::new(
                ErrorCode::AllowlistedAttemptsMissing,
                "the customer must first try to log in from their allowlisted IPs (another location, or a colleague on that network) and report it",
            )),
            AttemptsReported => {
                let account = ticket.account.ok_or_else(|| account_not_linked(name))?;
                if !account.ip_access_enabled {
                    return Err(Refusal::new(
                        ErrorCode::IpAccessNotEnabled,
                        "IP access management is not enabled on this account, so it cannot be the cause of the lock-out: reclassify the ticket",
                    ));
                }
                Ok(())
            }
            _ => Err(not_in_state(ticket, name)),
        },
        // A challenge already confirmed this round needs no second one (docs/reference.md#who-acts-next).
        ActionName::SendEmailChallenge
            if state == VerifyingOwnership
                && ticket.account.is_some()
                && ticket
                    .checks
                    .iter()
                    .any(|c| c.method == Method::EmailChallenge && c.passed) =>
        {
            Err(Refusal::new(
                ErrorCode::InvalidTransition,
                "the customer already confirmed the email challenge of this verification",
            ))
        }
        ActionName::SendEmailChallenge | ActionName::RecordVerificationCheck => match state {
            VerifyingOwnership => ticket.account.map(|_| ()).ok_or_else(|| account_not_linked(name)),
            _ => Err(not_in_state(ticket, name)),
        },
        ActionName::GrantIpAccess => match state {
            OwnershipVerified => ticket.account.map(|_| ()).ok_or_else(|| account_not_linked(name)),
            AwaitingAllowlistedAttempts | AttemptsReported | VerifyingOwnership => Err(Refusal::new(
                ErrorCode::OwnershipNotVerified,
                "ownership of the account has not been verified: it needs two passed checks of different methods, one of them the email challenge",
            )),
            _ => Err(not_in_state(ticket, name)),
        },
        _ => Err(not_in_state(ticket, name)),
    }
}

pub(super) fn decide(ticket: &TicketView, action: &Action) -> Result<Decision, Refusal> {
    match action {
        Action::RecordAllowlistedAttempts { tried_from, outcome } => Ok(Decision::to(ticket, State::AttemptsReported)
            .with(Effect::RecordAttempts {
                tried_from: tried_from.clone(),
                outcome: outcome.clone(),
            })),
        Action::StartOwnershipVerification => {
            Ok(Decision::to(ticket, State::VerifyingOwnership).with(Effect::StartVerificationRound))
        }
        Action::SendEmailChallenge => {
            let account = ticket.account.ok_or_else(|| account_not_linked(action.name()))?;
            Ok(Decision::stay(ticket).with(Effect::IssueEmailChallenge {
                account_id: account.id.clone(),
            }))
        }
        Action::RecordVerificationCheck {
            method,
            passed,
            evidence,
        } => {
            if *method == Method::EmailChallenge {
                return Err(Refusal::new(
                    ErrorCode::EmailChallengeByLinkOnly,
                    "an email challenge is recorded only when the customer confirms the link mailed to the registered address: use send_email_challenge",
                ));
            }
            Ok(record_check(ticket, *method, *passed, evidence.clone()))
        }
        Action::GrantIpAccess { ip } => {
            let account = ticket.account.ok_or_else(|| account_not_linked(action.name()))?;
            let ip = ip.as_str().to_string();
            Ok(mail_account_then_update_requester(
                Decision::to(ticket, State::Resolved).with(Effect::AddAllowlistEntry {
                    account_id: account.id.clone(),
                    ip: ip.clone(),
                }),
                ticket.requester,
                account,
                MailTemplate::IpGranted { ip },
            ))
        }
        _ => Err(not_in_state(ticket, action.name())),
    }
}

pub(super) fn confirm_email_challenge(ticket: &TicketView, passed: bool) -> Result<Decision, Refusal> {
    if ticket.account_is_banned() {
        return Err(banned_refusal());
    }
    if ticket.kind != crate::domain::ticket::Kind::IpLockout || ticket.state != State::VerifyingOwnership {
        return Err(Refusal::new(
            ErrorCode::InvalidTransition,
            format!(
                "the ticket is no longer verifying ownership (it is {})",
                ticket.state.as_str()
            ),
        ));
    }
    let evidence = if passed {
        "confirmed through the link mailed to the registered address"
    } else {
        "the registered address answered \"this was not me\""
    };
    let decision = record_check(ticket, Method::EmailChallenge, passed, evidence.to_string());
    Ok(if passed {
        decision
    } else {
        decision.with(Effect::Flag {
            reason: "the registered address says it did not ask for this: possible takeover attempt".into(),
        })
    })
}

/// Record one check and move on when the policy decides: verified, or refused after three
/// failed checks.
fn record_check(ticket: &TicketView, method: Method, passed: bool, evidence: String) -> Decision {
    let mut checks: Vec<CheckRecord> = ticket.checks.to_vec();
    checks.push(CheckRecord { method, passed });
    let recorded = Effect::RecordCheck {
        method,
        passed,
        evidence,
    };
    match verification::evaluate(&checks) {
        Progress::Verified => Decision::to(ticket, State::OwnershipVerified).with(recorded),
        Progress::Failed => {
            let decision = Decision::to(ticket, State::Refused)
                .because(VERIFICATION_FAILED_REASON)
                .with(recorded);
            match ticket.account {
                Some(account) => mail_account_then_update_requester(
                    decision,
                    ticket.requester,
                    account,
                    MailTemplate::VerificationFailed,
                ),
                None => decision,
            }
        }
        Progress::InProgress { .. } => Decision::stay(ticket).with(recorded),
    }
}
