//! The customer's message joins a ticket: one function for every way it arrives (a mail, a
//! status-page reply or report, a repeated form), so that the redaction event, the rotate
//! advice and the reopen rules are the same everywhere.
//!
//! A [`CustomerMessage`] is prepared (scanned, sanitised) before the write transaction
//! starts; here only the writes happen.

use super::decision::commit;
use super::loaded::Loaded;
use super::redaction::Scrubber;
use super::{Actor, Desk, ServiceError};
use crate::db::tickets::{self as ticket_rows, NewMessage, TicketRow};
use crate::db::{AnyConnection, inbound as store};
use crate::domain::event::EventType;
use crate::domain::redact::SecretKind;
use crate::domain::scrubbed::{Scrubbed, ScrubbedBytes};
use crate::domain::sender_auth::SenderAuth;
use crate::domain::workflow;
use crate::domain::workflow::conversation::{self, Sender};
use serde_json::{Value, json};

pub use crate::mail::inbound::scrub::{MAX_ATTACHMENT_BYTES, ScrubbedAttachment};

/// What only a mail brings with its words.
#[derive(Debug, Clone, Default)]
pub struct MailExtras {
    pub message_id: Option<String>,
    pub content_hash: String,
    /// The sender's address, parsed.
    pub from: String,
    pub auto_generated: Option<String>,
    pub raw: ScrubbedBytes,
    pub attachments: Vec<ScrubbedAttachment>,
    /// Who really sent it (docs/reference.md#sender-authentication), and the words it was read from.
    pub sender_auth: SenderAuth,
    pub sender_auth_detail: Option<String>,
}

impl MailExtras {
    /// A `From:` that the sender's own domain says is forged: routed as a stranger's mail.
    pub fn forged(&self) -> bool {
        self.sender_auth == SenderAuth::Fail
    }
}

/// A customer's message, ready to store: every text in it scrubbed.
#[derive(Debug, Clone)]
pub struct CustomerMessage {
    pub subject: Scrubbed,
    pub body: Scrubbed,
    pub html: Option<Scrubbed>,
    pub mail: Option<MailExtras>,
    /// What the scan removed from any part of it (for the event and the advice).
    pub secrets_found: Vec<SecretKind>,
    /// Extra fields of the `message_in` event (desk-made: a report's name, say).
    pub event_data: Value,
    /// Files sent from a status page, scanned as a mail's attachments are (a mail's own
    /// attachments travel in `mail`).
    pub uploads: Vec<ScrubbedAttachment>,
}

impl CustomerMessage {
    /// Words typed on our pages (a reply, a report, a repeated form).
    pub fn typed(subject: Scrubbed, body: Scrubbed, secrets_found: Vec<SecretKind>) -> Self {
        CustomerMessage {
            subject,
            body,
            html: None,
            mail: None,
            secrets_found,
            event_data: json!({}),
            uploads: vec![],
        }
    }

    fn auto_generated(&self) -> Option<&str> {
        self.mail.as_ref().and_then(|m| m.auto_generated.as_deref())
    }
}

/// Who wrote it, as the thread records it.
pub fn role(who: Sender) -> &'static str {
    match who {
        Sender::Requester => "requester",
        Sender::RegisteredEmail => "registered_email",
        Sender::Stranger => "stranger",
    }
}

