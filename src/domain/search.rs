//! What an agent typed in a search box (`q` of the queue and of `GET /api/v1/tickets`), read
//! once into the two ways the desk answers it (docs/reference.md#search):
//!
//! - **exact**: the whole text is a reference, a requester's address, an account id, a
//!   username or a registered address. B-tree lookups; when any ticket has it exactly, those
//!   tickets are the answer.
//! - **words**: otherwise every word must occur in the ticket's search document (requester,
//!   subject, and the scrubbed subjects and bodies of its messages and notes).
//!
//! Words are runs of letters and digits, lowercased; everything else (quotes, `*`, `NEAR(`,
//! `-`, `%`, …) only separates words, so nothing typed can reach the full-text engine as
//! syntax. A long text is cut: at most [`MAX_QUERY_CHARS`] characters and [`MAX_WORDS`]
//! words are read (fewer words only widen the answer).

/// Characters of `q` read at most (the rest is ignored).
pub const MAX_QUERY_CHARS: usize = 512;
/// Words of `q` that must all occur, at most.
pub const MAX_WORDS: usize = 12;
/// Longest word kept (a longer one is cut, and then matches no stored word).
pub const MAX_WORD_CHARS: usize = 64;

/// A search, parsed. Built only by [`SearchText::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    exact: String,
    exact_lower: String,
    words: Vec<String>,
}

