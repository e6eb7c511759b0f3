//! Codes in plain words for the console's pages (docs/reference.md#agent-console): each page
//! shows the words first and the code small beside them.

use crate::domain::account::AccountStatus;
use crate::domain::ticket::{Kind, State};
use crate::domain::workflow::{RefuseReason, format_cents};

/// "$12.00": money is always dollars and cents, never "1200 cents".
pub fn money(cents: i64) -> String {
    if cents < 0 {
        format!("-{}", format_cents(-cents))
    } else {
        format_cents(cents)
    }
}

pub fn status_words(code: &str) -> &'static str {
    AccountStatus::parse(code)
        .map(AccountStatus::label)
        .unwrap_or("Unknown status")
}

pub fn kind_words(code: &str) -> &'static str {
    Kind::parse(code).map(Kind::label).unwrap_or("Unknown kind")
}

pub fn state_words(code: &str) -> &'static str {
    State::parse(code).map(State::label).unwrap_or("Unknown state")
}

/// Why a ticket ended: an agent's reason from the list, or the policy's.
pub fn reason_words(code: &str) -> String {
    match RefuseReason::parse(code) {
        Some(r) => r.label().to_string(),
        None => match code {
            crate::domain::workflow::BANNED_REASON => "The account is banned".to_string(),
            crate::domain::workflow::VERIFICATION_FAILED_REASON => "Ownership could not be verified".to_string(),
            other => other.replace('_', " "),
        },
    }
}

/// The helpers as methods, for the templates (`self.money(…)`).
macro_rules! console_words {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn money(&self, cents: &i64) -> String { $crate::web::console::words::money(*cents) }
            pub fn status_words(&self, code: &str) -> &'static str { $crate::web::console::words::status_words(code) }
            pub fn kind_words(&self, code: &str) -> &'static str { $crate::web::console::words::kind_words(code) }
            pub fn state_words(&self, code: &str) -> &'static str { $crate::web::console::words::state_words(code) }
            pub fn reason_words(&self, code: &str) -> String { $crate::web::console::words::reason_words(code) }
        }
    )*};
}
pub(crate) use console_words;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_dollars_and_cents_and_codes_have_words() {
        assert_eq!(money(1200), "$12.00");
        assert_eq!(money(5), "$0.05");
        assert_eq!(money(0), "$0.00");
        assert_eq!(money(-250), "-$2.50");
        assert_eq!(status_words("pending_confirmation"), "Never confirmed");
        assert_eq!(kind_words("login_help"), "Cannot log in");
        assert_eq!(state_words("awaiting_agent"), "Waiting for us");
        assert_eq!(reason_words("duplicate"), "Duplicate of another request");
        assert_eq!(reason_words("account_banned"), "The account is banned");
    }
}
