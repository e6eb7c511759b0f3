//! Ingestion: one function for every inbound channel (mailgate, webhook, maildir import,
//! quarantine retry). Each message is handled in one transaction: stored exactly once, or not
//! at all with an error the channel turns into a temporary failure (docs/reference.md#inbound-mail).

use super::intake::{self, Routable, ToQuarantine, Verdict};
use super::messages::MailExtras;
use super::tickets::{self, Channel, OpenTicket};
use super::{Actor, Desk, ServiceError};
use crate::db::tickets as ticket_rows;
use crate::db::{self, AnyConnection, inbound as store};
use crate::domain::diagnosis::AuthChannel;
use crate::domain::email_address::{EmailAddress, normalize};
use crate::domain::event::EventType;
use crate::domain::sender_auth::ProviderAuth;
use crate::domain::ticket::TicketRef;
use serde::Serialize;
use serde_json::json;

pub use super::intake::{IngestError, Prepared, prepare};
pub use crate::mail::inbound::reading::{folded, mask_our_links, username_in};
pub use crate::mail::inbound::scrub::MAX_ATTACHMENT_BYTES;

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

/// Receives one raw message from `channel` (`mailgate`, `webhook`, `maildir`).
#[tracing::instrument(level = "debug", skip_all, fields(channel = channel, bytes = raw.len()))]
pub fn ingest(conn: &mut AnyConnection, desk: &Desk, raw: &[u8], channel: &str) -> Result<Ingested, IngestError> {
    ingest_from(conn, desk, raw, channel, None)
}

/// [`ingest`], with what a provider's webhook said about the sender.
#[tracing::instrument(level = "debug", skip_all, fields(channel = channel, bytes = raw.len()))]
pub fn ingest_from(
    conn: &mut AnyConnection,
    desk: &Desk,
    raw: &[u8],
    channel: &str,
    provider: Option<&ProviderAuth>,
) -> Result<Ingested, IngestError> {
    let started = std::time::Instant::now();
    let result = intake::prepare_from(desk, raw, provider).and_then(|prepared| {
        let stored = store_prepared(conn, desk, &prepared, channel, None);
        if let (Ok(i), Some(verdict)) = (&stored, prepared.sender_auth())
            && matches!(i.outcome, Outcome::Created | Outcome::Appended)
        {
            desk.metrics.sender_auth(verdict);
        }
        stored
    });
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
#[tracing::instrument(level = "debug", skip_all)]
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
    let prepared = intake::prepare(desk, &row.raw)?;
    store_prepared(conn, desk, &prepared, "retry", Some(&row.id)).map(Some)
}

