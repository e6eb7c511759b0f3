//! What a credential-failure diagnosis does to a decision, whichever kind the ticket is: at
//! creation (every kind may name a username) and for `diagnose_auth`. The finding's guidance
//! goes only to the registered address of the account owning the username, and only when it is
//! the requester; anyone else gets the general checklist.

use super::effect::guidance_template;
use super::{Decision, Effect, Mail, MailTemplate, Recipient};
use crate::domain::account::AccountView;
use crate::domain::diagnosis::{Diagnosis, Finding};
use crate::domain::ticket::State;

/// A diagnosis made for a ticket, with the account owning the username per the logs.
#[derive(Debug, Clone, Copy)]
pub struct DiagnosisFacts<'a> {
    pub diagnosis: &'a Diagnosis,
    /// The directory account named by the events' `account_id`, when the directory has it.
    pub owner: Option<&'a AccountView>,
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
