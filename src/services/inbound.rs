//! Ingestion: one function for every inbound channel (mailgate, webhook, maildir import,
//! quarantine retry). Each message is handled in one transaction: stored exactly once, or not
//! at all with an error the channel turns into a temporary failure (SPEC §3).

use super::decision::{Loaded, commit};
use super::redaction::Scrubber;
use super::tickets::{self, Channel, InboundParts, OpenTicket};
use super::{Actor, Desk, ServiceError};
use crate::db::tickets::{self as ticket_rows, NewMessage};
use crate::db::{self, AnyConnection, inbound as store};
use crate::domain::classify::classify;
use crate::domain::diagnosis::{AuthChannel, phrases};
use crate::domain::email_address::{EmailAddress, normalize};
use crate::domain::ticket::{Kind, TicketRef};
use crate::domain::workflow;
use crate::domain::workflow::conversation::{self, Sender};
use crate::mail::inbound::parse::{Attachment, InboundMail, parse};
use crate::mail::inbound::{autogen, quote, sanitize};
use serde::Serialize;
use serde_json::{Value, json};

/// Attachments larger than this are not kept (the message and a note of it are).
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Appended,
    Duplicate,
    Quarantined,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Appended => "appended",
            Outcome::Duplicate => "duplicate",
            Outcome::Quarantined => "quarantined",
        }
    }
}

/// The one JSON line every channel answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ingested {
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Permanent: the MTA bounces it to the sender (mailgate 65, HTTP 413).
    #[error("the message is {size} bytes, larger than the {limit} bytes accepted")]
    TooLarge { size: usize, limit: u64 },
    /// Temporary: nothing was stored; the sender must retry (mailgate 75, HTTP 503).
    #[error("temporary failure: {0}")]
    Temporary(String),
}

impl From<ServiceError> for IngestError {
    fn from(e: ServiceError) -> Self {
        IngestError::Temporary(e.to_string())
    }
}

impl From<diesel::result::Error> for IngestError {
    fn from(e: diesel::result::Error) -> Self {
        IngestError::Temporary(e.to_string())
    }
}

/// Receives one raw message from `channel` (`mailgate`, `webhook`, `maildir`).
pub fn ingest(conn: &mut AnyConnection, desk: &Desk, raw: &[u8], channel: &str) -> Result<Ingested, IngestError> {
    let started = std::time::Instant::now();
    let result = ingest_inner(conn, desk, raw, channel, None);
    let outcome = match &result {
        Ok(ingested) => ingested.outcome.as_str(),
        Err(IngestError::TooLarge { .. }) => "too_large",
        Err(IngestError::Temporary(_)) => "failed",
    };
    desk.metrics.inbound(channel, outcome, started.elapsed().as_secs_f64());
    result
}

/// Runs a quarantined message through ingestion again (after an upgrade, say). It leaves
/// quarantine when it now becomes a ticket; otherwise it stays, with the new reason.
pub fn retry_quarantined(conn: &mut AnyConnection, desk: &Desk, id: &str) -> Result<Option<Ingested>, IngestError> {
    let Some(row) = store::quarantined(conn, id)? else {
        return Ok(None);
    };
    if row.released_at.is_some() {
        return Ok(Some(Ingested {
            outcome: Outcome::Duplicate,
            ticket: row.released_ticket_id.map(|t| desk.ticket_ref(t)),
            quarantine_id: Some(row.id),
        }));
    }
    ingest_inner(conn, desk, &row.raw, "retry", Some(&row.id)).map(Some)
}

