//! login_help: `diagnose_auth`, and what follows a credential-failure diagnosis (docs/reference.md#kinds-and-states).
//!
//! The service reads the authentication logs and hands the engine the [`Diagnosis`] with the
//! account owning the username; the engine decides who hears what. The finding's guidance goes
//! only to the registered address of that account, and only when it is the requester; anyone
//! else gets the general checklist, the same whatever the logs hold. A suspended account moves
//! the ticket to the termination workflow.

use super::creation::{self, CreationFacts};
use super::diagnosis::after_diagnosis;
use super::{Action, ActionName, Context, Decision, Refusal, TicketView};
use super::{not_in_state, refusal::ErrorCode};
use crate::domain::diagnosis::AuthChannel;
use crate::domain::ticket::{Kind, State};
use chrono::{DateTime, Utc};

pub(super) fn check(ticket: &TicketView, name: ActionName) -> Result<(), Refusal> {
    match (name, ticket.state) {
        (ActionName::DiagnoseAuth, State::AwaitingAgent | State::AwaitingCustomer) => Ok(()),
        _ => Err(not_in_state(ticket, name)),
    }
}

pub(super) fn decide(ticket: &TicketView, action: &Action, ctx: &Context) -> Result<Decision, Refusal> {
    let Action::DiagnoseAuth { notify, .. } = action else {
        return Err(not_in_state(ticket, action.name()));
    };
    let Some(facts) = ctx.diagnosis else {
        return Err(Refusal::new(
            ErrorCode::InvalidInput,
            "diagnose_auth: the authentication logs were not read for this request",
        ));
    };
    Ok(after_diagnosis(
        ticket.requester,
        Decision::stay(ticket),
        facts,
        *notify,
        |account| {
            creation::on_create(&CreationFacts {
                kind: Kind::AccountTerminated,
                requester: ticket.requester,
                account: account.or(ticket.account),
                requester_accounts: ctx.requester_accounts,
                attempts: None,
                attempts_on_record: ticket.attempts_on_record,
                smtp_username: None,
                diagnosis: None,
            })
        },
    ))
}

/// What the last diagnosis of a ticket looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diagnosed<'a> {
    pub username: &'a str,
    pub channel: AuthChannel,
    /// The time the customer gave, if they gave one.
    pub failed_at: Option<DateTime<Utc>>,
}

/// A repeated login form re-runs the diagnosis when it carries new facts: a username (not a
/// redacted one) other than the one last diagnosed, another channel, or a time of failure
/// other than the one last given (docs/reference.md#who-acts-next). Without a username there
/// is nothing to diagnose.
pub fn repeat_rediagnoses(
    typed: Option<&str>,
    typed_at: Option<DateTime<Utc>>,
    channel: AuthChannel,
    last: Option<Diagnosed>,
) -> bool {
    let Some(username) = typed.filter(|u| !u.is_empty() && !u.contains(crate::domain::redact::REDACTED)) else {
        return false;
    };
    match last {
        None => true,
        Some(last) => {
            last.username != username || last.channel != channel || (typed_at.is_some() && typed_at != last.failed_at)
        }
    }
}

#[cfg(test)]
mod repeat_tests {
    use super::*;

    #[test]
    fn a_repeat_rediagnoses_only_on_new_facts() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T09:14:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let last = Diagnosed {
            username: "ops@acme.test",
            channel: AuthChannel::Smtp,
            failed_at: None,
        };
        assert!(repeat_rediagnoses(
            Some("acme-mailer"),
            None,
            AuthChannel::Smtp,
            Some(last)
        ));
        assert!(!repeat_rediagnoses(
            Some("ops@acme.test"),
            None,
            AuthChannel::Smtp,
            Some(last)
        ));
        assert!(repeat_rediagnoses(
            Some("ops@acme.test"),
            Some(at),
            AuthChannel::Smtp,
            Some(last)
        ));
        assert!(repeat_rediagnoses(
            Some("ops@acme.test"),
            None,
            AuthChannel::Api,
            Some(last)
        ));
        assert!(!repeat_rediagnoses(None, Some(at), AuthChannel::Smtp, Some(last)));
        assert!(!repeat_rediagnoses(Some("[redacted]"), None, AuthChannel::Smtp, None));
        assert!(repeat_rediagnoses(Some("acme-mailer"), None, AuthChannel::Smtp, None));
    }
}
