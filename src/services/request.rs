//! A request for help as an edge reads it, and the same request with every customer text
//! scrubbed: the only kind a ticket can be opened from.

use super::Actor;
use super::messages::MailExtras;
use super::redaction::{Scrubbed, Scrubber};
use crate::domain::email_address::EmailAddress;
use crate::domain::ticket::{Kind, Problem};

pub use crate::domain::ticket::Channel;

/// A request for help as the edge read it (form, API): plain strings, not yet scanned.
#[derive(Debug, Clone)]
pub struct RequestFields {
    pub kind: Kind,
    pub requester: EmailAddress,
    pub subject: String,
    pub body: String,
    /// An account id, username or registered email the customer named.
    pub account: Option<String>,
    pub current_ip: Option<String>,
    /// Allowlisted networks already tried (ip_lockout), with what happened.
    pub tried_from: Option<String>,
    pub attempts_outcome: Option<String>,
    pub smtp_username: Option<String>,
    pub failed_at: Option<String>,
    pub problem: Option<Problem>,
    pub error_text: Option<String>,
    pub channel: Channel,
    pub actor: Actor,
}

impl RequestFields {
    /// Every field through the secret scanner, before any transaction: the one way to an
    /// [`OpenTicket`]. The SMTP username stays byte-exact unless the scanner finds a secret
    /// in it (a pasted `user:password`); then it is redacted like the rest and the diagnosis,
    /// which would judge a redacted name, does not run.
    pub fn scrub(self) -> OpenTicket {
        let mut s = Scrubber::default();
        OpenTicket {
            kind: self.kind,
            requester: self.requester,
            subject: s.scrub(self.subject.trim()),
            body: s.scrub(&self.body),
            account: s.scrub_opt(self.account.as_deref()),
            current_ip: s.scrub_opt(self.current_ip.as_deref()),
            tried_from: s.scrub_opt(self.tried_from.as_deref()),
            attempts_outcome: s.scrub_opt(self.attempts_outcome.as_deref()),
            smtp_username: s.scrub_opt(self.smtp_username.as_deref()),
            failed_at: s.scrub_opt(self.failed_at.as_deref()),
            problem: self.problem,
            error_text: s.scrub_opt(self.error_text.as_deref()),
            channel: self.channel,
            actor: self.actor,
            inbound: None,
            html: None,
            secrets_found: s.into_found(),
        }
    }
}

/// A request for help with every customer text scrubbed (see [`RequestFields::scrub`], and
/// the ingestion service for mail).
#[derive(Debug, Clone)]
pub struct OpenTicket {
    pub kind: Kind,
    pub requester: EmailAddress,
    pub subject: Scrubbed,
    pub body: Scrubbed,
    pub account: Option<Scrubbed>,
    pub current_ip: Option<Scrubbed>,
    pub tried_from: Option<Scrubbed>,
    pub attempts_outcome: Option<Scrubbed>,
    pub smtp_username: Option<Scrubbed>,
    pub failed_at: Option<Scrubbed>,
    pub problem: Option<Problem>,
    pub error_text: Option<Scrubbed>,
    pub channel: Channel,
    pub actor: Actor,
    /// What came with an inbound mail (scrubbed by the ingestion service).
    pub inbound: Option<MailExtras>,
    pub html: Option<Scrubbed>,
    /// Secrets the scan removed from any of the above.
    pub secrets_found: Vec<crate::domain::redact::SecretKind>,
}