fn ingest_inner(
    conn: &mut AnyConnection,
    desk: &Desk,
    raw: &[u8],
    channel: &str,
    retry_of: Option<&str>,
) -> Result<Ingested, IngestError> {
    let limit = desk.settings.max_message_bytes;
    if raw.len() as u64 > limit {
        return Err(IngestError::TooLarge { size: raw.len(), limit });
    }
    // Duplicates are recognised by the bytes the sender wrote (only the hash is kept).
    let content_hash = crate::mail::inbound::fingerprint::ContentHash::of(raw);
    let parsed = parse(raw);
    let result = db::write_transaction(conn, |conn| -> Result<Ingested, ServiceError> {
        let message_id = parsed.as_ref().and_then(|m| m.message_id.clone());
        if let Some((ticket_id, _)) = store::find_delivery(conn, message_id.as_deref(), &content_hash.candidates())? {
            if let Some(id) = ticket_id {
                ticket_rows::insert_event(
                    conn,
                    id,
                    "duplicate",
                    "system",
                    &json!({"message_id": message_id, "channel": channel}),
                    None,
                )?;
            }
            return Ok(Ingested {
                outcome: Outcome::Duplicate,
                ticket: ticket_id.map(|id| desk.ticket_ref(id)),
                quarantine_id: None,
            });
        }
        if let Some(q) =
            store::quarantined_with_hash(conn, &content_hash.candidates())?.filter(|q| Some(q.as_str()) != retry_of)
        {
            return Ok(Ingested {
                outcome: Outcome::Duplicate,
                ticket: None,
                quarantine_id: Some(q),
            });
        }
        let keep_in_quarantine = |conn: &mut AnyConnection, mail: Option<&InboundMail>, reason: &str| match retry_of {
            Some(id) => {
                store::set_quarantine_reason(conn, id, reason)?;
                Ok(Ingested {
                    outcome: Outcome::Quarantined,
                    ticket: None,
                    quarantine_id: Some(id.to_string()),
                })
            }
            None => quarantine(conn, raw, mail, reason, channel, &content_hash),
        };
        let Some(mail) = parsed.as_ref().filter(|_| !raw.iter().all(u8::is_ascii_whitespace)) else {
            return keep_in_quarantine(conn, None, "the message is empty or cannot be parsed");
        };
        let Some(sender) = mail.from.as_deref().and_then(|f| EmailAddress::parse(f).ok()) else {
            return keep_in_quarantine(conn, Some(mail), "the message has no usable From address");
        };
        if let Some(reason) = &mail.broken_structure {
            return keep_in_quarantine(conn, Some(mail), reason);
        }
        let outcome = route(conn, desk, raw, mail, &sender, channel, &content_hash)?;
        if let Some(id) = retry_of {
            let ticket_id = outcome
                .ticket
                .as_deref()
                .and_then(|r| TicketRef::parse(r, &desk.settings.ticket_prefix))
                .map(|r| r.number());
            store::release(conn, id, ticket_id)?;
        }
        Ok(outcome)
    });
    result.map_err(Into::into)
}

fn quarantine(
    conn: &mut AnyConnection,
    raw: &[u8],
    mail: Option<&InboundMail>,
    reason: &str,
    channel: &str,
    content_hash: &str,
) -> Result<Ingested, ServiceError> {
    let id = format!(
        "q_{}",
        crate::crypto::random_token()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect::<String>()
    );
    let mut scrub = Scrubber::default();
    let subject = mail.map(|m| scrub.scrub(&m.subject));
    let copy = redacted_raw(raw, mail, &mut scrub);
    store::quarantine(
        conn,
        &store::NewQuarantined {
            id: &id,
            reason,
            from_address: mail.and_then(|m| m.from.as_deref()),
            subject: subject.as_deref(),
            raw: &copy,
            size: raw.len() as i64,
            channel,
            content_hash,
        },
    )?;
    tracing::warn!(quarantine = %id, reason, "inbound message quarantined");
    Ok(Ingested {
        outcome: Outcome::Quarantined,
        ticket: None,
        quarantine_id: Some(id),
    })
}

/// The raw copy kept of a message: the original bytes when nothing secret is in it, else a
/// rebuilt message with the secrets replaced (encoded parts are scanned after decoding).
fn redacted_raw(raw: &[u8], mail: Option<&InboundMail>, scrub: &mut Scrubber) -> Vec<u8> {
    let as_text = String::from_utf8_lossy(raw);
    let raw_clean = crate::domain::redact::redact(&as_text).is_clean();
    let decoded_clean = mail.is_none_or(|m| {
        crate::domain::redact::redact(&m.text).is_clean()
            && m.html
                .as_deref()
                .is_none_or(|h| crate::domain::redact::redact(h).is_clean())
            && m.attachments
                .iter()
                .filter(|a| a.is_text)
                .all(|a| crate::domain::redact::redact(&String::from_utf8_lossy(&a.data)).is_clean())
    });
    if raw_clean && decoded_clean {
        return raw.to_vec();
    }
    let Some(m) = mail else {
        return scrub.scrub(&as_text).into_bytes();
    };
    // Headers as received (redacted), then the decoded text, redacted; binary parts are named.
    let head_end = as_text
        .find("\r\n\r\n")
        .or_else(|| as_text.find("\n\n"))
        .unwrap_or(as_text.len());
    let headers: String = as_text[..head_end]
        .lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            !(lower.starts_with("content-type:")
                || lower.starts_with("content-transfer-encoding:")
                || lower.starts_with("mime-version:"))
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut rebuilt = format!(
        "{}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nX-Recoverydesk-Redacted: secrets were removed from this copy\r\n\r\n{}",
        scrub.scrub(&headers),
        scrub.scrub(&m.text)
    );
    for a in &m.attachments {
        rebuilt.push_str(&format!(
            "\r\n[attachment {} ({}, {} bytes) kept apart]",
            a.filename,
            a.content_type,
            a.data.len()
        ));
    }
    rebuilt.into_bytes()
}