/// Writes the message, its raw copy and attachments, and its `message_in` event.
pub(crate) fn store_message(
    conn: &mut AnyConnection,
    ticket_id: i64,
    from: &str,
    who: Sender,
    message: &CustomerMessage,
    channel: &str,
    actor: &Actor,
) -> Result<i64, ServiceError> {
    let mail = message.mail.as_ref();
    let row = NewMessage {
        ticket_id,
        direction: "in",
        sender_role: role(who),
        from_address: Some(from),
        to_address: None,
        subject: &message.subject,
        body: &message.body,
        body_html: message.html.as_ref(),
        message_id: mail.and_then(|m| m.message_id.as_deref()),
        content_hash: mail.map(|m| m.content_hash.as_str()),
        auto_generated: message.auto_generated().is_some(),
    };
    let message_ref = ticket_rows::insert_message(conn, &row)?;
    let mut data = json!({"channel": channel});
    if let Some(extra) = message.event_data.as_object() {
        for (k, v) in extra {
            data[k] = v.clone();
        }
    }
    if let Some(mail) = mail {
        data["from"] = json!(mail.from);
        data["sender"] = json!(role(who));
        if let Some(id) = &mail.message_id {
            data["message_id"] = json!(id);
        }
        if let Some(reason) = &mail.auto_generated {
            data["auto_generated"] = json!(reason);
        }
        data["sender_auth"] = json!(mail.sender_auth.as_str());
        if let Some(detail) = &mail.sender_auth_detail {
            data["sender_auth_detail"] = json!(detail);
        }
        store::store_raw(conn, message_ref, &mail.raw)?;
    }
    let files = mail.map(|m| m.attachments.as_slice()).unwrap_or_default();
    let listed = crate::mail::files::store_files(conn, message_ref, files.iter().chain(&message.uploads))?;
    if !listed.is_empty() {
        data["attachments"] = json!(listed);
    }
    ticket_rows::insert_event_on_written(
        conn,
        ticket_id,
        EventType::MessageIn,
        &actor.label(),
        &data,
        &row,
        message_ref,
    )?;
    Ok(message_ref)
}

/// What [`append_customer_message`] did.
pub struct Appended {
    pub ticket: TicketRow,
    pub message_ref: i64,
}

/// Appends a message from `from` (`None`: the requester, who typed it on our pages behind the
/// status link) to a ticket: stored, marked by who sent it, the secrets it held recorded (and
/// the sender told to rotate them, unless a robot or a stranger sent it), and the reopen rules
/// applied.
pub(crate) fn append_customer_message(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    from: Option<&str>,
    message: &CustomerMessage,
    channel: &str,
) -> Result<Appended, ServiceError> {
    let loaded = Loaded::load(conn, ticket_id)?;
    let row = &loaded.row;
    let from = from.unwrap_or(&row.requester);
    let normalized = crate::domain::email_address::normalize(from);
    // A forged `From:` (sender_auth fail) speaks for nobody: a stranger's mail.
    let forged = message.mail.as_ref().is_some_and(MailExtras::forged);
    let who = if forged {
        Sender::Stranger
    } else if row.requester_normalized == normalized {
        Sender::Requester
    } else if loaded.account.as_ref().is_some_and(|a| a.is_registered_email(from)) {
        Sender::RegisteredEmail
    } else {
        Sender::Stranger
    };
    let actor = Actor::Customer {
        email: from.to_string(),
    };
    let message_ref = store_message(conn, ticket_id, from, who, message, channel, &actor)?;
    // Robots and strangers are not told: a stranger would learn of the ticket.
    let notify = (message.auto_generated().is_none() && who != Sender::Stranger).then_some(from);
    let source = if message.mail.is_some() { "mail" } else { "customer" };
    super::redaction::record_removed_secrets(conn, desk, row, &message.secrets_found, source, notify)?;
    if let Some(reason) = message.auto_generated() {
        ticket_rows::insert_event(
            conn,
            ticket_id,
            EventType::AutoReplySuppressed,
            "system",
            &json!({"reason": reason, "to": from}),
            None,
        )?;
    }
    let next = conversation::after_customer_message(
        loaded.kind(),
        loaded.state(),
        who,
        message.auto_generated().is_some(),
        row.attempts_on_record,
    );
    let ticket = match next {
        Some(state) => {
            let decision = workflow::Decision::to(&loaded.view(), state);
            commit(
                conn,
                desk,
                &loaded,
                decision,
                "customer_reply",
                &actor,
                json!({"channel": channel}),
            )?
        }
        None => row.clone(),
    };
    // The customer's own word (not a robot's, not a stranger's) puts the ticket on us.
    let ticket = if message.auto_generated().is_none() && who != Sender::Stranger {
        let ticket = super::activity::record(conn, &ticket, workflow::Activity::Customer, false)?;
        super::activity::notify_assignee(conn, desk, &ticket, &actor, "wrote")?;
        ticket
    } else {
        ticket
    };
    Ok(Appended { ticket, message_ref })
}

