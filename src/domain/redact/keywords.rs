//! Where a credential phrase ("password: …", "api_key=…") starts, found without running its
//! regex over every byte.
//!
//! Why: the phrase regex is case-insensitive with a dozen keywords in several languages, too
//! many case variants for the regex crate's literal prefilter, so its lazy DFA read every byte
//! of every text: about a sixth of a parsing thread's time (docs/benchmarks.md, "The
//! scanner's keywords"). Every match starts with one of a few ASCII keyword beginnings, which
//! an Aho-Corasick automaton finds case-insensitively at a fraction of that cost; the regex
//! then only tries, anchored, the places where one starts. The leftmost such place where it
//! matches is the leftmost match, so the findings are those of a search over the whole text
//! (a property test holds the two to each other).
//!
//! The automaton reads the text in ASCII lower case, a window at a time ([`Folded`]), and
//! matches case-sensitively: built case-insensitive, it had no prefilter (fifteen beginnings
//! start with too many different bytes) and walked every byte, 14 % of an import of mail with
//! attachments (docs/benchmarks.md, "The keyword search on folded text"); case-sensitive it
//! uses a vectorised search for the fifteen beginnings themselves.

use std::ops::Range;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex_automata::meta::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, PatternID};

/// A keyword, an optional closing quote (JSON keys) and a delimiter. The value itself is read
/// by code because quoting and stop words are easier to get right there.
const PATTERN: &str = concat!(
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
);

/// How every keyword of [`PATTERN`] begins, in ASCII: a match starts where one of these does.
const KEYWORD_BEGINNINGS: &[&str] = &[
    "pass", "pwd", "kennwort", "mot", "contrase", "senha", "auth", "api", "client", "secret", "access", "refresh",
    "bearer", "session", "token",
];

/// The characters outside ASCII that `(?i)` reads as an ASCII letter (simple case folding):
/// LATIN SMALL LETTER LONG S as `s`, KELVIN SIGN as `k`. A text holding one is searched at
/// every position, since `to\u{212A}en:` is a keyword the ASCII automaton does not see.
const FOLDED_TO_ASCII: [char; 2] = ['\u{17F}', '\u{212A}'];

static PHRASE: LazyLock<Regex> = LazyLock::new(|| Regex::new(PATTERN).expect("the phrase pattern is valid"));

/// The beginnings, found case-sensitively in text folded to ASCII lower case (the list is in
/// lower case).
static BEGINNINGS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(KEYWORD_BEGINNINGS)
        .expect("the keyword beginnings build an automaton")
});

/// Bytes of the text folded at a time: the copy stays small whatever the text's size.
const WINDOW: usize = 32 * 1024;

/// The longest keyword beginning less one: how far a beginning that starts in a window may
/// run past its end.
const SEAM: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < KEYWORD_BEGINNINGS.len() {
        if KEYWORD_BEGINNINGS[i].len() > longest {
            longest = KEYWORD_BEGINNINGS[i].len();
        }
        i += 1;
    }
    longest - 1
};

/// A window of the text in ASCII lower case. Folding ASCII letters keeps every byte in its
/// place (UTF-8 encodes nothing else with bytes below 0x80), so a position in the window is a
/// position in the text.
struct Folded {
    /// Where the window starts in the text.
    start: usize,
    bytes: Vec<u8>,
    window: usize,
}

impl Folded {
    fn new(window: usize) -> Self {
        Self {
            start: 0,
            bytes: Vec::new(),
            // Longer than the seam, so that every new window moves on.
            window: window.max(SEAM + 1),
        }
    }

    /// Where the leftmost keyword beginning at or after `at` starts.
    ///
    /// A beginning that starts in the last `longest - 1` bytes of a window may run past it, so
    /// a later window, starting there, decides about those places: one found there in this
    /// window could hide an earlier one that does not fit.
    fn next_beginning(&mut self, text: &str, mut at: usize) -> Option<usize> {
        loop {
            let end = self.start + self.bytes.len();
            if at < self.start || at >= end {
                self.fill(text, at);
            }
            let end = self.start + self.bytes.len();
            let last = end >= text.len();
            let decided_before = if last { end } else { end - SEAM };
            let found = BEGINNINGS
                .find(aho_corasick::Input::new(&self.bytes).range(at - self.start..))
                .map(|m| self.start + m.start());
            match found {
                Some(place) if place < decided_before => return Some(place),
                _ if last => return None,
                _ => {
                    at = at.max(decided_before);
                    self.fill(text, at);
                }
            }
        }
    }