/// Where a message goes: an existing ticket (headers, then subject tag from someone entitled),
/// or a new one.
fn route(
    conn: &mut AnyConnection,
    desk: &Desk,
    raw: &[u8],
    mail: &InboundMail,
    sender: &EmailAddress,
    channel: &str,
    content_hash: &str,
) -> Result<Ingested, ServiceError> {
    let robot = autogen::robot_reason(mail, |id| desk.is_our_message_id(id));
    let mut scrub = Scrubber::default();
    let parts = InboundParts {
        message_id: mail.message_id.clone(),
        content_hash: content_hash.to_string(),
        from: sender.as_str().to_string(),
        html: mail
            .html
            .as_deref()
            .map(|h| mask_our_links(&sanitize::sanitize_html(&scrub.scrub(h)), &desk.settings.base_url)),
        auto_generated: robot.clone(),
        raw: redacted_raw(raw, Some(mail), &mut scrub),
        attachments: mail
            .attachments
            .iter()
            .map(|a| Attachment {
                data: if a.is_text {
                    scrub.scrub(&String::from_utf8_lossy(&a.data)).into_bytes()
                } else {
                    a.data.clone()
                },
                ..a.clone()
            })
            .collect(),
        secrets_found: vec![],
    };
    let subject = scrub.scrub(&mail.subject);
    let text = mask_our_links(&scrub.scrub(&mail.text), &desk.settings.base_url);
    let parts = InboundParts {
        secrets_found: scrub.found.clone(),
        ..parts
    };

    // A bounce of our own mail marks that message bounced, on whichever ticket it belongs to.
    let mut bounced_ticket = None;
    if robot.is_some() {
        let ours: Vec<String> = mail
            .enclosed_message_ids
            .iter()
            .chain(&mail.in_reply_to)
            .chain(&mail.references)
            .filter(|id| desk.is_our_message_id(id))
            .cloned()
            .collect();
        let reason = mail
            .delivery_status
            .as_deref()
            .map(crate::mail::inbound::dsn::bounce_reason)
            .unwrap_or_else(|| "returned".into());
        if mail.content_type == "multipart/report" || mail.delivery_status.is_some() {
            for (outbox_id, ticket_id) in store::mark_bounced(conn, &ours, &reason)? {
                if let Some(id) = ticket_id {
                    ticket_rows::insert_event(
                        conn,
                        id,
                        "message_out",
                        "system",
                        &json!({"outbox_id": outbox_id, "bounced": true, "reason": reason}),
                        None,
                    )?;
                    bounced_ticket = Some(id);
                }
            }
        }
    }

    let mut thread_ids: Vec<String> = mail.in_reply_to.iter().chain(&mail.references).cloned().collect();
    thread_ids.extend(
        mail.enclosed_message_ids
            .iter()
            .filter(|id| desk.is_our_message_id(id))
            .cloned(),
    );
    let by_headers = store::ticket_of_message_ids(conn, &thread_ids)?.or(bounced_ticket);
    let target = match by_headers {
        Some(id) => Some(id),
        None => by_subject_tag(conn, desk, &mail.subject, sender)?,
    };
    let (outcome, ticket_id, message_ref) = match target {
        Some(ticket_id) => {
            let message_ref = append(conn, desk, ticket_id, sender, &subject, &text, &parts, channel)?;
            (Outcome::Appended, ticket_id, message_ref)
        }
        None => {
            let kind = if robot.is_some() {
                Kind::General
            } else {
                classify(&subject, &text)
            };
            // The username the mail names, else the one a quoted SMTP session sent (read before
            // redaction took those lines; only the username is kept).
            let named = phrases::named_username(&text)
                .or_else(|| phrases::session_username_in(&mail.text).map(|name| (name, AuthChannel::Smtp)));
            let request = OpenTicket {
                kind,
                requester: sender.clone(),
                subject: subject.clone(),
                body: text.clone(),
                account: None,
                current_ip: None,
                tried_from: None,
                attempts_outcome: None,
                smtp_username: named.as_ref().map(|(name, _)| name.clone()),
                failed_at: phrases::failed_at_in(&text),
                // "api_user=…" names the API's credentials, as the form's problem `api_key` does.
                problem: named
                    .as_ref()
                    .filter(|(_, channel)| *channel == AuthChannel::Api)
                    .map(|_| "api_key".to_string()),
                error_text: None,
                channel: Channel::Mail,
                actor: Actor::Customer {
                    email: sender.as_str().to_string(),
                },
                inbound: Some(parts),
            };
            let opened = tickets::open_ticket_in_transaction(conn, desk, request)?;
            let first = ticket_rows::messages_of(conn, opened.ticket.id)?.first().map(|m| m.id);
            (Outcome::Created, opened.ticket.id, first)
        }
    };
    store::record_delivery(
        conn,
        &store::NewDelivery {
            message_id: mail.message_id.as_deref(),
            content_hash,
            ticket_id: Some(ticket_id),
            message_ref,
            outcome: outcome.as_str(),
            channel,
            size: raw.len() as i64,
        },
    )?;
    Ok(Ingested {
        outcome,
        ticket: Some(desk.ticket_ref(ticket_id)),
        quarantine_id: None,
    })
}

