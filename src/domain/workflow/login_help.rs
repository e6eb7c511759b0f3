//! login_help: `diagnose_auth`, and what follows a credential-failure diagnosis (docs/reference.md#kinds-and-states).
//!
//! The service reads the authentication logs and hands the engine the [`Diagnosis`] with the
//! account owning the username; the engine decides who hears what. The finding's guidance goes
//! only to the registered address of that account, and only when it is the requester; anyone
//! else gets the general checklist, the same whatever the logs hold. A suspended account moves
//! the ticket to the termination workflow.

use super::creation::{self, CreationFacts};
use super::effect::guidance_template;
use super::{Action, ActionName, Context, Decision, Effect, Mail, MailTemplate, Recipient, Refusal, TicketView};
use super::{not_in_state, refusal::ErrorCode};
use crate::domain::account::AccountView;
use crate::domain::diagnosis::{AuthChannel, Diagnosis, Finding};
use crate::domain::ticket::{Kind, State};
use chrono::{DateTime, Utc};

/// A diagnosis made for a ticket, with the account owning the username per the logs.
#[derive(Debug, Clone, Copy)]
pub struct DiagnosisFacts<'a> {
    pub diagnosis: &'a Diagnosis,
    /// The directory account named by the events' `account_id`, when the directory has it.
    pub owner: Option<&'a AccountView>,
}

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

/// What follows a diagnosis: the `diagnosis` event, then the customer's mail (when `notify`),
/// or for a suspended account the termination workflow's creation rules (`reroute`, given the
/// owning account).
pub(crate) fn after_diagnosis(
    requester: &str,
    decision: Decision,
    facts: DiagnosisFacts,
    notify: bool,
    reroute: impl FnOnce(Option<&AccountView>) -> Decision,
) -> Decision {
    let diagnosis = facts.diagnosis;
    let record = Effect::RecordDiagnosis {
        diagnosis: Box::new(diagnosis.clone()),
    };
    let owner_asks = facts.owner.filter(|owner| owner.is_registered_email(requester));
    let checklist = Effect::mail(
        MailTemplate::DiagnosisChecklist {
            typed_username: diagnosis.username.clone(),
            channel: diagnosis.channel,
        },
        Recipient::Requester,
    );

    if diagnosis.finding == Finding::AccountSuspended {
        let mut rerouted = reroute(facts.owner);
        rerouted.effects.insert(0, record);
        if owner_asks.is_none() {
            // Whoever is not the owner's registered address hears what they would hear of any
            // username: the checklist, never "there is news" about someone's account.
            rerouted.effects.retain(|e| {
                !matches!(
                    e,
                    Effect::Mail(Mail {
                        to: Recipient::Requester,
                        ..
                    })
                )
            });
            if notify {
                rerouted.effects.push(checklist);
            }
        }
        return rerouted;
    }

    let decision = decision.with(record);
    if !notify {
        return decision;
    }
    match owner_asks.filter(|_| guidance_template(diagnosis.finding).is_some()) {
        Some(owner) => decision.with(Effect::mail_to_account(
            MailTemplate::DiagnosisGuidance {
                diagnosis: Box::new(diagnosis.clone()),
            },
            &owner.id,
        )),
        None => decision.with(checklist),
    }
}

/// The requester's own account already decides the answer (banned, terminated, never
/// confirmed): that answer stands. The diagnosis is still written for agents (not on a refused,
/// banned ticket), and a requester who hears only a neutral word gets the checklist in its
/// place, as for any username they might name.
pub(crate) fn beside_account_answer(mut decision: Decision, facts: DiagnosisFacts) -> Decision {
    let diagnosis = facts.diagnosis;
    for effect in &mut decision.effects {
        if let Effect::Mail(Mail {
            template: template @ (MailTemplate::Acknowledgement | MailTemplate::StatusUpdate),
            to: Recipient::Requester,
        }) = effect
        {
            *template = MailTemplate::DiagnosisChecklist {
                typed_username: diagnosis.username.clone(),
                channel: diagnosis.channel,
            };
        }
    }
    if decision.state != State::Refused {
        decision.effects.insert(
            0,
            Effect::RecordDiagnosis {
                diagnosis: Box::new(diagnosis.clone()),
            },
        );
    }
    decision
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