    fn fill(&mut self, text: &str, at: usize) {
        let bytes = text.as_bytes();
        let at = at.min(bytes.len());
        let end = (at + self.window).min(bytes.len());
        self.start = at;
        self.bytes.clear();
        self.bytes.extend(bytes[at..end].iter().map(u8::to_ascii_lowercase));
    }
}

/// Whether `text` holds one of [`FOLDED_TO_ASCII`]. Looked for as UTF-8 bytes with `memchr`'s
/// vector search: `str::contains` with a set of characters decodes the whole text one
/// character at a time, and that was 4 % of a parsing thread (docs/benchmarks.md, "A process
/// per message").
fn holds_a_folded_letter(text: &str) -> bool {
    static FINDERS: LazyLock<[memchr::memmem::Finder<'static>; 2]> = LazyLock::new(|| {
        FOLDED_TO_ASCII.map(|letter| {
            let mut utf8 = [0; 4];
            memchr::memmem::Finder::new(letter.encode_utf8(&mut utf8).as_bytes()).into_owned()
        })
    });
    FINDERS.iter().any(|finder| finder.find(text.as_bytes()).is_some())
}

/// A named group of [`PATTERN`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Group {
    Keyword,
    Password,
    Authorization,
    Strong,
    Weak,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Self::Keyword => "keyword",
            Self::Password => "password",
            Self::Authorization => "authorization",
            Self::Strong => "strong",
            Self::Weak => "weak",
        }
    }
}

/// The phrases of one text, one after another; the last match's groups are read with
/// [`PhraseSearch::group`]. Capture slots are reused from match to match: a text of nothing
/// but keywords has one match every few bytes.
pub(super) struct PhraseSearch<'t> {
    text: &'t str,
    every_position: bool,
    folded: Folded,
    captures: Captures,
}

