//! Pure helpers for reading a customer's mail: the username they name, our own links in what
//! they quote, and the new part of a message apart from its quoted history.

use super::quote;
use crate::domain::diagnosis::phrases;

/// The SMTP username a customer names in their mail: "username: crm-mailer" (see
/// `domain::diagnosis::phrases`, which also reads a quoted session and the time of the failure).
pub fn username_in(text: &str) -> Option<String> {
    phrases::named_username(text).map(|(name, _)| name)
}

/// A reply often quotes our mail, links included. A status or challenge link is the mailbox
/// owner's key, so it never reaches an agent's screen through a quoted reply either.
pub fn mask_our_links(text: &str, base_url: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(base_url) {
        out.push_str(&rest[..at]);
        let after = &rest[at + base_url.len()..];
        let masked = [("/verify/", "[confirmation link]"), ("/t/", "[status link]")]
            .into_iter()
            .find_map(|(path, label)| {
                after.strip_prefix(path).map(|tail| {
                    let token_len = tail
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                        .unwrap_or(tail.len());
                    (label, path.len() + token_len)
                })
            });
        match masked {
            Some((label, consumed)) => {
                out.push_str(label);
                rest = &after[consumed..];
            }
            None => {
                out.push_str(base_url);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The new part of a message and its folded history, for display.
pub fn folded(text: &str) -> (&str, &str) {
    quote::fold(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_named_in_mail_are_found() {
        assert_eq!(
            username_in("Hi,\nusername: crm-mailer\nthanks").as_deref(),
            Some("crm-mailer")
        );
        assert_eq!(username_in("> SMTP username: \"my app\"").as_deref(), Some("my app"));
        assert_eq!(username_in("no name here"), None);
        assert_eq!(username_in("username: [redacted]"), None);
    }

    #[test]
    fn our_links_in_quoted_replies_are_masked() {
        let base = "https://desk.example";
        let text = "> Follow: https://desk.example/t/AbC_12-x\n> Confirm: https://desk.example/verify/Zz9.\nSee https://desk.example/help";
        assert_eq!(
            mask_our_links(text, base),
            "> Follow: [status link]\n> Confirm: [confirmation link].\nSee https://desk.example/help"
        );
    }
}