/// `[RD-12]` in the subject threads only for the ticket's requester or the registered address
/// of its account: anyone else's tagged mail opens a new ticket.
fn by_subject_tag(
    conn: &mut AnyConnection,
    desk: &Desk,
    subject: &str,
    sender: &EmailAddress,
) -> Result<Option<i64>, ServiceError> {
    let prefix = &desk.settings.ticket_prefix;
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let tag = &after[..close];
        if let Some(reference) = TicketRef::parse(tag, prefix).filter(|_| tag.contains('-'))
            && let Some(row) = ticket_rows::find(conn, reference.number())?
        {
            let entitled = row.requester_normalized == sender.normalized()
                || match &row.account_id {
                    Some(id) => {
                        crate::db::accounts::find(conn, id)?.is_some_and(|a| normalize(&a.email) == sender.normalized())
                    }
                    None => false,
                };
            return Ok(entitled.then_some(row.id));
        }
        rest = &after[close..];
    }
    Ok(None)
}

/// Adds a message to a ticket: stored, marked by who sent it, and the reopen rules applied.
#[allow(clippy::too_many_arguments)]
fn append(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    sender: &EmailAddress,
    subject: &str,
    text: &str,
    parts: &InboundParts,
    channel: &str,
) -> Result<Option<i64>, ServiceError> {
    let loaded = Loaded::load(conn, ticket_id)?;
    let row = &loaded.row;
    let who = if row.requester_normalized == sender.normalized() {
        Sender::Requester
    } else if loaded
        .account
        .as_ref()
        .is_some_and(|a| a.is_registered_email(sender.as_str()))
    {
        Sender::RegisteredEmail
    } else {
        Sender::Stranger
    };
    let role = match who {
        Sender::Requester => "requester",
        Sender::RegisteredEmail => "registered_email",
        Sender::Stranger => "stranger",
    };
    let message = NewMessage {
        ticket_id,
        direction: "in",
        sender_role: role,
        from_address: Some(sender.as_str()),
        to_address: None,
        subject,
        body: text,
        body_html: parts.html.as_deref(),
        message_id: parts.message_id.as_deref(),
        content_hash: Some(&parts.content_hash),
        auto_generated: parts.auto_generated.is_some(),
    };
    let message_ref = ticket_rows::insert_message(conn, &message)?;
    let mut data = json!({"channel": channel, "from": sender.as_str(), "sender": role});
    if let Some(reason) = &parts.auto_generated {
        data["auto_generated"] = json!(reason);
    }
    store_mail_parts(conn, message_ref, parts, &mut data)?;
    let actor = Actor::Customer {
        email: sender.as_str().to_string(),
    };
    ticket_rows::insert_event(conn, ticket_id, "message_in", &actor.label(), &data, Some(message_ref))?;
    let kinds: Vec<&str> = parts.secrets_found.iter().map(|k| k.as_str()).collect();
    // Robots and strangers are not told: a stranger would learn of the ticket.
    let notify = (parts.auto_generated.is_none() && who != Sender::Stranger).then_some(sender.as_str());
    super::redaction::record_removed_secrets(conn, desk, row, &kinds, "mail", notify)?;
    if let Some(reason) = &parts.auto_generated {
        ticket_rows::insert_event(
            conn,
            ticket_id,
            "auto_reply_suppressed",
            "system",
            &json!({"reason": reason, "to": sender.as_str()}),
            None,
        )?;
    }
    let next = conversation::after_customer_message(
        loaded.kind(),
        loaded.state(),
        who,
        parts.auto_generated.is_some(),
        row.attempts_on_record,
    );
    if let Some(state) = next {
        let decision = workflow::Decision {
            kind: loaded.kind(),
            state,
            state_reason: None,
            effects: vec![],
        };
        commit(
            conn,
            desk,
            &loaded,
            decision,
            "customer_reply",
            &actor,
            json!({"channel": channel}),
        )?;
    }
    Ok(Some(message_ref))
}

