//! The tamper-evident audit trail, as pure functions (docs/reference.md#four-eyes-and-the-audit-trail).
//!
//! Each event's `hash` is the lowercase hex SHA-256 of the previous event's hash on the same
//! ticket (64 zeros for the first), a newline, and the event's canonical JSON: the object
//! `{"actor","at","data","id","ticket","type"}` with keys sorted at every level, no
//! whitespace, non-ASCII written as UTF-8. A message's or note's `data` carries
//! `content_sha256` in place of its text, so erasing the text leaves the chain whole.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The `prev_hash` of a ticket's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the chain covers of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent<'a> {
    pub id: i64,
    /// The ticket's reference (`RD-12`).
    pub ticket: &'a str,
    pub event_type: &'a str,
    pub actor: &'a str,
    /// RFC 3339 in UTC with microseconds and `Z` ([`format_at`]).
    pub at: &'a str,
    pub data: &'a Value,
    /// For a message or note event: the SHA-256 of its text as first stored.
    pub content_sha256: Option<&'a str>,
}

/// `2026-12-07T08:01:02.000003Z`: the one spelling of a time in the chain.
pub fn format_at(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The SHA-256 (hex) of a message's text: its subject, a newline, its body.
pub fn content_sha256(subject: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(subject.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

impl ChainedEvent<'_> {
    /// The object that is hashed, as a JSON value.
    pub fn canonical_value(&self) -> Value {
        let mut data = self.data.clone();
        if let Some(sha) = self.content_sha256 {
            if let Value::Object(map) = &mut data {
                map.remove("body");
                map.remove("subject");
                map.insert("content_sha256".into(), Value::String(sha.to_string()));
            } else {
                let mut map = Map::new();
                map.insert("content_sha256".into(), Value::String(sha.to_string()));
                data = Value::Object(map);
            }
        }
        let mut object = Map::new();
        object.insert("actor".into(), Value::String(self.actor.to_string()));
        object.insert("at".into(), Value::String(self.at.to_string()));
        object.insert("data".into(), data);
        object.insert("id".into(), Value::from(self.id));
        object.insert("ticket".into(), Value::String(self.ticket.to_string()));
        object.insert("type".into(), Value::String(self.event_type.to_string()));
        Value::Object(object)
    }

    pub fn canonical(&self) -> String {
        canonical_json(&self.canonical_value())
    }

    /// This event's hash after `prev_hash`.
    pub fn hash(&self, prev_hash: &str) -> String {
        chain_hash(prev_hash, &self.canonical())
    }

    /// One line of an export: the canonical object plus `prev_hash` and `hash`, canonical too.
    pub fn export_line(&self, prev_hash: &str, hash: &str) -> String {
        let mut value = self.canonical_value();
        if let Value::Object(map) = &mut value {
            map.insert("prev_hash".into(), Value::String(prev_hash.to_string()));
            map.insert("hash".into(), Value::String(hash.to_string()));
        }
        canonical_json(&value)
    }
}

/// SHA-256 (hex) of `prev_hash`, a newline and `canonical`.
pub fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// JSON with keys sorted at every level, no whitespace, and non-ASCII left as UTF-8 (only
/// what JSON requires is escaped: quotes, backslashes and control characters).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => out.push_str(&value.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Where a chain breaks: the ticket and the event, as `audit verify` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub ticket: String,
    /// The event id, when the broken line still names one.
    pub event: Option<i64>,
    pub why: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.event {
            Some(id) => write!(f, "ticket {} event {}: {}", self.ticket, id, self.why),
            None => write!(f, "ticket {} event ?: {}", self.ticket, self.why),
        }
    }
}

/// Checks an export (JSON Lines, one event a line, as `GET /api/v1/tickets/{ref}/audit`
/// writes it; several tickets' exports may be concatenated). Every line must be exactly the
/// canonical line of its event, link to the previous line of its ticket, and carry the right
/// hash. Returns the number of events checked, or the first broken link.
pub fn verify_export(text: &str) -> Result<usize, Broken> {
    let mut last: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut checked = 0;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| Broken {
            ticket: guess_field(line, "ticket").unwrap_or_else(|| "?".into()),
            event: guess_field(line, "id").and_then(|id| id.parse().ok()),
            why: format!("line {}: not JSON ({e})", n + 1),
        })?;
        let text_of = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        let ticket = text_of("ticket").unwrap_or_else(|| "?".into());
        let id = value.get("id").and_then(Value::as_i64);
        let broken = |why: String| Broken {
            ticket: ticket.clone(),
            event: id,
            why: format!("line {}: {why}", n + 1),
        };
        let (Some(id), Some(prev_hash), Some(hash), Some(actor), Some(at), Some(event_type), Some(data)) = (
            id,
            text_of("prev_hash"),
            text_of("hash"),
            text_of("actor"),
            text_of("at"),
            text_of("type"),
            value.get("data"),
        ) else {
            return Err(broken("a field of the event is missing or of the wrong type".into()));
        };
        let expected_prev = last.get(&ticket).map(String::as_str).unwrap_or(GENESIS);
        if prev_hash != expected_prev {
            return Err(broken(format!(
                "prev_hash {prev_hash} does not follow the ticket's previous event ({expected_prev})"
            )));
        }
        let event = ChainedEvent {
            id,
            ticket: &ticket,
            event_type: &event_type,
            actor: &actor,
            at: &at,
            data,
            content_sha256: None,
        };
        // `data` already holds `content_sha256` for a message: hash it as written.
        let computed = event.hash(&prev_hash);
        if computed != hash {
            return Err(broken(format!("hash {hash} does not match the event ({computed})")));
        }
        if event.export_line(&prev_hash, &hash) != line {
            return Err(broken("the line is not the canonical form of its event".into()));
        }
        last.insert(ticket.clone(), hash);
        checked += 1;
    }
    Ok(checked)
}

/// A field's text from a line that is not JSON any more (to still name the event).
fn guess_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',', '}']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests;