/// The customer's own reply (status page). Reopens a resolved ticket as docs/reference.md#threading-and-reopening says;
/// a refused one keeps its state. The words are scanned before the transaction starts.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id))]
pub fn customer_reply(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    body: &str,
) -> Result<TicketRow, ServiceError> {
    customer_reply_with_files(conn, desk, ticket_id, body, vec![])
}

/// A file sent with a status-page reply, as received.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Scans files sent from our pages (a status-page reply, an agent's reply or note) as a mail's
/// attachments are: the name and type redacted, text content redacted, a binary file with a
/// secret in it withheld, one larger than [`MAX_ATTACHMENT_BYTES`] not kept (a note of it is).
/// What was found is left in `scrub`.
pub fn scan_uploads(scrub: &mut Scrubber, files: Vec<Upload>) -> Vec<ScrubbedAttachment> {
    files
        .into_iter()
        .map(|f| {
            let one_line = |t: &str| crate::mail::inbound::rebuild::one_line(t);
            let filename = scrub.scrub(&one_line(&f.filename));
            let content_type = scrub.scrub(&one_line(&f.content_type));
            let (data, dropped) = if f.data.len() > MAX_ATTACHMENT_BYTES {
                (None, Some(format!("larger than {MAX_ATTACHMENT_BYTES} bytes")))
            } else {
                match scrub.scrub_bytes(&f.data) {
                    crate::domain::scrubbed::BinaryVerdict::Kept(bytes) => (Some(bytes), None),
                    crate::domain::scrubbed::BinaryVerdict::Withheld => {
                        (None, Some("a secret was found in this file".to_string()))
                    }
                }
            };
            ScrubbedAttachment {
                filename,
                content_type,
                data,
                size: f.data.len(),
                dropped,
            }
        })
        .collect()
}

/// A status-page reply with files. Each file is scanned as a mail's attachment is (its name,
/// its type, its content: text redacted, a binary file with a secret in it withheld) and one
/// larger than [`MAX_ATTACHMENT_BYTES`] is not kept, a note of it is; all before the
/// transaction starts.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id, files = files.len()))]
pub fn customer_reply_with_files(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    body: &str,
    files: Vec<Upload>,
) -> Result<TicketRow, ServiceError> {
    if body.trim().is_empty() && files.is_empty() {
        return Err(ServiceError::Invalid("body: write a few words".into()));
    }
    let mut scrub = Scrubber::default();
    let body = scrub.scrub(body);
    let uploads = scan_uploads(&mut scrub, files);
    crate::db::write_transaction(conn, |conn| {
        let subject = reply_subject(conn, ticket_id)?;
        let mut message = CustomerMessage::typed(subject, body.clone(), scrub.found().to_vec());
        message.uploads = uploads.clone();
        append_customer_message(conn, desk, ticket_id, None, &message, "web").map(|a| a.ticket)
    })
}

/// "Re: " and the ticket's subject (which was scrubbed when it was stored).
pub(crate) fn reply_subject(conn: &mut AnyConnection, ticket_id: i64) -> Result<Scrubbed, ServiceError> {
    let row = ticket_rows::find(conn, ticket_id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
    Ok(Scrubbed::not_from_customer(format!("Re: {}", row.subject)))
}

/// A stored file of any message, for an agent's download (the customer's pages go through
/// `portal::status_attachment`, which checks the file is theirs to see).
#[tracing::instrument(level = "debug", skip_all, fields(attachment_id = id))]
pub fn attachment(conn: &mut AnyConnection, id: i64) -> Result<store::AttachmentRow, ServiceError> {
    store::attachment(conn, id)?.ok_or_else(|| ServiceError::NotFound("attachment".into()))
}
