//! Canned answers (docs/reference.md#agent-console): admins keep them, agents reply with them,
//! placeholders are filled from the ticket. One that depends on the account (marked so, or
//! naming the account's username) is refused for a requester who is not the account's
//! registered address: it would tell a stranger about someone's account.

use super::{ErrorCode, Refusal, TicketView};

/// Placeholders every answer may use, and whether each depends on the account.
pub const PLACEHOLDERS: [(&str, bool); 5] = [
    ("{ref}", false),
    ("{requester}", false),
    ("{subject}", false),
    ("{username}", true),
    ("{account_id}", true),
];

/// At most this many characters in a title, and in a body.
pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedAnswer {
    pub title: String,
    pub body: String,
    /// Marked by the admin as telling something about the account.
    pub account_dependent: bool,
}

impl CannedAnswer {
    /// A new answer, checked: a title and a body within their limits.
    pub fn parse(title: &str, body: &str, account_dependent: bool) -> Result<CannedAnswer, Refusal> {
        let (title, body) = (title.trim(), body.trim());
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(Refusal::invalid_input(format!(
                "title: between 1 and {MAX_TITLE} characters"
            )));
        }
        if body.is_empty() || body.chars().count() > MAX_BODY {
            return Err(Refusal::invalid_input(format!(
                "body: between 1 and {MAX_BODY} characters"
            )));
        }
        Ok(CannedAnswer {
            title: title.to_string(),
            body: body.to_string(),
            account_dependent,
        })
    }

    /// Marked so, or using a placeholder that names the account.
    pub fn depends_on_account(&self) -> bool {
        self.account_dependent
            || PLACEHOLDERS
                .iter()
                .any(|(name, dependent)| *dependent && self.body.contains(name))
    }
}

/// What the placeholders are filled with.
#[derive(Debug, Clone, Copy)]
pub struct Fill<'a> {
    pub ticket_ref: &'a str,
    pub subject: &'a str,
}

/// The answer's text for this ticket, or the refusal: an account-dependent answer only to the
/// linked account's registered address; an account placeholder needs a linked account.
pub fn fill(answer: &CannedAnswer, ticket: &TicketView, with: Fill) -> Result<String, Refusal> {
    if answer.depends_on_account() {
        match ticket.account {
            Some(account) if account.is_registered_email(ticket.requester) => {}
            Some(_) => {
                return Err(Refusal::new(
                    ErrorCode::AccountDependentAnswer,
                    "this answer tells about the account, and the requester is not the account's registered address: it would go to someone else",
                ));
            }
            None => {
                return Err(Refusal::new(
                    ErrorCode::AccountDependentAnswer,
                    "this answer tells about an account, and no account is linked to the ticket",
                ));
            }
        }
    }
    let mut text = answer
        .body
        .replace("{ref}", with.ticket_ref)
        .replace("{requester}", ticket.requester)
        .replace("{subject}", with.subject);
    if let Some(account) = ticket.account {
        text = text
            .replace("{username}", &account.username)
            .replace("{account_id}", &account.id);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::{AccountStatus, sample_account};
    use crate::domain::ticket::{Kind, State};

    fn ticket<'a>(requester: &'a str, account: Option<&'a crate::domain::account::AccountView>) -> TicketView<'a> {
        TicketView {
            kind: Kind::General,
            state: State::AwaitingAgent,
            state_reason: None,
            requester,
            account,
            checks: &[],
            attempts_on_record: false,
            pending_approvals: &[],
        }
    }

    const FILL: Fill = Fill {
        ticket_ref: "RD-7",
        subject: "Help",
    };

    #[test]
    fn placeholders_are_filled_from_the_ticket() {
        let account = sample_account(AccountStatus::Active);
        let answer =
            CannedAnswer::parse("Hi", "Hello {requester}, about {ref} ({subject}): {username}", false).unwrap();
        assert!(
            answer.depends_on_account(),
            "the username placeholder makes it account-dependent"
        );
        let text = fill(&answer, &ticket(&account.email, Some(&account)), FILL).unwrap();
        assert_eq!(
            text,
            format!("Hello {}, about RD-7 (Help): {}", account.email, account.username)
        );
    }

    #[test]
    fn an_account_dependent_answer_never_goes_to_someone_else() {
        let account = sample_account(AccountStatus::Active);
        let marked = CannedAnswer::parse("Balance", "Your balance is settled.", true).unwrap();
        let named = CannedAnswer::parse("Name", "Your username is {username}.", false).unwrap();
        for answer in [&marked, &named] {
            for view in [
                ticket("stranger@elsewhere.test", Some(&account)),
                ticket("stranger@elsewhere.test", None),
            ] {
                assert_eq!(
                    fill(answer, &view, FILL).unwrap_err().code,
                    ErrorCode::AccountDependentAnswer
                );
            }
        }
        let neutral = CannedAnswer::parse("Thanks", "Thank you, {requester}.", false).unwrap();
        assert!(fill(&neutral, &ticket("stranger@elsewhere.test", Some(&account)), FILL).is_ok());
    }

    #[test]
    fn titles_and_bodies_have_limits() {
        assert!(CannedAnswer::parse(" ", "x", false).is_err());
        assert!(CannedAnswer::parse("t", "  ", false).is_err());
        assert!(CannedAnswer::parse(&"t".repeat(MAX_TITLE + 1), "x", false).is_err());
        assert!(CannedAnswer::parse("t", &"x".repeat(MAX_BODY + 1), false).is_err());
    }
}
