//! The base64 credentials of a quoted SMTP session: the argument of
//! `AUTH PLAIN <blob>` (and of the other mechanisms that carry one), and the
//! client's answers on the lines after `AUTH LOGIN`.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use super::lookahead;
use super::{
    Finding, SecretKind, base64_group, base64_sextet, glued_before, is_base64, is_base64_alphabet, is_placeholder_only,
};

/// How many lines after `AUTH LOGIN` may still carry the client's answers.
const SMTP_AUTH_LOOKAHEAD_LINES: usize = 8;

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

pub(super) fn find_smtp_auth_arguments(text: &str, findings: &mut Vec<Finding>) {
    // One search; a match ends with its base64 argument.
    lookahead::count(text.len());
    for caps in SMTP_AUTH_ARGUMENT.captures_iter(text) {
        let (Some(whole), Some(argument)) = (caps.get(0), caps.name("argument")) else {
            continue;
        };
        lookahead::count(whole.len());
        if glued_before(text, whole.start())
            || text[argument.end()..]
                .bytes()
                .next()
                .is_some_and(|byte| is_base64_alphabet(byte) || byte == b'=')
        {
            continue;
        }
        // In running prose "AUTH PLAIN with ..." is not a credential; real
        // arguments are padded base64 blobs with digits or mixed case, or
        // decode to the NUL-separated fields of a PLAIN exchange (padding or
        // not): that blob goes whole, authorisation identity and username
        // included, never only its password.
        if looks_like_base64_blob(argument.as_str()) || decodes_to_plain_credentials(argument.as_str()) {
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

/// The message of `AUTH PLAIN` already decoded: `authzid NUL username NUL
/// password` with real NUL characters, or, as typed to produce a blob
/// (`printf '\0bob\0hunter2' | base64`), with `\0`, `\x00`, `\000` or
/// `\u0000` written out. The typed form must start a word or a quoted string
/// and leave the authorisation identity empty, so that a path such as
/// `C:\001\002` is not taken for one.
static DECODED_PLAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"[^\s\x00]*\x00[^\s\x00]+\x00[^\s\x00]+",
        r#"|(?:\A|[\s'"=(])(?:\\x00|\\000|\\u0000|\\0)[^\s\x00'"\\]+"#,
        r#"(?:\\x00|\\000|\\u0000|\\0)[^\s\x00'"]+"#,
    ))
    .unwrap()
});

/// Base64 words that decode to a PLAIN message, anywhere in the text, and
/// the decoded message itself: both are the username and the password
/// together, and go whole.
pub(super) fn find_plain_credentials(text: &str, findings: &mut Vec<Finding>) {
    find_plain_blobs(text, findings);
    // The decoded forms need a NUL or a backslash; most text has neither.
    lookahead::count(text.len());
    if memchr::memchr2(0, b'\\', text.as_bytes()).is_none() {
        return;
    }
    // Without captures (one match every few bytes in hostile text): a match
    // with a NUL is the first form, else the second, after its lead character.
    for found in DECODED_PLAIN.find_iter(text) {
        lookahead::count(found.len());
        let mut range = found.range();
        let fields = if found.as_str().contains('\0') {
            let mut fields = found.as_str().split('\0').skip(1);
            fields.next().zip(fields.next())
        } else {
            if !found.as_str().starts_with('\\') {
                range.start += found.as_str().chars().next().map_or(0, char::len_utf8);
            }
            typed_fields(&text[range.clone()])
        };
        let Some((username, password)) = fields else {
            continue;
        };
        // Placeholders between NULs are what an earlier pass left.
        if is_placeholder_only(username) && is_placeholder_only(password) {
            continue;
        }
        findings.push(Finding {
            range,
            kind: SecretKind::SmtpAuthCredentials,
        });
    }
}

