//! What a status page knows besides the ticket's state: what became of the confirmation link,
//! the customer's own request as they gave it, and the attachments of the messages it shows
//! (docs/reference.md#customer-pages).

use super::ServiceError;
use crate::db::tickets::TicketRow;
use crate::db::{AnyConnection, inbound, tickets};
use crate::domain::verification::Method;
use crate::domain::workflow::customer_step::{ChallengeFact, challenge_fact};

/// A file on a message the customer may download from their status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentLink {
    pub id: i64,
    pub filename: String,
    pub size: i64,
}

impl AttachmentLink {
    /// The size in words a person reads (`12 KB`, `1.5 MB`).
    pub fn size_words(&self) -> String {
        let size = self.size.max(0) as f64;
        if size < 1024.0 {
            format!("{} bytes", self.size.max(0))
        } else if size < 1024.0 * 1024.0 {
            format!("{:.0} KB", (size / 1024.0).ceil())
        } else {
            format!("{:.1} MB", size / (1024.0 * 1024.0))
        }
    }
}

/// The email challenge of the ticket's current verification round.
pub(crate) fn challenge(conn: &mut AnyConnection, row: &TicketRow) -> Result<ChallengeFact, ServiceError> {
    let check = tickets::checks_of_round(conn, row.id, row.verification_round)?
        .into_iter()
        .rev()
        .find(|(method, _)| Method::parse(method) == Some(Method::EmailChallenge))
        .map(|(_, passed)| passed);
    let link = tickets::latest_challenge(conn, row.id, row.verification_round)?
        .map(|c| (c.used_at.is_some(), c.expires_at < crate::db::now()));
    Ok(challenge_fact(check, link))
}

/// The fields of the form that opened the ticket, under the words the form used, as stored
/// (scrubbed) in its `created` event.
pub(crate) fn request_fields(
    conn: &mut AnyConnection,
    ticket_id: i64,
) -> Result<Vec<(&'static str, String)>, ServiceError> {
    let Some(created) = tickets::events_of(conn, ticket_id)?
        .into_iter()
        .find(|e| e.event_type == crate::domain::event::EventType::Created)
    else {
        return Ok(vec![]);
    };
    let data: serde_json::Value = serde_json::from_str(&created.data).unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .filter(|v| !v.trim().is_empty())
    };
    let mut fields = vec![];
    for (key, label) in [
        ("account", "Account"),
        ("current_ip", "Locked-out IP address"),
        ("tried_from", "Where you tried from"),
        ("outcome", "What happened"),
        ("problem", "What happens"),
        ("smtp_username", "SMTP username"),
        ("failed_at", "A failed attempt (UTC)"),
        ("error_text", "The error you got"),
    ] {
        let Some(value) = text(key) else { continue };
        let value = match (key, value.as_str()) {
            ("problem", word) => crate::domain::ticket::Problem::parse(word).map_or(value, |p| p.words().to_string()),
            ("failed_at", t) => chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| crate::domain::time_text::minutes(t.naive_local()))
                .unwrap_or_else(|_| t.to_string()),
            _ => value,
        };
        fields.push((label, value));
    }
    Ok(fields)
}

/// The attachments of these messages, by message.
pub(crate) fn attachments(
    conn: &mut AnyConnection,
    message_refs: &[i64],
) -> Result<Vec<(i64, AttachmentLink)>, ServiceError> {
    Ok(inbound::attachments_of(conn, message_refs)?
        .into_iter()
        .map(|(id, message_ref, filename, _, size)| (message_ref, AttachmentLink { id, filename, size }))
        .collect())
}
