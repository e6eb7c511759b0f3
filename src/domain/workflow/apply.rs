//! The one way an action changes a ticket: the reference's refusal order, in one place.
//!
//! Name, then who asks (only an admin reopens), then the ticket's guards, then the parameters,
//! then the decision. The first that says no answers: an unknown action is `unknown_action`
//! whatever its parameters, and a guard refuses before bad parameters are looked at, so a
//! caller cannot learn more by sending rubbish. Services, handlers and tests all go through
//! [`apply`]; the order is written nowhere else.

use super::{Action, ActionName, Context, Decision, Refusal, TicketView, check, closing, decide};
use std::convert::Infallible;

/// Who asks for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An agent, a customer through their pages, or the desk itself.
    Agent,
    /// An admin: the only one who may `reopen`.
    Admin,
}

impl Role {
    pub fn of(is_admin: bool) -> Role {
        if is_admin { Role::Admin } else { Role::Agent }
    }
}

/// How a caller names the action: as text from the outside (an API path, a console form), or
/// as the enum when the desk itself asks (the customer pages, an approval).
pub trait Named {
    fn action_name(&self) -> Result<ActionName, Refusal>;
}

impl Named for ActionName {
    fn action_name(&self) -> Result<ActionName, Refusal> {
        Ok(*self)
    }
}

impl Named for &str {
    fn action_name(&self) -> Result<ActionName, Refusal> {
        ActionName::parse(self)
    }
}

impl Named for String {
    fn action_name(&self) -> Result<ActionName, Refusal> {
        ActionName::parse(self)
    }
}

/// Where in the order an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Four eyes: the approval request itself (pending, recent, another agent), before the
    /// action is looked at again.
    Request,
    Name,
    Role,
    Check,
    Parse,
    Decide,
}

/// A refused action: the refusal, where it happened, and the action's name once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub stage: Stage,
    pub name: Option<ActionName>,
    pub refusal: Refusal,
}

impl Refused {
    /// Whether the refusal goes on the ticket's record. Who asked and the guards are decisions
    /// about this ticket; an unknown name and bad parameters are the caller's typing, and the
    /// engine's own answer is recorded when it is a policy refusal (409).
    pub fn belongs_on_record(&self) -> bool {
        match self.stage {
            Stage::Name | Stage::Parse => false,
            Stage::Request | Stage::Role | Stage::Check => true,
            Stage::Decide => self.refusal.code.is_policy_refusal(),
        }
    }
}

/// What the engine needs besides the ticket, once the action is known. A service loads it
/// (the account an action names, a diagnosis) only for an action that passed its guards and
/// parameters.
pub trait Facts {
    fn context(&self) -> Context<'_>;
}

impl Facts for Context<'_> {
    fn context(&self) -> Context<'_> {
        self.clone()
    }
}

/// An action the engine accepted: the parsed action (as the caller prepared it) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub action: Action,
    pub decision: Decision,
}

/// Applies an action to a ticket in the reference's refusal order. `prepare` runs once the
/// action is parsed and before the decision: it loads the facts the action needs and may
/// rewrite the action's free text (scanning it for secrets); the action's name stays. Its own
/// failure (a database error) is the outer error.
pub fn apply_with<F: Facts, E>(
    ticket: &TicketView,
    name: impl Named,
    params: &serde_json::Value,
    role: Role,
    prepare: impl FnOnce(&mut Action) -> Result<F, E>,
) -> Result<Result<Accepted, Refused>, E> {
    let refused = |stage, name, refusal| Ok(Err(Refused { stage, name, refusal }));
    let name = match name.action_name() {
        Ok(name) => name,
        Err(refusal) => return refused(Stage::Name, None, refusal),
    };
    if let Err(refusal) = closing::check_role(name, role == Role::Admin) {
        return refused(Stage::Role, Some(name), refusal);
    }
    if let Err(refusal) = check(ticket, name) {
        return refused(Stage::Check, Some(name), refusal);
    }
    let mut action = match Action::parse(name, params) {
        Ok(action) => action,
        Err(refusal) => return refused(Stage::Parse, Some(name), refusal),
    };
    let facts = prepare(&mut action)?;
    // A bug in a caller, not an input: `prepare` may change words, never which action it is.
    assert_eq!(action.name(), name, "prepare changed the action");
    match decide(ticket, &action, &facts.context()) {
        Ok(decision) => Ok(Ok(Accepted { action, decision })),
        Err(refusal) => refused(Stage::Decide, Some(name), refusal),
    }
}

