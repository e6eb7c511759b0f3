//! "password: hunter2", "api_key=…", "my password is hunter2",
//! `Authorization: Bearer …`: a keyword, a delimiter, and the value after it.

use std::collections::HashSet;
use std::ops::Range;

use super::keywords::{Group, PhraseSearch};
use super::lookahead::{self, NextChar};
use super::{Finding, SecretKind, glued_before, is_placeholder_only};

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

pub(super) fn find_credential_phrases(text: &str, findings: &mut Vec<Finding>) {
    // A value that is exactly a recognised token is already reported under
    // its more telling kind ("a SendGrid API key" rather than "an API key").
    let recognised: HashSet<(usize, usize)> = findings
        .iter()
        .map(|finding| (finding.range.start, finding.range.end))
        .collect();
    let mut ends = ValueEnds::default();
    // One pass over the text (keywords.rs): every match here ends a bounded
    // distance after the keyword (the blanks it swallows are not read again
    // by the next search).
    lookahead::count(text.len());
    let mut phrases = PhraseSearch::new(text);
    let mut search_from = 0;
    while let Some(whole) = phrases.next_at(search_from) {
        let (whole_start, whole_end) = (whole.start, whole.end);
        // The pattern never matches an empty string, so this moves on.
        search_from = whole_end.max(whole_start + 1);
        let Some(Range {
            start: keyword_start,
            end: keyword_end,
        }) = phrases.group(Group::Keyword)
        else {
            continue;
        };
        let keyword = &text[keyword_start..keyword_end];
        lookahead::count(whole_end - whole_start);
        if glued_before(text, keyword_start) {
            continue;
        }
        let delimiter = if phrases.group(Group::Strong).is_some() {
            Delimiter::Strong
        } else if phrases.group(Group::Weak).is_some() {
            Delimiter::Weak
        } else {
            Delimiter::Bare
        };
        let is_authorization = phrases.group(Group::Authorization).is_some();
        if !keyword_accepts(is_authorization, keyword, delimiter) {
            continue;
        }
        if is_authorization {
            if let Some(finding) = authorization_credentials(text, whole_end, &mut ends)
                && !recognised.contains(&(finding.range.start, finding.range.end))
            {
                findings.push(finding);
            }
            continue;
        }
        let Some(mut value) = value_after(text, whole_end, &mut ends) else {
            continue;
        };
        if !value.quoted {
            if is_json_literal(&text[value.range.clone()]) {
                continue;
            }
            // In a URL query a password containing `&` would be written
            // `%26`, so `&` ends the value and the other parameters stay.
            if text[..keyword_start].ends_with(['?', '&']) {
                value.range.end = value.range.end.min(ends.query.find(text, value.range.start));
            }
        }
        let value_text = &text[value.range.clone()];
        if is_placeholder_only(value_text)
            || (delimiter != Delimiter::Strong && !value.quoted && is_ordinary_word(value_text))
            || recognised.contains(&(value.range.start, value.range.end))
        {
            continue;
        }
        let kind = if phrases.group(Group::Password).is_some() {
            SecretKind::Password
        } else {
            SecretKind::ApiKey
        };
        // "pass:pass:pass:…" gives values nested in one another; the first
        // covers the others, so they are not kept (a list as long as the
        // text otherwise).
        if let Some(last) = findings.last()
            && last.kind == kind
            && last.range.start <= value.range.start
            && value.range.end <= last.range.end
        {
            continue;
        }
        findings.push(Finding {
            range: value.range,
            kind,
        });
    }
}

/// Which keywords may be followed by which delimiter: "password reset" must
/// stay, "passwd hunter2" is a value, "the secret is out" is prose, and
/// upper-case `PASS hunter2` is the POP3/FTP command.
fn keyword_accepts(is_authorization: bool, keyword: &str, delimiter: Delimiter) -> bool {
    match delimiter {
        Delimiter::Strong => true,
        Delimiter::Weak => {
            !is_authorization && !["pass", "secret"].iter().any(|word| keyword.eq_ignore_ascii_case(word))
        }
        Delimiter::Bare => {
            keyword == "PASS"
                || ["passwd", "apikey"]
                    .iter()
                    .any(|word| keyword.eq_ignore_ascii_case(word))
        }
    }
}

/// `"password": null,` in pasted JSON says there is no password. Only the
/// head of the token is read: it is one of three short words or it is not.
fn is_json_literal(token: &str) -> bool {
    ["null", "true", "false"].iter().any(|literal| {
        token
            .strip_prefix(literal)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([',', '}', ']']))
    })
}

/// Longer than any word of [`ORDINARY_WORDS`] with its punctuation: such a
/// value is never ordinary, and is not lower-cased whole to find that out.
const ORDINARY_WORD_MAX_BYTES: usize = 32;

fn is_ordinary_word(value: &str) -> bool {
    let word = value
        .trim_start_matches(['(', '*', '_'])
        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '*', '_']);
    if word.len() > ORDINARY_WORD_MAX_BYTES {
        return false;
    }
    let word = word.to_lowercase();
    ORDINARY_WORDS.contains(&word.as_str())
}

struct Value {
    range: Range<usize>,
    quoted: bool,
}

/// The remembered forward searches that find where values end; see
/// [`lookahead`] for why they are remembered.
struct ValueEnds {
    /// First character that is not a blank (space or tab).
    non_blank: NextChar,
    /// First whitespace character: the end of a bare token.
    whitespace: NextChar,
    /// First `&` or `#`: the end of a value in a URL query.
    query: NextChar,
    /// First newline: the end of a header line.
    newline: NextChar,
    /// The end of a quoted string, one search per kind of closing quote.
    quotes: [QuoteEnd; CLOSING_QUOTES.len()],
    /// The last line whose trailing whitespace was trimmed: (line end, trimmed end).
    trimmed_line: Option<(usize, usize)>,
}