impl<'t> PhraseSearch<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Self::with_window(text, WINDOW)
    }

    fn with_window(text: &'t str, window: usize) -> Self {
        Self {
            text,
            every_position: holds_a_folded_letter(text),
            folded: Folded::new(window),
            captures: PHRASE.create_captures(),
        }
    }

    /// The leftmost phrase starting at or after `from`, as one unanchored search from `from`
    /// would find it.
    pub(super) fn next_at(&mut self, from: usize) -> Option<Range<usize>> {
        if from > self.text.len() {
            return None;
        }
        if self.every_position {
            PHRASE.search_captures(&Input::new(self.text).range(from..), &mut self.captures);
            return self.captures.get_match().map(|found| found.range());
        }
        let mut at = from;
        loop {
            let beginning = self.folded.next_beginning(self.text, at)?;
            let anchored = Input::new(self.text).range(beginning..).anchored(Anchored::Yes);
            PHRASE.search_captures(&anchored, &mut self.captures);
            if let Some(found) = self.captures.get_match() {
                return Some(found.range());
            }
            // The beginning is an ASCII letter: one byte on is still a character boundary.
            at = beginning + 1;
        }
    }

    /// Where `group` matched in the last phrase found.
    pub(super) fn group(&self, group: Group) -> Option<Range<usize>> {
        let index = PHRASE.group_info().to_index(PatternID::ZERO, group.name())?;
        self.captures.get_group(index).map(|span| span.range())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Each phrase found: the whole match and every group's place.
    type Phrases = Vec<(Range<usize>, Vec<Option<Range<usize>>>)>;

    /// Every phrase of the text by one unanchored search after another, as the scanner did
    /// before the keyword automaton: the reference the fast search must equal.
    fn by_whole_text(text: &str) -> Phrases {
        let regex = regex::Regex::new(PATTERN).unwrap();
        let mut slots = regex.capture_locations();
        let mut found = Vec::new();
        let mut from = 0;
        while from <= text.len() {
            let Some(whole) = regex.captures_read_at(&mut slots, text, from) else {
                break;
            };
            found.push((
                whole.range(),
                (0..slots.len()).map(|i| slots.get(i).map(|(s, e)| s..e)).collect(),
            ));
            from = whole.end().max(whole.start() + 1);
        }
        found
    }

    fn by_keywords(text: &str) -> Phrases {
        by_keywords_in_windows(text, WINDOW)
    }

    fn by_keywords_in_windows(text: &str, window: usize) -> Phrases {
        let mut search = PhraseSearch::with_window(text, window);
        let mut found = Vec::new();
        let mut from = 0;
        while let Some(whole) = search.next_at(from) {
            let groups = (0..search.captures.group_len()).map(|i| search.captures.get_group(i).map(|s| s.range()));
            found.push((whole.clone(), groups.collect()));
            from = whole.end.max(whole.start + 1);
        }
        found
    }

    #[test]
    fn only_kelvin_and_long_s_fold_to_the_letters_of_the_keywords() {
        let letters: String = KEYWORD_BEGINNINGS.concat();
        let pattern = regex::Regex::new(&format!(r"(?i)\A[{letters}]\z")).unwrap();
        let folded: Vec<char> = (0x80..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| pattern.is_match(c.encode_utf8(&mut [0; 4])))
            .collect();
        assert_eq!(folded, FOLDED_TO_ASCII);
    }

    #[test]
    fn a_folded_letter_anywhere_turns_on_the_search_at_every_position() {
        assert!(holds_a_folded_letter("to\u{212A}en: hunter2"));
        assert!(holds_a_folded_letter(&format!(
            "{}pa\u{17F}\u{17F}word: x",
            "a".repeat(100)
        )));
        // Their neighbours in UTF-8 (U+017E, U+212B, a curly quote) are not folded letters.
        assert!(!holds_a_folded_letter("\u{17E} \u{212B} \u{201C}token\u{201D}"));
        assert!(!holds_a_folded_letter(""));
        let text = "my to\u{212A}en: hunter2";
        assert_eq!(by_keywords(text), by_whole_text(text));
        assert!(!by_keywords(text).is_empty());
    }

    #[test]
    fn the_beginnings_are_in_lower_case_as_the_folded_text_is() {
        for beginning in KEYWORD_BEGINNINGS {
            assert_eq!(*beginning, beginning.to_ascii_lowercase());
        }
        assert_eq!(SEAM, 7);
    }

    #[test]
    fn a_keyword_across_a_window_seam_is_found_whole() {
        // Every place of a long keyword around the seams of small windows and of the real one.
        for window in [8, 9, 12, WINDOW] {
            for offset in 0..24 {
                let filler = "x".repeat(window.saturating_sub(12) + offset);
                let text = format!("{filler} KENNWORT: hunter2 and TOKEN=abc {filler} Pass: y");
                assert_eq!(
                    by_keywords_in_windows(&text, window),
                    by_whole_text(&text),
                    "window {window}, offset {offset}"
                );
                assert_eq!(by_keywords_in_windows(&text, window).len(), 3);
            }
        }
    }

    #[test]
    fn every_keyword_of_the_pattern_begins_with_a_listed_beginning() {
        for keyword in [
            "password",
            "passwort",
            "passwd",
            "passphrase",
            "pass",
            "pwd",
            "kennwort",
            "mot de passe",
            "mot-de-passe",
            "contraseña",
            "contrasena",
            "senha",
            "authorization",
            "api key",
            "api.secret",
            "api_token",
            "apikey",
            "client_secret",
            "clientsecret",
            "secret_access_key",
            "secretkey",
            "access-key",
            "access_token",
            "auth-token",
            "refreshtoken",
            "bearer_token",
            "session-token",
            "secret",
            "token",
        ] {
            let text = format!("{keyword}: x");
            assert_eq!(by_keywords(&text), by_whole_text(&text), "{keyword}");
            assert_eq!(by_keywords(&text).len(), 1, "{keyword}");
        }
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "password",
                "PASS",
                "Passwd",
                "pwd",
                "Kennwort",
                "mot de passe",
                "contraseña",
                "senha",
                "Authorization",
                "api_key",
                "API-Secret",
                "apikey",
                "client_secret",
                "secret",
                "access_key",
                "auth_token",
                "Bearer",
                "session",
                "token",
                "to\u{212A}en",
                "pa\u{17F}\u{17F}word",
                "bypass",
                "passpass",
                "apiauth",
            ])
            .prop_map(str::to_owned),
            proptest::sample::select(vec![
                ": ", "=", ":=", "=>", " is ", " was ", " est ", "\t", " ", "\"", "'", "\n"
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z0-9 ]{0,8}",
            "[ -~]{0,6}",
            "[\\PC]{0,3}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn the_keyword_search_finds_what_the_whole_text_search_finds(
            parts in proptest::collection::vec(fragment(), 0..24)
        ) {
            let text = parts.concat();
            prop_assert_eq!(by_keywords(&text), by_whole_text(&text));
        }

        #[test]
        fn small_windows_find_what_the_whole_text_search_finds(
            parts in proptest::collection::vec(fragment(), 0..24),
            window in 1usize..20,
        ) {
            let text = parts.concat();
            prop_assert_eq!(by_keywords_in_windows(&text, window), by_whole_text(&text));
        }
    }
}
