//! Keys recognisable by their shape alone: SendGrid `SG.` keys, AWS access key
//! ids, well-known bearer token formats, and PEM private-key blocks.

use std::sync::LazyLock;

use regex::Regex;

use super::lookahead;
use super::{Finding, SecretKind, glued_after, glued_before};

/// One pass for every self-describing token format. Private-key blocks are
/// kept apart: a greedy token pattern could swallow the dashes of a
/// following `-----BEGIN` line and hide the whole key.
static KNOWN_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?P<sendgrid>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})",
        r"|(?P<aws>(?:AKIA|ASIA)[A-Z0-9]{16})",
        // JSON web tokens, GitHub, Stripe and Slack tokens: bearer secrets
        // that customers paste from their dashboards.
        r"|(?P<api_key>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}",
        r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        r"|xox[abposr]-[A-Za-z0-9-]{10,})",
    ))
    .unwrap()
});

pub(super) fn find_known_token_formats(text: &str, findings: &mut Vec<Finding>) {
    // One search over the text; every pattern ends where its token does.
    lookahead::count(text.len());
    for caps in KNOWN_TOKEN.captures_iter(text) {
        let Some(whole) = caps.get(0) else {
            continue;
        };
        lookahead::count(whole.len());
        let kind = if caps.name("sendgrid").is_some() {
            // The "SG." prefix and exact lengths are specific enough to
            // trust anywhere, even glued to other text.
            SecretKind::SendgridApiKey
        } else if caps.name("aws").is_some() {
            // Twenty upper-case characters inside a longer word are not a key id.
            if glued_before(text, whole.start()) || glued_after(text, whole.end()) {
                continue;
            }
            SecretKind::AwsAccessKeyId
        } else {
            if glued_before(text, whole.start()) {
                continue;
            }
            SecretKind::ApiKey
        };
        findings.push(Finding {
            range: whole.range(),
            kind,
        });
    }
}

/// A PEM private key, whole; without its END line (pasted truncated) it runs
/// to the end of the text rather than leaving key material behind.
static PRIVATE_KEY_BLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
        r"(?s:.*?)",
        r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
    ))
    .unwrap()
});

pub(super) fn find_private_key_blocks(text: &str, findings: &mut Vec<Finding>) {
    // A block without an END line runs to the end of the text, so a text of
    // BEGIN lines is one match: one search, not one per BEGIN.
    lookahead::count(text.len());
    findings.extend(PRIVATE_KEY_BLOCK.find_iter(text).map(|block| {
        lookahead::count(block.len());
        Finding {
            range: block.range(),
            kind: SecretKind::PrivateKey,
        }
    }));
}
