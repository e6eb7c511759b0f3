//! account_terminated: pay the balance, then reactivate. Never for a banned account.

use super::{
    Action, ActionName, Decision, Effect, ErrorCode, MailTemplate, Refusal, TicketView, account_not_linked,
    mail_account_then_update_requester, not_in_state,
};
use crate::domain::account::AccountStatus;
use crate::domain::ticket::State;

pub(super) fn check(ticket: &TicketView, name: ActionName) -> Result<(), Refusal> {
    let in_state = match name {
        ActionName::RecordPayment => ticket.state == State::AwaitingPayment,
        ActionName::ReactivateAccount => matches!(ticket.state, State::AwaitingPayment | State::PaymentConfirmed),
        _ => false,
    };
    if !in_state {
        return Err(not_in_state(ticket, name));
    }
    let Some(account) = ticket.account else {
        return Err(account_not_linked(name));
    };
    // Only billing's termination is undone here: a signup that never confirmed its address
    // (or an active account linked by mistake) is never made active by the desk.
    if name == ActionName::ReactivateAccount && account.status != AccountStatus::Terminated {
        return Err(Refusal::new(
            ErrorCode::AccountNotTerminated,
            format!(
                "the linked account is {}, not terminated: only a terminated account is reactivated",
                account.status.as_str()
            ),
        ));
    }
    if name == ActionName::ReactivateAccount && account.balance_due_cents > 0 {
        return Err(Refusal::new(
            ErrorCode::BalanceOutstanding,
            format!(
                "the account still owes {}: record the payment first",
                format_cents(account.balance_due_cents)
            ),
        ));
    }
    Ok(())
}

pub(super) fn decide(ticket: &TicketView, action: &Action) -> Result<Decision, Refusal> {
    let account = ticket.account.ok_or_else(|| account_not_linked(action.name()))?;
    match action {
        Action::RecordPayment {
            amount_cents,
            reference,
        } => {
            let new_balance_cents = (account.balance_due_cents - amount_cents).max(0);
            let state = if new_balance_cents == 0 {
                State::PaymentConfirmed
            } else {
                State::AwaitingPayment
            };
            Ok(Decision::to(ticket, state).with(Effect::RecordPayment {
                account_id: account.id.clone(),
                amount_cents: *amount_cents,
                reference: reference.clone(),
                new_balance_cents,
            }))
        }
        Action::ReactivateAccount => Ok(mail_account_then_update_requester(
            Decision::to(ticket, State::Resolved).with(Effect::ReactivateAccount {
                account_id: account.id.clone(),
            }),
            ticket.requester,
            account,
            MailTemplate::AccountReactivated,
        )),
        _ => Err(not_in_state(ticket, action.name())),
    }
}

/// `12345` → `$123.45`, for messages people read.
pub fn format_cents(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}
