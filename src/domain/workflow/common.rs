//! Actions every kind has: assign, reclassify, link_account, resolve, refuse.

use super::creation::{self, CreationFacts};
use super::{
    Action, ActionName, Context, Decision, Effect, MailTemplate, Refusal, TicketView,
    mail_account_then_update_requester, not_in_state, refuse_as_banned,
};
use crate::domain::account::AccountStatus;
use crate::domain::ticket::{Kind, State};

/// Common actions are allowed in every state of the ticket's kind but the terminal ones. A state
/// the kind does not have (a damaged record) allows nothing.
pub(super) fn check(ticket: &TicketView, name: ActionName) -> Result<(), Refusal> {
    if ticket.state.is_terminal() || !ticket.kind.states().contains(&ticket.state) {
        return Err(not_in_state(ticket, name));
    }
    Ok(())
}

pub(super) fn decide(ticket: &TicketView, action: &Action, ctx: &Context) -> Result<Decision, Refusal> {
    match action {
        Action::Assign { agent_email } => Ok(Decision::stay(ticket).with(Effect::Assign {
            agent_email: agent_email.as_str().to_string(),
        })),
        Action::Reclassify { kind } => Ok(reclassify(ticket, *kind, ctx)),
        Action::LinkAccount { account_id } => link_account(ticket, account_id, ctx),
        Action::Resolve { note } => {
            let decision = Decision::to(ticket, State::Resolved);
            Ok(if note.is_empty() {
                decision
            } else {
                decision.with(Effect::Note { body: note.clone() })
            })
        }
        Action::Refuse { reason } => {
            let reason = if reason.is_empty() {
                "refused_by_agent".to_string()
            } else {
                reason.clone()
            };
            Ok(Decision::to(ticket, State::Refused).because(reason))
        }
        _ => Err(not_in_state(ticket, action.name())),
    }
}

/// The ticket moves to the new kind's first state and that kind's creation rules run
/// (lookup, banned answer, mails), exactly as if it had been opened so. A ticket becoming
/// `login_help` is diagnosed as one opened so would be: the service reads the username the
/// customer named from the thread and puts what the logs show in the context.
fn reclassify(ticket: &TicketView, kind: Kind, ctx: &Context) -> Decision {
    let diagnosis = ctx.diagnosis.filter(|_| kind == Kind::LoginHelp);
    creation::on_create(&CreationFacts {
        kind,
        requester: ticket.requester,
        account: ticket.account,
        requester_accounts: ctx.requester_accounts,
        attempts: None,
        attempts_on_record: ticket.attempts_on_record,
        smtp_username: diagnosis.map(|d| d.diagnosis.username.as_str()),
        diagnosis,
    })
}

fn link_account(ticket: &TicketView, account_id: &str, ctx: &Context) -> Result<Decision, Refusal> {
    let Some(target) = ctx.target_account.filter(|a| a.id == account_id) else {
        return Err(Refusal::invalid_input(format!(
            "account_id: no account {account_id:?} in the directory"
        )));
    };
    let link = Effect::LinkAccount {
        account_id: target.id.clone(),
    };
    if target.is_banned() {
        return Ok(refuse_as_banned(ticket, ticket.kind, target).with(link));
    }
    let same_account = ticket.account.is_some_and(|a| a.id == target.id);
    let decision = match (ticket.kind, ticket.state) {
        // Verification proves ownership of one account: another account starts it afresh.
        (Kind::IpLockout, State::VerifyingOwnership | State::OwnershipVerified) if !same_account => {
            Decision::to(ticket, State::AttemptsReported).with(link)
        }
        // The right account is found: the termination flow starts.
        (Kind::AccountTerminated, State::AwaitingAgent) if target.effective_status() == AccountStatus::Terminated => {
            mail_account_then_update_requester(
                Decision::to(ticket, State::AwaitingPayment).with(link),
                ticket.requester,
                target,
                MailTemplate::BalanceDue,
            )
        }
        _ => Decision::stay(ticket).with(link),
    };
    Ok(decision)
}
