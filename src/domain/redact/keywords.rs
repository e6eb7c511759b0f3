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

static BEGINNINGS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(KEYWORD_BEGINNINGS)
        .expect("the keyword beginnings build an automaton")
});

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
    captures: Captures,
}

impl<'t> PhraseSearch<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Self {
            text,
            every_position: holds_a_folded_letter(text),
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
            let beginning = BEGINNINGS
                .find(aho_corasick::Input::new(self.text).range(at..))?
                .start();
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
        let mut search = PhraseSearch::new(text);
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
    }
}
