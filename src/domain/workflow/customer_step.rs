//! Where the customer's status page says the request is: the state, and what happened in it (a
//! confirmation link mailed, answered or expired; the customer's own last word). Pure: the
//! words live with the page (docs/reference.md#customer-pages), the choice of step here.

use crate::domain::ticket::State;

/// The email challenge of the current verification round, as the page may tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeFact {
    /// None mailed in this round.
    None,
    /// Mailed (or about to be), not answered, not expired.
    Open,
    /// Mailed and never answered within its life.
    Expired,
    /// Answered "yes, this was me".
    Confirmed,
    /// Answered "no, this was not me".
    Denied,
}

/// What the page knows of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFacts {
    pub state: State,
    /// The requester is not the linked account's registered address (or no account is linked):
    /// nothing that depends on the account may show.
    pub neutral: bool,
    pub challenge: ChallengeFact,
    /// The customer wrote last: nothing from us since their latest message or report.
    pub customer_wrote_last: bool,
}

/// One step of a request as the customer reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Neutral,
    NeutralAfterYourMessage,
    WaitingForUs,
    WaitingForUsAfterYourMessage,
    WaitingForYourAnswer,
    TryAllowlistedIps,
    AttemptsReported,
    Verifying,
    ChallengeOpen,
    ChallengeConfirmed,
    ChallengeExpired,
    ChallengeDenied,
    OwnershipVerified,
    AwaitingPayment,
    PaymentMessageReceived,
    PaymentConfirmed,
    Resolved,
    Refused,
}

/// The step that matches what has happened. A neutral page reads alike whatever the account;
/// only the customer's own action (their message) shows there.
pub fn step(facts: StatusFacts) -> Step {
    use State::*;
    let mine = facts.customer_wrote_last;
    if facts.neutral {
        // Even a closed request reads alike: a ban closes one at once, and that is the
        // account's business (the reason travels by mail to the registered address).
        return if mine {
            Step::NeutralAfterYourMessage
        } else {
            Step::Neutral
        };
    }
    match facts.state {
        AwaitingAgent if mine => Step::WaitingForUsAfterYourMessage,
        AwaitingAgent => Step::WaitingForUs,
        AwaitingCustomer => Step::WaitingForYourAnswer,
        AwaitingAllowlistedAttempts => Step::TryAllowlistedIps,
        AttemptsReported => Step::AttemptsReported,
        VerifyingOwnership => match facts.challenge {
            ChallengeFact::None => Step::Verifying,
            ChallengeFact::Open => Step::ChallengeOpen,
            ChallengeFact::Expired => Step::ChallengeExpired,
            ChallengeFact::Confirmed => Step::ChallengeConfirmed,
            ChallengeFact::Denied => Step::ChallengeDenied,
        },
        OwnershipVerified => Step::OwnershipVerified,
        AwaitingPayment if mine => Step::PaymentMessageReceived,
        AwaitingPayment => Step::AwaitingPayment,
        PaymentConfirmed => Step::PaymentConfirmed,
        Resolved => Step::Resolved,
        Refused => Step::Refused,
    }
}

/// Whether a requester reads their page in neutral words: anyone but the registered address
/// of the linked account (no account linked, or none found, included), so that the page cannot
/// tell whether an account exists, is terminated or is banned.
pub fn is_neutral(registered_email: Option<&str>, requester_normalized: &str) -> bool {
    registered_email.is_none_or(|email| crate::domain::email_address::normalize(email) != requester_normalized)
}

/// What becomes of a report of allowlisted attempts from the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// The engine recorded it.
    Recorded,
    /// The engine refused it and the requester reads neutral words: the refusal would tell
    /// them something about the account (a ban records no attempts), so the report joins the
    /// thread as their words and the page answers as if it were recorded.
    JoinsThread,
    /// The engine refused it and the account's owner may hear why.
    Refused(super::Refusal),
}

/// The anti-enumeration rule for a report: only the engine's refusal is hidden, and only from
/// a neutral reader. Any other failure is no refusal and never reaches this rule.
pub fn report_outcome(decided: Result<(), super::Refusal>, neutral: bool) -> ReportOutcome {
    match decided {
        Ok(()) => ReportOutcome::Recorded,
        Err(_) if neutral => ReportOutcome::JoinsThread,
        Err(refusal) => ReportOutcome::Refused(refusal),
    }
}

