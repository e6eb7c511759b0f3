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

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};

/// What every secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Re-scanning the redacted text can reveal what a neighbouring secret hid
/// (say, an SMTP password line that a pasted key block cut off from its
/// `AUTH LOGIN`), so `redact` repeats until nothing changes. Two passes settle
/// every input we know of; the cap only bounds the work on adversarial text.
const MAX_PASSES: usize = 4;

/// Payment card numbers have 13 to 19 digits (ISO/IEC 7812).
const CARD_MIN_DIGITS: usize = 13;
const CARD_MAX_DIGITS: usize = 19;
/// Cards are written in groups such as 4-4-4-4, 4-6-5 or 4-4-4-4-3; requiring
/// groups of this size keeps dates, phone numbers and times out.
const CARD_GROUP_DIGITS: std::ops::RangeInclusive<usize> = 3..=8;

/// How many lines after `AUTH LOGIN` may still carry the client's answers.
const SMTP_AUTH_LOOKAHEAD_LINES: usize = 8;

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

/// A secret found in the text: its byte range and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    range: Range<usize>,
    kind: SecretKind,
}

fn scan(text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    find_known_token_formats(text, &mut findings);
    find_private_key_blocks(text, &mut findings);
    find_card_numbers(text, &mut findings);
    find_smtp_auth_arguments(text, &mut findings);
    find_smtp_auth_dialogue(text, &mut findings);
    // Last, so that "api_key=SG.…" reports the specific kind only.
    find_credential_phrases(text, &mut findings);
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
fn is_placeholder_only(value: &str) -> bool {
    !value.is_empty() && value.split(REDACTED).all(str::is_empty)
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

fn is_base64_alphabet(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

/// Standard base64 with at most two padding characters.
fn is_base64(value: &str) -> bool {
    let data = value.trim_end_matches('=');
    value.len() - data.len() <= 2 && !data.is_empty() && data.bytes().all(is_base64_alphabet)
}

// ---------------------------------------------------------------------------
// "password: hunter2", "api_key=…", "my password is hunter2"

/// A keyword, an optional closing quote (JSON keys) and a delimiter. The
/// value itself is read by code because quoting and stop words are easier to
/// get right there.
static CREDENTIAL_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?P<keyword>",
        r"(?P<password>password|passwort|passwd|passphrase|pass|pwd|kennwort|mot[ -]de[ -]passe|contrase[ñn]a|senha)",
        r"|(?P<authorization>authorization)",
        r"|(?P<api_key>api[ ._-]?(?:key|secret|token)|apikey|client[_-]?secret",
        r"|secret[_-]?(?:access[_-]?)?key|access[_-]?key",
        r"|(?:access|auth|refresh|bearer|session)[_-]?token|secret|token)",
        r#")["']?"#,
        r"(?:[ \t]*(?P<strong>:=|=>|:|=)",
        r"|[ \t]+(?P<weak>is|was|est)(?-u:\b)[ \t]*:?",
        r"|(?P<bare>[ \t]+))",
    ))
    .unwrap()
});

/// Words that follow "password is" in ordinary sentences ("my password is
/// not working"). Only consulted for the weak forms, never after `:` or `=`.
#[rustfmt::skip]
const ORDINARY_WORDS: &[&str] = &[
    "a", "accepted", "also", "always", "an", "at", "attached", "being", "below", "blocked",
    "broken", "case-sensitive", "changed", "compromised", "correct", "definitely", "different",
    "empty", "expired", "fine", "for", "forgotten", "gone", "in", "incorrect", "invalid", "it",
    "just", "locked", "long", "lost", "missing", "my", "never", "new", "no", "not", "now", "of",
    "ok", "okay", "old", "on", "probably", "rejected", "required", "reset", "right", "same",
    "saved", "sent", "short", "still", "strong", "that", "the", "this", "to", "too", "valid",
    "very", "weak", "what", "working", "wrong", "your",
    // French, after "mot de passe est".
    "bon", "faux", "la", "le", "mauvais", "pas", "toujours", "un", "une",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimiter {
    /// `:` `=` `:=` `=>`: whatever follows is meant as the value.
    Strong,
    /// "is", "was", French "est": prose, so ordinary words are let through.
    Weak,
    /// Whitespace only, accepted after a few technical words ("passwd x").
    Bare,
}

fn find_credential_phrases(text: &str, findings: &mut Vec<Finding>) {
    // A value that is exactly a recognised token is already reported under
    // its more telling kind ("a SendGrid API key" rather than "an API key").
    let recognised: HashSet<(usize, usize)> = findings
        .iter()
        .map(|finding| (finding.range.start, finding.range.end))
        .collect();
    for caps in CREDENTIAL_PHRASE.captures_iter(text) {
        let (Some(whole), Some(keyword)) = (caps.get(0), caps.name("keyword")) else {
            continue;
        };
        if glued_before(text, keyword.start()) {
            continue;
        }
        let delimiter = if caps.name("strong").is_some() {
            Delimiter::Strong
        } else if caps.name("weak").is_some() {
            Delimiter::Weak
        } else {
            Delimiter::Bare
        };
        if !keyword_accepts(&caps, keyword.as_str(), delimiter) {
            continue;
        }
        if caps.name("authorization").is_some() {
            if let Some(finding) = authorization_credentials(text, whole.end())
                && !recognised.contains(&(finding.range.start, finding.range.end))
            {
                findings.push(finding);
            }
            continue;
        }
        let Some(mut value) = value_after(text, whole.end()) else {
            continue;
        };
        if !value.quoted {
            if is_json_literal(&text[value.range.clone()]) {
                continue;
            }
            // In a URL query a password containing `&` would be written
            // `%26`, so `&` ends the value and the other parameters stay.
            if text[..keyword.start()].ends_with(['?', '&']) {
                let value_text = &text[value.range.clone()];
                let length = value_text.find(['&', '#']).unwrap_or(value_text.len());
                value.range.end = value.range.start + length;
            }
        }
        let value_text = &text[value.range.clone()];
        if is_placeholder_only(value_text)
            || (delimiter != Delimiter::Strong && !value.quoted && is_ordinary_word(value_text))
            || recognised.contains(&(value.range.start, value.range.end))
        {
            continue;
        }
        let kind = if caps.name("password").is_some() {
            SecretKind::Password
        } else {
            SecretKind::ApiKey
        };
        findings.push(Finding {
            range: value.range,
            kind,
        });
    }
}

/// Which keywords may be followed by which delimiter: "password reset" must
/// stay, "passwd hunter2" is a value, "the secret is out" is prose, and
/// upper-case `PASS hunter2` is the POP3/FTP command.
fn keyword_accepts(caps: &Captures<'_>, keyword: &str, delimiter: Delimiter) -> bool {
    match delimiter {
        Delimiter::Strong => true,
        Delimiter::Weak => {
            caps.name("authorization").is_none()
                && !["pass", "secret"].iter().any(|word| keyword.eq_ignore_ascii_case(word))
        }
        Delimiter::Bare => {
            keyword == "PASS"
                || ["passwd", "apikey"]
                    .iter()
                    .any(|word| keyword.eq_ignore_ascii_case(word))
        }
    }
}

/// `"password": null,` in pasted JSON says there is no password.
fn is_json_literal(token: &str) -> bool {
    let head = token.split([',', '}', ']']).next().unwrap_or(token);
    matches!(head, "null" | "true" | "false")
}

fn is_ordinary_word(value: &str) -> bool {
    let word = value
        .trim_start_matches(['(', '*', '_'])
        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '*', '_']);
    let word = word.to_lowercase();
    ORDINARY_WORDS.contains(&word.as_str())
}