/// The writes of one message, in one transaction.
#[tracing::instrument(level = "debug", skip_all, fields(channel = channel, retry = retry_of.is_some()))]
pub fn store_prepared(
    conn: &mut AnyConnection,
    desk: &Desk,
    prepared: &Prepared,
    channel: &str,
    retry_of: Option<&str>,
) -> Result<Ingested, IngestError> {
    let result = db::write_transaction(conn, |conn| -> Result<Ingested, ServiceError> {
        let message_id = prepared.message_id.clone();
        let content_hash = &prepared.content_hash;
        // First of all locks (docs/architecture.md, "Locks and their order"): two deliveries
        // of one message at the same moment (a webhook retry, an MTA delivering twice) run one
        // after the other, so the second finds the first's delivery and stores nothing.
        let mut keys = vec![content_hash.current.as_str()];
        keys.extend(message_id.as_deref());
        db::locks::lock_keys(conn, db::locks::KeyLock::Delivery, &keys)?;
        let earlier = store::find_earlier(conn, message_id.as_deref(), &content_hash.candidates())?;
        if let Some((ticket_id, _)) = earlier.delivery {
            if let Some(id) = ticket_id {
                ticket_rows::insert_event(
                    conn,
                    id,
                    EventType::Duplicate,
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
        if let Some(q) = earlier.quarantined.filter(|q| Some(q.as_str()) != retry_of) {
            return Ok(Ingested {
                outcome: Outcome::Duplicate,
                ticket: None,
                quarantine_id: Some(q),
            });
        }
        let routable = match &prepared.verdict {
            Verdict::Quarantine(q) => {
                return match retry_of {
                    Some(id) => {
                        store::set_quarantine_reason(conn, id, &q.reason)?;
                        Ok(Ingested {
                            outcome: Outcome::Quarantined,
                            ticket: None,
                            quarantine_id: Some(id.to_string()),
                        })
                    }
                    None => quarantine(conn, prepared, q, channel),
                };
            }
            Verdict::Route(r) => r,
        };
        let outcome = route(conn, desk, prepared, routable, channel)?;
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
    prepared: &Prepared,
    q: &ToQuarantine,
    channel: &str,
) -> Result<Ingested, ServiceError> {
    let id = format!(
        "q_{}",
        crate::crypto::random_token()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect::<String>()
    );
    store::quarantine(
        conn,
        &store::NewQuarantined {
            id: &id,
            reason: &q.reason,
            from_address: q.from.as_ref(),
            subject: q.subject.as_ref(),
            raw: &q.copy,
            size: prepared.size as i64,
            channel,
            content_hash: &prepared.content_hash.current,
        },
    )?;
    tracing::warn!(quarantine = %id, reason = %q.reason, "inbound message quarantined");
    Ok(Ingested {
        outcome: Outcome::Quarantined,
        ticket: None,
        quarantine_id: Some(id),
    })
}

/// Where a message goes: an existing ticket (headers, then subject tag from someone entitled),
/// or a new one. Then its delivery is recorded, so the same message is never stored twice.
fn route(
    conn: &mut AnyConnection,
    desk: &Desk,
    prepared: &Prepared,
    r: &Routable,
    channel: &str,
) -> Result<Ingested, ServiceError> {
    let bounced_ticket = mark_bounces(conn, desk, r)?;
    // A forged `From:` never threads by tag: the tag is only believed from the entitled.
    let forged = r.message.mail.as_ref().is_some_and(MailExtras::forged);
    let target = match thread_by_headers(conn, desk, r)?.or(bounced_ticket) {
        Some(id) => Some(id),
        None if forged => None,
        None => by_subject_tag(conn, desk, r.message.subject.as_str(), &r.sender)?,
    };
    let (outcome, ticket_id, message_ref) = match target {
        Some(ticket_id) => {
            let from = Some(r.sender.as_str());
            let appended = super::messages::append_customer_message(conn, desk, ticket_id, from, &r.message, channel)?;
            (Outcome::Appended, ticket_id, Some(appended.message_ref))
        }
        None => {
            let opened = tickets::open_ticket_in_transaction(conn, desk, request_of(r))?;
            (Outcome::Created, opened.ticket.id, Some(opened.first_message))
        }
    };
    if forged {
        flag_forged_sender(conn, ticket_id, &r.sender, r.message.mail.as_ref())?;
    }
    store::record_delivery(
        conn,
        &store::NewDelivery {
            message_id: prepared.message_id.as_deref(),
            content_hash: &prepared.content_hash.current,
            ticket_id: Some(ticket_id),
            message_ref,
            outcome: outcome.as_str(),
            channel,
            size: prepared.size as i64,
        },
    )?;
    Ok(Ingested {
        outcome,
        ticket: Some(desk.ticket_ref(ticket_id)),
        quarantine_id: None,
    })
}

/// A robot's report of our own mail bouncing marks that mail bounced, on whichever ticket it
/// belongs to; the last such ticket is where the report itself threads.
fn mark_bounces(conn: &mut AnyConnection, desk: &Desk, r: &Routable) -> Result<Option<i64>, ServiceError> {
    let robot = r.message.mail.as_ref().is_some_and(|m| m.auto_generated.is_some());
    if !robot || !r.is_report {
        return Ok(None);
    }
    let ours = each_once_at_most(
        r.enclosed_message_ids
            .iter()
            .chain(&r.in_reply_to)
            .chain(r.references.iter().rev())
            .filter(|id| desk.is_our_message_id(id)),
    );
    let mut bounced_ticket = None;
    for bounced in store::mark_bounced(conn, &ours, &r.bounce_reason)? {
        if let Some(id) = bounced.ticket_id {
            // The event points at the thread's copy of the mail that bounced: its body and
            // subject are shown with the event, as for every message event.
            ticket_rows::insert_event(
                conn,
                id,
                EventType::MessageOut,
                "system",
                &json!({"outbox_id": bounced.outbox_id, "bounced": true,
                        "reason": r.bounce_reason.as_str(), "attachments": []}),
                bounced.message_ref,
            )?;
            bounced_ticket = Some(id);
        }
    }
    Ok(bounced_ticket)
}

/// Message-IDs a message's headers may name its thread (or the mail of ours that bounced) by,
/// at most. A real `References` holds a few dozen; a forged one held 40,000, more than SQLite
/// binds in one statement (32,766), and the message could never be stored (the MTA was told
/// "try again" until it gave up).
pub const MAX_THREAD_IDS: usize = 100;

/// The ticket the message's headers name: `In-Reply-To`, `References`, and our own Message-IDs
/// enclosed in it (a forwarded or bounced copy). At most [`MAX_THREAD_IDS`], nearest first:
/// `In-Reply-To`, then `References` from its end (each reply appends its parent's id), then
/// the enclosed ones; each once.
fn thread_by_headers(conn: &mut AnyConnection, desk: &Desk, r: &Routable) -> Result<Option<i64>, ServiceError> {
    let enclosed = r.enclosed_message_ids.iter().filter(|id| desk.is_our_message_id(id));
    let thread_ids = each_once_at_most(r.in_reply_to.iter().chain(r.references.iter().rev()).chain(enclosed));
    Ok(store::ticket_of_message_ids(conn, &thread_ids)?)
}

/// The first [`MAX_THREAD_IDS`] distinct ids, in the order given (one of ours repeated 40,000
/// times in a forged report is one id).
fn each_once_at_most<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.filter(|id| seen.insert(id.as_str()))
        .take(MAX_THREAD_IDS)
        .cloned()
        .collect()
}

/// A new ticket from a mail: its words, and the username (with its channel) and time of failure
/// the mail names.
fn request_of(r: &Routable) -> OpenTicket {
    let named = r.named.as_ref();
    OpenTicket {
        kind: r.kind,
        requester: r.sender.clone(),
        subject: r.message.subject.clone(),
        body: r.message.body.clone(),
        account: None,
        current_ip: None,
        tried_from: None,
        attempts_outcome: None,
        smtp_username: named.map(|(name, _)| name.clone()),
        failed_at: r.failed_at.clone(),
        // "api_user=…" names the API's credentials, as the form's problem `api_key` does.
        problem: named
            .filter(|(_, channel)| *channel == AuthChannel::Api)
            .map(|_| crate::domain::ticket::Problem::ApiKey),
        error_text: None,
        channel: Channel::Mail,
        actor: Actor::Customer {
            email: r.sender.as_str().to_string(),
        },
        inbound: r.message.mail.clone(),
        html: r.message.html.clone(),
        secrets_found: r.message.secrets_found.clone(),
    }
}

/// A `fail` verdict for a registered address, or for the ticket's requester: the ticket is
/// flagged with a `forged_sender` event, so an agent sees that someone wrote in their name.
fn flag_forged_sender(
    conn: &mut AnyConnection,
    ticket_id: i64,
    sender: &EmailAddress,
    mail: Option<&MailExtras>,
) -> Result<(), ServiceError> {
    let registered = !crate::db::accounts::views_by_email(conn, sender.as_str())?.is_empty();
    let requester = ticket_rows::find(conn, ticket_id)?.is_some_and(|t| t.requester_normalized == sender.normalized());
    if !(registered || requester) {
        return Ok(());
    }
    ticket_rows::insert_event(
        conn,
        ticket_id,
        EventType::ForgedSender,
        "system",
        &json!({
            "from": sender.as_str(),
            "registered_address": registered,
            "sender_auth": "fail",
            "sender_auth_detail": mail.and_then(|m| m.sender_auth_detail.as_deref()),
        }),
        None,
    )?;
    ticket_rows::raise_flag(conn, ticket_id)?;
    tracing::warn!(
        ticket = ticket_id,
        "a message failed sender authentication for a known address: flagged"
    );
    Ok(())
}

/// Tags of a subject looked up, at most: a reply carries one (a forwarded chain a few). A
/// forged subject of two million `[RD-n]` tags naming no ticket cost a query each, inside the
/// write transaction that every other delivery waits for.
pub const MAX_SUBJECT_TAGS: usize = 5;

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
    let mut looked_up = 0;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let tag = &after[..close];
        let reference = TicketRef::parse(tag, prefix).filter(|_| tag.contains('-'));
        if reference.is_some() {
            if looked_up == MAX_SUBJECT_TAGS {
                break;
            }
            looked_up += 1;
        }
        if let Some(reference) = reference
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
