//! Secrets are removed before anything is stored: the scanner runs on every customer text.

use crate::domain::redact::{self, SecretKind};

/// Redacts each field, collecting the kinds of secret found across all of them.
#[derive(Debug, Default)]
pub struct Scrubber {
    pub found: Vec<SecretKind>,
}

impl Scrubber {
    pub fn scrub(&mut self, text: &str) -> String {
        // NUL is never meaningful in text, and PostgreSQL refuses it in TEXT: a message carrying
        // one would fail to store on every retry.
        let text: std::borrow::Cow<str> = if text.contains('\0') {
            text.replace('\0', "").into()
        } else {
            text.into()
        };
        let result = redact::redact(&text);
        for kind in result.found {
            if !self.found.contains(&kind) {
                self.found.push(kind);
            }
        }
        result.text
    }

    pub fn scrub_opt(&mut self, text: Option<&str>) -> Option<String> {
        text.map(|t| self.scrub(t))
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.found.iter().map(|k| k.as_str()).collect();
        kinds.sort_unstable();
        kinds
    }
}

/// Writes the `redaction` event for secrets removed from what someone sent (the kinds, never
/// the values) and, when `notify` names the person who sent them, mails them to rotate those
/// credentials.
pub(crate) fn record_removed_secrets(
    conn: &mut crate::db::AnyConnection,
    desk: &super::Desk,
    ticket: &crate::db::tickets::TicketRow,
    kinds: &[&str],
    source: &str,
    notify: Option<&str>,
) -> Result<(), super::ServiceError> {
    if kinds.is_empty() {
        return Ok(());
    }
    let data = serde_json::json!({"kinds": kinds, "source": source});
    crate::db::tickets::insert_event(conn, ticket.id, "redaction", "system", &data, None)?;
    if let Some(address) = notify {
        let params = serde_json::json!({"kinds": kinds});
        super::decision::enqueue(
            conn,
            desk,
            ticket,
            address,
            crate::domain::workflow::MailTemplate::RedactionNotice,
            params,
        )?;
    }
    Ok(())
}
