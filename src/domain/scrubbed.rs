//! Customer text that has been through the secret scanner: the only text the storage layer
//! accepts where a customer's or a mail's words are written (ticket subject, message bodies
//! and HTML, attachments and their names, raw and quarantined copies, the request fields of a
//! `created` event).
//!
//! The field is private, so a `Scrubbed` exists only because [`Scrubber`] ran the redactor on
//! the text, or because someone wrote [`Scrubbed::not_from_customer`] for text the desk made
//! itself (a template, a fixed label). That second door is deliberately loud: grep for it.

use super::redact::{self, SecretKind};

/// Text safe to store: the redactor ran on it (or the desk wrote it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scrubbed(String);

impl Scrubbed {
    /// Text that does not come from a customer or a mail: templates, fixed labels, text
    /// assembled only from other `Scrubbed` values. Every call is a claim a reviewer checks.
    pub fn not_from_customer(text: impl Into<String>) -> Scrubbed {
        Scrubbed(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `chars` characters, and `…` after them when something was cut: the start of
    /// a scrubbed text is scrubbed too.
    pub fn cut_to(&self, chars: usize) -> Scrubbed {
        match self.0.char_indices().nth(chars) {
            None => self.clone(),
            Some((at, _)) => Scrubbed(format!("{}…", &self.0[..at])),
        }
    }

    /// Joins scrubbed pieces with desk-written glue: the result is scrubbed too.
    pub fn join(parts: &[&Scrubbed], glue: &str) -> Scrubbed {
        Scrubbed(parts.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(glue))
    }
}

impl AsRef<str> for Scrubbed {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bytes safe to store: text parts after redaction, binary parts in which the scanner saw
/// nothing, raw copies rebuilt from scrubbed parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrubbedBytes(Vec<u8>);

impl ScrubbedBytes {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ScrubbedBytes {
    /// The bytes as received, when a scrubber that has seen every decoded piece of them (and
    /// the bytes themselves) found nothing; `None` otherwise, and the caller rebuilds.
    pub fn original_when_clean(raw: &[u8], scanned_all_of_it: &Scrubber) -> Option<ScrubbedBytes> {
        scanned_all_of_it.is_clean().then(|| ScrubbedBytes(raw.to_vec()))
    }
}

impl From<Scrubbed> for ScrubbedBytes {
    fn from(text: Scrubbed) -> Self {
        ScrubbedBytes(text.0.into_bytes())
    }
}

/// Builds bytes to store (a rebuilt raw copy) from scrubbed pieces and the desk's own glue
/// (headers it writes, MIME boundaries).
#[derive(Debug, Default)]
pub struct Assembler(Vec<u8>);

impl Assembler {
    /// Text the desk writes itself (header names, boundaries): never customer words.
    pub fn desk_written(&mut self, glue: &str) -> &mut Self {
        self.0.extend_from_slice(glue.as_bytes());
        self
    }

    pub fn text(&mut self, text: &Scrubbed) -> &mut Self {
        self.0.extend_from_slice(text.as_str().as_bytes());
        self
    }

    /// Scrubbed bytes in base64, in lines of 76 characters.
    pub fn base64(&mut self, bytes: &ScrubbedBytes) -> &mut Self {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes.as_bytes());
        for line in encoded.as_bytes().chunks(76) {
            self.0.extend_from_slice(line);
            self.0.extend_from_slice(b"\r\n");
        }
        self
    }

    pub fn finish(self) -> ScrubbedBytes {
        ScrubbedBytes(self.0)
    }
}

/// What became of a binary part: kept, or withheld because the scanner saw a secret in it
/// (a binary file cannot be rewritten around the secret without breaking it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryVerdict {
    Kept(ScrubbedBytes),
    Withheld,
}

/// Runs the redactor over each field of one submission, collecting the kinds of secret found
/// across all of them (for the `redaction` event and the rotate advice).
#[derive(Debug, Default, Clone)]
pub struct Scrubber {
    found: Vec<SecretKind>,
}

impl Scrubber {
    pub fn scrub(&mut self, text: &str) -> Scrubbed {
        // NUL is never meaningful in text, and PostgreSQL refuses it in TEXT: a message carrying
        // one would fail to store on every retry. It is removed before the scan so that a
        // secret split by NULs is seen whole.
        let text: std::borrow::Cow<str> = if text.contains('\0') {
            text.replace('\0', "").into()
        } else {
            text.into()
        };
        let result = redact::redact(&text);
        self.note(&result.found);
        Scrubbed(result.text)
    }

    pub fn scrub_opt(&mut self, text: Option<&str>) -> Option<Scrubbed> {
        text.map(|t| self.scrub(t))
    }

    /// Bytes of a part that decodes as text (see [`decode_text`]) are redacted as text;
    /// anything else is kept only when the scanner finds nothing in its printable runs.
    pub fn scrub_bytes(&mut self, data: &[u8]) -> BinaryVerdict {
        if let Some(text) = decode_text(data) {
            let clean = self.scrub(&text);
            if clean.as_str() == text {
                return BinaryVerdict::Kept(ScrubbedBytes(data.to_vec()));
            }
            return BinaryVerdict::Kept(clean.into());
        }
        let seen = redact::redact(&lossy_utf8(data));
        if seen.is_clean() {
            BinaryVerdict::Kept(ScrubbedBytes(data.to_vec()))
        } else {
            self.note(&seen.found);
            BinaryVerdict::Withheld
        }
    }

    /// Records kinds found by a scan made elsewhere (a check of a rebuilt copy).
    pub fn note(&mut self, kinds: &[SecretKind]) {
        for kind in kinds {
            if !self.found.contains(kind) {
                self.found.push(*kind);
            }
        }
    }

    pub fn found(&self) -> &[SecretKind] {
        &self.found
    }

    pub fn is_clean(&self) -> bool {
        self.found.is_empty()
    }

    pub fn into_found(self) -> Vec<SecretKind> {
        self.found
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.found.iter().map(|k| k.as_str()).collect();
        kinds.sort_unstable();
        kinds
    }
}

/// The bytes as text, each invalid sequence replaced by U+FFFD, as
/// `String::from_utf8_lossy`. Why not that alone: it reads every byte one at a time
/// (`Utf8Chunks`), where `str::from_utf8` skips ASCII a word at a time. `Utf8Chunks` was 5 %
/// of a parsing thread on mail with attachments, the raw mail's views and the mail parser's
/// own calls together (docs/benchmarks.md, "The keyword search on folded text"). Text that is
/// not UTF-8 is read twice, still in linear time.
pub fn lossy_utf8(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The text of bytes that are text whatever their declared type: valid UTF-8 (a BOM
/// allowed), or single-byte text (Latin-1 and the like) with no control bytes but
/// whitespace. A PNG or a zip fails both.
pub fn decode_text(data: &[u8]) -> Option<String> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let utf16 = |bytes: &[u8], big: bool| {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| {
                if big {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).ok()
    };
    if let Some(rest) = data.strip_prefix(b"\xff\xfe") {
        return utf16(rest, false);
    }
    if let Some(rest) = data.strip_prefix(b"\xfe\xff") {
        return utf16(rest, true);
    }
    let is_control = |b: u8| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c);
    if let Ok(text) = std::str::from_utf8(data) {
        // A NUL or two in a UTF-8 file is still a text file (and is removed when scrubbed);
        // many control bytes mean a binary format that happens to be valid UTF-8.
        let controls = data.iter().filter(|&&b| is_control(b)).count();
        return (controls * 100 <= data.len()).then(|| text.to_string());
    }
    if data.iter().any(|&b| is_control(b) || b == 0x7f) {
        return None;
    }
    Some(data.iter().map(|&b| char::from(b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    proptest::proptest! {
        #[test]
        fn lossy_utf8_reads_bytes_as_from_utf8_lossy_does(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            text in "\\PC{0,16}",
        ) {
            // Arbitrary bytes (mostly invalid), valid text, and valid text with bytes after.
            for case in [bytes.clone(), text.clone().into_bytes(), [text.as_bytes(), &bytes].concat()] {
                proptest::prop_assert_eq!(lossy_utf8(&case), String::from_utf8_lossy(&case));
            }
        }
    }

    #[test]
    fn scrubbing_replaces_secrets_and_collects_their_kinds() {
        let mut s = Scrubber::default();
        let a = s.scrub(&format!("key {KEY}"));
        let b = s.scrub("my password is hunter2hunter2");
        assert!(!a.as_str().contains("SG.abc") && !b.as_str().contains("hunter2"));
        assert_eq!(s.kinds(), vec!["password", "sendgrid_api_key"]);
        assert_eq!(s.scrub("nothing here").as_str(), "nothing here");
    }

    #[test]
    fn text_bytes_are_redacted_whatever_their_declared_type() {
        let mut s = Scrubber::default();
        let env = format!("SENDGRID_API_KEY={KEY}\nDEBUG=1\n");
        match s.scrub_bytes(env.as_bytes()) {
            BinaryVerdict::Kept(bytes) => assert!(!String::from_utf8_lossy(bytes.as_bytes()).contains("SG.abc")),
            BinaryVerdict::Withheld => panic!("a text file is redacted, not withheld"),
        }
        let latin1 = b"mot de passe: caf\xe9 -- password: hunter2hunter2\n";
        match s.scrub_bytes(latin1) {
            BinaryVerdict::Kept(bytes) => assert!(!String::from_utf8_lossy(bytes.as_bytes()).contains("hunter2")),
            BinaryVerdict::Withheld => panic!("Latin-1 text is text"),
        }
    }

    #[test]
    fn binary_with_a_visible_secret_is_withheld_and_clean_binary_kept() {
        let mut s = Scrubber::default();
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        assert!(matches!(s.scrub_bytes(&png), BinaryVerdict::Kept(b) if b.as_bytes() == png.as_slice()));
        png.extend_from_slice(format!("\0tEXt\0{KEY}\0").as_bytes());
        assert_eq!(s.scrub_bytes(&png), BinaryVerdict::Withheld);
        // NUL-separated words also read as a decoded AUTH PLAIN blob to the redactor; the key
        // must be among what was found either way.
        assert!(s.kinds().contains(&"sendgrid_api_key"), "{:?}", s.kinds());
    }

    #[test]
    fn nul_bytes_cannot_split_a_secret() {
        let mut s = Scrubber::default();
        let t = s.scrub("pass\0word: hunter2hunter2");
        assert!(!t.as_str().contains("hunter2"), "{t}");
    }
}
