//! How messages move a ticket: customer replies reopen, agent replies wait for the customer.

use crate::domain::ticket::{Kind, State};

/// Who wrote an inbound message, relative to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Requester,
    RegisteredEmail,
    /// Threaded in by its headers, but neither the requester nor the registered address: it is
    /// appended and marked, and never counts as the customer's word.
    Stranger,
}

/// The state a customer's message moves the ticket to, if any (docs/reference.md#threading-and-reopening).
pub fn after_customer_message(
    kind: Kind,
    state: State,
    sender: Sender,
    auto_generated: bool,
    attempts_on_record: bool,
) -> Option<State> {
    if auto_generated || sender == Sender::Stranger {
        return None;
    }
    match state {
        // Ownership is verified afresh: a new verification round starts from the report.
        State::Resolved if kind == Kind::IpLockout => Some(if attempts_on_record {
            State::AttemptsReported
        } else {
            State::AwaitingAllowlistedAttempts
        }),
        State::Resolved => Some(State::AwaitingAgent),
        // A refusal stands; the message is appended.
        State::Refused => None,
        State::AwaitingCustomer => Some(State::AwaitingAgent),
        _ => None,
    }
}

/// The state an agent's mailed reply moves the ticket to, if any.
pub fn after_agent_reply(kind: Kind, state: State) -> Option<State> {
    match (kind, state) {
        (Kind::LoginHelp | Kind::General, State::AwaitingAgent) => Some(State::AwaitingCustomer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_reopens_a_resolved_ticket() {
        assert_eq!(
            after_customer_message(Kind::IpLockout, State::Resolved, Sender::Requester, false, true),
            Some(State::AttemptsReported)
        );
        assert_eq!(
            after_customer_message(Kind::IpLockout, State::Resolved, Sender::RegisteredEmail, false, false),
            Some(State::AwaitingAllowlistedAttempts)
        );
        for kind in [
            Kind::ForgotUsername,
            Kind::AccountTerminated,
            Kind::LoginHelp,
            Kind::General,
        ] {
            assert_eq!(
                after_customer_message(kind, State::Resolved, Sender::Requester, false, false),
                Some(State::AwaitingAgent)
            );
        }
    }

    #[test]
    fn refusals_strangers_and_robots_never_reopen() {
        for kind in Kind::ALL {
            assert_eq!(
                after_customer_message(kind, State::Refused, Sender::Requester, false, true),
                None
            );
            assert_eq!(
                after_customer_message(kind, State::Resolved, Sender::Stranger, false, true),
                None
            );
            assert_eq!(
                after_customer_message(kind, State::Resolved, Sender::Requester, true, true),
                None
            );
        }
    }

    #[test]
    fn agent_replies_wait_for_the_customer_on_conversational_kinds() {
        assert_eq!(
            after_agent_reply(Kind::LoginHelp, State::AwaitingAgent),
            Some(State::AwaitingCustomer)
        );
        assert_eq!(after_agent_reply(Kind::IpLockout, State::AttemptsReported), None);
        assert_eq!(
            after_customer_message(Kind::General, State::AwaitingCustomer, Sender::Requester, false, false),
            Some(State::AwaitingAgent)
        );
    }
}
