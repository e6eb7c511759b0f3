//! The recovery policy of the help articles, as a pure function.
//!
//! `decide(ticket, action, context)` answers with a [`Decision`] (the new state and the
//! effects to perform, as data) or a [`Refusal`] carrying the reference's error code. `check` answers
//! the same question without parameters, so the console and the API list exactly what the
//! engine would accept. Every entry point (API, console, forms, mail, CLI) goes through here.

mod account_terminated;
pub mod action;
pub mod activity;
pub mod apply;
pub mod approval;
pub mod canned;
pub mod closing;
mod common;
pub mod conversation;
pub mod creation;
pub mod customer_step;
pub mod diagnosis;
pub mod effect;
mod forgot_username;
mod ip_lockout;
pub mod login_help;
pub mod refusal;
pub mod tried;

pub use account_terminated::format_cents;
pub use action::{Action, ActionName};
pub use activity::{Activity, WaitingOn};
pub use apply::{Accepted, Facts, Named, Refused, Role, Stage, apply, apply_with};
pub use closing::RefuseReason;
pub use diagnosis::DiagnosisFacts;
pub use effect::{Effect, Mail, MailTemplate, Recipient, guidance_template};
pub use refusal::{ErrorCode, Refusal};

use crate::domain::account::AccountView;
use crate::domain::ticket::{Kind, State};
use crate::domain::verification::CheckRecord;

/// What the engine knows of a ticket.
#[derive(Debug, Clone)]
pub struct TicketView<'a> {
    pub kind: Kind,
    pub state: State,
    /// Why it ended, for a closed ticket (an agent's reason or the policy's).
    pub state_reason: Option<&'a str>,
    pub requester: &'a str,
    /// The linked directory account, if any.
    pub account: Option<&'a AccountView>,
    /// Checks of the current verification round only.
    pub checks: &'a [CheckRecord],
    /// Whether the customer's allowlisted attempts were ever reported on this ticket.
    pub attempts_on_record: bool,
    /// Actions held for a second agent's approval on this ticket (four eyes), still live.
    pub pending_approvals: &'a [ActionName],
}

impl TicketView<'_> {
    pub fn account_is_banned(&self) -> bool {
        self.account.is_some_and(AccountView::is_banned)
    }
}

/// Facts the service loads for an action that names another account or re-runs creation.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// The account named by `link_account` / `send_username`, when it exists.
    pub target_account: Option<&'a AccountView>,
    /// Accounts registered to the requester's address (for `reclassify` to forgot_username).
    pub requester_accounts: &'a [AccountView],
    /// For `diagnose_auth`: what the authentication logs show, read by the service.
    pub diagnosis: Option<DiagnosisFacts<'a>>,
}

/// What happens: the ticket's next kind and state, and what the service must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub kind: Kind,
    pub state: State,
    /// Why a ticket ended (`account_banned`, `verification_failed`, an agent's reason).
    pub state_reason: Option<String>,
    pub effects: Vec<Effect>,
}

impl Decision {
    /// The ticket stays where it is (effects may still follow).
    pub fn stay(ticket: &TicketView) -> Decision {
        Decision {
            kind: ticket.kind,
            state: ticket.state,
            state_reason: None,
            effects: vec![],
        }
    }

    /// The ticket moves to `state`, its kind unchanged.
    pub fn to(ticket: &TicketView, state: State) -> Decision {
        Decision {
            kind: ticket.kind,
            state,
            state_reason: None,
            effects: vec![],
        }
    }

    pub fn with(mut self, effect: Effect) -> Decision {
        self.effects.push(effect);
        self
    }

    pub fn because(mut self, reason: impl Into<String>) -> Decision {
        self.state_reason = Some(reason.into());
        self
    }
}

pub const BANNED_REASON: &str = "account_banned";
pub const VERIFICATION_FAILED_REASON: &str = "verification_failed";

/// May this action be asked for now, before looking at its parameters? The order is the reference's:
/// banned first, then kind and state, with the more specific guard codes where they apply.
pub fn check(ticket: &TicketView, name: ActionName) -> Result<(), Refusal> {
    guards(ticket, name)?;
    // The guards hold, but the same action already waits for a second agent.
    if ticket.pending_approvals.contains(&name) {
        return Err(approval::pending_refusal(name));
    }
    Ok(())
}

fn guards(ticket: &TicketView, name: ActionName) -> Result<(), Refusal> {
    if name.is_recovery() && ticket.account_is_banned() {
        return Err(banned_refusal());
    }
    match name.kind() {
        None => common::check(ticket, name),
        Some(kind) if kind != ticket.kind => Err(Refusal::new(
            ErrorCode::InvalidTransition,
            format!(
                "{} belongs to {} tickets; this one is {}",
                name.as_str(),
                kind.as_str(),
                ticket.kind.as_str()
            ),
        )),
        Some(Kind::ForgotUsername) => forgot_username::check(ticket, name),
        Some(Kind::IpLockout) => ip_lockout::check(ticket, name),
        Some(Kind::AccountTerminated) => account_terminated::check(ticket, name),
        Some(Kind::LoginHelp) => login_help::check(ticket, name),
        Some(_) => Err(not_in_state(ticket, name)),
    }
}