struct Value {
    range: Range<usize>,
    quoted: bool,
}

/// The value that starts at `from` (after blanks, on the same line): the
/// contents of a quoted string, or else everything up to the next whitespace.
fn value_after(text: &str, from: usize) -> Option<Value> {
    let rest = &text[from..];
    let start = from + (rest.len() - rest.trim_start_matches([' ', '\t']).len());
    let first = text[start..].chars().next()?;
    if let Some(closing) = closing_quote(first) {
        let inner_start = start + first.len_utf8();
        return match quoted_length(&text[inner_start..], closing) {
            Some(0) => None,
            Some(length) => Some(Value {
                range: inner_start..inner_start + length,
                quoted: true,
            }),
            // An unterminated quote is just punctuation before a bare token.
            None => token_at(text, inner_start).map(|range| Value { range, quoted: false }),
        };
    }
    token_at(text, start).map(|range| Value { range, quoted: false })
}

fn closing_quote(opening: char) -> Option<char> {
    match opening {
        '"' => Some('"'),
        '\'' => Some('\''),
        '`' => Some('`'),
        '“' => Some('”'),
        '‘' => Some('’'),
        '«' => Some('»'),
        _ => None,
    }
}

/// Byte length of a quoted string's contents up to `closing`, which must be
/// on the same line. Backslash escapes are skipped so that a JSON string such
/// as `"pa\"ss"` is taken whole.
fn quoted_length(rest: &str, closing: char) -> Option<usize> {
    let mut chars = rest.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '\n' => return None,
            '\\' if closing == '"' => {
                chars.next();
            }
            c if c == closing => return Some(index),
            _ => {}
        }
    }
    None
}

/// The run of non-whitespace starting at `start`, if any.
fn token_at(text: &str, start: usize) -> Option<Range<usize>> {
    let rest = &text[start..];
    let length = rest.find(char::is_whitespace).unwrap_or(rest.len());
    (length > 0).then_some(start..start + length)
}

/// Authorization schemes whose credentials are one token.
const SINGLE_TOKEN_SCHEMES: &[&str] = &["basic", "bearer", "token", "bot", "apikey"];

/// `Authorization: Bearer <token>` / `Basic <base64>`: keep the scheme so the
/// agent still sees what kind of credential it was. Other schemes (Digest,
/// AWS4-HMAC-SHA256) spread their secrets over several parameters, so the
/// rest of the line goes.
fn authorization_credentials(text: &str, from: usize) -> Option<Finding> {
    let first = value_after(text, from)?;
    let first_word = &text[first.range.clone()];
    let looks_like_scheme = !first.quoted
        && first_word.starts_with(|c: char| c.is_ascii_alphabetic())
        && first_word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let next = looks_like_scheme.then(|| value_after(text, first.range.end)).flatten();
    let (range, kind) = match next {
        None => (first.range, SecretKind::ApiKey),
        Some(next) => {
            let kind = if first_word.eq_ignore_ascii_case("basic") {
                SecretKind::Password
            } else {
                SecretKind::ApiKey
            };
            let is_single_token = SINGLE_TOKEN_SCHEMES
                .iter()
                .any(|scheme| first_word.eq_ignore_ascii_case(scheme));
            let end = if is_single_token {
                // Inside `-H 'Authorization: Bearer abc'` the quote is shell
                // syntax, not part of the token.
                let token = text[next.range.clone()].trim_end_matches(['\'', '"', ',', ';']);
                next.range.start + token.len()
            } else {
                let line_end = text[next.range.start..]
                    .find('\n')
                    .map_or(text.len(), |offset| next.range.start + offset);
                next.range.start + text[next.range.start..line_end].trim_end().len()
            };
            (next.range.start..end, kind)
        }
    };
    (!is_placeholder_only(&text[range.clone()])).then_some(Finding { range, kind })
}

// ---------------------------------------------------------------------------
// Keys recognisable by their shape alone

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

