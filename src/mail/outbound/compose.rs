//! Composing a mail into the outbox, with the thread entry agents see.

use super::links;
use super::templates::{self, Envelope, Mail, MailParams};
use crate::db::tickets::{NewMessage, TicketRow};
use crate::db::{AnyConnection, now, outbox, tickets};
use crate::domain::email_address::{is_automated_mailbox, normalize};
use crate::domain::event::EventType;
use crate::domain::scrubbed::Scrubbed;
use crate::services::{Desk, ServiceError};
use chrono::Duration;
use diesel::prelude::*;
use serde_json::json;

/// Acknowledgements to one address answering inbound mail, per 24 hours (docs/reference.md#robots).
pub const ACKNOWLEDGEMENTS_PER_SENDER_PER_DAY: i64 = 3;

/// What happened to a mail a decision wanted sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    Queued {
        outbox_id: i64,
    },
    /// Not sent, and why (an automated mailbox, or the acknowledgement cap).
    Suppressed(String),
}

/// One mail a decision (or an agent) wants sent.
pub struct MailRequest<'a> {
    pub ticket: &'a TicketRow,
    pub to: &'a str,
    /// Written by the software rather than an agent: carries `Auto-Submitted`, and is never
    /// sent to robots.
    pub automatic: bool,
    /// Which mail, with what its template needs.
    pub params: MailParams,
    /// Who the thread names as the sender (`system`, or the agent).
    pub actor: &'a str,
}

/// Renders the mail for `address`, queues it, and records it on the ticket's thread. The
/// thread copy has its links masked: a status link or a challenge link is for the recipient's
/// mailbox only, never for an agent's screen.
pub fn queue_mail(conn: &mut AnyConnection, desk: &Desk, mail: MailRequest) -> Result<Queued, ServiceError> {
    queue_mail_with_files(conn, desk, mail, &[])
}