/// Apply an action: the decision, or the refusal with its code.
pub fn decide(ticket: &TicketView, action: &Action, ctx: &Context) -> Result<Decision, Refusal> {
    check(ticket, action.name())?;
    match action.name().kind() {
        None => common::decide(ticket, action, ctx),
        Some(Kind::ForgotUsername) => forgot_username::decide(ticket, action, ctx),
        Some(Kind::IpLockout) => ip_lockout::decide(ticket, action),
        Some(Kind::AccountTerminated) => account_terminated::decide(ticket, action),
        Some(Kind::LoginHelp) => login_help::decide(ticket, action, ctx),
        Some(_) => Err(not_in_state(ticket, action.name())),
    }
}

/// What to do with an action whose guards and parameters passed: apply it now, or (four
/// eyes) record it as a request for a second agent to approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Apply(Decision),
    Hold,
}

/// [`decide`], then the four-eyes rule: a grant or reactivation whose guards all pass is held
/// for approval when four eyes is on.
pub fn decide_or_hold(
    ticket: &TicketView,
    action: &Action,
    ctx: &Context,
    policy: approval::FourEyes,
) -> Result<Step, Refusal> {
    let decision = decide(ticket, action, ctx)?;
    Ok(Step::of(decision, action.name(), policy))
}

impl Step {
    /// The four-eyes rule for an action the engine accepted.
    pub fn of(decision: Decision, name: ActionName, policy: approval::FourEyes) -> Step {
        if approval::needs_approval(policy, name) {
            Step::Hold
        } else {
            Step::Apply(decision)
        }
    }
}

/// Every action of the ticket's kind with whether it is allowed now, and why not.
pub fn available_actions(ticket: &TicketView) -> Vec<(ActionName, Result<(), Refusal>)> {
    ActionName::for_kind(ticket.kind)
        .into_iter()
        .map(|name| (name, check(ticket, name)))
        .collect()
}

/// The customer confirmed (or disowned) the email challenge through the mailed link. This is
/// the only way a passed `email_challenge` is recorded.
pub fn confirm_email_challenge(ticket: &TicketView, passed: bool) -> Result<Decision, Refusal> {
    ip_lockout::confirm_email_challenge(ticket, passed)
}

pub fn banned_refusal() -> Refusal {
    Refusal::new(
        ErrorCode::AccountBanned,
        "the account is banned: a ban is permanent and support cannot assist with reactivation or recovery",
    )
}

pub(crate) fn not_in_state(ticket: &TicketView, name: ActionName) -> Refusal {
    Refusal::new(
        ErrorCode::InvalidTransition,
        format!(
            "“{}” is not possible while the ticket is at “{}”",
            name.label(),
            ticket.state.label()
        ),
    )
}

pub(crate) fn account_not_linked(name: ActionName) -> Refusal {
    Refusal::new(
        ErrorCode::AccountNotLinked,
        format!(
            "{} needs a directory account linked to the ticket (link_account first)",
            name.as_str()
        ),
    )
}

/// An account became (effectively) banned: an open ticket of it is refused at once with the
/// banned answer; a closed one stays as it is.
pub fn on_account_banned(ticket: &TicketView, account: &AccountView) -> Option<Decision> {
    (!ticket.state.is_terminal()).then(|| refuse_as_banned(ticket, ticket.kind, account))
}

/// The banned answer: ticket refused, the documented answer mailed to the registered address,
/// and the requester told there is news if they are someone else.
pub(crate) fn refuse_as_banned(ticket: &TicketView, kind: Kind, account: &AccountView) -> Decision {
    let mut decision = Decision {
        kind,
        state: State::Refused,
        state_reason: Some(BANNED_REASON.into()),
        effects: vec![],
    };
    decision
        .effects
        .push(Effect::mail_to_account(MailTemplate::BannedAnswer, &account.id));
    if !account.is_registered_email(ticket.requester) {
        decision
            .effects
            .push(Effect::mail(MailTemplate::StatusUpdate, Recipient::Requester));
    }
    decision
}

/// Account-dependent mail goes to the registered address only; a requester who is someone
/// else gets a neutral update instead.
pub(crate) fn mail_account_then_update_requester(
    decision: Decision,
    requester: &str,
    account: &AccountView,
    template: MailTemplate,
) -> Decision {
    let decision = decision.with(Effect::mail_to_account(template, &account.id));
    if account.is_registered_email(requester) {
        decision
    } else {
        decision.with(Effect::mail(MailTemplate::StatusUpdate, Recipient::Requester))
    }
}

#[cfg(test)]
mod tests;
