//! The content hash that recognises a second delivery of one message.
//!
//! Relays and the local delivery agent add lines in transit: a leading mbox `From ` line,
//! `Return-Path`, `Delivered-To`, `X-Original-To`, one `Received` per hop, and the receiving
//! side's `Authentication-Results` and `ARC-*` seals. A sender that lost our `250` answer and
//! sends again produces a new `Received` line, so those fields are left out of the hash; every
//! other byte (the sender's own headers and the body) counts.
//!
//! Hashes stored before this rule were made over the message less only the envelope lines
//! local delivery prepends. Those rows cannot be re-hashed (only the hash was kept), so a
//! lookup also tries that older hash ([`ContentHash::legacy`]): a maildir imported before the
//! upgrade and imported again is still recognised. New rows store [`ContentHash::current`].

use sha2::{Digest, Sha256};

/// The hash a delivery is stored under, and the older one it may have been stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentHash {
    pub current: String,
    pub legacy: String,
}

impl ContentHash {
    pub fn of(raw: &[u8]) -> ContentHash {
        ContentHash {
            current: content_hash(raw),
            legacy: hex::encode(Sha256::digest(without_delivery_envelope(raw))),
        }
    }

    /// Both hashes, for lookups of earlier deliveries.
    pub fn candidates(&self) -> [&str; 2] {
        [&self.current, &self.legacy]
    }
}

/// Stored as the hash of new deliveries; reads as the current hash where a `&str` is wanted.
impl std::ops::Deref for ContentHash {
    type Target = str;
    fn deref(&self) -> &str {
        &self.current
    }
}

