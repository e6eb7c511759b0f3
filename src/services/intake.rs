//! A received message parsed and scanned, before any transaction: the CPU work of ingestion
//! (parsing, the secret scan of every door, sanitising, classification) happens here, so one
//! large message never holds the database. What leaves is scrubbed.

use super::messages::{CustomerMessage, MailExtras};
use super::redaction::{Scrubbed, Scrubber};
use super::{Desk, ServiceError};
use crate::domain::classify::classify;
use crate::domain::diagnosis::{AuthChannel, phrases};
use crate::domain::email_address::EmailAddress;
use crate::domain::scrubbed::ScrubbedBytes;
use crate::domain::sender_auth::{self, ProviderAuth};
use crate::domain::ticket::Kind;
use crate::mail::inbound::dsn::bounce_reason;
use crate::mail::inbound::fingerprint::ContentHash;
use crate::mail::inbound::reading::mask_our_links;
use crate::mail::inbound::{autogen, parse, scrub};
use serde_json::json;

/// Why a received message was not stored.
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

/// Parses and scans a message, and does every other piece of CPU work (sanitising,
/// classification), before any transaction: one large message never holds the database.
/// Nothing read here from the message leaves it unscrubbed.
#[tracing::instrument(level = "debug", skip_all, fields(bytes = raw.len()))]
pub fn prepare(desk: &Desk, raw: &[u8]) -> Result<Prepared, IngestError> {
    prepare_from(desk, raw, None)
}

/// [`prepare`], with what a provider's webhook said about the sender (docs/reference.md#sender-authentication).
#[tracing::instrument(level = "debug", skip_all, fields(bytes = raw.len()))]
pub fn prepare_from(desk: &Desk, raw: &[u8], provider: Option<&ProviderAuth>) -> Result<Prepared, IngestError> {
    let limit = desk.settings.max_message_bytes;
    if raw.len() as u64 > limit {
        return Err(IngestError::TooLarge { size: raw.len(), limit });
    }
    // Duplicates are recognised by the bytes the sender wrote (only the hash is kept).
    let content_hash = ContentHash::of(raw);
    let max_parts = desk.settings.max_mime_parts;
    let base_url = desk.settings.base_url.clone();
    let mask = move |t: &str| mask_our_links(t, &base_url);
    let unreadable = |reason: &str| {
        let (copy, _) = scrub::view_copy(raw);
        Prepared::quarantine(&content_hash, raw.len(), None, None, None, copy, reason)
    };
    let too_many = format!("the message has more than {max_parts} MIME parts");
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(unreadable("the message is empty or cannot be parsed"));
    }
    // Counted on the bytes first, so that a message nested a million deep is never parsed.
    if parse::container_declarations(raw) > max_parts {
        return Ok(unreadable(&too_many));
    }
    let Some(mail) = parse::parse(raw) else {
        return Ok(unreadable("the message is empty or cannot be parsed"));
    };
    if mail.part_count > max_parts {
        return Ok(unreadable(&too_many));
    }
    let scrubbed = scrub::scrub_mail(raw, &mail, &mask);
    let mut s = scrubbed.scrubber.clone();
    let message_id = s.scrub_opt(mail.message_id.as_deref()).map(Scrubbed::into_string);
    let quarantined = |reason: &str| {
        Prepared::quarantine(
            &content_hash,
            raw.len(),
            message_id.clone(),
            scrubbed.from.clone(),
            Some(scrubbed.subject.clone()),
            scrubbed.raw_copy.clone(),
            reason,
        )
    };
    let Some(sender) = mail.from.as_deref().and_then(|f| EmailAddress::parse(f).ok()) else {
        return Ok(quarantined("the message has no usable From address"));
    };
    if let Some(reason) = &mail.broken_structure {
        return Ok(quarantined(reason));
    }
    let robot = s.scrub_opt(autogen::robot_reason(&mail, |id| desk.is_our_message_id(id)).as_deref());
    let ids = |list: &[String], s: &mut Scrubber| -> Vec<String> {
        list.iter().map(|id| s.scrub(id).into_string()).collect()
    };
    let in_reply_to = ids(&mail.in_reply_to, &mut s);
    let references = ids(&mail.references, &mut s);
    let enclosed_message_ids = ids(&mail.enclosed_message_ids, &mut s);
    let bounce_reason = s.scrub(
        &mail
            .delivery_status
            .as_deref()
            .map(bounce_reason)
            .unwrap_or_else(|| "returned".into()),
    );
    let subject = scrubbed.subject.clone();
    let text = scrubbed.text.clone();
    let kind = if robot.is_some() {
        Kind::General
    } else {
        classify(subject.as_str(), text.as_str())
    };
    // The username the mail names, else the one a quoted SMTP session sent (read before
    // redaction took those lines; only the username is kept, and scanned like the rest).
    let named = phrases::named_username(text.as_str())
        .or_else(|| phrases::session_username_in(&mail.text).map(|name| (name, AuthChannel::Smtp)));
    let named = named.map(|(name, channel)| (s.scrub(&name), channel));
    let failed_at = s.scrub_opt(phrases::failed_at_in(text.as_str()).as_deref());
    let html = scrubbed.html.clone();
    // Who really sent it, decided before routing: a forged owner is routed as a stranger.
    let results: Vec<&str> = mail
        .headers
        .iter()
        .filter(|(name, _)| name == "authentication-results")
        .map(|(_, value)| value.as_str())
        .collect();
    let auth = sender_auth::verdict(
        &results,
        desk.settings.authserv_id.as_deref(),
        sender.domain(),
        provider,
    );
    let extras = MailExtras {
        sender_auth: auth.verdict,
        sender_auth_detail: Some(s.scrub(&auth.detail).into_string()),
        message_id: message_id.clone(),
        content_hash: content_hash.current.clone(),
        from: sender.as_str().to_string(),
        auto_generated: robot.map(Scrubbed::into_string),
        raw: scrubbed.raw_copy.clone(),
        attachments: scrubbed.attachments.clone(),
    };
    let message = CustomerMessage {
        subject,
        body: text,
        html,
        mail: Some(extras),
        secrets_found: s.found().to_vec(),
        event_data: json!({}),
        uploads: vec![],
    };
    Ok(Prepared {
        content_hash,
        size: raw.len(),
        message_id,
        verdict: Verdict::Route(Box::new(Routable {
            sender,
            is_report: mail.content_type == "multipart/report" || mail.delivery_status.is_some(),
            in_reply_to,
            references,
            enclosed_message_ids,
            bounce_reason,
            message,
            kind,
            named,
            failed_at,
        })),
    })
}

