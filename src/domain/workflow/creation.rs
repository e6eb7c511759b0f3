//! What happens when a ticket is opened (by form, mail, API or reclassification).

use super::diagnosis::{DiagnosisFacts, after_diagnosis, beside_account_answer};
use super::{Decision, Effect, Mail, MailTemplate, Recipient, mail_account_then_update_requester, refuse_as_banned};
use crate::domain::account::{AccountStatus, AccountView};
use crate::domain::ticket::{Kind, State};

#[derive(Debug, Clone)]
pub struct CreationFacts<'a> {
    pub kind: Kind,
    pub requester: &'a str,
    /// The account the customer named (id, username or email), else the one registered to the
    /// requester's address.
    pub account: Option<&'a AccountView>,
    /// Every account registered to the requester's address (a forgotten username is looked up
    /// by address).
    pub requester_accounts: &'a [AccountView],
    /// Allowlisted networks the requester says they already tried, with what happened.
    pub attempts: Option<(String, String)>,
    pub attempts_on_record: bool,
    /// The SMTP username a login_help customer typed (kept byte-exact).
    pub smtp_username: Option<&'a str>,
    /// What the authentication logs show for that username (login_help, docs/reference.md#kinds-and-states).
    pub diagnosis: Option<DiagnosisFacts<'a>>,
}

/// The rules of docs/reference.md#kinds-and-states "On creation", per kind. The requester always hears from us: either
/// the answer itself (when they are the registered address) or a neutral acknowledgement.
pub fn on_create(facts: &CreationFacts) -> Decision {
    let mut decision = match facts.kind {
        Kind::ForgotUsername => forgot_username(facts),
        Kind::IpLockout => ip_lockout(facts),
        Kind::AccountTerminated => account_terminated(facts),
        Kind::LoginHelp => login_help(facts),
        Kind::General => general(facts),
    };
    // At creation, a requester who is not the registered address hears what a requester with
    // no account hears: an acknowledgement, never "there is news", which would tell them an
    // account exists (docs/reference.md#policy, no account enumeration).
    for effect in &mut decision.effects {
        if let Effect::Mail(Mail {
            template: template @ MailTemplate::StatusUpdate,
            to: Recipient::Requester,
        }) = effect
        {
            *template = MailTemplate::Acknowledgement;
        }
    }
    let requester_reached = decision.effects.iter().any(|effect| match effect {
        Effect::Mail(Mail {
            to: Recipient::Requester,
            ..
        }) => true,
        Effect::Mail(Mail {
            to: Recipient::RegisteredEmail { account_id },
            ..
        }) => known_accounts(facts).any(|a| &a.id == account_id && a.is_registered_email(facts.requester)),
        _ => false,
    });
    if !requester_reached {
        decision
            .effects
            .push(Effect::mail(MailTemplate::Acknowledgement, Recipient::Requester));
    }
    decision
}

/// Flags worth an agent's eye on a login_help ticket: what the articles call common causes.
pub fn smtp_username_flags(username: &str) -> Vec<&'static str> {
    let mut flags = vec![];
    if username.contains('@') {
        flags.push("smtp_username_has_at");
    }
    let invisible = |c: char| c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}');
    if username.starts_with(invisible) || username.ends_with(invisible) {
        flags.push("smtp_username_whitespace");
    }
    flags
}

fn known_accounts<'a>(facts: &'a CreationFacts) -> impl Iterator<Item = &'a AccountView> {
    facts
        .account
        .into_iter()
        .chain(facts.requester_accounts.iter())
        .chain(facts.diagnosis.and_then(|d| d.owner))
}

fn start(facts: &CreationFacts, kind: Kind, state: State) -> Decision {
    let effects = facts
        .account
        .map(|a| Effect::LinkAccount {
            account_id: a.id.clone(),
        })
        .into_iter()
        .collect();
    Decision {
        kind,
        state,
        state_reason: None,
        effects,
    }
}

fn forgot_username(facts: &CreationFacts) -> Decision {
    let accounts: Vec<&AccountView> = if facts.requester_accounts.is_empty() {
        facts.account.into_iter().collect()
    } else {
        facts.requester_accounts.iter().collect()
    };
    let kind = Kind::ForgotUsername;
    let [first, ..] = accounts.as_slice() else {
        // No match: agents look further (another address, perhaps).
        return Decision {
            kind,
            state: State::AwaitingAgent,
            state_reason: None,
            effects: vec![],
        };
    };
    let link = |d: Decision| {
        if accounts.len() == 1 {
            d.with(Effect::LinkAccount {
                account_id: first.id.clone(),
            })
        } else {
            d
        }
    };
    if accounts.iter().all(|a| a.is_banned()) {
        return link(refuse_as_banned(&view_of(facts), kind, first));
    }
    let template = match accounts.as_slice() {
        [only] => match only.effective_status() {
            AccountStatus::Active => MailTemplate::UsernameDelivery {
                account_ids: vec![only.id.clone()],
            },
            AccountStatus::PendingConfirmation => MailTemplate::UnconfirmedSignup,
            AccountStatus::Terminated => MailTemplate::TerminatedNotice,
            AccountStatus::Banned => MailTemplate::BannedAnswer,
        },
        several => MailTemplate::UsernameDelivery {
            account_ids: several.iter().map(|a| a.id.clone()).collect(),
        },
    };
    let resolved = Decision {
        kind,
        state: State::Resolved,
        state_reason: None,
        effects: vec![],
    };
    link(mail_account_then_update_requester(
        resolved,
        facts.requester,
        first,
        template,
    ))
}

