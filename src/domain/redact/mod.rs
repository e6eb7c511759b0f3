//! Secret scanner for text that customers send us.
//!
//! Customers paste passwords, API keys, card numbers and whole SMTP
//! transcripts into mail and forms. Nothing secret may be stored, so every
//! inbound text goes through [`redact`] before it is persisted or shown to an
//! agent. Only the secret value is replaced; the words around it stay so the
//! message still reads well ("my password is [redacted]").
//!
//! The scanner prefers redacting a harmless word over letting a secret
//! through, but it leaves ordinary sentences about passwords alone.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};

mod cards;
mod keywords;
mod lookahead;
mod phrases;
mod smtp;
#[cfg(test)]
mod tests;
mod tokens;

/// What every secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Re-scanning the redacted text can reveal what a neighbouring secret hid
/// (say, an SMTP password line that a pasted key block cut off from its
/// `AUTH LOGIN`), so `redact` repeats until nothing changes. Two passes settle
/// every input we know of; the cap bounds the work on adversarial text. Each
/// pass is linear in its text and a pass at most multiplies the length by a
/// constant (a secret of one byte becomes a placeholder of ten), so the cap
/// keeps `redact` linear too: at worst a constant number of linear passes.
const MAX_PASSES: usize = 4;

/// What a removed secret was; named in API responses and in the advice the
/// customer gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    Password,
    ApiKey,
    SendgridApiKey,
    AwsAccessKeyId,
    PrivateKey,
    CardNumber,
    SmtpAuthCredentials,
}

impl SecretKind {
    /// The snake_case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ApiKey => "api_key",
            Self::SendgridApiKey => "sendgrid_api_key",
            Self::AwsAccessKeyId => "aws_access_key_id",
            Self::PrivateKey => "private_key",
            Self::CardNumber => "card_number",
            Self::SmtpAuthCredentials => "smtp_auth_credentials",
        }
    }

    /// Words for a sentence such as "Your message contained {label}".
    pub fn label(self) -> &'static str {
        match self {
            Self::Password => "a password",
            Self::ApiKey => "an API key",
            Self::SendgridApiKey => "a SendGrid API key",
            Self::AwsAccessKeyId => "an AWS access key ID",
            Self::PrivateKey => "a private key",
            Self::CardNumber => "a payment card number",
            Self::SmtpAuthCredentials => "SMTP login credentials",
        }
    }

    /// One sentence telling the customer how to make the leaked secret useless.
    pub fn rotate_advice(self) -> &'static str {
        match self {
            Self::Password => {
                "Change this password now, and anywhere else you use it, because it was sent in plain text."
            }
            Self::ApiKey => "Revoke this API key or token and create a new one, because it was sent in plain text.",
            Self::SendgridApiKey => {
                "Delete this API key in your SendGrid settings and create a new one, because it was sent in plain text."
            }
            Self::AwsAccessKeyId => {
                "Deactivate this access key in AWS IAM and create a new key pair, because it was sent in plain text."
            }
            Self::PrivateKey => {
                "Generate a new key pair and replace this private key everywhere it is trusted, because it was sent in plain text."
            }
            Self::CardNumber => {
                "Contact your bank to cancel this card and issue a new one, because its number was sent in plain text."
            }
            Self::SmtpAuthCredentials => {
                "Change the password of this mail account, because an SMTP AUTH transcript can be decoded back into the username and password."
            }
        }
    }
}

/// The outcome of [`redact`]: the safe text and what was removed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    /// Distinct kinds of secret that were removed, sorted.
    pub found: Vec<SecretKind>,
}

impl Redacted {
    pub fn is_clean(&self) -> bool {
        self.found.is_empty()
    }
}

/// Replaces every secret in `input` with [`REDACTED`].
///
/// Idempotent: redacting the result again changes nothing and finds nothing.
pub fn redact(input: &str) -> Redacted {
    let mut text = input.to_owned();
    let mut found = BTreeSet::new();
    for _ in 0..MAX_PASSES {
        let findings = scan(&text);
        if findings.is_empty() {
            break;
        }
        found.extend(findings.iter().map(|finding| finding.kind));
        text = replace_findings(&text, findings);
    }
    Redacted {
        text,
        found: found.into_iter().collect(),
    }
}

/// Whether `value` is the base64 message of an SMTP `AUTH PLAIN` exchange
/// (`authzid NUL username NUL password`, padded or not). Such a blob is a
/// credential as a whole: nothing decoded from it may be kept, not even the
/// username, so code that reads names out of mail asks this first.
pub fn is_auth_plain_blob(value: &str) -> bool {
    smtp::decodes_to_plain_credentials(value.trim())
}