/// A message parsed and scanned, ready for the write transaction.
pub struct Prepared {
    pub(super) content_hash: ContentHash,
    pub(super) size: usize,
    pub(super) message_id: Option<String>,
    pub(super) verdict: Verdict,
}

pub(super) enum Verdict {
    Quarantine(Box<ToQuarantine>),
    Route(Box<Routable>),
}

pub(super) struct ToQuarantine {
    pub(super) reason: Scrubbed,
    pub(super) from: Option<Scrubbed>,
    pub(super) subject: Option<Scrubbed>,
    pub(super) copy: ScrubbedBytes,
}

/// What routing needs: identifiers (scrubbed), the sender and the prepared message.
pub(super) struct Routable {
    pub(super) sender: EmailAddress,
    pub(super) is_report: bool,
    pub(super) in_reply_to: Vec<String>,
    pub(super) references: Vec<String>,
    pub(super) enclosed_message_ids: Vec<String>,
    pub(super) bounce_reason: Scrubbed,
    pub(super) message: CustomerMessage,
    pub(super) kind: Kind,
    pub(super) named: Option<(Scrubbed, AuthChannel)>,
    pub(super) failed_at: Option<Scrubbed>,
}

impl Prepared {
    fn quarantine(
        content_hash: &ContentHash,
        size: usize,
        message_id: Option<String>,
        from: Option<Scrubbed>,
        subject: Option<Scrubbed>,
        copy: ScrubbedBytes,
        reason: &str,
    ) -> Prepared {
        // Reasons can quote the message (its declared type): scanned like the rest.
        let reason = Scrubber::default().scrub(reason);
        Prepared {
            content_hash: content_hash.clone(),
            size,
            message_id,
            verdict: Verdict::Quarantine(Box::new(ToQuarantine {
                reason,
                from,
                subject,
                copy,
            })),
        }
    }

    /// The sender-authentication verdict of a message that will be routed.
    pub fn sender_auth(&self) -> Option<crate::domain::sender_auth::SenderAuth> {
        match &self.verdict {
            Verdict::Route(r) => r.message.mail.as_ref().map(|m| m.sender_auth),
            Verdict::Quarantine(_) => None,
        }
    }

    /// Whether ingestion will route it (false: it goes to quarantine).
    pub fn is_routable(&self) -> bool {
        matches!(self.verdict, Verdict::Route(_))
    }
}
