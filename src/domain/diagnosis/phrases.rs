//! What a customer's mail says about a failed login: the username ("username: crm-mailer", or
//! the `AUTH` lines of a quoted SMTP session), whether it is the API's `api_user`, and the time
//! of the failed attempt ("failed at: 2026-11-23 09:14 UTC").

use super::{AuthChannel, parse_failed_at};
use base64::Engine;

const MAX_USERNAME_BYTES: usize = super::event::MAX_USERNAME_BYTES;

/// A line without its quote markers ("> > ") and surrounding spaces.
fn unquoted(line: &str) -> &str {
    line.trim_start_matches(['>', ' ', '\t']).trim()
}

/// The lines that can name a username or a time: every username label ends in `:` or `=`,
/// and every time [`parse_failed_at`] reads has a `:` (its hours and minutes), so a line with
/// neither names nothing. Why: a mail's body is read for both at intake, each line
/// lowercased and searched for each label; most lines have neither character and are now
/// skipped at the cost of one scan (this was 6 % of `import-maildir`'s CPU, docs/benchmarks.md).
fn labelled_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|line| memchr::memchr2(b':', b'=', line.as_bytes()).is_some())
}

/// The username named by a phrase, and the channel the label implies: "username: crm-mailer",
/// "SMTP user: …", "api_user=…" (quotes around the value are dropped). A value the secret
/// scanner replaced is no username, and neither is an `AUTH PLAIN` blob pasted as one (base64
/// or decoded, NULs and all): it holds the password.
pub fn named_username(text: &str) -> Option<(String, AuthChannel)> {
    for line in labelled_lines(text) {
        let trimmed = unquoted(line);
        let lower = trimmed.to_ascii_lowercase();
        for (label, channel) in [
            ("smtp username:", AuthChannel::Smtp),
            ("smtp user:", AuthChannel::Smtp),
            ("username:", AuthChannel::Smtp),
            ("user name:", AuthChannel::Smtp),
            ("api_user:", AuthChannel::Api),
            ("api_user=", AuthChannel::Api),
        ] {
            if let Some(at) = lower.find(label) {
                let mut value = trimmed[at + label.len()..].trim();
                // A query-string or command-line form ends at the next separator.
                if label.ends_with('=') {
                    value = value
                        .split(|c: char| c.is_whitespace() || c == '&')
                        .next()
                        .unwrap_or("");
                }
                let value = value.trim_matches(|c| c == '"' || c == '\'' || c == '`');
                if !value.is_empty()
                    && !value.contains(crate::domain::redact::REDACTED)
                    && !value.contains('\0')
                    && !crate::domain::redact::is_auth_plain_blob(value)
                    && value.len() <= MAX_USERNAME_BYTES
                {
                    return Some((value.to_string(), channel));
                }
            }
        }
    }
    None
}

/// The time of the failed attempt: "failed at: 2026-11-23 09:14 UTC", "time of failure: …",
/// "timestamp: …" (any form [`parse_failed_at`] reads), as RFC 3339.
pub fn failed_at_in(text: &str) -> Option<String> {
    for line in labelled_lines(text) {
        let trimmed = unquoted(line);
        let lower = trimmed.to_ascii_lowercase();
        for label in [
            "failed at:",
            "failed at",
            "failed_at:",
            "failed_at=",
            "time of failure:",
            "time of the failure:",
            "failure time:",
            "timestamp:",
        ] {
            if let Some(at) = lower.find(label)
                && let Some(t) = parse_failed_at(&trimmed[at + label.len()..])
            {
                return Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
        }
    }
    None
}

/// One line of a quoted SMTP session: what the client said, or None for the server's lines.
fn client_line(line: &str) -> Option<&str> {
    let line = unquoted(line);
    for prefix in ["C:", "C>", "c:", ">>>"] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return Some(rest.trim());
        }
    }
    let bytes = line.as_bytes();
    let is_reply = bytes.len() >= 3
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && matches!(bytes.get(3), None | Some(b' ' | b'-'));
    if line.starts_with("S:") || line.starts_with("S>") || line.starts_with("<<<") || is_reply {
        return None;
    }
    Some(line)
}

