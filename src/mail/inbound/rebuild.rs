//! The copy of a message kept in the raw store and the quarantine when secrets were removed
//! from it: rebuilt from the scrubbed parts, then checked again through a decoded view of its
//! bytes (base64 runs, quoted-printable, RFC 2047 words), so that no encoding of a removed
//! secret survives. Every step is one pass over its input.

use crate::domain::scrubbed::{Assembler, Scrubbed, ScrubbedBytes};
use base64::Engine;

/// One attachment of the rebuilt copy; `data: None` when its content was withheld.
pub struct RebuiltAttachment<'a> {
    pub filename: &'a Scrubbed,
    pub content_type: &'a Scrubbed,
    pub data: Option<&'a ScrubbedBytes>,
}

/// What the rebuilt copy is made of: headers (values decoded and scrubbed), the text, the
/// HTML and the attachments.
pub struct RebuildParts<'a> {
    pub headers: &'a [(String, Scrubbed)],
    pub text: &'a Scrubbed,
    pub html: Option<&'a Scrubbed>,
    pub attachments: Vec<RebuiltAttachment<'a>>,
}

/// Headers the rebuilt copy writes itself: the structure of the original no longer applies.
const STRUCTURAL: [&str; 4] = [
    "content-type",
    "content-transfer-encoding",
    "mime-version",
    "x-recoverydesk-redacted",
];

/// A header name as the desk will write it: only the characters a field name may have.
fn safe_name(name: &str) -> Option<String> {
    let ok = !name.is_empty() && name.len() <= 76 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    ok.then(|| name.to_string())
}

/// A flat `multipart/mixed`: the text, the HTML, then each attachment in base64.
pub fn rebuild(parts: &RebuildParts, boundary: &str) -> ScrubbedBytes {
    let mut out = Assembler::default();
    for (name, value) in parts.headers {
        let Some(name) = safe_name(name) else { continue };
        if STRUCTURAL.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        out.desk_written(&name)
            .desk_written(": ")
            .text(value)
            .desk_written("\r\n");
    }
    out.desk_written("MIME-Version: 1.0\r\n")
        .desk_written("X-Recoverydesk-Redacted: secrets were removed from this copy\r\n")
        .desk_written(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
        ));
    out.desk_written(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ))
    .text(parts.text)
    .desk_written("\r\n");
    if let Some(html) = parts.html {
        out.desk_written(&format!(
            "--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        ))
        .text(html)
        .desk_written("\r\n");
    }
    for a in &parts.attachments {
        out.desk_written(&format!("--{boundary}\r\nContent-Type: "))
            .text(a.content_type)
            .desk_written("\r\nContent-Disposition: attachment; filename=\"")
            .text(a.filename)
            .desk_written("\"\r\n");
        match a.data {
            Some(data) => {
                out.desk_written("Content-Transfer-Encoding: base64\r\n\r\n")
                    .base64(data);
            }
            None => {
                out.desk_written(
                    "Content-Transfer-Encoding: 8bit\r\n\r\n[withheld: the secret scan found a secret in this file]\r\n",
                );
            }
        }
    }
    out.desk_written(&format!("--{boundary}--\r\n"));
    out.finish()
}

/// A header value or filename made fit for one header line before it is scrubbed (so that
/// scrubbing sees exactly what will be written): encoded words decoded, line breaks and
/// quotes turned into spaces and apostrophes.
pub fn one_line(value: &str) -> String {
    decode_encoded_words(value)
        .chars()
        .filter(|&c| c != '\0')
        .map(|c| match c {
            '\r' | '\n' => ' ',
            '"' => '\'',
            '\\' => '/',
            c => c,
        })
        .collect()
}

/// The text of the bytes with every encoding we know undone: RFC 2047 words decoded,
/// quoted-printable soft line breaks joined and `=XX` decoded, runs of base64 lines decoded.
/// It is only ever scanned (and, as a last resort, kept after redaction): it need not be the
/// message, only show every byte of it that could spell a secret.
///
/// With `keep_runs`, each decoded base64 run is followed by the run itself (for scanning: an
/// AWS key id alone on a line looks like base64); without, only the decoded text stays (for
/// a copy that is kept: a run that decoded to a secret must not stay in its encoded form).
pub fn decoded_view(raw: &[u8], keep_runs: bool) -> String {
    let text = crate::domain::scrubbed::lossy_utf8(raw);
    let mut out = String::with_capacity(text.len());
    let mut run = Base64Run::default();
    let mut pending_soft = String::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        if pending_soft.is_empty() && looks_like_base64_line(trimmed) {
            run.push(trimmed);
            // A line whose length is not a multiple of four ends a run (or is a word).
            if !trimmed.len().is_multiple_of(4) || trimmed.ends_with('=') {
                run.flush(&mut out, keep_runs);
            }
            continue;
        }
        run.flush(&mut out, keep_runs);
        // Quoted-printable: a line ending in `=` continues on the next one (an encoded word
        // ends in `?=` and does not).
        if let Some(head) = line.strip_suffix('=').filter(|h| !h.ends_with('?')) {
            pending_soft.push_str(head);
            continue;
        }
        pending_soft.push_str(line);
        out.push_str(&decode_qp_escapes(&decode_encoded_words(&pending_soft)));
        out.push('\n');
        pending_soft.clear();
    }
    run.flush(&mut out, keep_runs);
    if !pending_soft.is_empty() {
        out.push_str(&decode_qp_escapes(&decode_encoded_words(&pending_soft)));
    }
    out
}