/// Stores the raw copy and the attachments of an inbound message, noting them in `data`.
pub(crate) fn store_mail_parts(
    conn: &mut AnyConnection,
    message_ref: i64,
    parts: &InboundParts,
    data: &mut Value,
) -> Result<(), ServiceError> {
    store::store_raw(conn, message_ref, &parts.raw)?;
    data["from"] = json!(parts.from);
    if let Some(id) = &parts.message_id {
        data["message_id"] = json!(id);
    }
    let mut listed = vec![];
    for a in &parts.attachments {
        if a.data.len() > MAX_ATTACHMENT_BYTES {
            listed.push(
                json!({"filename": a.filename, "content_type": a.content_type, "size": a.data.len(),
                               "dropped": format!("larger than {MAX_ATTACHMENT_BYTES} bytes")}),
            );
            continue;
        }
        let id = store::store_attachment(conn, message_ref, &a.filename, &a.content_type, &a.data)?;
        listed.push(json!({"id": id, "filename": a.filename, "content_type": a.content_type, "size": a.data.len()}));
    }
    if !listed.is_empty() {
        data["attachments"] = json!(listed);
    }
    Ok(())
}

/// The SMTP username a customer names in their mail: "username: crm-mailer" (see
/// `domain::diagnosis::phrases`, which also reads a quoted session and the time of the failure).
pub fn username_in(text: &str) -> Option<String> {
    phrases::named_username(text).map(|(name, _)| name)
}

/// A reply often quotes our mail, links included. A status or challenge link is the mailbox
/// owner's key, so it never reaches an agent's screen through a quoted reply either.
pub fn mask_our_links(text: &str, base_url: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(base_url) {
        out.push_str(&rest[..at]);
        let after = &rest[at + base_url.len()..];
        let masked = [("/verify/", "[confirmation link]"), ("/t/", "[status link]")]
            .into_iter()
            .find_map(|(path, label)| {
                after.strip_prefix(path).map(|tail| {
                    let token_len = tail
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                        .unwrap_or(tail.len());
                    (label, path.len() + token_len)
                })
            });
        match masked {
            Some((label, consumed)) => {
                out.push_str(label);
                rest = &after[consumed..];
            }
            None => {
                out.push_str(base_url);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The new part of a message and its folded history, for display.
pub fn folded(text: &str) -> (&str, &str) {
    quote::fold(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_named_in_mail_are_found() {
        assert_eq!(
            username_in("Hi,\nusername: crm-mailer\nthanks").as_deref(),
            Some("crm-mailer")
        );
        assert_eq!(username_in("> SMTP username: \"my app\"").as_deref(), Some("my app"));
        assert_eq!(username_in("no name here"), None);
        assert_eq!(username_in("username: [redacted]"), None);
    }

    #[test]
    fn our_links_in_quoted_replies_are_masked() {
        let base = "https://desk.example";
        let text = "> Follow: https://desk.example/t/AbC_12-x\n> Confirm: https://desk.example/verify/Zz9.\nSee https://desk.example/help";
        assert_eq!(
            mask_our_links(text, base),
            "> Follow: [status link]\n> Confirm: [confirmation link].\nSee https://desk.example/help"
        );
    }
}