/// The challenge of the current round from what is recorded: its checks (a confirmation is a
/// recorded check) and its latest link, if any (`used`, `expired`).
pub fn challenge_fact(check: Option<bool>, latest_link: Option<(bool, bool)>) -> ChallengeFact {
    match (check, latest_link) {
        (Some(true), _) => ChallengeFact::Confirmed,
        (Some(false), _) => ChallengeFact::Denied,
        (None, None) => ChallengeFact::None,
        // Used without a check of this round: the answer belongs to the check, read above.
        (None, Some((true, _))) => ChallengeFact::None,
        (None, Some((false, true))) => ChallengeFact::Expired,
        (None, Some((false, false))) => ChallengeFact::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: State) -> StatusFacts {
        StatusFacts {
            state,
            neutral: false,
            challenge: ChallengeFact::None,
            customer_wrote_last: false,
        }
    }

    #[test]
    fn verification_reads_what_became_of_the_confirmation_link() {
        let at = |challenge| {
            step(StatusFacts {
                challenge,
                ..facts(State::VerifyingOwnership)
            })
        };
        assert_eq!(at(ChallengeFact::None), Step::Verifying);
        assert_eq!(at(ChallengeFact::Open), Step::ChallengeOpen);
        assert_eq!(at(ChallengeFact::Confirmed), Step::ChallengeConfirmed);
        assert_eq!(at(ChallengeFact::Expired), Step::ChallengeExpired);
        assert_eq!(at(ChallengeFact::Denied), Step::ChallengeDenied);
    }

    #[test]
    fn the_customers_last_word_is_acknowledged_where_we_wait_on_it() {
        let mine = |state| {
            step(StatusFacts {
                customer_wrote_last: true,
                ..facts(state)
            })
        };
        assert_eq!(mine(State::AwaitingAgent), Step::WaitingForUsAfterYourMessage);
        assert_eq!(mine(State::AwaitingPayment), Step::PaymentMessageReceived);
        assert_eq!(step(facts(State::AwaitingAgent)), Step::WaitingForUs);
    }

    #[test]
    fn a_neutral_page_never_depends_on_the_account() {
        for state in State::ALL {
            for challenge in [
                ChallengeFact::None,
                ChallengeFact::Open,
                ChallengeFact::Expired,
                ChallengeFact::Confirmed,
                ChallengeFact::Denied,
            ] {
                for mine in [false, true] {
                    let got = step(StatusFacts {
                        state,
                        neutral: true,
                        challenge,
                        customer_wrote_last: mine,
                    });
                    let expected = if mine {
                        Step::NeutralAfterYourMessage
                    } else {
                        Step::Neutral
                    };
                    assert_eq!(got, expected, "{state:?} {challenge:?} {mine}");
                }
            }
        }
    }

    #[test]
    fn only_the_registered_address_reads_plain_words() {
        assert!(!is_neutral(Some("Owner@Example.com"), "owner@example.com"));
        assert!(is_neutral(Some("owner@example.com"), "someone@example.com"));
        assert!(is_neutral(None, "owner@example.com"));
    }

    #[test]
    fn a_refused_report_is_hidden_only_from_a_neutral_reader() {
        let refusal = crate::domain::workflow::banned_refusal();
        assert_eq!(report_outcome(Ok(()), true), ReportOutcome::Recorded);
        assert_eq!(report_outcome(Ok(()), false), ReportOutcome::Recorded);
        assert_eq!(report_outcome(Err(refusal.clone()), true), ReportOutcome::JoinsThread);
        assert_eq!(
            report_outcome(Err(refusal.clone()), false),
            ReportOutcome::Refused(refusal)
        );
    }

    #[test]
    fn the_challenge_is_read_from_its_check_first_then_from_its_link() {
        assert_eq!(
            challenge_fact(Some(true), Some((true, false))),
            ChallengeFact::Confirmed
        );
        assert_eq!(challenge_fact(Some(false), Some((true, false))), ChallengeFact::Denied);
        assert_eq!(challenge_fact(None, Some((false, false))), ChallengeFact::Open);
        assert_eq!(challenge_fact(None, Some((false, true))), ChallengeFact::Expired);
        assert_eq!(challenge_fact(None, None), ChallengeFact::None);
    }
}