/// SHA-256 (hex) of the message without the fields relays add. One pass over the header
/// section, then the body in one piece: linear in the size of the message.
pub fn content_hash(raw: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in kept_parts(raw) {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The message as hashed, for tests and diagnosis: the same bytes [`content_hash`] reads.
pub fn without_trace_fields(raw: &[u8]) -> Vec<u8> {
    kept_parts(raw).concat()
}

/// Header names (lower case) relays add in transit; `ARC-*` is matched by prefix.
const TRACE_FIELDS: [&[u8]; 6] = [
    b"return-path",
    b"delivered-to",
    b"x-original-to",
    b"received",
    b"authentication-results",
    b"arc-",
];

fn is_trace_field(name: &[u8]) -> bool {
    let name = name.trim_ascii_end();
    TRACE_FIELDS.iter().any(|field| {
        if field.ends_with(b"-") {
            name.len() > field.len() && name[..field.len()].eq_ignore_ascii_case(field)
        } else {
            name.eq_ignore_ascii_case(field)
        }
    })
}

/// The slices of `raw` that are hashed: header lines that are not trace fields (each with its
/// folded continuation lines), then everything from the blank line that ends the header on.
fn kept_parts(raw: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut at = 0;
    let mut first = true;
    // Whether the field whose continuation lines follow is being left out.
    let mut skipping = false;
    while at < raw.len() {
        let end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| at + i + 1);
        let line = &raw[at..end];
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        let drop = if first && line.starts_with(b"From ") {
            true
        } else if continuation {
            skipping
        } else {
            skipping = line
                .iter()
                .position(|&b| b == b':')
                .is_some_and(|colon| is_trace_field(&line[..colon]));
            skipping
        };
        if !drop {
            parts.push(line);
        }
        first = false;
        at = end;
    }
    parts.push(&raw[at..]);
    parts
}

/// The hash of earlier versions: the message less the mbox `From ` line and the
/// `Return-Path`, `Delivered-To` and `X-Original-To` lines at its very top.
fn without_delivery_envelope(raw: &[u8]) -> &[u8] {
    let mut rest = raw;
    loop {
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(rest.len());
        let line = &rest[..line_end];
        let lower = line.iter().take(16).map(u8::to_ascii_lowercase).collect::<Vec<_>>();
        let envelope = line.starts_with(b"From ")
            || lower.starts_with(b"return-path:")
            || lower.starts_with(b"delivered-to:")
            || lower.starts_with(b"x-original-to:");
        let mut end = line_end;
        if envelope {
            while end < rest.len() && (rest[end] == b' ' || rest[end] == b'\t') {
                end += rest[end..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|i| i + 1)
                    .unwrap_or(rest.len() - end);
            }
        }
        if !envelope || line_end == 0 {
            return rest;
        }
        rest = &rest[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: a@x.test\nSubject: hi\nMessage-ID: <1@x>\n\nbody\nReceived: in the body stays\n";

    #[test]
    fn two_local_deliveries_of_one_message_hash_alike() {
        let first = [b"From a@x.test  Mon Nov 23 10:00:00 2026\nReturn-Path: <a@x.test>\nX-Original-To: support@desk.test\nDelivered-To: support@desk.test\n".as_slice(), MESSAGE].concat();
        let second = [
            b"From a@x.test  Mon Nov 23 10:05:07 2026\nReturn-Path: <a@x.test>\nDelivered-To: support@desk.test\n"
                .as_slice(),
            MESSAGE,
        ]
        .concat();
        assert_eq!(without_trace_fields(&first), MESSAGE);
        assert_eq!(without_trace_fields(&second), MESSAGE);
        assert_eq!(content_hash(&first), content_hash(MESSAGE));
        assert_eq!(without_trace_fields(b""), b"");
    }

    #[test]
    fn trace_fields_anywhere_in_the_header_are_left_out_with_their_folded_lines() {
        let relayed = b"Received: from mx1.x.test (mx1.x.test [192.0.2.1])\r\n\tby desk.test (Postfix) with ESMTP id 1;\r\n\tSun, 6 Dec 2026 04:00:00 +0000\r\n\
From: a@x.test\r\nAUTHENTICATION-RESULTS: desk.test;\r\n  spf=pass\r\nSubject: hi\r\nARC-Seal: i=1; a=rsa-sha256;\r\n b=abc\r\n\
arc-message-signature: i=1\r\nreceived:from b\r\nMessage-ID: <1@x>\r\n\r\nbody\r\nReceived: in the body stays\r\n";
        let expected =
            b"From: a@x.test\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nbody\r\nReceived: in the body stays\r\n";
        assert_eq!(without_trace_fields(relayed), expected);
        let again = String::from_utf8_lossy(relayed)
            .replace("mx1.x.test", "mx2.x.test")
            .into_bytes();
        assert_eq!(content_hash(relayed), content_hash(&again));
    }

    #[test]
    fn what_the_sender_wrote_still_counts() {
        let other_body = b"From: a@x.test\nSubject: hi\nMessage-ID: <1@x>\n\nanother body\n";
        assert_ne!(content_hash(MESSAGE), content_hash(other_body));
        // Names that merely start like a trace field are the sender's own.
        let lookalike = b"Received-SPF: pass\nX-Received: by x\nARC: no\nFrom: a@x.test\n\nbody\n";
        assert_eq!(without_trace_fields(lookalike), lookalike);
        // A `From ` line counts as the mbox separator only at the very top.
        let later = b"Subject: hi\nFrom me\n\nbody\n";
        assert_eq!(without_trace_fields(later), later);
    }

    #[test]
    fn a_header_without_a_body_and_bare_continuations_are_handled() {
        assert_eq!(without_trace_fields(b"Received: x\n y"), b"");
        assert_eq!(
            without_trace_fields(b" lone continuation\nSubject: s"),
            b" lone continuation\nSubject: s"
        );
        assert_eq!(without_trace_fields(b"\n\nReceived: body\n"), b"\n\nReceived: body\n");
    }

    #[test]
    fn the_older_hash_is_kept_for_lookups() {
        let delivered = [b"Return-Path: <a@x.test>\n".as_slice(), MESSAGE].concat();
        let hash = ContentHash::of(&delivered);
        assert_eq!(hash.legacy, hex::encode(Sha256::digest(MESSAGE)));
        assert_eq!(&*hash, content_hash(MESSAGE));
        assert_eq!(hash.candidates(), [hash.current.as_str(), hash.legacy.as_str()]);
    }

    #[test]
    fn a_huge_header_is_hashed_in_linear_time() {
        // 200,000 folded Received lines: a quadratic scan would take minutes.
        let mut raw = Vec::new();
        for i in 0..200_000 {
            raw.extend_from_slice(format!("Received: from h{i}\n\tby desk\n").as_bytes());
        }
        raw.extend_from_slice(MESSAGE);
        assert_eq!(content_hash(&raw), content_hash(MESSAGE));
    }
}