/// The same, with files that go out with the mail (an agent's reply). They were scanned
/// before (`services::messages::scan_uploads`, or as a mail's attachments): the kept ones are stored on the thread's copy,
/// where the ticket page and the status page list them, and the outbox row names them by id
/// (`params.attachment_ids`), so it never holds a file's bytes; the sender attaches them when
/// it delivers. A dropped one is listed on the event with why, and not sent.
pub fn queue_mail_with_files(
    conn: &mut AnyConnection,
    desk: &Desk,
    mail: MailRequest,
    files: &[crate::mail::inbound::scrub::ScrubbedAttachment],
) -> Result<Queued, ServiceError> {
    let MailRequest {
        ticket,
        to: address,
        automatic,
        params: mail_params,
        actor,
    } = mail;
    let template = mail_params.mail.name();
    if automatic {
        // Both caps on automatic mail (acknowledgements, workflow mail per hour) count this
        // recipient's rows and then insert one: under the recipient's lock, in one step.
        crate::db::locks::lock_key(conn, crate::db::locks::KeyLock::Recipient, &normalize(address))?;
    }
    if automatic && let Some(reason) = suppression(conn, desk, ticket, address, &mail_params.mail)? {
        tickets::insert_event(
            conn,
            ticket.id,
            EventType::AutoReplySuppressed,
            "system",
            &json!({"to": address, "template": template, "reason": reason}),
            None,
        )?;
        return Ok(Queued::Suppressed(reason));
    }
    let ticket_ref = desk.ticket_ref(ticket.id);
    let mut params = mail_params.to_json();
    params["ref"] = json!(ticket_ref);
    params["subject"] = json!(ticket.subject);
    params["requester"] = json!(ticket.requester);
    let to_requester = normalize(address) == ticket.requester_normalized;
    // No live link is ever stored: the outbox body holds markers that the sender fills with
    // fresh tokens when it delivers (see `links`), and the parameters only say which.
    if to_requester {
        params["status_link"] = json!(true);
    }
    let support = &desk.settings.support_address;
    let to_send = Envelope {
        ticket_ref: &ticket_ref,
        ticket_subject: &ticket.subject,
        requester: &ticket.requester,
        support_address: support,
        status_url: to_requester.then_some(links::STATUS_LINK),
        verify_url: links::CHALLENGE_LINK,
    };
    let masked = Envelope {
        status_url: to_requester.then_some("[your status link]"),
        verify_url: "[the confirmation link, sent only to this mailbox]",
        ..to_send
    };
    let rendered = templates::render(&mail_params, &to_send).map_err(ServiceError::Invalid)?;
    let thread_copy = templates::render_for_thread(&mail_params, &masked).map_err(ServiceError::Invalid)?;

    let message_id = desk.new_message_id();
    let in_reply_to = crate::db::inbound::latest_customer_message_id(conn, ticket.id)?;
    let auto_submitted = automatic.then(|| {
        if in_reply_to.is_some() {
            "auto-replied"
        } else {
            "auto-generated"
        }
    });
    let outbox_id = outbox::enqueue(
        conn,
        &outbox::NewOutboxMail {
            ticket_id: Some(ticket.id),
            template,
            recipient: address,
            params: &params,
            automatic,
            subject: &rendered.subject,
            body: &rendered.text,
            message_id: &message_id,
            in_reply_to: in_reply_to.as_deref(),
            auto_submitted,
        },
    )?;
    // Our own mail, rendered from templates whose customer-derived parameters were scrubbed
    // where they entered (subjects, replies).
    let thread_subject = Scrubbed::not_from_customer(thread_copy.subject.clone());
    let thread_text = Scrubbed::not_from_customer(thread_copy.text.clone());
    let copy = NewMessage {
        ticket_id: ticket.id,
        direction: "out",
        sender_role: if automatic { "system" } else { "agent" },
        from_address: Some(support),
        to_address: Some(address),
        subject: &thread_subject,
        body: &thread_text,
        body_html: None,
        message_id: Some(&message_id),
        content_hash: None,
        auto_generated: automatic,
    };
    let message_ref = tickets::insert_message(conn, &copy)?;
    let listed = crate::mail::files::store_files(conn, message_ref, files)?;
    let ids: Vec<i64> = listed.iter().filter_map(|f| f["id"].as_i64()).collect();
    if !ids.is_empty() {
        outbox::name_attachments(conn, outbox_id, &ids)?;
    }
    tickets::insert_event_on_written(
        conn,
        ticket.id,
        EventType::MessageOut,
        actor,
        &json!({"to": address, "template": template, "outbox_id": outbox_id, "message_id": message_id,
                "attachments": listed}),
        &copy,
        message_ref,
    )?;
    Ok(Queued::Queued { outbox_id })
}

fn suppression(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket: &TicketRow,
    address: &str,
    mail: &Mail,
) -> Result<Option<String>, ServiceError> {
    if desk.quiet {
        return Ok(Some("imported quietly from an archive".into()));
    }
    if is_automated_mailbox(address) {
        return Ok(Some("the recipient is an automated mailbox".into()));
    }
    if ticket.auto_generated {
        return Ok(Some("the ticket was opened by auto-generated mail".into()));
    }
    if *mail == Mail::Acknowledgement && ticket.channel == crate::domain::ticket::Channel::Mail {
        use crate::db::schema::outbox::dsl as o;
        let recent: i64 = o::outbox
            .filter(o::recipient_normalized.eq(normalize(address)))
            .filter(o::template.eq(Mail::Acknowledgement.name()))
            .filter(o::created_at.gt(now() - Duration::hours(24)))
            .count()
            .get_result(conn)?;
        if recent >= ACKNOWLEDGEMENTS_PER_SENDER_PER_DAY {
            return Ok(Some(format!(
                "already {ACKNOWLEDGEMENTS_PER_SENDER_PER_DAY} acknowledgements to this address in 24 hours"
            )));
        }
    }
    Ok(None)
}