impl SearchText {
    /// `None` for an empty or blank text (no search: the plain list).
    pub fn parse(text: &str) -> Option<SearchText> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        // Control characters (a NUL above all, which PostgreSQL refuses in text) are in no
        // address, id or username: they are dropped.
        let mut kept = text.chars().filter(|c| !c.is_control());
        let cut: String = kept.by_ref().take(MAX_QUERY_CHARS).collect();
        // A word cut in two by the limit is not searched for (its start would be a wrong word).
        let split_word =
            cut.chars().last().is_some_and(char::is_alphanumeric) && kept.next().is_some_and(char::is_alphanumeric);
        let cut = cut.trim().to_string();
        let mut pieces: Vec<&str> = cut.split(|c: char| !c.is_alphanumeric()).collect();
        if split_word {
            pieces.pop();
        }
        let mut words: Vec<String> = Vec::new();
        for word in pieces.into_iter().filter(|w| !w.is_empty()) {
            let word: String = fold(word).chars().take(MAX_WORD_CHARS).collect();
            if !words.contains(&word) {
                words.push(word);
            }
            if words.len() == MAX_WORDS {
                break;
            }
        }
        Some(SearchText {
            exact_lower: crate::domain::email_address::normalize(&cut),
            exact: cut,
            words,
        })
    }

    /// The text as typed (trimmed, cut): compared byte for byte with account ids and usernames.
    pub fn exact(&self) -> &str {
        &self.exact
    }

    /// The text lowercased: compared with requesters' and registered addresses.
    pub fn exact_lower(&self) -> &str {
        &self.exact_lower
    }

    /// The words that must all occur; empty when the text had no letter or digit.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The words as an FTS5 query: each one a quoted string, all of them required. Words
    /// hold only letters and digits, so no quote can be among them.
    pub fn fts5_query(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The words as a PostgreSQL `tsquery` literal, each one quoted, all of them required:
    /// compared as they are with the lexemes of [`document_words`], which follow the same
    /// rule. Words hold only letters and digits, so no quote or backslash can be among them.
    pub fn tsquery(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

/// A word as it is compared: each character lowercased on its own, a final `ς` as `σ`, and
/// nothing that lowercasing adds but letters and digits. So `ΟΔΟΣ` and `οδος` are both
/// `οδοσ` (SQLite's FTS5 folds them so too) and `İstanbul` is `istanbul` (as PostgreSQL's
/// `lower()` has it in a UTF-8 locale); a whole-word `to_lowercase` gave `οδος` and
/// `i̇stanbul`, with a combining dot.
pub fn fold(word: &str) -> String {
    word.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Longest word a PostgreSQL document keeps, in bytes: the limit of one lexeme. Its own
/// parser drops longer words too; no search can ask for one (words are cut at
/// [`MAX_WORD_CHARS`]).
pub const MAX_DOCUMENT_WORD_BYTES: usize = 2047;

/// The distinct words of a text as PostgreSQL's search documents hold them, sorted: runs of
/// letters and digits, lowercased, the rule a search's words follow.
///
/// Why here and not `to_tsvector`: PostgreSQL's parser read 7 MB/s, half a millisecond of
/// the database's time per message, the largest part of an ingestion there
/// (docs/benchmarks.md); the desk's threads split the text and PostgreSQL only stores the
/// words (`array_to_tsvector`). Migration `2026-12-11-000035_search_words` makes the stored
/// documents with the same rule in SQL (keep the two in step).
pub fn document_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(fold)
        .filter(|w| !w.is_empty() && w.len() <= MAX_DOCUMENT_WORD_BYTES)
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_no_search() {
        assert_eq!(SearchText::parse(""), None);
        assert_eq!(SearchText::parse("  \t "), None);
    }

    #[test]
    fn words_are_letters_and_digits_lowercased_once_each() {
        let s = SearchText::parse("  Ops@ACME.test ops ").unwrap();
        assert_eq!(s.words(), ["ops", "acme", "test"]);
        assert_eq!(s.exact(), "Ops@ACME.test ops");
        assert_eq!(s.exact_lower(), "ops@acme.test ops");
        assert_eq!(s.fts5_query(), r#""ops" "acme" "test""#);
    }

    #[test]
    fn a_document_holds_each_word_once_lowercased_as_a_search_reads_it() {
        let text = "Zoë@Corp.test Ünïcode: «subject» — émigré's café, CAFÉ 日本語 x2 x2";
        assert_eq!(
            document_words(text),
            [
                "café",
                "corp",
                "s",
                "subject",
                "test",
                "x2",
                "zoë",
                "émigré",
                "ünïcode",
                "日本語"
            ]
        );
        // Every word a search asks for is a word of a text that holds it.
        let search = SearchText::parse("ZOË café 日本語").unwrap();
        let stored = document_words(text);
        assert!(
            search.words().iter().all(|w| stored.contains(w)),
            "{:?}",
            search.words()
        );
        assert_eq!(search.tsquery(), "'zoë' & 'café' & '日本語'");
        assert!(document_words(" -- ").is_empty());
    }

    #[test]
    fn words_fold_as_the_full_text_engines_fold_them() {
        assert_eq!(
            document_words("İstanbul ΟΔΟΣ οδος Straße"),
            ["istanbul", "straße", "οδοσ"]
        );
        let search = SearchText::parse("ISTANBUL Οδός").unwrap();
        assert_eq!(search.words(), ["istanbul", "οδόσ"]);
        assert_eq!(fold("İ"), "i");
    }

    #[test]
    fn a_word_too_long_for_a_lexeme_is_left_out() {
        let long = "a".repeat(MAX_DOCUMENT_WORD_BYTES + 1);
        let fits = "é".repeat(MAX_DOCUMENT_WORD_BYTES / 2);
        let words = document_words(&format!("{long} short {fits}"));
        assert_eq!(words, vec!["short".to_string(), fits]);
    }

    #[test]
    fn full_text_syntax_is_only_separators() {
        for hostile in [
            r#"""#,
            "*",
            "NEAR(",
            r#"" OR 1=1 --"#,
            "a* NOT b",
            "^col:x",
            "'; DROP TABLE tickets; --",
            "\\",
            "%_",
        ] {
            let s = SearchText::parse(hostile).unwrap();
            let q = s.fts5_query();
            for w in s.words() {
                assert!(w.chars().all(char::is_alphanumeric), "{hostile:?}: {w:?}");
            }
            assert!(!q.contains('*') && !q.contains('(') && !q.contains(':') && !q.contains('^'));
            assert_eq!(q.matches('"').count(), 2 * s.words().len(), "{hostile:?}");
            let t = s.tsquery();
            assert_eq!(t.matches('\'').count(), 2 * s.words().len(), "{hostile:?}: {t}");
            assert!(!t.contains('\\') && !t.contains(':') && !t.contains('!') && !t.contains('|'));
        }
        assert_eq!(SearchText::parse("NEAR(a b)").unwrap().words(), ["near", "a", "b"]);
    }

    #[test]
    fn a_huge_text_is_cut() {
        let huge = "word ".repeat(2_000) + &"x".repeat(10_000);
        let s = SearchText::parse(&huge).unwrap();
        assert!(s.exact().chars().count() <= MAX_QUERY_CHARS);
        assert_eq!(s.words(), ["word"]);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(SearchText::parse(&many).unwrap().words().len(), MAX_WORDS);
        let long = "y".repeat(300);
        assert_eq!(SearchText::parse(&long).unwrap().words()[0].len(), MAX_WORD_CHARS);
    }

    #[test]
    fn control_characters_are_dropped() {
        let s = SearchText::parse("\u{0}ops@acme.test\u{7}").unwrap();
        assert_eq!(s.exact(), "ops@acme.test");
        assert_eq!(SearchText::parse("\u{0}\u{0}").unwrap().exact(), "");
    }

    #[test]
    fn letters_of_any_script_are_words() {
        let s = SearchText::parse("Überweisung fehlgeschlagen — 東京").unwrap();
        assert_eq!(s.words(), ["überweisung", "fehlgeschlagen", "東京"]);
    }
}