fn find_known_token_formats(text: &str, findings: &mut Vec<Finding>) {
    for caps in KNOWN_TOKEN.captures_iter(text) {
        let Some(whole) = caps.get(0) else {
            continue;
        };
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

fn find_private_key_blocks(text: &str, findings: &mut Vec<Finding>) {
    findings.extend(PRIVATE_KEY_BLOCK.find_iter(text).map(|block| Finding {
        range: block.range(),
        kind: SecretKind::PrivateKey,
    }));
}

// ---------------------------------------------------------------------------
// Payment card numbers

/// Digit groups separated by a single space or dash. `[0-9]`, not `\d`: the
/// Luhn check is defined on ASCII digits.
static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]+(?:[ -][0-9]+)*").unwrap());

fn find_card_numbers(text: &str, findings: &mut Vec<Finding>) {
    for run in DIGIT_RUN.find_iter(text) {
        let run_text = run.as_str();
        let digit_count = run_text.bytes().filter(u8::is_ascii_digit).count();
        if digit_count < CARD_MIN_DIGITS {
            continue;
        }
        let groups = digit_groups(run_text, run.start());
        let open_start = !is_inside_number_before(text, run.start());
        let open_end = !is_inside_number_after(text, run.end());

        let mut first = 0;
        while first < groups.len() {
            match longest_card_from(text, &groups, first, open_start, open_end) {
                Some(last) => {
                    findings.push(Finding {
                        range: groups[first].start..groups[last].end,
                        kind: SecretKind::CardNumber,
                    });
                    first = last + 1;
                }
                None => first += 1,
            }
        }
    }
}

/// Byte ranges (in `text`) of the digit groups of one run.
fn digit_groups(run_text: &str, run_start: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut offset = 0;
    for group in run_text.split([' ', '-']) {
        let start = run_start + offset;
        groups.push(start..start + group.len());
        offset += group.len() + 1;
    }
    groups
}

/// The last group of the longest card number that starts at group `first`.
/// Never splits a group, so a card is never carved out of a longer digit run
/// such as a timestamp or an order number.
fn longest_card_from(
    text: &str,
    groups: &[Range<usize>],
    first: usize,
    open_start: bool,
    open_end: bool,
) -> Option<usize> {
    if first == 0 && !open_start {
        return None;
    }
    let mut digits = 0;
    let mut longest = None;
    for (last, group) in groups.iter().enumerate().skip(first) {
        digits += group.len();
        if digits > CARD_MAX_DIGITS {
            break;
        }
        // A single group may be the whole number; several groups must each
        // look like a card's grouping, and a misfit ends every longer one too.
        let grouping_fits = last == first
            || (CARD_GROUP_DIGITS.contains(&groups[first].len()) && CARD_GROUP_DIGITS.contains(&group.len()));
        if !grouping_fits {
            break;
        }
        let is_card = digits >= CARD_MIN_DIGITS
            && (last + 1 < groups.len() || open_end)
            && passes_luhn(
                groups[first..=last]
                    .iter()
                    .flat_map(|group| text[group.clone()].bytes()),
            );
        if is_card {
            longest = Some(last);
        }
    }
    longest
}

/// Whether the run starting at `position` continues a word or a decimal
/// number ("A4111…", "3.14159…").
fn is_inside_number_before(text: &str, position: usize) -> bool {
    if glued_before(text, position) {
        return true;
    }
    let mut before = text[..position].chars().rev();
    matches!(before.next(), Some('.' | ',')) && before.next().is_some_and(|c| c.is_ascii_digit())
}

fn is_inside_number_after(text: &str, position: usize) -> bool {
    if glued_after(text, position) {
        return true;
    }
    let mut after = text[position..].chars();
    matches!(after.next(), Some('.' | ',')) && after.next().is_some_and(|c| c.is_ascii_digit())
}

fn passes_luhn(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------------------
// SMTP AUTH transcripts

/// The mechanisms whose client messages carry the credentials themselves
/// (base64 is an encoding, not a protection).
const SMTP_AUTH_MECHANISMS: &str = "PLAIN|LOGIN|XOAUTH2|OAUTHBEARER|CRAM-MD5";

/// `AUTH PLAIN <base64>` anywhere, e.g. inside a log line quoted in prose.
static SMTP_AUTH_ARGUMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)AUTH[ \t]+(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER)[ \t]+(?P<argument>[A-Za-z0-9+/]+={0,2})").unwrap()
});

/// A command line of its own: `AUTH LOGIN`, `AUTH PLAIN <base64>`, ...
static SMTP_AUTH_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^AUTH[ \t]+(?P<mechanism>{SMTP_AUTH_MECHANISMS})(?:[ \t]+(?P<argument>\S+))?$"
    ))
    .unwrap()
});

fn find_smtp_auth_arguments(text: &str, findings: &mut Vec<Finding>) {
    for caps in SMTP_AUTH_ARGUMENT.captures_iter(text) {
        let (Some(whole), Some(argument)) = (caps.get(0), caps.name("argument")) else {
            continue;
        };
        if glued_before(text, whole.start())
            || text[argument.end()..]
                .bytes()
                .next()
                .is_some_and(|byte| is_base64_alphabet(byte) || byte == b'=')
        {
            continue;
        }
        // In running prose "AUTH PLAIN with ..." is not a credential; real
        // arguments are padded base64 blobs with digits or mixed case.
        if looks_like_base64_blob(argument.as_str()) {
            findings.push(Finding {
                range: argument.range(),
                kind: SecretKind::SmtpAuthCredentials,
            });
        }
    }
}

fn looks_like_base64_blob(value: &str) -> bool {
    let has_non_word_signal = value
        .bytes()
        .skip(1)
        .any(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || b"+/=".contains(&byte));
    value.len() >= 8 && value.len().is_multiple_of(4) && is_base64(value) && has_non_word_signal
}

/// One line of a transcript, with quoting (`> `) and direction markers
/// (`C:`, `S:`, `->`, `<-` as printed by swaks and mail logs) peeled off.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SmtpLine {
    Blank,
    Server {
        reply_code: Option<u16>,
    },
    Client {
        content: Range<usize>,
        /// Explicitly marked as sent by the client, not just unmarked text.
        marked: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Client,
    Server,
    Unknown,
}

