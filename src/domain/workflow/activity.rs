//! Who acts next on a ticket (docs/reference.md#who-acts-next): the customer's doing puts an
//! open ticket on us, an agent's reply or a mail that asks the customer to act puts it on the
//! customer, notes change nothing, and a closed ticket waits on nobody.

use super::MailTemplate;
use crate::domain::ticket::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitingOn {
    Agent,
    Customer,
    None,
}

impl WaitingOn {
    pub const ALL: [WaitingOn; 3] = [WaitingOn::Agent, WaitingOn::Customer, WaitingOn::None];

    pub fn as_str(self) -> &'static str {
        match self {
            WaitingOn::Agent => "agent",
            WaitingOn::Customer => "customer",
            WaitingOn::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<WaitingOn> {
        WaitingOn::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// Words for the queue.
    pub fn label(self) -> &'static str {
        match self {
            WaitingOn::Agent => "Our turn",
            WaitingOn::Customer => "Customer's turn",
            WaitingOn::None => "Closed",
        }
    }

    /// What a ticket in this state waits on when nothing else is known (tickets from before
    /// the activity was recorded).
    pub fn of_state(state: State) -> WaitingOn {
        match state {
            State::Resolved | State::Refused => WaitingOn::None,
            State::AwaitingCustomer | State::AwaitingAllowlistedAttempts | State::AwaitingPayment => {
                WaitingOn::Customer
            }
            _ => WaitingOn::Agent,
        }
    }
}

/// Something that happened on a ticket, as far as turns go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// The requester or the registered address did something: mail, form, status-page reply or
    /// report, challenge answer. (A stranger's or a robot's mail is not the customer's doing.)
    Customer,
    /// An agent's reply, mailed to the requester.
    AgentReply,
    /// An internal note.
    Note,
    /// An agent's (or the desk's) decision: `asks_customer` when it mailed something that asks
    /// the customer to act; `moved` when the state changed.
    Decision { asks_customer: bool, moved: bool },
}

impl Activity {
    /// What a decision was, as far as turns go: a mail asking the customer to act puts the
    /// ticket on them even when they caused it (a form that asks them to try their allowlist);
    /// otherwise the customer's doing is theirs, and an agent's decision is a decision.
    pub fn of_decision(by_customer: bool, asks_customer: bool, moved: bool) -> Activity {
        if by_customer && !asks_customer {
            Activity::Customer
        } else {
            Activity::Decision { asks_customer, moved }
        }
    }

    /// Whether the customer's last activity moves (for the assignee's "new activity" mark).
    pub fn is_customer(self) -> bool {
        self == Activity::Customer
    }
}

/// The turn after `activity` on a ticket now in `state` that waited on `before`.
pub fn waiting_on_after(state: State, before: WaitingOn, activity: Activity) -> WaitingOn {
    if state.is_terminal() {
        return WaitingOn::None;
    }
    match activity {
        Activity::Decision {
            asks_customer: true, ..
        }
        | Activity::AgentReply => WaitingOn::Customer,
        Activity::Customer => WaitingOn::Agent,
        Activity::Note => {
            if before == WaitingOn::None {
                WaitingOn::of_state(state)
            } else {
                before
            }
        }
        // A state that moved without asking the customer anything (a payment recorded, a
        // ticket reopened) is ours to take further; one that stayed keeps its turn.
        Activity::Decision { moved: true, .. } => WaitingOn::Agent,
        Activity::Decision { moved: false, .. } if before == WaitingOn::None => WaitingOn::of_state(state),
        Activity::Decision { moved: false, .. } => before,
    }
}

impl MailTemplate {
    /// Whether this mail asks the customer to do something (an acknowledgement or a neutral
    /// update does not).
    pub fn asks_customer(&self) -> bool {
        matches!(
            self,
            MailTemplate::TryAllowlistedIps
                | MailTemplate::BalanceDue
                | MailTemplate::TerminatedNotice
                | MailTemplate::DiagnosisGuidance { .. }
                | MailTemplate::DiagnosisChecklist { .. }
        )
    }
}

/// At most one mail to a ticket's assignee per this many minutes: a customer who sends three
/// lines in a row makes one mail, and the console's "New activity" mark says the rest.
pub const NOTIFY_ASSIGNEE_EVERY_MINUTES: i64 = 15;

