//! What a decision asks the service to do, as data. The engine never performs anything.

use crate::domain::diagnosis::{AuthChannel, Diagnosis, Finding};
use crate::domain::verification::Method;

/// Who a mail goes to. Account-dependent mail always names the account: the service resolves
/// it to the registered address, never to whoever asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Requester,
    RegisteredEmail { account_id: String },
}

/// Every message a decision's mail effect sends (rendered by the outbound-mail layer). The
/// email challenge goes out through its own effect (it carries a fresh link), and an agent's
/// reply and the redaction notice are mailed by their services with their words: none of
/// them is a template here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTemplate {
    /// Neutral: "we received your request", with the status link.
    Acknowledgement,
    /// Neutral: "there is news on your request", for a requester who is not the registered
    /// address when the account-dependent answer went elsewhere.
    StatusUpdate,
    /// The usernames of these accounts (all registered to the recipient), each other status
    /// explained in its own words.
    UsernameDelivery {
        account_ids: Vec<String>,
    },
    UnconfirmedSignup,
    TerminatedNotice,
    BalanceDue,
    BannedAnswer,
    TryAllowlistedIps,
    IpGranted {
        ip: String,
    },
    AccountReactivated,
    VerificationFailed,
    /// An agent refused the request: the requester is told in the reason's words.
    RequestRefused {
        reason: super::closing::RefuseReason,
    },
    /// What the logs show and the articles' advice for it: only ever to the registered address
    /// of the account owning the username, when that address is the requester.
    DiagnosisGuidance {
        diagnosis: Box<Diagnosis>,
    },
    /// The general 535 (or "bad username/password") checklist, for anyone else: the same
    /// whatever the logs hold. It knows only what the requester typed.
    DiagnosisChecklist {
        typed_username: String,
        channel: AuthChannel,
    },
}

/// The guidance template for a finding; none for the findings that are not told this way (the
/// static checks go into the checklist, which only knows what was typed; a suspended account
/// reroutes to the termination workflow).
pub fn guidance_template(finding: Finding) -> Option<&'static str> {
    Some(match finding {
        Finding::RequestNotSeen => "diagnosis_not_seen",
        Finding::UnknownUser | Finding::UserDisabled => "diagnosis_user",
        Finding::BadPassword => "diagnosis_bad_password",
        Finding::IpNotAuthorized => "diagnosis_ip_not_authorized",
        Finding::MechanismNotSupported | Finding::TlsRequired => "diagnosis_mechanism",
        Finding::SucceededSince => "diagnosis_succeeded",
        Finding::UsernameHasAt | Finding::UsernameWhitespace | Finding::AccountSuspended => return None,
    })
}

impl MailTemplate {
    pub fn name(&self) -> &'static str {
        match self {
            MailTemplate::Acknowledgement => "acknowledgement",
            MailTemplate::StatusUpdate => "status_update",
            MailTemplate::UsernameDelivery { .. } => "username_delivery",
            MailTemplate::UnconfirmedSignup => "unconfirmed_signup",
            MailTemplate::TerminatedNotice => "terminated_notice",
            MailTemplate::BalanceDue => "balance_due",
            MailTemplate::BannedAnswer => "banned_answer",
            MailTemplate::TryAllowlistedIps => "try_allowlisted_ips",
            MailTemplate::IpGranted { .. } => "ip_granted",
            MailTemplate::AccountReactivated => "account_reactivated",
            MailTemplate::VerificationFailed => "verification_failed",
            MailTemplate::RequestRefused { .. } => "request_refused",
            MailTemplate::DiagnosisGuidance { diagnosis } => {
                guidance_template(diagnosis.finding).unwrap_or("diagnosis_checklist")
            }
            MailTemplate::DiagnosisChecklist { .. } => "diagnosis_checklist",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub template: MailTemplate,
    pub to: Recipient,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Mail(Mail),
    LinkAccount {
        account_id: String,
    },
    Assign {
        agent_email: String,
    },
    /// The customer's (or an agent's) report of the allowlisted networks tried.
    RecordAttempts {
        tried_from: String,
        outcome: String,
    },
    /// Ownership is verified afresh: checks of earlier rounds stop counting.
    StartVerificationRound,
    RecordCheck {
        method: Method,
        passed: bool,
        evidence: String,
    },
    /// Create a single-use link and mail it to the account's registered address.
    IssueEmailChallenge {
        account_id: String,
    },
    AddAllowlistEntry {
        account_id: String,
        ip: String,
    },
    RecordPayment {
        account_id: String,
        amount_cents: i64,
        reference: String,
        new_balance_cents: i64,
    },
    ReactivateAccount {
        account_id: String,
    },
    Note {
        body: String,
    },
    /// Draws an agent's attention (for example "this was not me" on an email challenge).
    Flag {
        reason: String,
    },
    /// Write the `diagnosis` event (docs/reference.md#kinds-and-states).
    RecordDiagnosis {
        diagnosis: Box<Diagnosis>,
    },
}

impl Effect {
    pub fn mail(template: MailTemplate, to: Recipient) -> Effect {
        Effect::Mail(Mail { template, to })
    }

    pub fn mail_to_account(template: MailTemplate, account_id: &str) -> Effect {
        Effect::mail(
            template,
            Recipient::RegisteredEmail {
                account_id: account_id.to_string(),
            },
        )
    }
}