impl Default for ValueEnds {
    fn default() -> Self {
        Self {
            non_blank: NextChar::new(|c| c != ' ' && c != '\t'),
            whitespace: NextChar::new(char::is_whitespace),
            query: NextChar::new(|c| c == '&' || c == '#'),
            newline: NextChar::new(|c| c == '\n'),
            quotes: CLOSING_QUOTES.map(|(_, closing)| QuoteEnd::new(closing)),
            trimmed_line: None,
        }
    }
}

impl ValueEnds {
    /// The end of `line_end`'s line with trailing whitespace left out; never
    /// before `floor` (the caller's value starts with a non-blank there).
    fn trimmed_line_end(&mut self, text: &str, floor: usize, line_end: usize) -> usize {
        let trimmed = match self.trimmed_line {
            Some((end, trimmed)) if end == line_end => trimmed,
            _ => {
                let trimmed = text[..line_end].trim_end().len();
                lookahead::count(line_end - trimmed + 1);
                self.trimmed_line = Some((line_end, trimmed));
                trimmed
            }
        };
        trimmed.max(floor)
    }
}

/// The value that starts at `from` (after blanks, on the same line): the
/// contents of a quoted string, or else everything up to the next whitespace.
fn value_after(text: &str, from: usize, ends: &mut ValueEnds) -> Option<Value> {
    let start = ends.non_blank.find(text, from);
    let first = text[start..].chars().next()?;
    if let Some(quote) = CLOSING_QUOTES.iter().position(|&(opening, _)| opening == first) {
        let inner_start = start + first.len_utf8();
        return match ends.quotes[quote].find(text, inner_start) {
            Some(inner_end) if inner_end == inner_start => None,
            Some(inner_end) => Some(Value {
                range: inner_start..inner_end,
                quoted: true,
            }),
            // An unterminated quote is just punctuation before a bare token.
            None => token_at(text, inner_start, ends).map(|range| Value { range, quoted: false }),
        };
    }
    token_at(text, start, ends).map(|range| Value { range, quoted: false })
}

/// Opening quotes and the quote that closes each.
const CLOSING_QUOTES: [(char, char); 6] = [('"', '"'), ('\'', '\''), ('`', '`'), ('“', '”'), ('‘', '’'), ('«', '»')];

/// Where a quoted string's contents end: at `closing`, which must be on the
/// same line. Backslash escapes are skipped so that a JSON string such as
/// `"pa\"ss"` is taken whole.
///
/// Remembered like [`NextChar`]: a later start inside the last string
/// scanned ends where it ended. That holds with escapes too, because a
/// contents start always follows an opening quote, never a backslash, so the
/// earlier scan read it as an ordinary character, as a new scan would.
struct QuoteEnd {
    closing: char,
    from: usize,
    /// Where the last scan stopped, and whether it stopped at `closing`
    /// (rather than at a newline or the end of the text).
    stop: usize,
    closed: bool,
}

impl QuoteEnd {
    fn new(closing: char) -> Self {
        Self {
            closing,
            from: usize::MAX,
            stop: 0,
            closed: false,
        }
    }

    /// The offset of the closing quote for contents starting at `start`.
    fn find(&mut self, text: &str, start: usize) -> Option<usize> {
        if !(self.from <= start && start <= self.stop) {
            let (stop, closed) = self.scan(text, start);
            lookahead::count(stop - start + 1);
            self.from = start;
            self.stop = stop;
            self.closed = closed;
        }
        self.closed.then_some(self.stop)
    }

    fn scan(&self, text: &str, start: usize) -> (usize, bool) {
        let mut chars = text[start..].char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '\n' => return (start + index, false),
                '\\' if self.closing == '"' => {
                    chars.next();
                }
                c if c == self.closing => return (start + index, true),
                _ => {}
            }
        }
        (text.len(), false)
    }
}

/// The run of non-whitespace starting at `start`, if any.
fn token_at(text: &str, start: usize, ends: &mut ValueEnds) -> Option<Range<usize>> {
    let end = ends.whitespace.find(text, start);
    (end > start).then_some(start..end)
}

/// Authorization schemes whose credentials are one token.
const SINGLE_TOKEN_SCHEMES: &[&str] = &["basic", "bearer", "token", "bot", "apikey"];

/// `Authorization: Bearer <token>` / `Basic <base64>`: keep the scheme so the
/// agent still sees what kind of credential it was. Other schemes (Digest,
/// AWS4-HMAC-SHA256) spread their secrets over several parameters, so the
/// rest of the line goes.
fn authorization_credentials(text: &str, from: usize, ends: &mut ValueEnds) -> Option<Finding> {
    let first = value_after(text, from, ends)?;
    let first_word = &text[first.range.clone()];
    let looks_like_scheme = !first.quoted
        && first_word.starts_with(|c: char| c.is_ascii_alphabetic())
        && first_word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let next = if looks_like_scheme {
        value_after(text, first.range.end, ends)
    } else {
        None
    };
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
                let line_end = ends.newline.find(text, next.range.start);
                ends.trimmed_line_end(text, next.range.end, line_end)
            };
            (next.range.start..end, kind)
        }
    };
    (!is_placeholder_only(&text[range.clone()])).then_some(Finding { range, kind })
}