/// [`apply_with`] for a caller that has the context at hand: the decision, or the refusal.
pub fn apply(
    ticket: &TicketView,
    name: impl Named,
    params: &serde_json::Value,
    ctx: &Context,
) -> Result<Decision, Refusal> {
    let Ok(outcome) = apply_with(ticket, name, params, Role::Agent, |_| Ok::<_, Infallible>(ctx.clone()));
    outcome.map(|a| a.decision).map_err(|r| r.refusal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::{AccountStatus, sample_account};
    use crate::domain::ticket::{Kind, State};
    use crate::domain::workflow::ErrorCode;
    use serde_json::json;

    fn ticket(kind: Kind, state: State, account: Option<&crate::domain::account::AccountView>) -> TicketView<'_> {
        TicketView {
            kind,
            state,
            state_reason: None,
            requester: "ops@acme.test",
            account,
            checks: &[],
            attempts_on_record: false,
            pending_approvals: &[],
        }
    }

    /// Runs `apply_with`, counting whether `prepare` ran.
    fn run(view: &TicketView, name: &str, params: serde_json::Value, role: Role) -> (Result<Accepted, Refused>, bool) {
        let mut prepared = false;
        let outcome = apply_with(view, name, &params, role, |_| {
            prepared = true;
            Ok::<_, Infallible>(Context::default())
        });
        let Ok(outcome) = outcome;
        (outcome, prepared)
    }

    #[test]
    fn the_first_stage_that_says_no_answers_and_nothing_is_loaded_before_the_parameters_pass() {
        let banned = sample_account(AccountStatus::Banned);
        let view = ticket(Kind::IpLockout, State::AwaitingAllowlistedAttempts, Some(&banned));
        // An unknown name, whatever else is wrong.
        let (outcome, prepared) = run(&view, "no_such_action", json!("rubbish"), Role::Agent);
        let refused = outcome.unwrap_err();
        assert_eq!(
            (refused.stage, refused.refusal.code),
            (Stage::Name, ErrorCode::UnknownAction)
        );
        assert!(!prepared && !refused.belongs_on_record());
        // Who asks comes before the ticket's guards.
        let refused_ticket = ticket(Kind::General, State::Refused, None);
        let (outcome, _) = run(&refused_ticket, "reopen", json!({"reason": "x"}), Role::Agent);
        let refused = outcome.unwrap_err();
        assert_eq!(
            (refused.stage, refused.refusal.code),
            (Stage::Role, ErrorCode::Forbidden)
        );
        assert!(refused.belongs_on_record());
        // The guards (a ban here) come before bad parameters.
        let (outcome, prepared) = run(&view, "record_allowlisted_attempts", json!({}), Role::Agent);
        let refused = outcome.unwrap_err();
        assert_eq!(
            (refused.stage, refused.refusal.code),
            (Stage::Check, ErrorCode::AccountBanned)
        );
        assert!(!prepared && refused.belongs_on_record());
        // Bad parameters once the guards pass: not on the record, nothing loaded.
        let active = sample_account(AccountStatus::Active);
        let view = ticket(Kind::IpLockout, State::AwaitingAllowlistedAttempts, Some(&active));
        let (outcome, prepared) = run(&view, "record_allowlisted_attempts", json!({}), Role::Agent);
        let refused = outcome.unwrap_err();
        assert_eq!(
            (refused.stage, refused.refusal.code),
            (Stage::Parse, ErrorCode::InvalidInput)
        );
        assert!(!prepared && !refused.belongs_on_record());
        // Everything passes: the facts are loaded once, and the engine decides.
        let params = json!({"tried_from": "office", "outcome": "blocked"});
        let (outcome, prepared) = run(&view, "record_allowlisted_attempts", params, Role::Agent);
        let accepted = outcome.expect("accepted");
        assert!(prepared);
        assert_eq!(accepted.action.name(), ActionName::RecordAllowlistedAttempts);
        assert_eq!(accepted.decision.state, State::AttemptsReported);
    }

    #[test]
    fn the_name_may_be_text_or_the_enum_with_the_same_answer() {
        let active = sample_account(AccountStatus::Active);
        let view = ticket(Kind::IpLockout, State::AwaitingAllowlistedAttempts, Some(&active));
        let params = json!({"tried_from": "office", "outcome": "blocked"});
        let by_text = apply(&view, "record_allowlisted_attempts", &params, &Context::default());
        let by_enum = apply(
            &view,
            ActionName::RecordAllowlistedAttempts,
            &params,
            &Context::default(),
        );
        assert_eq!(by_text, by_enum);
        assert!(by_text.is_ok());
    }

    #[test]
    fn a_decision_refused_by_the_policy_is_on_the_record_and_bad_input_is_not() {
        let refused = |code| Refused {
            stage: Stage::Decide,
            name: Some(ActionName::GrantIpAccess),
            refusal: Refusal::new(code, "x"),
        };
        assert!(refused(ErrorCode::OwnershipNotVerified).belongs_on_record());
        assert!(!refused(ErrorCode::IpNotPublic).belongs_on_record());
    }
}