/// The username a quoted SMTP session sent: the client line after `AUTH LOGIN` (or its initial
/// response). Read from the text before the secret scanner replaces those lines.
///
/// Never from `AUTH PLAIN`: its one blob carries the username and the password together, and
/// the desk keeps nothing decoded from it (the scanner redacts it whole). An `AUTH LOGIN` answer
/// that decodes to such a blob is refused too, by the printable check (it holds NULs).
pub fn session_username_in(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(command) = client_line(line) else {
            continue;
        };
        let upper = command.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("AUTH LOGIN") else {
            continue;
        };
        let initial = command[command.len() - rest.len()..].trim();
        let response = if initial.is_empty() {
            lines[i + 1..]
                .iter()
                .take(4)
                .filter_map(|l| client_line(l))
                .find(|l| !l.is_empty())?
        } else {
            initial
        };
        let decoded = base64::engine::general_purpose::STANDARD.decode(response.trim()).ok()?;
        let username = String::from_utf8(decoded).ok()?;
        let printable = !username.is_empty() && !username.chars().any(char::is_control);
        return (printable && username.len() <= MAX_USERNAME_BYTES).then_some(username);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_named_with_their_channel() {
        assert_eq!(
            named_username("Hi,\nusername: crm-mailer\nthanks"),
            Some(("crm-mailer".into(), AuthChannel::Smtp))
        );
        assert_eq!(
            named_username("> SMTP username: \"my app\""),
            Some(("my app".into(), AuthChannel::Smtp))
        );
        assert_eq!(
            named_username("curl -d api_user=souk-digital-app -d api_key=[redacted]"),
            Some(("souk-digital-app".into(), AuthChannel::Api))
        );
        assert_eq!(named_username("no name here"), None);
        assert_eq!(named_username("username: [redacted]"), None);
    }

    #[test]
    fn the_time_of_the_failure_is_read_from_common_phrases() {
        assert_eq!(
            failed_at_in("username: crm-mailer\nfailed at: 2026-11-23 09:14 UTC\n").as_deref(),
            Some("2026-11-23T09:14:00Z")
        );
        assert_eq!(
            failed_at_in("> It failed at 2026-11-23T10:14:00+01:00.").as_deref(),
            Some("2026-11-23T09:14:00Z")
        );
        assert_eq!(
            failed_at_in("Timestamp: Mon, 23 Nov 2026 09:14:00 +0000").as_deref(),
            Some("2026-11-23T09:14:00Z")
        );
        assert_eq!(failed_at_in("it failed at about nine this morning"), None);
        assert_eq!(failed_at_in("no time"), None);
    }

    #[test]
    fn a_quoted_auth_login_session_names_its_username_only() {
        let session = "  S: 250-AUTH PLAIN LOGIN\n  C: AUTH LOGIN\n  S: 334 VXNlcm5hbWU6\n  C: Y3JtLW1haWxlcg==\n  S: 334 UGFzc3dvcmQ6\n  C: VHI0bXBvbGluZS1Ob3YyNg==\n  S: 535 5.7.8 Authentication failed";
        assert_eq!(session_username_in(session).as_deref(), Some("crm-mailer"));
        let bare = "AUTH LOGIN\n334 VXNlcm5hbWU6\nY3JtLW1haWxlcg==\n334 UGFzc3dvcmQ6\nc2VjcmV0\n";
        assert_eq!(session_username_in(bare).as_deref(), Some("crm-mailer"));
        let initial = "> C: AUTH LOGIN Y3JtLW1haWxlcg==";
        assert_eq!(session_username_in(initial).as_deref(), Some("crm-mailer"));
    }

    #[test]
    fn an_auth_plain_blob_is_never_taken_for_a_username() {
        // "\0crm-mailer\0Tr4mpoline": the blob is a credential whole, username included.
        let plain = "C: AUTH PLAIN AGNybS1tYWlsZXIAVHI0bXBvbGluZQ==\nS: 535 5.7.8 Authentication failed";
        assert_eq!(session_username_in(plain), None);
        let prompted = "C: AUTH PLAIN\nS: 334 \nC: AGNybS1tYWlsZXIAVHI0bXBvbGluZQ==\n";
        assert_eq!(session_username_in(prompted), None);
        // The same blob given as the answer to AUTH LOGIN, or named as the username.
        assert_eq!(
            session_username_in("C: AUTH LOGIN AGNybS1tYWlsZXIAVHI0bXBvbGluZQ=="),
            None
        );
        assert_eq!(
            session_username_in("C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: AGNybS1tYWlsZXIAVHI0bXBvbGluZQ"),
            None
        );
        assert_eq!(named_username("username: AGNybS1tYWlsZXIAVHI0bXBvbGluZQ=="), None);
        assert_eq!(named_username("SMTP user: \"AGNybS1tYWlsZXIAVHI0bXBvbGluZQ\""), None);
        assert_eq!(named_username("username: \0crm-mailer\0Tr4mpoline"), None);
        // A later AUTH LOGIN in the same text still names its username.
        let both = format!("{plain}\nC: AUTH LOGIN Y3JtLW1haWxlcg==");
        assert_eq!(session_username_in(&both).as_deref(), Some("crm-mailer"));
        assert_eq!(session_username_in("C: AUTH LOGIN\nC: not base64!"), None);
        assert_eq!(session_username_in("no session here"), None);
    }
}