fn ip_lockout(facts: &CreationFacts) -> Decision {
    let kind = Kind::IpLockout;
    if let Some(account) = facts.account.filter(|a| a.is_banned()) {
        let mut decision = refuse_as_banned(&view_of(facts), kind, account).with(link_effect(account));
        // A requester who is not the registered address hears exactly what they would hear
        // about any other account: the ban is told only to the registered address.
        if !account.is_registered_email(facts.requester) {
            decision.effects.retain(|e| {
                !matches!(
                    e,
                    Effect::Mail(Mail {
                        to: Recipient::Requester,
                        ..
                    })
                )
            });
            if !attempts_given(facts) {
                decision
                    .effects
                    .push(Effect::mail(MailTemplate::TryAllowlistedIps, Recipient::Requester));
            }
        }
        return decision;
    }
    match &facts.attempts {
        Some((tried_from, outcome)) if !tried_from.trim().is_empty() => start(facts, kind, State::AttemptsReported)
            .with(Effect::RecordAttempts {
                tried_from: tried_from.clone(),
                outcome: outcome.clone(),
            }),
        // A reclassified ticket whose attempts were already reported keeps them.
        _ if facts.attempts_on_record => start(facts, kind, State::AttemptsReported),
        _ => start(facts, kind, State::AwaitingAllowlistedAttempts)
            .with(Effect::mail(MailTemplate::TryAllowlistedIps, Recipient::Requester)),
    }
}

fn attempts_given(facts: &CreationFacts) -> bool {
    facts
        .attempts
        .as_ref()
        .is_some_and(|(tried_from, _)| !tried_from.trim().is_empty())
}

fn account_terminated(facts: &CreationFacts) -> Decision {
    let kind = Kind::AccountTerminated;
    match facts.account {
        Some(account) if account.is_banned() => {
            refuse_as_banned(&view_of(facts), kind, account).with(link_effect(account))
        }
        Some(account) if account.effective_status() == AccountStatus::Terminated => mail_account_then_update_requester(
            start(facts, kind, State::AwaitingPayment),
            facts.requester,
            account,
            MailTemplate::BalanceDue,
        ),
        // Active (not a termination: an agent reclassifies), unconfirmed, or unknown.
        _ => start(facts, kind, State::AwaitingAgent),
    }
}

fn login_help(facts: &CreationFacts) -> Decision {
    let kind = Kind::LoginHelp;
    let account_answer = match facts.account.map(|a| (a, a.effective_status())) {
        Some((account, AccountStatus::Banned)) => {
            Some(refuse_as_banned(&view_of(facts), kind, account).with(link_effect(account)))
        }
        // Terminated accounts cannot be accessed: that is the termination flow.
        Some((_, AccountStatus::Terminated)) => Some(account_terminated(facts)),
        // Never confirmed means never created: the answer is to confirm or sign up again.
        Some((account, AccountStatus::PendingConfirmation)) => Some(mail_account_then_update_requester(
            start(facts, kind, State::Resolved),
            facts.requester,
            account,
            MailTemplate::UnconfirmedSignup,
        )),
        _ => None,
    };
    if let Some(decision) = account_answer {
        return match facts.diagnosis {
            Some(diagnosis) => beside_account_answer(decision, diagnosis),
            None => decision,
        };
    }
    let decision = start(facts, kind, State::AwaitingAgent);
    let flags = facts.smtp_username.map(smtp_username_flags).unwrap_or_default();
    let decision = flags.into_iter().fold(decision, |d, flag| {
        d.with(Effect::Flag {
            reason: flag.to_string(),
        })
    });
    // The diagnosis runs when the ticket names a username, and its finding is told at once.
    match facts.diagnosis {
        Some(diagnosis) => after_diagnosis(facts.requester, decision, diagnosis, true, |owner| {
            account_terminated(&CreationFacts {
                kind: Kind::AccountTerminated,
                account: owner.or(facts.account),
                diagnosis: None,
                ..facts.clone()
            })
        }),
        None => decision,
    }
}

fn general(facts: &CreationFacts) -> Decision {
    match facts.account {
        Some(account) if account.is_banned() => {
            refuse_as_banned(&view_of(facts), Kind::General, account).with(link_effect(account))
        }
        _ => start(facts, Kind::General, State::AwaitingAgent),
    }
}

fn link_effect(account: &AccountView) -> Effect {
    Effect::LinkAccount {
        account_id: account.id.clone(),
    }
}

fn view_of<'a>(facts: &'a CreationFacts) -> super::TicketView<'a> {
    super::TicketView {
        kind: facts.kind,
        state: facts.kind.initial_state(),
        state_reason: None,
        requester: facts.requester,
        account: facts.account,
        checks: &[],
        attempts_on_record: facts.attempts_on_record,
        pending_approvals: &[],
    }
}