fn parse_smtp_line(text: &str, line: Range<usize>) -> SmtpLine {
    let body = text[line.clone()].trim_end_matches(['\n', '\r']);
    let unquoted = body.trim_start_matches([' ', '\t', '>']);
    let (direction, after_marker) = split_direction_marker(unquoted);
    let content = after_marker.trim_start_matches([' ', '\t']);
    let content_start = line.start + (body.len() - content.len());
    let content = content.trim_end();
    if content.is_empty() {
        return SmtpLine::Blank;
    }
    let reply_code = smtp_reply_code(content);
    if direction == Direction::Server || reply_code.is_some() {
        return SmtpLine::Server { reply_code };
    }
    SmtpLine::Client {
        content: content_start..content_start + content.len(),
        marked: direction == Direction::Client,
    }
}

fn split_direction_marker(line: &str) -> (Direction, &str) {
    const MARKERS: [(&str, Direction); 9] = [
        ("C:", Direction::Client),
        ("c:", Direction::Client),
        ("S:", Direction::Server),
        ("s:", Direction::Server),
        ("->", Direction::Client),
        ("~>", Direction::Client),
        ("<-", Direction::Server),
        ("<~", Direction::Server),
        ("<", Direction::Server),
    ];
    MARKERS
        .iter()
        .find_map(|&(marker, direction)| {
            line.strip_prefix(marker)
                .map(|rest| (direction, rest.trim_start_matches('<')))
        })
        .unwrap_or((Direction::Unknown, line))
}

/// `334 VXNlcm5hbWU6`, `235-2.7.0 ok`, `535`.
fn smtp_reply_code(content: &str) -> Option<u16> {
    let bytes = content.as_bytes();
    let code = bytes.get(..3)?;
    let ends_code = matches!(bytes.get(3), None | Some(b' ' | b'-'));
    if ends_code && code.iter().all(u8::is_ascii_digit) {
        content[..3].parse().ok()
    } else {
        None
    }
}

/// How many client answers follow an AUTH command, and whether its own
/// argument is a credential.
struct AuthCommand {
    argument: Option<Range<usize>>,
    answers_expected: usize,
}

fn parse_auth_command(text: &str, content: Range<usize>) -> Option<AuthCommand> {
    let line = &text[content.clone()];
    if !line.get(..4).is_some_and(|head| head.eq_ignore_ascii_case("auth")) {
        return None;
    }
    let caps = SMTP_AUTH_COMMAND.captures(line)?;
    let mechanism = caps.name("mechanism")?.as_str().to_ascii_uppercase();
    let argument = caps.name("argument");
    if let Some(argument) = &argument
        && !(argument.as_str() == "=" || is_placeholder_only(argument.as_str()) || is_base64(argument.as_str()))
    {
        return None;
    }
    let answers_in_total = if mechanism == "LOGIN" { 2 } else { 1 };
    let answers_expected = answers_in_total - usize::from(argument.is_some());
    let argument = argument
        .filter(|argument| is_base64(argument.as_str()))
        .map(|argument| content.start + argument.start()..content.start + argument.end());
    Some(AuthCommand {
        argument,
        answers_expected,
    })
}

struct PendingAnswers {
    remaining: usize,
    lines_left: usize,
}

