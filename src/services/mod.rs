//! Use cases. Each opens one transaction, loads the ticket and account, asks the pure workflow
//! code what may happen, and writes the new state, events and outbox mail together.

pub mod accounts;
mod action_text;
pub mod activity;
pub mod agents;
pub mod approvals;
pub mod audit;
pub mod bulk;
pub mod canned;
pub mod console;
mod decision;
pub mod diagnosis;
pub mod erase;
pub mod gauges;
pub mod group_commit;
pub mod held_mail;
pub mod housekeeping;
pub mod imap_fetch;
pub mod inbound;
mod intake;
mod loaded;
pub mod messages;
mod opening;
pub mod portal;
pub mod quarantine;
pub mod redaction;
mod request;
pub mod sign_in;
pub mod status_page;
mod ticket_history;
pub mod tickets;
pub mod view;

use crate::config::Settings;
use crate::crypto::SecretKey;
use crate::domain::workflow::Refusal;
use std::sync::Arc;

/// What every use case needs besides a connection: settings and the secret key.
#[derive(Debug, Clone)]
pub struct Desk {
    pub settings: Arc<Settings>,
    pub secret: SecretKey,
    /// An archive import: automatic mail is not sent (nobody asked for it today).
    pub quiet: bool,
    /// This process's counters and histograms (served by `/metrics`).
    pub metrics: Arc<crate::telemetry::Metrics>,
}

impl Desk {
    pub fn ticket_ref(&self, id: i64) -> String {
        format!("{}-{}", self.settings.ticket_prefix, id)
    }

    /// The domain of the support address, for Message-IDs.
    pub fn mail_domain(&self) -> &str {
        self.settings
            .support_address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("localhost")
    }

    /// A Message-ID the desk can later recognise as its own (a bounce or an auto-reply coming
    /// back): a random part plus a MAC of it made with the secret key.
    pub fn new_message_id(&self) -> String {
        let nonce: String = crate::crypto::random_token()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect();
        format!("<rd.{nonce}.{}@{}>", self.message_id_mac(&nonce), self.mail_domain())
    }

    pub fn is_our_message_id(&self, id: &str) -> bool {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        let Some((local, _domain)) = id.rsplit_once('@') else {
            return false;
        };
        let mut parts = local.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("rd"), Some(nonce), Some(mac), None) => {
                use subtle::ConstantTimeEq;
                bool::from(self.message_id_mac(nonce).as_bytes().ct_eq(mac.as_bytes()))
            }
            _ => false,
        }
    }

    fn message_id_mac(&self, nonce: &str) -> String {
        crate::crypto::hmac_token(self.secret.bytes(), &["message-id", nonce])
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect()
    }
}

/// Who did something, as the audit trail names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Agent { id: i64, email: String, admin: bool },
    Customer { email: String },
    System,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        matches!(self, Actor::Agent { admin: true, .. })
    }

    pub fn label(&self) -> String {
        match self {
            Actor::Agent { email, .. } => format!("agent:{email}"),
            Actor::Customer { email } => format!("customer:{email}"),
            Actor::System => "system".into(),
        }
    }
}

/// The service layer's one error type, mapped once to HTTP statuses by the web layer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The workflow engine said no (its code decides the status).
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0} not found")]
    NotFound(String),
    /// Someone else changed the ticket between load and write.
    #[error("the ticket was changed by someone else at the same time; reload and try again")]
    Conflict,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl From<Refusal> for ServiceError {
    fn from(r: Refusal) -> Self {
        ServiceError::Refused(r)
    }
}

impl crate::db::Transient for ServiceError {
    fn is_transient(&self) -> bool {
        match self {
            ServiceError::Database(e) => e.is_transient(),
            ServiceError::Db(e) => e.is_transient(),
            _ => false,
        }
    }
}