/// What decides whether the assignee is mailed about a customer's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AssigneeNotice {
    /// `RECOVERYDESK_NOTIFY_ASSIGNEE=on`.
    pub enabled: bool,
    /// The ticket is resolved or refused.
    pub terminal: bool,
    /// The assignee, if any, and whether that agent is still active.
    pub assignee: Option<i64>,
    pub assignee_active: bool,
    /// The assignee's address is the requester's (an agent testing with their own ticket).
    pub assignee_is_requester: bool,
    /// The agent who did it, when an agent did.
    pub acting_agent: Option<i64>,
    /// Minutes since the previous such mail on this ticket, if there was one.
    pub minutes_since_last: Option<i64>,
}

/// Whether to mail the assignee: the setting is on, the ticket is open and assigned to an
/// active agent who is neither the requester nor the one who acted, and no such mail went out
/// on this ticket in the last [`NOTIFY_ASSIGNEE_EVERY_MINUTES`].
pub fn notify_assignee(n: AssigneeNotice) -> bool {
    let Some(assignee) = n.assignee else {
        return false;
    };
    n.enabled
        && !n.terminal
        && n.assignee_active
        && !n.assignee_is_requester
        && n.acting_agent != Some(assignee)
        && n.minutes_since_last.is_none_or(|m| m >= NOTIFY_ASSIGNEE_EVERY_MINUTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_customer_puts_an_open_ticket_on_us_and_a_reply_puts_it_back() {
        for state in State::ALL.into_iter().filter(|s| !s.is_terminal()) {
            for before in WaitingOn::ALL {
                assert_eq!(waiting_on_after(state, before, Activity::Customer), WaitingOn::Agent);
                assert_eq!(
                    waiting_on_after(state, before, Activity::AgentReply),
                    WaitingOn::Customer
                );
            }
        }
    }

    #[test]
    fn notes_change_nothing_and_closed_tickets_wait_on_nobody() {
        for state in State::ALL {
            for before in [WaitingOn::Agent, WaitingOn::Customer] {
                let after = waiting_on_after(state, before, Activity::Note);
                if state.is_terminal() {
                    assert_eq!(after, WaitingOn::None);
                } else {
                    assert_eq!(after, before, "{state}");
                }
            }
        }
        for activity in [Activity::Customer, Activity::AgentReply] {
            assert_eq!(
                waiting_on_after(State::Refused, WaitingOn::Agent, activity),
                WaitingOn::None
            );
        }
    }

    #[test]
    fn a_mail_that_asks_puts_the_ticket_on_the_customer_an_acknowledgement_does_not() {
        assert!(MailTemplate::TryAllowlistedIps.asks_customer());
        assert!(!MailTemplate::Acknowledgement.asks_customer());
        assert!(!MailTemplate::StatusUpdate.asks_customer());
        let asked = Activity::Decision {
            asks_customer: true,
            moved: true,
        };
        assert_eq!(
            waiting_on_after(State::VerifyingOwnership, WaitingOn::Agent, asked),
            WaitingOn::Customer
        );
        let moved = Activity::Decision {
            asks_customer: false,
            moved: true,
        };
        assert_eq!(
            waiting_on_after(State::PaymentConfirmed, WaitingOn::Customer, moved),
            WaitingOn::Agent
        );
        let stayed = Activity::Decision {
            asks_customer: false,
            moved: false,
        };
        assert_eq!(
            waiting_on_after(State::AwaitingAgent, WaitingOn::Customer, stayed),
            WaitingOn::Customer
        );
    }

    #[test]
    fn the_assignee_is_mailed_only_when_every_condition_holds() {
        let yes = AssigneeNotice {
            enabled: true,
            terminal: false,
            assignee: Some(7),
            assignee_active: true,
            assignee_is_requester: false,
            acting_agent: None,
            minutes_since_last: None,
        };
        assert!(notify_assignee(yes));
        assert!(notify_assignee(AssigneeNotice {
            minutes_since_last: Some(NOTIFY_ASSIGNEE_EVERY_MINUTES),
            ..yes
        }));
        assert!(notify_assignee(AssigneeNotice {
            acting_agent: Some(8),
            ..yes
        }));
        for no in [
            AssigneeNotice { enabled: false, ..yes },
            AssigneeNotice { terminal: true, ..yes },
            AssigneeNotice { assignee: None, ..yes },
            AssigneeNotice {
                assignee_active: false,
                ..yes
            },
            AssigneeNotice {
                assignee_is_requester: true,
                ..yes
            },
            AssigneeNotice {
                acting_agent: Some(7),
                ..yes
            },
            AssigneeNotice {
                minutes_since_last: Some(NOTIFY_ASSIGNEE_EVERY_MINUTES - 1),
                ..yes
            },
            AssigneeNotice {
                minutes_since_last: Some(0),
                ..yes
            },
        ] {
            assert!(!notify_assignee(no), "{no:?}");
        }
    }
}
