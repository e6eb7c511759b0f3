//! What a ticket's events tell its console page: the thread (messages with their files, what
//! became of our mail, the sender-authentication verdict), the audit lines, the address the
//! request came from, and whether mail from the registered address proved its sender.

use super::ServiceError;
use super::loaded::Loaded;
use crate::db::{AnyConnection, inbound, outbox, tickets};
use crate::domain::time_text;
use std::collections::HashMap;

pub struct ThreadEntry {
    pub event_id: i64,
    pub kind: &'static str,
    pub who: String,
    pub at: String,
    pub subject: String,
    /// The new part of the message; `history` is the folded quoted history.
    pub text: String,
    pub history: String,
    pub html: Option<String>,
    pub redacted: bool,
    /// Erased by an admin (nothing left to erase).
    pub erased: bool,
    pub auto_generated: bool,
    pub stranger: bool,
    pub attachments: Vec<(i64, String, i64)>,
    pub mail_status: Option<String>,
    /// The sender-authentication verdict of an inbound mail (`pass`, `fail`, `none`) and its detail.
    pub sender_auth: Option<(String, String)>,
}

pub struct AuditEntry {
    pub at: String,
    pub event_type: String,
    pub actor: String,
    pub summary: String,
}

/// What the events of a ticket tell: the thread, the audit lines, the address the request
/// came from, and whether mail from the registered address proved its sender.
pub(crate) struct History {
    pub thread: Vec<ThreadEntry>,
    pub audit: Vec<AuditEntry>,
    pub current_ip: Option<String>,
    pub sender_evidence: Option<String>,
}

pub(crate) fn history(
    conn: &mut AnyConnection,
    loaded: &Loaded,
    mail_rows: &[outbox::OutboxRow],
) -> Result<History, ServiceError> {
    let id = loaded.row.id;
    let messages: HashMap<i64, tickets::MessageRow> =
        tickets::messages_of(conn, id)?.into_iter().map(|m| (m.id, m)).collect();
    let refs: Vec<i64> = messages.keys().copied().collect();
    let mut files: HashMap<i64, Vec<(i64, String, i64)>> = HashMap::new();
    for (att_id, message_ref, name, _, size) in inbound::attachments_of(conn, &refs)? {
        files.entry(message_ref).or_default().push((att_id, name, size));
    }
    let mail_status = mail_status(mail_rows);
    let mut history = History {
        thread: vec![],
        audit: vec![],
        current_ip: None,
        sender_evidence: None,
    };
    for e in &tickets::events_of(conn, id)? {
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
        if e.event_type == crate::domain::event::EventType::Created {
            history.current_ip = data["current_ip"].as_str().map(str::to_string);
        }
        let at = time_text::minutes(e.created_at);
        if let Some(m) = e.message_ref.and_then(|r| messages.get(&r)) {
            let attachments = files.remove(&m.id).unwrap_or_default();
            let status = m.message_id.as_ref().and_then(|mid| mail_status.get(mid).cloned());
            history
                .thread
                .push(thread_entry(e, m, &data, at.clone(), attachments, status));
            // A pass from the account's registered address supports the owner's claim.
            let registered = loaded
                .account
                .as_ref()
                .is_some_and(|a| m.from_address.as_deref().is_some_and(|f| a.is_registered_email(f)));
            if data["sender_auth"] == "pass" && registered && m.sender_role != "stranger" {
                history.sender_evidence.get_or_insert_with(|| {
                    format!(
                        "Mail from the registered address passed sender authentication ({}).",
                        data["sender_auth_detail"].as_str().unwrap_or("pass")
                    )
                });
            }
        }
        history.audit.push(AuditEntry {
            at,
            event_type: e.event_type.to_string(),
            actor: e.actor.clone(),
            summary: summarise(&data),
        });
    }
    Ok(history)
}

/// What became of each mail we sent, by its Message-ID.
fn mail_status(mail_rows: &[outbox::OutboxRow]) -> HashMap<String, String> {
    mail_rows
        .iter()
        .filter_map(|m| {
            let status = match (&m.bounced_at, m.status.as_str()) {
                (Some(_), _) => format!("bounced: {}", m.bounce_reason.clone().unwrap_or_default()),
                (None, "failed") => format!("failed: {}", m.last_error.clone().unwrap_or_default()),
                (None, s) => s.to_string(),
            };
            m.message_id.clone().map(|mid| (mid, status))
        })
        .collect()
}

fn thread_entry(
    e: &tickets::EventRow,
    m: &tickets::MessageRow,
    data: &serde_json::Value,
    at: String,
    attachments: Vec<(i64, String, i64)>,
    mail_status: Option<String>,
) -> ThreadEntry {
    let (text, history) = crate::mail::inbound::quote::fold(&m.body);
    ThreadEntry {
        event_id: e.id,
        kind: match m.direction.as_str() {
            "in" => "in",
            "out" => "out",
            _ => "note",
        },
        who: match m.direction.as_str() {
            "in" => m.from_address.clone().unwrap_or_default(),
            "out" => format!("to {}", m.to_address.clone().unwrap_or_default()),
            _ => e.actor.trim_start_matches("agent:").to_string(),
        },
        at,
        subject: m.subject.clone(),
        text: text.to_string(),
        history: history.to_string(),
        html: m.body_html.clone(),
        redacted: m.body.contains(crate::domain::redact::REDACTED) || m.redacted_at.is_some(),
        erased: m.redacted_at.is_some() && m.body == crate::db::erase::ERASED,
        auto_generated: m.auto_generated,
        stranger: m.sender_role == "stranger",
        attachments,
        mail_status,
        sender_auth: data["sender_auth"].as_str().map(|verdict| {
            let detail = data["sender_auth_detail"].as_str().unwrap_or_default();
            (verdict.to_string(), detail.to_string())
        }),
    }
}

/// One line of an event's data, for the audit trail.
fn summarise(data: &serde_json::Value) -> String {
    let Some(map) = data.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "body" | "message_id" | "outbox_id"))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