/// A secret found in the text: its byte range and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    range: Range<usize>,
    kind: SecretKind,
}

fn scan(text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    tokens::find_known_token_formats(text, &mut findings);
    tokens::find_private_key_blocks(text, &mut findings);
    cards::find_card_numbers(text, &mut findings);
    smtp::find_smtp_auth_arguments(text, &mut findings);
    smtp::find_smtp_auth_dialogue(text, &mut findings);
    smtp::find_plain_credentials(text, &mut findings);
    // Last, so that "api_key=SG.…" reports the specific kind only.
    phrases::find_credential_phrases(text, &mut findings);
    findings.retain(|finding| !finding.range.is_empty());
    findings
}

/// Overlapping and touching findings collapse into one [`REDACTED`]; two
/// placeholders side by side would read as a new, unknown token on the next
/// pass.
fn replace_findings(text: &str, mut findings: Vec<Finding>) -> String {
    findings.sort_by_key(|finding| (finding.range.start, finding.range.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(findings.len());
    for finding in findings {
        match merged.last_mut() {
            Some(last) if finding.range.start <= last.end => {
                last.end = last.end.max(finding.range.end);
            }
            _ => merged.push(finding.range),
        }
    }

    let mut output = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    for range in merged {
        output.push_str(&text[copied_up_to..range.start]);
        output.push_str(REDACTED);
        copied_up_to = range.end;
    }
    output.push_str(&text[copied_up_to..]);
    output
}

// ---------------------------------------------------------------------------
// Shared helpers

/// True for one or more placeholders and nothing else: a value that an earlier
/// pass already redacted.
///
/// Peels placeholders off the front rather than splitting on them: a split
/// would search the whole value for the next placeholder, and values can be
/// as long as the text.
fn is_placeholder_only(value: &str) -> bool {
    let mut rest = value;
    while let Some(after) = rest.strip_prefix(REDACTED) {
        lookahead::count(REDACTED.len());
        rest = after;
    }
    rest.is_empty() && rest.len() < value.len()
}

/// Whether the text just before `position` belongs to the same word, so a
/// match starting there is only the tail of something longer ("bypass",
/// "A4111…"). Only ASCII letters and digits join: `DB_PASSWORD`, `X-API-Key`
/// and a card number glued to Japanese text must still be found. A
/// placeholder counts as a word: it replaced one, and treating it the same
/// way on every pass keeps `redact` idempotent.
fn glued_before(text: &str, position: usize) -> bool {
    let before = &text[..position];
    before.ends_with(REDACTED) || before.chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Mirror image of [`glued_before`].
fn glued_after(text: &str, position: usize) -> bool {
    let after = &text[position..];
    after.starts_with(REDACTED) || after.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// What each byte is worth as a base64 character, [`NOT_BASE64`] for every other byte. A
/// table, because the scanners ask it of every byte of every text: the comparisons it
/// replaces were a tenth of a parsing thread's time (docs/benchmarks.md).
static BASE64_SEXTETS: [u8; 256] = {
    let mut table = [NOT_BASE64; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => NOT_BASE64,
        };
        byte += 1;
    }
    table
};
const NOT_BASE64: u8 = u8::MAX;

/// The six bits a base64 character stands for (standard alphabet), `None` for any other byte.
fn base64_sextet(byte: u8) -> Option<u8> {
    let sextet = BASE64_SEXTETS[usize::from(byte)];
    (sextet != NOT_BASE64).then_some(sextet)
}

/// Four characters of base64 as their sextets, `None` unless all four are base64.
fn base64_group(bytes: &[u8]) -> Option<[u8; 4]> {
    let &[a, b, c, d] = bytes else {
        return None;
    };
    let group = [a, b, c, d].map(|byte| BASE64_SEXTETS[usize::from(byte)]);
    // Sextets are below 64: the high bit is set only by NOT_BASE64.
    ((group[0] | group[1] | group[2] | group[3]) & 0x80 == 0).then_some(group)
}

fn is_base64_alphabet(byte: u8) -> bool {
    BASE64_SEXTETS[usize::from(byte)] != NOT_BASE64
}

/// Standard base64 with at most two padding characters.
fn is_base64(value: &str) -> bool {
    lookahead::count(value.len());
    let data = value.trim_end_matches('=');
    value.len() - data.len() <= 2 && !data.is_empty() && data.bytes().all(is_base64_alphabet)
}