/// Words of base64 (padding included, nothing glued on) that decode to a
/// PLAIN message, wherever they stand: its `AUTH PLAIN` may be on another
/// line, or gone. One pass over the bytes, which also counts the NULs each word
/// decodes to; a word is decoded only when that count is two (see
/// [`decodes_to_plain_credentials`]).
pub(super) fn find_plain_blobs(text: &str, findings: &mut Vec<Finding>) {
    /// `\0a\0b` in base64 is 7 characters.
    const MIN_BLOB_CHARS: usize = 6;
    lookahead::count(text.len());
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(start) = next_word_with_a_nul(bytes, at) {
        at = start;
        let mut nuls = NulCount::default();
        // Whole groups first, four characters at a time: most words this long are the lines
        // of a base64 attachment scanned with the raw message.
        while let Some(group) = bytes.get(at..at + 4).and_then(base64_group) {
            nuls.push_group(group);
            at += 4;
        }
        while let Some(sextet) = bytes.get(at).copied().and_then(base64_sextet) {
            nuls.push(sextet);
            at += 1;
        }
        let data_end = at;
        while at < bytes.len() && at - data_end < 2 && bytes[at] == b'=' {
            at += 1;
        }
        let glued = bytes
            .get(at)
            .is_some_and(|&byte| byte == b'=' || is_base64_alphabet(byte));
        if !glued
            && data_end - start >= MIN_BLOB_CHARS
            && nuls.total == 2
            && decodes_to_plain_credentials(&text[start..at])
        {
            findings.push(Finding {
                range: start..at,
                kind: SecretKind::SmtpAuthCredentials,
            });
        }
    }
}

/// Where the next word of base64 at or after `from` begins that holds a character from `A` to
/// `D`. Every NUL byte a word decodes to needs one of its own (byte 0 of a group needs the
/// group's first character to be `A`, byte 1 its third in `A`–`D`, byte 2 its fourth `A`), so
/// a word with none cannot be a PLAIN message, and most words of prose have none: their bytes
/// are only compared, many at a time, instead of counted one by one. The way back to the
/// word's beginning stays inside the word, which is then read forward once.
fn next_word_with_a_nul(bytes: &[u8], from: usize) -> Option<usize> {
    let candidate = from + position_of_a_to_d(&bytes[from..])?;
    let word_start = bytes[from..candidate]
        .iter()
        .rposition(|&byte| !is_base64_alphabet(byte))
        .map_or(from, |before| from + before + 1);
    Some(word_start)
}

/// The first byte from `A` to `D`. In blocks with no branch inside, which the compiler turns
/// into vector compares: this is the scan that every byte of every text goes through.
fn position_of_a_to_d(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 32;
    let a_to_d = |byte: u8| byte.wrapping_sub(b'A') < 4;
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut offset = 0;
    for block in &mut blocks {
        if block.iter().fold(false, |any, &byte| any | a_to_d(byte)) {
            return block.iter().position(|&byte| a_to_d(byte)).map(|i| offset + i);
        }
        offset += BLOCK;
    }
    blocks
        .remainder()
        .iter()
        .position(|&byte| a_to_d(byte))
        .map(|i| offset + i)
}

/// The username and password of a PLAIN message with its NULs typed out
/// (`\0bob\0hunter2`); the username holds no backslash.
fn typed_fields(message: &str) -> Option<(&str, &str)> {
    const SEPARATORS: [&str; 4] = ["\\x00", "\\000", "\\u0000", "\\0"];
    let strip = |text: &'_ str| -> Option<usize> {
        SEPARATORS
            .iter()
            .find(|separator| text.starts_with(**separator))
            .map(|separator| separator.len())
    };
    let rest = &message[strip(message)?..];
    let username_end = rest.find('\\')?;
    let (username, rest) = rest.split_at(username_end);
    Some((username, &rest[strip(rest)?..]))
}

/// Whether `value` is base64 (padded or not) of `authzid NUL authcid NUL
/// password`, the message of `AUTH PLAIN`: exactly two NULs, and a username
/// and a password of printable text. Ordinary words decode to bytes too, but
/// not to that shape.
pub(crate) fn decodes_to_plain_credentials(value: &str) -> bool {
    use base64::Engine;
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    lookahead::count(value.len());
    // Exactly two NUL bytes, counted before anything is decoded: ordinary words and the
    // lines of a base64 attachment (scanned with the raw message) are let go without an
    // allocation.
    if nul_bytes(value).is_some_and(|nuls| nuls != 2) {
        return false;
    }
    let Ok(bytes) = ENGINE.decode(value) else {
        return false;
    };
    let fields: Vec<&[u8]> = bytes.split(|&byte| byte == 0).collect();
    let printable = |field: &[u8]| {
        std::str::from_utf8(field).is_ok_and(|text| !text.is_empty() && !text.chars().any(char::is_control))
    };
    matches!(fields.as_slice(), [authzid, authcid, password]
        if (authzid.is_empty() || printable(authzid)) && printable(authcid) && printable(password))
}

