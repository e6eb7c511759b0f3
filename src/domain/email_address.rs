//! Email addresses as the desk compares them: trimmed, matched case-insensitively.

use std::fmt;

/// A syntactically plausible email address. The original spelling is kept for display and
/// sending; [`EmailAddress::normalized`] is what lookups compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses what a customer typed. Deliberately permissive about the local part (real
    /// addresses are odd), strict about what can never be an address.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("an email address is required".into());
        }
        if s.len() > 254 {
            return Err("that email address is too long".into());
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("an email address cannot contain spaces".into());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("an email address needs an @ and a domain, like name@example.com".into());
        };
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.' || c == '[' || c == ']' || c == ':');
        if local.is_empty() || local.len() > 64 || !domain_ok || s.contains(['<', '>', ',', ';', '"']) {
            return Err("that does not look like an email address".into());
        }
        // The outbox sender hands every address to lettre; one lettre refuses would be taken
        // here and fail at sending, with the customer never told. lettre's address type is a
        // plain value (no I/O), so the domain may use it despite being free of frameworks.
        if s.parse::<lettre::message::Mailbox>().is_err() {
            return Err("that does not look like an email address".into());
        }
        Ok(EmailAddress(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form lookups and comparisons use.
    pub fn normalized(&self) -> String {
        normalize(&self.0)
    }

    /// The part after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    /// Same mailbox, whatever the case.
    pub fn same_as(&self, other: &str) -> bool {
        self.normalized() == normalize(other)
    }
}

/// Trim and lower-case: how docs/reference.md#account-directory says emails are matched.
pub fn normalize(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Mailboxes that are robots, not people: automatic mail to them is never sent (it would
/// bounce back and forth) and mail from them is never answered.
pub fn is_automated_mailbox(email: &str) -> bool {
    let local = normalize(email);
    let local = local.split('@').next().unwrap_or("");
    let base = local.split('+').next().unwrap_or(local);
    matches!(
        base,
        "mailer-daemon"
            | "postmaster"
            | "abuse"
            | "root"
            | "noreply"
            | "no-reply"
            | "no_reply"
            | "donotreply"
            | "do-not-reply"
            | "do_not_reply"
            | "bounce"
            | "bounces"
            | "daemon"
            | "mail-daemon"
    )
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_unusual_addresses() {
        for ok in [
            "ops@acme.test",
            "  Ops@Acme.Test ",
            "a+tag@example.com",
            "admin@localhost",
            "ünï@exämple.de",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_an_address() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "@example.com",
            "a@",
            "a b@example.com",
            "a@exa mple.com",
            "a@.example.com",
            "a@example..com",
            "Name <a@example.com>",
            "a@example.com,b@example.com",
            // Refused by the sender's parser, so refused here too.
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a(comment)@example.com",
            "a@-example.com",
            "a@example.com]",
            // An address literal: lettre's mailbox parser (what the sender uses) refuses it.
            "x@[192.0.2.1]",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn robots_are_recognised_by_their_mailbox_name() {
        for robot in [
            "MAILER-DAEMON@x.test",
            "postmaster@x.test",
            "no-reply@x.test",
            "noreply+abc@x.test",
            "root@h",
        ] {
            assert!(is_automated_mailbox(robot), "{robot}");
        }
        for person in ["ops@acme.test", "rootbeer@x.test", "noreplyguy@x.test"] {
            assert!(!is_automated_mailbox(person), "{person}");
        }
    }

    #[test]
    fn matching_ignores_case_and_surrounding_space() {
        let a = EmailAddress::parse(" Ops@ACME.test").unwrap();
        assert_eq!(a.as_str(), "Ops@ACME.test");
        assert_eq!(a.normalized(), "ops@acme.test");
        assert!(a.same_as("ops@acme.TEST  "));
    }
}
