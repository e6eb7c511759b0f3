//! Which workflow a new mail belongs to, from its words (docs/reference.md#classification). The first rule that
//! matches wins, in the order a locked-out customer's words are most telling.

use crate::domain::ticket::Kind;

const FORGOT_USERNAME: &[&str] = &[
    "forgot my username",
    "forgotten my username",
    "forgot username",
    "forgotten username",
    "forgot the username",
    "remember my username",
    "lost my username",
    "what is my username",
    "what's my username",
    "recover my username",
    "username reminder",
    "nom d'utilisateur",
];

const IP_LOCKOUT: &[&str] = &[
    "ip access",
    "allowlist",
    "allow list",
    "whitelist",
    "white list",
    "white-list",
    "locked out",
    "locked me out",
    "lockout",
    "lock-out",
    "ip not allowed",
    "ip address is not",
];

const TERMINATED: &[&str] = &[
    "terminated",
    "termination",
    "billing",
    "unpaid",
    "reactivate",
    "re-activate",
    "outstanding balance",
    "pay the balance",
    "overdue",
    "past due",
];

const LOGIN: &[&str] = &[
    "535",
    "authentication failed",
    "auth failed",
    "api_key",
    "api key",
    "api_user",
    "bad username",
    "invalid username",
    "username or password",
    "username/password",
    "can't log in",
    "cannot log in",
    "can not log in",
    "unable to log in",
    "can't login",
    "cannot login",
    "login",
    "log in",
    "password",
];

/// Classifies a new message by its subject and text.
pub fn classify(subject: &str, text: &str) -> Kind {
    let haystack = format!("{}\n{}", subject, text).to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| haystack.contains(n));
    if has(FORGOT_USERNAME) {
        Kind::ForgotUsername
    } else if has(IP_LOCKOUT) {
        Kind::IpLockout
    } else if has(TERMINATED) {
        Kind::AccountTerminated
    } else if has(LOGIN) {
        Kind::LoginHelp
    } else {
        Kind::General
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_words_pick_the_workflow() {
        let cases = [
            ("Help", "I forgot my username, can you send it?", Kind::ForgotUsername),
            (
                "Locked out",
                "IP access management blocks me since we moved office",
                Kind::IpLockout,
            ),
            ("whitelist problem", "our new IP is not whitelisted", Kind::IpLockout),
            (
                "Account terminated",
                "I want to pay the outstanding balance",
                Kind::AccountTerminated,
            ),
            ("Please reactivate", "", Kind::AccountTerminated),
            (
                "SMTP error",
                "535 Authentication failed from our relay",
                Kind::LoginHelp,
            ),
            (
                "API",
                "bad username/password with api_user and api_key",
                Kind::LoginHelp,
            ),
            ("Invoices", "Can I get invoices as PDF?", Kind::General),
        ];
        for (subject, text, kind) in cases {
            assert_eq!(classify(subject, text), kind, "{subject}: {text}");
        }
    }

    #[test]
    fn the_most_telling_words_win() {
        // A locked-out customer mentions their password too: the lock-out decides.
        assert_eq!(
            classify("Locked out", "I'm locked out, my password is right"),
            Kind::IpLockout
        );
        assert_eq!(classify("forgot username", "and my login fails"), Kind::ForgotUsername);
    }
}