fn looks_like_base64_line(line: &str) -> bool {
    // Padding only ends a whole group: `pass=` is a quoted-printable soft break.
    line.len() >= 4
        && (!line.ends_with('=') || line.len().is_multiple_of(4))
        && line
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Lenient like a mail reader: any padding, stray trailing bits.
const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Consecutive base64 lines: each decoded on its own (MIME lines are whole groups of four, so
/// this is the same as decoding the run, and a word line before a run cannot shift it).
#[derive(Default)]
struct Base64Run {
    lines: Vec<String>,
    bytes: Vec<u8>,
}

impl Base64Run {
    fn push(&mut self, line: &str) {
        let mut unpadded = line.trim_end_matches('=').to_string();
        // A length of 4n+1 cannot be base64: read what can be, as a lenient reader would.
        if unpadded.len() % 4 == 1 {
            unpadded.pop();
        }
        if let Ok(bytes) = LENIENT.decode(unpadded.as_bytes()) {
            self.bytes.extend_from_slice(&bytes);
        }
        self.lines.push(line.to_string());
    }

    fn flush(&mut self, out: &mut String, keep_runs: bool) {
        if self.lines.is_empty() {
            return;
        }
        match crate::domain::scrubbed::decode_text(&self.bytes) {
            Some(text) => out.push_str(&text),
            None => out.push_str(&String::from_utf8_lossy(&self.bytes)),
        }
        out.push('\n');
        // For a scan the lines too: an AWS key id alone on a line looks like base64.
        if keep_runs {
            for line in &self.lines {
                out.push_str(line);
                out.push('\n');
            }
        }
        self.lines.clear();
        self.bytes.clear();
    }
}

/// `=41` → `A` wherever it appears (the view errs on the side of decoding).
fn decode_qp_escapes(line: &str) -> String {
    if !line.contains('=') {
        return line.to_string();
    }
    let bytes = line.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `=?charset?B|Q?data?=` words decoded (UTF-8, Latin-1 and what mail-parser knows; anything
/// else as Latin-1, which still shows ASCII secrets).
pub fn decode_encoded_words(text: &str) -> String {
    if !text.contains("=?") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let word = &rest[start + 2..];
        match decode_word(word) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &word[used..];
            }
            None => {
                out.push_str("=?");
                rest = word;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Longest encoded word read (RFC 2047 allows 75 characters; senders exceed it a little).
/// The bound keeps a line made of nothing but `=?` openings linear.
const MAX_WORD: usize = 200;

/// Decodes `charset?E?data?=` at the start of `word`; returns the text and the bytes used.
fn decode_word(word: &str) -> Option<(String, usize)> {
    let mut end = word.len().min(MAX_WORD);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    let word = &word[..end];
    let (charset, after) = word.split_once('?')?;
    if charset.len() > 40 {
        return None;
    }
    let (encoding, after) = after.split_once('?')?;
    let end = after.find("?=")?;
    let data = &after[..end];
    let used = charset.len() + 1 + encoding.len() + 1 + end + 2;
    let bytes = match encoding {
        "B" | "b" => LENIENT.decode(data.as_bytes()).ok()?,
        "Q" | "q" => decode_qp_escapes(&data.replace('_', " ")).into_bytes(),
        _ => return None,
    };
    let charset = charset.split('*').next().unwrap_or(charset);
    let text = match mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes()) {
        Some(decode) => decode(&bytes),
        None => match std::str::from_utf8(&bytes) {
            Ok(t) => t.to_string(),
            Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
        },
    };
    Some((text, used))
}

/// A fresh MIME boundary that cannot occur in the scrubbed content by chance.
pub fn boundary() -> String {
    let nonce: String = crate::crypto::random_token()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(24)
        .collect();
    format!("=_rd_{nonce}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_undoes_base64_quoted_printable_and_encoded_words() {
        let secret = "password: hunter2hunter2";
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("Hello\n{secret}\nbye"));
        let raw = format!(
            "Subject: =?utf-8?b?{}?=\r\nX: =?iso-8859-1?q?password=3A_hunter2hunter2?=\r\n\r\npass=\r\nword: hunter2=\r\nhunter2\r\n{b64}\r\n",
            base64::engine::general_purpose::STANDARD.encode(secret)
        );
        let view = decoded_view(raw.as_bytes(), true);
        assert_eq!(view.matches(secret).count(), 4, "{view}");
    }

    #[test]
    fn one_line_values_cannot_inject_headers() {
        assert_eq!(one_line("a\r\nBcc: x@y \"q\""), "a  Bcc: x@y 'q'");
        assert_eq!(one_line("=?utf-8?q?caf=C3=A9?="), "café");
    }

    #[test]
    fn unknown_or_broken_words_stay_as_they_are() {
        assert_eq!(decode_encoded_words("=?x"), "=?x");
        assert_eq!(decode_encoded_words("a =?utf-8?z?abc?= b"), "a =?utf-8?z?abc?= b");
    }
}
