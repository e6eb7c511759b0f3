//! Tickets: their kinds, states and public reference.

use super::diagnosis::AuthChannel;
use super::vocabulary::vocabulary;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Characters of a ticket's subject, at most; a longer one is cut and ends in `…` (the
/// message keeps its whole subject). Why: the queue's PostgreSQL index carries the subject, and
/// PostgreSQL refuses an index row over 2,704 bytes, so a mail with a subject of a few
/// kilobytes could never be stored (the MTA was told to try again until it gave up).
pub const MAX_SUBJECT_CHARS: usize = 500;

/// What the customer needs. Each kind has its own workflow (docs/reference.md#kinds-and-states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ForgotUsername,
    IpLockout,
    AccountTerminated,
    LoginHelp,
    General,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::ForgotUsername,
        Kind::IpLockout,
        Kind::AccountTerminated,
        Kind::LoginHelp,
        Kind::General,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ForgotUsername => "forgot_username",
            Kind::IpLockout => "ip_lockout",
            Kind::AccountTerminated => "account_terminated",
            Kind::LoginHelp => "login_help",
            Kind::General => "general",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The state a ticket of this kind starts in, before its creation rules run.
    pub fn initial_state(self) -> State {
        match self {
            Kind::IpLockout => State::AwaitingAllowlistedAttempts,
            _ => State::AwaitingAgent,
        }
    }

    /// Every state a ticket of this kind can be in.
    pub fn states(self) -> &'static [State] {
        use State::*;
        match self {
            Kind::ForgotUsername => &[AwaitingAgent, Resolved, Refused],
            Kind::IpLockout => &[
                AwaitingAllowlistedAttempts,
                AttemptsReported,
                VerifyingOwnership,
                OwnershipVerified,
                Resolved,
                Refused,
            ],
            Kind::AccountTerminated => &[AwaitingAgent, AwaitingPayment, PaymentConfirmed, Resolved, Refused],
            Kind::LoginHelp | Kind::General => &[AwaitingAgent, AwaitingCustomer, Resolved, Refused],
        }
    }

    /// Words for people (console, status page).
    pub fn label(self) -> &'static str {
        match self {
            Kind::ForgotUsername => "Forgotten username",
            Kind::IpLockout => "Locked out by IP access management",
            Kind::AccountTerminated => "Account terminated for non-payment",
            Kind::LoginHelp => "Cannot log in",
            Kind::General => "General request",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    AwaitingAgent,
    AwaitingCustomer,
    AwaitingAllowlistedAttempts,
    AttemptsReported,
    VerifyingOwnership,
    OwnershipVerified,
    AwaitingPayment,
    PaymentConfirmed,
    Resolved,
    Refused,
}

impl State {
    pub const ALL: [State; 10] = [
        State::AwaitingAgent,
        State::AwaitingCustomer,
        State::AwaitingAllowlistedAttempts,
        State::AttemptsReported,
        State::VerifyingOwnership,
        State::OwnershipVerified,
        State::AwaitingPayment,
        State::PaymentConfirmed,
        State::Resolved,
        State::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::AwaitingAgent => "awaiting_agent",
            State::AwaitingCustomer => "awaiting_customer",
            State::AwaitingAllowlistedAttempts => "awaiting_allowlisted_attempts",
            State::AttemptsReported => "attempts_reported",
            State::VerifyingOwnership => "verifying_ownership",
            State::OwnershipVerified => "ownership_verified",
            State::AwaitingPayment => "awaiting_payment",
            State::PaymentConfirmed => "payment_confirmed",
            State::Resolved => "resolved",
            State::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Words for agents scanning a queue.
    pub fn label(self) -> &'static str {
        match self {
            State::AwaitingAgent => "Waiting for us",
            State::AwaitingCustomer => "Waiting for the customer",
            State::AwaitingAllowlistedAttempts => "Waiting for allowlisted attempts",
            State::AttemptsReported => "Attempts reported",
            State::VerifyingOwnership => "Verifying ownership",
            State::OwnershipVerified => "Ownership verified",
            State::AwaitingPayment => "Waiting for payment",
            State::PaymentConfirmed => "Payment confirmed",
            State::Resolved => "Resolved",
            State::Refused => "Refused",
        }
    }