/// After `AUTH LOGIN` the client sends its username and password as base64
/// lines, interleaved with `334` prompts from the server.
fn find_smtp_auth_dialogue(text: &str, findings: &mut Vec<Finding>) {
    let mut pending: Option<PendingAnswers> = None;
    let mut line_start = 0;
    for raw_line in text.split_inclusive('\n') {
        let line = line_start..line_start + raw_line.len();
        line_start = line.end;
        let parsed = parse_smtp_line(text, line);

        if let SmtpLine::Client { content, .. } = &parsed
            && let Some(command) = parse_auth_command(text, content.clone())
        {
            if let Some(argument) = command.argument {
                findings.push(Finding {
                    range: argument,
                    kind: SecretKind::SmtpAuthCredentials,
                });
            }
            pending = (command.answers_expected > 0).then_some(PendingAnswers {
                remaining: command.answers_expected,
                lines_left: SMTP_AUTH_LOOKAHEAD_LINES,
            });
            continue;
        }

        let Some(answers) = pending.as_mut() else {
            continue;
        };
        answers.lines_left -= 1;
        match parsed {
            SmtpLine::Blank => {}
            // 334 is "go on"; any other reply ends the exchange.
            SmtpLine::Server { reply_code } => {
                if reply_code.is_some_and(|code| code != 334) {
                    pending = None;
                    continue;
                }
            }
            SmtpLine::Client { content, marked } => {
                let answer = &text[content.clone()];
                // Counting an earlier pass's placeholder as an answer keeps
                // the next pass from reaching for the line after it.
                let is_answer =
                    is_placeholder_only(answer) || (is_base64(answer) && (marked || answer.len().is_multiple_of(4)));
                if !is_answer {
                    pending = None;
                    continue;
                }
                if !is_placeholder_only(answer) {
                    findings.push(Finding {
                        range: content,
                        kind: SecretKind::SmtpAuthCredentials,
                    });
                }
                answers.remaining -= 1;
            }
        }
        if answers.remaining == 0 || answers.lines_left == 0 {
            pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as ValueError, StrDeserializer};

    const ALL_KINDS: [SecretKind; 7] = [
        SecretKind::Password,
        SecretKind::ApiKey,
        SecretKind::SendgridApiKey,
        SecretKind::AwsAccessKeyId,
        SecretKind::PrivateKey,
        SecretKind::CardNumber,
        SecretKind::SmtpAuthCredentials,
    ];

    const SENDGRID_KEY: &str = "SG.abcdefghij_klmnopqrstu.ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnop";

    /// Asserts the exact output and that redacting it again is a no-op.
    fn assert_redacts(input: &str, expected: &str, kinds: &[SecretKind]) {
        let result = redact(input);
        assert_eq!(result.text, expected, "input: {input:?}");
        assert_eq!(result.found, kinds, "input: {input:?}");
        let again = redact(&result.text);
        assert_eq!(again.text, result.text, "not idempotent for {input:?}");
        assert!(
            again.is_clean(),
            "second pass found {:?} in {:?}",
            again.found,
            result.text
        );
    }

    fn assert_untouched(input: &str) {
        let result = redact(input);
        assert_eq!(result.text, input);
        assert!(result.is_clean(), "found {:?} in {input:?}", result.found);
    }

    // --- SecretKind -------------------------------------------------------

    #[test]
    fn kind_names_match_their_serde_names() {
        for kind in ALL_KINDS {
            let deserializer: StrDeserializer<'_, ValueError> = kind.as_str().into_deserializer();
            assert_eq!(SecretKind::deserialize(deserializer), Ok(kind));
        }
    }

    #[test]
    fn kinds_have_labels_and_advice() {
        assert_eq!(SecretKind::Password.label(), "a password");
        assert_eq!(SecretKind::ApiKey.label(), "an API key");
        assert_eq!(SecretKind::CardNumber.label(), "a payment card number");
        assert!(SecretKind::CardNumber.rotate_advice().contains("bank"));
        for kind in ALL_KINDS {
            assert!(!kind.label().is_empty());
            let advice = kind.rotate_advice();
            assert!(advice.ends_with('.') && advice.matches(". ").count() == 0, "{advice}");
        }
    }

    // --- Passwords --------------------------------------------------------

    #[test]
    fn password_phrases_are_redacted() {
        use SecretKind::Password;
        assert_redacts("password: hunter2", "password: [redacted]", &[Password]);
        assert_redacts("Password=hunter2", "Password=[redacted]", &[Password]);
        assert_redacts("PASSWORD = hunter2 thanks", "PASSWORD = [redacted] thanks", &[Password]);
        assert_redacts("pwd: s3cr3t!", "pwd: [redacted]", &[Password]);
        assert_redacts("passwd hunter2", "passwd [redacted]", &[Password]);
        assert_redacts(
            "USER bob\nPASS hunter2\n+OK",
            "USER bob\nPASS [redacted]\n+OK",
            &[Password],
        );
        assert_redacts("pass: letmein", "pass: [redacted]", &[Password]);
        assert_redacts(
            "Hi, my password is hunter2 and it fails",
            "Hi, my password is [redacted] and it fails",
            &[Password],
        );
        assert_redacts(
            "the password is \"correct horse battery\".",
            "the password is \"[redacted]\".",
            &[Password],
        );
        assert_redacts("new password: Tr0ub4dor&3", "new password: [redacted]", &[Password]);
        assert_redacts("mot de passe : Soleil2026", "mot de passe : [redacted]", &[Password]);
        assert_redacts(
            "mon mot de passe est Soleil2026",
            "mon mot de passe est [redacted]",
            &[Password],
        );
        assert_redacts("DB_PASSWORD=hunter2", "DB_PASSWORD=[redacted]", &[Password]);
        assert_redacts("password:hunter2", "password:[redacted]", &[Password]);
        assert_redacts("the password was: hunter2", "the password was: [redacted]", &[Password]);
    }

    #[test]
    fn quoted_passwords_keep_their_quotes() {
        use SecretKind::Password;
        assert_redacts(
            r#"{"user": "bob", "password": "hunter 2"}"#,
            r#"{"user": "bob", "password": "[redacted]"}"#,
            &[Password],
        );
        assert_redacts(r#"{"password":"pa\"ss"}"#, r#"{"password":"[redacted]"}"#, &[Password]);
        assert_redacts("password: 'abc def'", "password: '[redacted]'", &[Password]);
        assert_redacts("password: “Été 2026”", "password: “[redacted]”", &[Password]);
        assert_redacts("password: \"unterminated", "password: \"[redacted]", &[Password]);
    }

    #[test]
    fn ordinary_sentences_about_passwords_stay() {
        for input in [
            "I forgot my password",
            "I forgot my password.",
            "Please send me a password reset link",
            "How do I reset your password form?",
            "My password is not working",
            "the password is wrong, can you help?",
            "My password is expired.",
            "password:",
            "password: ",
            "password:\nhunter2",
            "passwords must be 12 characters",
            "passwordless login",
            "bypass: the queue",
            "compass=north",
            "The secret is out",
            "The pass is valid until Friday",
            "I typed password and nothing happened",
            "Did the exam pass or fail?",
            "I pass my details below",
        ] {
            assert_untouched(input);
        }
    }

    #[test]
    fn password_phrases_in_quoted_replies_are_redacted() {
        assert_redacts(
            "Thanks!\n> password: x\n> user: bob",
            "Thanks!\n> password: [redacted]\n> user: bob",
            &[SecretKind::Password],
        );
        assert_redacts(
            ">> Password = hunter2",
            ">> Password = [redacted]",
            &[SecretKind::Password],
        );
    }

    // --- API keys and tokens ----------------------------------------------

    #[test]
    fn api_key_phrases_are_redacted() {
        use SecretKind::ApiKey;
        assert_redacts("api_key=abc123", "api_key=[redacted]", &[ApiKey]);
        assert_redacts("api_key: abc123", "api_key: [redacted]", &[ApiKey]);
        assert_redacts("apikey abc123", "apikey [redacted]", &[ApiKey]);
        assert_redacts("My API key: abc123 thanks", "My API key: [redacted] thanks", &[ApiKey]);
        assert_redacts(r#"{"api_key": "abc123"}"#, r#"{"api_key": "[redacted]"}"#, &[ApiKey]);
        assert_redacts("api_secret=s3cr3t", "api_secret=[redacted]", &[ApiKey]);
        assert_redacts("secret=s3cr3t", "secret=[redacted]", &[ApiKey]);
        assert_redacts("token=abc.def", "token=[redacted]", &[ApiKey]);
        assert_redacts("access_token: ya29.a0Af", "access_token: [redacted]", &[ApiKey]);
        assert_redacts("X-API-Key: abc123", "X-API-Key: [redacted]", &[ApiKey]);
        assert_redacts("the api key is abc123", "the api key is [redacted]", &[ApiKey]);
        assert_redacts(
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
            "aws_secret_access_key = [redacted]",
            &[ApiKey],
        );
    }

    #[test]
    fn query_parameters_after_a_secret_stay() {
        assert_redacts(
            "https://example.com/reset?token=abc123&user=bob#top",
            "https://example.com/reset?token=[redacted]&user=bob#top",
            &[SecretKind::ApiKey],
        );
        assert_redacts(
            "https://example.com/login?user=bob&password=hunter2",
            "https://example.com/login?user=bob&password=[redacted]",
            &[SecretKind::Password],
        );
        assert_untouched("https://example.com/reset?token=&user=bob");
    }

    #[test]
    fn json_literals_are_not_secrets() {
        assert_untouched(r#"{"password":null,"token":""}"#);
        assert_untouched(r#"{"password": false}"#);
    }

    #[test]
    fn authorization_headers_keep_the_scheme() {
        assert_redacts(
            "Authorization: Bearer abc.def.ghi",
            "Authorization: Bearer [redacted]",
            &[SecretKind::ApiKey],
        );
        assert_redacts(
            "curl -H 'Authorization: Basic dXNlcjpwYXNz' https://x",
            "curl -H 'Authorization: Basic [redacted]' https://x",
            &[SecretKind::Password],
        );
        assert_redacts(
            "Authorization: abc123",
            "Authorization: [redacted]",
            &[SecretKind::ApiKey],
        );
    }

    #[test]
    fn bare_key_words_without_api_stay() {
        for input in [
            "key=value",
            "the key is under the mat",
            "monkey: banana",
            "My API key stopped working",
            "Where do I find my api key?",
            "the token is expired",
            "tokenizer: bert",
            "apikey for my account",
        ] {
            assert_untouched(input);
        }
    }

    #[test]
    fn well_known_token_formats_are_redacted_anywhere() {
        assert_redacts(
            "use ghp_abcdefghijklmnopqrstuvwxyz0123456789 please",
            "use [redacted] please",
            &[SecretKind::ApiKey],
        );
        assert_redacts(
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
            "jwt [redacted] end",
            &[SecretKind::ApiKey],
        );
        assert_redacts("sk_live_abcdefghijklmnop1234", "[redacted]", &[SecretKind::ApiKey]);
    }

    // --- SendGrid ---------------------------------------------------------

    #[test]
    fn sendgrid_keys_are_redacted_anywhere() {
        assert_redacts(
            &format!("my key {SENDGRID_KEY}, thanks"),
            "my key [redacted], thanks",
            &[SecretKind::SendgridApiKey],
        );
        assert_redacts(
            &format!("(x{SENDGRID_KEY})"),
            "(x[redacted])",
            &[SecretKind::SendgridApiKey],
        );
        assert_redacts(
            &format!("api_key={SENDGRID_KEY}"),
            "api_key=[redacted]",
            &[SecretKind::SendgridApiKey],
        );
    }

    #[test]
    fn sendgrid_lookalikes_stay() {
        assert_untouched("SG.short.key");
        assert_untouched("Version SG.1.2 released");
        // One character short in the first part.
        assert_untouched("SG.abcdefghij_klmnopqrst.ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnop");
    }

    // --- AWS --------------------------------------------------------------

    #[test]
    fn aws_access_key_ids_are_redacted() {
        assert_redacts(
            "key id AKIAIOSFODNN7EXAMPLE, region eu-west-1",
            "key id [redacted], region eu-west-1",
            &[SecretKind::AwsAccessKeyId],
        );
        assert_redacts(
            "\"ASIAY34FZKBOKMUTVV7A\"",
            "\"[redacted]\"",
            &[SecretKind::AwsAccessKeyId],
        );
    }

    #[test]
    fn aws_lookalikes_stay() {
        assert_untouched("AKIA123");
        assert_untouched("XAKIAIOSFODNN7EXAMPLE");
        assert_untouched("AKIAIOSFODNN7EXAMPLEXYZ");
        assert_untouched("akiaiosfodnn7example");
    }

    // --- Private keys -----------------------------------------------------

    #[test]
    fn private_key_blocks_are_redacted_whole() {
        for label in ["", "RSA ", "EC ", "OPENSSH ", "DSA ", "ENCRYPTED "] {
            let input = format!(
                "Here it is:\n-----BEGIN {label}PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END {label}PRIVATE KEY-----\nBest, Bob"
            );
            assert_redacts(&input, "Here it is:\n[redacted]\nBest, Bob", &[SecretKind::PrivateKey]);
        }
    }

    #[test]
    fn unterminated_private_key_runs_to_the_end() {
        assert_redacts(
            "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nsorry, cut off",
            "key:\n[redacted]",
            &[SecretKind::PrivateKey],
        );
    }

    #[test]
    fn quoted_private_key_is_redacted() {
        assert_redacts(
            "> -----BEGIN OPENSSH PRIVATE KEY-----\n> b3BlbnNzaC1rZXktdjEAAAAA\n> -----END OPENSSH PRIVATE KEY-----\nok?",
            "> [redacted]\nok?",
            &[SecretKind::PrivateKey],
        );
    }

    #[test]
    fn public_keys_and_certificates_stay() {
        assert_untouched("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----");
        assert_untouched("-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+g\n-----END CERTIFICATE-----");
    }

    // --- Cards ------------------------------------------------------------

    #[test]
    fn luhn_valid_card_numbers_are_redacted() {
        use SecretKind::CardNumber;
        assert_redacts(
            "card 4111 1111 1111 1111 exp 12/27",
            "card [redacted] exp 12/27",
            &[CardNumber],
        );
        assert_redacts("card 4111-1111-1111-1111.", "card [redacted].", &[CardNumber]);
        assert_redacts("4111111111111111", "[redacted]", &[CardNumber]);
        assert_redacts("amex 3782 822463 10005", "amex [redacted]", &[CardNumber]);
        assert_redacts("カード4111111111111111です", "カード[redacted]です", &[CardNumber]);
        assert_redacts("ref 12 4111 1111 1111 1111", "ref 12 [redacted]", &[CardNumber]);
    }

    #[test]
    fn digit_runs_that_are_not_cards_stay() {
        for input in [
            "order 4111 1111 1111 1112",
            "order 4111111111111112",
            "sent at 20261120100003",
            "call +44 20 7946 0958 or 555-123-4567",
            "tracking 1Z999AA10123456784",
            "run 4111111111111111111111",
            "id A4111111111111111",
            "pi is 3.4111111111111111",
            "2026-11-20 10:00:03",
        ] {
            assert_untouched(input);
        }
    }

    #[test]
    fn the_timestamp_in_the_brief_fails_luhn() {
        assert!(!passes_luhn("20261120100003".bytes()));
        assert!(passes_luhn("4111111111111111".bytes()));
        assert!(passes_luhn("79927398713".bytes()));
    }

    // --- SMTP -------------------------------------------------------------

    #[test]
    fn auth_login_transcript_is_redacted() {
        let transcript = "\
S: 220 smtp.example.com ESMTP
C: EHLO client.example.net
S: 250-smtp.example.com
S: 250 AUTH LOGIN PLAIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: Ym9iQGV4YW1wbGUubmV0
S: 334 UGFzc3dvcmQ6
C: aHVudGVyMg==
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<bob@example.net>
";
        let expected = "\
S: 220 smtp.example.com ESMTP
C: EHLO client.example.net
S: 250-smtp.example.com
S: 250 AUTH LOGIN PLAIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: [redacted]
S: 334 UGFzc3dvcmQ6
C: [redacted]
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<bob@example.net>
";
        assert_redacts(transcript, expected, &[SecretKind::SmtpAuthCredentials]);
    }

    #[test]
    fn auth_login_transcript_quoted_without_markers_is_redacted() {
        let transcript = "\
Here is the log:
> AUTH LOGIN
> 334 VXNlcm5hbWU6
> Ym9iQGV4YW1wbGUubmV0
> 334 UGFzc3dvcmQ6
> aHVudGVyMg==
> 535 5.7.8 Authentication failed
Thanks";
        let expected = "\
Here is the log:
> AUTH LOGIN
> 334 VXNlcm5hbWU6
> [redacted]
> 334 UGFzc3dvcmQ6
> [redacted]
> 535 5.7.8 Authentication failed
Thanks";
        assert_redacts(transcript, expected, &[SecretKind::SmtpAuthCredentials]);
    }

    #[test]
    fn swaks_style_transcript_is_redacted() {
        let transcript = "\
 -> AUTH LOGIN\r
<-  334 VXNlcm5hbWU6\r
 -> Ym9i\r
<-  334 UGFzc3dvcmQ6\r
 -> aHVudGVyMg\r
<-  235 2.7.0 ok\r
";
        let expected = "\
 -> AUTH LOGIN\r
<-  334 VXNlcm5hbWU6\r
 -> [redacted]\r
<-  334 UGFzc3dvcmQ6\r
 -> [redacted]\r
<-  235 2.7.0 ok\r
";
        assert_redacts(transcript, expected, &[SecretKind::SmtpAuthCredentials]);
    }

    #[test]
    fn auth_login_with_initial_username_redacts_it_and_the_password() {
        assert_redacts(
            "C: AUTH LOGIN Ym9iQGV4YW1wbGUubmV0\nS: 334 UGFzc3dvcmQ6\nC: aHVudGVyMg==\nC: QUIT",
            "C: AUTH LOGIN [redacted]\nS: 334 UGFzc3dvcmQ6\nC: [redacted]\nC: QUIT",
            &[SecretKind::SmtpAuthCredentials],
        );
    }

    #[test]
    fn auth_plain_argument_is_redacted() {
        assert_redacts(
            "C: AUTH PLAIN AGJvYgBodW50ZXIy\nS: 235 ok\nC: QUIT",
            "C: AUTH PLAIN [redacted]\nS: 235 ok\nC: QUIT",
            &[SecretKind::SmtpAuthCredentials],
        );
        assert_redacts(
            "The log says AUTH PLAIN AGJvYgBodW50ZXIy and then 535.",
            "The log says AUTH PLAIN [redacted] and then 535.",
            &[SecretKind::SmtpAuthCredentials],
        );
        assert_redacts(
            "AUTH PLAIN\n334 \nAGJvYgBodW50ZXIy\n235 ok",
            "AUTH PLAIN\n334 \n[redacted]\n235 ok",
            &[SecretKind::SmtpAuthCredentials],
        );
    }

    #[test]
    fn prose_about_smtp_auth_stays() {
        for input in [
            "My client sends AUTH LOGIN and then fails.\nThanks\nBob",
            "Does the server support AUTH PLAIN with TLS?",
            "Set auth login required in settings",
            "C: AUTH LOGIN\nS: 535 5.7.8 nope\nC: QUIT",
            "AUTH LOGIN\nThanks for your help\nBob",
        ] {
            assert_untouched(input);
        }
    }

    #[test]
    fn answer_after_an_earlier_redaction_is_still_found() {
        // The private key hides the first answer line; the password line
        // behind it must still go.
        let input =
            "C: AUTH LOGIN\n-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\nC: aHVudGVyMg==\nS: 235 ok";
        let result = redact(input);
        assert!(!result.text.contains("aHVudGVyMg=="), "{}", result.text);
        assert_eq!(redact(&result.text).text, result.text);
    }

    // --- Mixed ------------------------------------------------------------

    #[test]
    fn several_secrets_in_one_text_are_all_redacted() {
        let input = format!(
            "Hello,\nmy password is hunter2 and the api_key={SENDGRID_KEY}.\n\
             AWS: AKIAIOSFODNN7EXAMPLE\nCard: 4111 1111 1111 1111\n\
             -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n\
             > AUTH PLAIN AGJvYgBodW50ZXIy\nRegards"
        );
        let result = redact(&input);
        assert_eq!(
            result.text,
            "Hello,\nmy password is [redacted] and the api_key=[redacted]\n\
             AWS: [redacted]\nCard: [redacted]\n[redacted]\n> AUTH PLAIN [redacted]\nRegards"
        );
        assert_eq!(result.found, ALL_KINDS);
        assert_eq!(redact(&result.text).text, result.text);
    }

    #[test]
    fn clean_text_is_returned_unchanged() {
        assert_untouched("");
        assert_untouched("Hello, I cannot log in since yesterday. Order 12345. Merci, Zoë 日本");
    }

    #[test]
    fn multi_byte_characters_next_to_secrets_survive() {
        assert_redacts("pässword: x", "pässword: x", &[]);
        assert_redacts(
            "日本password:秘密ü next",
            "日本password:[redacted] next",
            &[SecretKind::Password],
        );
        assert_redacts("éAKIAIOSFODNN7EXAMPLEé", "é[redacted]é", &[SecretKind::AwsAccessKeyId]);
        assert_redacts("€4111111111111111€", "€[redacted]€", &[SecretKind::CardNumber]);
    }

    #[test]
    fn a_megabyte_mail_is_redacted_quickly() {
        let paragraph = "Hello, I forgot my password and the reset link from order 12345678 \
                         expired on 2026-11-20 at 10:00. Can you help? Merci, Zoë — 日本語. \n";
        let mut body = paragraph.repeat(1_000_000 / paragraph.len());
        body.push_str("password: hunter2\n4111 1111 1111 1111\n");
        let started = std::time::Instant::now();
        let result = redact(&body);
        let elapsed = started.elapsed();
        assert!(!result.text.contains("hunter2"));
        // Generous so that unoptimised test builds pass too; release builds
        // take a few milliseconds.
        assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    }

    // --- Properties -------------------------------------------------------

    fn card_number() -> impl Strategy<Value = String> {
        (proptest::collection::vec(0u8..10, 14), any::<bool>()).prop_map(|(mut digits, grouped)| {
            digits.insert(0, 4);
            let partial: Vec<u8> = digits.iter().map(|digit| b'0' + digit).collect();
            let check = (0..10u8)
                .find(|&check| {
                    let mut candidate = partial.clone();
                    candidate.push(b'0' + check);
                    passes_luhn(candidate.into_iter())
                })
                .unwrap_or(0);
            digits.push(check);
            let text: String = digits.iter().map(|digit| char::from(b'0' + digit)).collect();
            if grouped {
                text.as_bytes()
                    .chunks(4)
                    .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                text
            }
        })
    }

    /// A secret and the sentence that carries it.
    fn injected_secret() -> impl Strategy<Value = (String, String)> {
        let word = "[A-Za-z0-9!#%&*+^~]{10,24}";
        prop_oneof![
            word.prop_map(|secret| (format!("password: {secret}"), secret)),
            word.prop_map(|secret| (format!("my password is {secret}"), secret)),
            word.prop_map(|secret| (format!("\"api_key\": \"{secret}\""), secret)),
            word.prop_map(|secret| (format!("token={secret}"), secret)),
            ("[A-Za-z0-9_-]{22}", "[A-Za-z0-9_-]{43}").prop_map(|(a, b)| {
                let key = format!("SG.{a}.{b}");
                (key.clone(), key)
            }),
            "AKIA[A-Z0-9]{16}".prop_map(|key| (key.clone(), key)),
            card_number().prop_map(|card| (card.clone(), card)),
            "[A-Za-z0-9+/]{20,40}".prop_map(|blob| {
                let secret = format!("{blob}==");
                (format!("C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {secret}"), secret)
            }),
            "[A-Za-z0-9+/]{24,40}".prop_map(|body| {
                (
                    format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"),
                    body,
                )
            }),
        ]
    }

    fn mail_like_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,120}",
            proptest::collection::vec(
                prop_oneof![
                    Just("password".to_owned()),
                    Just("password:".to_owned()),
                    Just("is".to_owned()),
                    Just("AUTH LOGIN\n".to_owned()),
                    Just("> ".to_owned()),
                    Just("\n".to_owned()),
                    Just("=".to_owned()),
                    Just("\"".to_owned()),
                    Just(REDACTED.to_owned()),
                    Just("-----BEGIN PRIVATE KEY-----".to_owned()),
                    Just("4111 ".to_owned()),
                    Just("1111".to_owned()),
                    Just("aGVsbG8=".to_owned()),
                    Just("334 x\n".to_owned()),
                    Just("é".to_owned()),
                    Just("Authorization: ".to_owned()),
                    Just("Basic ".to_owned()),
                    Just("Digest ".to_owned()),
                    Just("PASS ".to_owned()),
                    Just("?token=".to_owned()),
                    Just("&".to_owned()),
                    Just("null,".to_owned()),
                    Just("'".to_owned()),
                    Just("“".to_owned()),
                    Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
                    Just(SENDGRID_KEY.to_owned()),
                    Just("C: ".to_owned()),
                    Just("-> ".to_owned()),
                    Just("AUTH PLAIN ".to_owned()),
                    Just("-".to_owned()),
                    Just(":".to_owned()),
                    Just(" is ".to_owned()),
                    Just("-----END PRIVATE KEY-----".to_owned()),
                    Just("4111111111111111".to_owned()),
                    Just("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.x".to_owned()),
                    "[a-z0-9 ]{1,8}",
                ],
                0..32,
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn redact_is_idempotent(input in mail_like_text()) {
            let once = redact(&input);
            let twice = redact(&once.text);
            prop_assert_eq!(&twice.text, &once.text);
            prop_assert!(twice.is_clean(), "found {:?} in {:?}", twice.found, once.text);
        }

        #[test]
        fn found_is_sorted_and_distinct(input in mail_like_text()) {
            let found = redact(&input).found;
            prop_assert!(found.windows(2).all(|pair| pair[0] < pair[1]));
        }

        #[test]
        fn injected_secrets_disappear(
            before in mail_like_text(),
            (sentence, secret) in injected_secret(),
            after in mail_like_text(),
        ) {
            let input = format!("{before}\n{sentence}\n{after}");
            let result = redact(&input);
            prop_assert!(!result.text.contains(&secret), "{:?} left in {:?}", secret, result.text);
            prop_assert!(!result.is_clean());
        }
    }
}
