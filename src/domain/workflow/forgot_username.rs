//! forgot_username: the username goes to the registered address, and only there.

use super::{
    Action, ActionName, Context, Decision, Effect, MailTemplate, Refusal, TicketView, banned_refusal,
    mail_account_then_update_requester, not_in_state,
};
use crate::domain::ticket::State;

pub(super) fn check(ticket: &TicketView, name: ActionName) -> Result<(), Refusal> {
    match (name, ticket.state) {
        (ActionName::SendUsername, State::AwaitingAgent) => Ok(()),
        _ => Err(not_in_state(ticket, name)),
    }
}

pub(super) fn decide(ticket: &TicketView, action: &Action, ctx: &Context) -> Result<Decision, Refusal> {
    let Action::SendUsername { account_id } = action else {
        return Err(not_in_state(ticket, action.name()));
    };
    let Some(target) = ctx.target_account.filter(|a| &a.id == account_id) else {
        return Err(Refusal::invalid_input(format!(
            "account_id: no account {account_id:?} in the directory"
        )));
    };
    if target.is_banned() {
        return Err(banned_refusal());
    }
    let mut decision = Decision::to(ticket, State::Resolved);
    if ticket.account.is_none() {
        decision = decision.with(Effect::LinkAccount {
            account_id: target.id.clone(),
        });
    }
    Ok(mail_account_then_update_requester(
        decision,
        ticket.requester,
        target,
        MailTemplate::UsernameDelivery {
            account_ids: vec![target.id.clone()],
        },
    ))
}