/// How many NUL bytes `value` decodes to, read off its characters: byte 0 of a group of four
/// characters is NUL when the first is `A` (0) and the second worth less than 16, byte 1
/// when the second's low four bits and the third's high four are zero, byte 2 when the third's
/// low two bits are zero and the fourth is `A`. `None` when a character is not base64 (the
/// decoder then says what it is). Padding ends the value; a group cut short decodes to the
/// bytes its characters fill.
pub(super) fn nul_bytes(value: &str) -> Option<usize> {
    let mut nuls = NulCount::default();
    for byte in value.trim_end_matches('=').bytes() {
        nuls.push(base64_sextet(byte)?);
    }
    Some(nuls.total)
}

/// The NUL bytes of base64 counted as its characters come, four to a group (see
/// [`nul_bytes`]), for the word scan and the check of a value. The rule is written twice, a
/// character at a time and a whole group at once (the word scan's fast path); property tests
/// hold both to what the decoder finds.
#[derive(Default)]
struct NulCount {
    group: [u8; 4],
    filled: usize,
    total: usize,
}

impl NulCount {
    /// A whole group of four, when no character is pending.
    fn push_group(&mut self, [c0, c1, c2, c3]: [u8; 4]) {
        debug_assert_eq!(self.filled, 0);
        self.total +=
            usize::from(c0 == 0 && c1 < 16) + usize::from(c1 & 15 == 0 && c2 < 4) + usize::from(c2 & 3 == 0 && c3 == 0);
    }

    fn push(&mut self, sextet: u8) {
        self.group[self.filled] = sextet;
        self.filled += 1;
        let [c0, c1, c2, c3] = self.group;
        let nul = match self.filled {
            2 => c0 == 0 && c1 < 16,
            3 => c1 & 15 == 0 && c2 < 4,
            4 => {
                self.filled = 0;
                c2 & 3 == 0 && c3 == 0
            }
            _ => false,
        };
        self.total += usize::from(nul);
    }
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
    lookahead::count(line.len());
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
pub(super) fn find_smtp_auth_dialogue(text: &str, findings: &mut Vec<Finding>) {
    dialogue(text, findings, true);
}

/// Every `auth` in any case, for [`dialogue`]'s skip: Teddy's vectorised search for the
/// sixteen spellings (an automaton built to fold case picks a prefilter on two bytes that
/// common text is full of, and costs more than reading every line). `None` where the packed
/// search cannot be built: then every line is read.
static AUTH_ANY_CASE: LazyLock<Option<aho_corasick::packed::Searcher>> = LazyLock::new(|| {
    let spellings = (0..16u8).map(|mask| {
        (0..4)
            .map(|i| {
                let letter = b"auth"[i];
                if mask & (1 << i) == 0 {
                    letter
                } else {
                    letter.to_ascii_uppercase()
                }
            })
            .collect::<Vec<u8>>()
    });
    aho_corasick::packed::Searcher::new(spellings)
});

/// The scan of [`find_smtp_auth_dialogue`]. With `skip`, the lines before the next one that
/// holds `auth` are passed over while no exchange is open: such a line is not an `AUTH`
/// command, and with no exchange open it changes nothing. Every line of every view was split
/// off (`split_inclusive`, 2 % of a parsing thread on mail with attachments) and its markers
/// read (docs/benchmarks.md, "The keyword search on folded text"); a test holds the two ways
/// to each other.
pub(super) fn dialogue(text: &str, findings: &mut Vec<Finding>, skip: bool) {
    let bytes = text.as_bytes();
    let mut pending: Option<PendingAnswers> = None;
    let mut line_start = 0;
    while line_start < bytes.len() {
        if skip
            && pending.is_none()
            && let Some(searcher) = AUTH_ANY_CASE.as_ref()
        {
            let Some(auth) = searcher.find(&bytes[line_start..]) else {
                lookahead::count(bytes.len() - line_start);
                break;
            };
            let auth = line_start + auth.start();
            lookahead::count(auth - line_start);
            line_start =
                memchr::memrchr(b'\n', &bytes[line_start..auth]).map_or(line_start, |newline| line_start + newline + 1);
        }
        let line_end =
            memchr::memchr(b'\n', &bytes[line_start..]).map_or(bytes.len(), |newline| line_start + newline + 1);
        let line = line_start..line_end;
        line_start = line_end;
        lookahead::count(line.len());
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