    /// `resolved` and `refused` end a ticket; only replies and notes are allowed there.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Resolved | State::Refused)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

vocabulary! {
    /// Where a ticket came from.
    pub enum Channel {
        Web = "web",
        Mail = "mail",
        Api = "api",
    }
}

vocabulary! {
    /// What happens when a customer of a login-help request tries to log in (the form's
    /// `problem`, the API's too).
    pub enum Problem {
        WebLogin = "web_login",
        ApiKey = "api_key",
        Smtp535 = "smtp_535",
        Other = "other",
    }
}

impl Problem {
    /// Words for the customer's status page.
    pub fn words(self) -> &'static str {
        match self {
            Problem::WebLogin => "\"Invalid username or password\" on the website",
            Problem::ApiKey => "\"Bad username/password\" from the API",
            Problem::Smtp535 => "535 Authentication failed over SMTP",
            Problem::Other => "Something else",
        }
    }

    /// The subject of a ticket opened from the form with this problem.
    pub fn subject(self) -> &'static str {
        match self {
            Problem::Smtp535 => "SMTP 535 Authentication failed",
            Problem::ApiKey => "API: bad username/password",
            Problem::WebLogin => "Cannot log in to the website",
            Problem::Other => "Cannot log in",
        }
    }

    /// Whose logs a diagnosis reads: the API gateway's for "bad username/password" on the
    /// API, else the SMTP relay's.
    pub fn auth_channel(problem: Option<Problem>) -> AuthChannel {
        match problem {
            Some(Problem::ApiKey) => AuthChannel::Api,
            _ => AuthChannel::Smtp,
        }
    }
}

/// The public reference of a ticket, `RD-<n>`: the prefix is configurable, the number is the
/// ticket's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    prefix: String,
    number: i64,
}

impl TicketRef {
    pub fn new(prefix: &str, number: i64) -> Self {
        TicketRef {
            prefix: prefix.to_string(),
            number,
        }
    }

    /// Accepts `RD-12` (prefix matched case-insensitively) and, for convenience, a bare number.
    pub fn parse(input: &str, prefix: &str) -> Option<Self> {
        let input = input.trim();
        // `get` rather than indexing: the input is anyone's text, and a multi-byte character may
        // straddle the prefix's length.
        let digits = match (input.get(..prefix.len()), input.get(prefix.len()..)) {
            (Some(head), Some(rest)) if head.eq_ignore_ascii_case(prefix) && rest.starts_with('-') => &rest[1..],
            _ => input,
        };
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number: i64 = digits.parse().ok()?;
        (number > 0).then(|| TicketRef::new(prefix, number))
    }

    pub fn number(&self) -> i64 {
        self.number
    }

    /// The `[RD-<n>]` tag put in mail subjects.
    pub fn subject_tag(&self) -> String {
        format!("[{self}]")
    }
}

impl fmt::Display for TicketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.prefix, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_starts_in_one_of_its_own_states() {
        for kind in Kind::ALL {
            assert!(kind.states().contains(&kind.initial_state()), "{kind}");
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
        }
        for problem in Problem::ALL {
            assert_eq!(Problem::parse(problem.as_str()), Some(problem));
        }
        assert_eq!(Problem::auth_channel(Some(Problem::ApiKey)), AuthChannel::Api);
        assert_eq!(Problem::auth_channel(Some(Problem::Smtp535)), AuthChannel::Smtp);
        assert_eq!(Problem::auth_channel(None), AuthChannel::Smtp);
        assert_eq!(Problem::parse("API_KEY"), None);
    }

    #[test]
    fn ticket_refs_parse_with_their_prefix_only() {
        assert_eq!(TicketRef::parse("RD-12", "RD").unwrap().number(), 12);
        assert_eq!(TicketRef::parse("rd-12", "RD").unwrap().to_string(), "RD-12");
        assert_eq!(TicketRef::parse("12", "RD").unwrap().number(), 12);
        assert!(TicketRef::parse("XX-12", "RD").is_none());
        assert!(TicketRef::parse("RD-", "RD").is_none());
        assert!(TicketRef::parse("RD-0", "RD").is_none());
        assert!(TicketRef::parse("RD-1x", "RD").is_none());
        assert!(TicketRef::parse("RD-99999999999999999999", "RD").is_none());
        assert_eq!(TicketRef::parse("RD-7", "RD").unwrap().subject_tag(), "[RD-7]");
        // Found by the ingestion fuzz test: a multi-byte character across the prefix length.
        assert!(TicketRef::parse("Ré-1", "RD").is_none());
        assert!(TicketRef::parse("R\u{e9}1", "RD").is_none());
        assert!(TicketRef::parse("é", "RD").is_none());
    }
}
