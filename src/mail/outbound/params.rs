//! What each mail the desk sends needs, as types: one variant per template, so a mail cannot
//! be queued without its parameters or with one misspelt (a JSON bag read with defaults used
//! to render a missing one as a blank).

use crate::domain::redact::SecretKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One mail, by template, with what that template needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mail {
    /// "We received your request", with the status link.
    Acknowledgement,
    /// "There is news on your request".
    StatusUpdate,
    /// The usernames of these accounts; a terminated one is told where to settle the balance.
    UsernameDelivery {
        accounts: Vec<ListedAccount>,
        terminated_form_url: String,
    },
    UnconfirmedSignup,
    TerminatedNotice {
        terminated_form_url: String,
    },
    BalanceDue {
        balance_due_cents: i64,
    },
    BannedAnswer,
    TryAllowlistedIps,
    /// The challenge whose link the sender makes when the mail goes out.
    EmailChallenge {
        challenge_id: i64,
        expires_in_hours: i64,
    },
    IpGranted {
        ip: String,
    },
    AccountReactivated,
    VerificationFailed,
    RedactionNotice {
        kinds: Vec<SecretKind>,
    },
    /// An agent's own words.
    AgentReply {
        body: String,
    },
    /// Why an agent refused the request, in the customer's words.
    RequestRefused {
        refusal: String,
    },
    /// To the ticket's assignee: what the customer did (`wrote`, …) and the console page; never
    /// the customer's words.
    AssigneeActivity {
        activity: String,
        ticket_url: String,
    },
    /// What the logs show: the template is the finding's (`diagnosis_not_seen`, …).
    DiagnosisGuidance {
        template: DiagnosisTemplate,
        diagnosis: DiagnosisMail,
    },
    /// The checklist: it knows only what the requester typed.
    DiagnosisChecklist {
        channel: String,
        typed_has_at: bool,
        typed_whitespace: bool,
    },
}

/// The guidance templates, one per group of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosisTemplate {
    NotSeen,
    User,
    BadPassword,
    IpNotAuthorized,
    Mechanism,
    Succeeded,
}

impl DiagnosisTemplate {
    /// The template of a finding's guidance (`guidance_template` in the workflow names it).
    pub fn named(name: &str) -> Option<DiagnosisTemplate> {
        Some(match name {
            "diagnosis_not_seen" => DiagnosisTemplate::NotSeen,
            "diagnosis_user" => DiagnosisTemplate::User,
            "diagnosis_bad_password" => DiagnosisTemplate::BadPassword,
            "diagnosis_ip_not_authorized" => DiagnosisTemplate::IpNotAuthorized,
            "diagnosis_mechanism" => DiagnosisTemplate::Mechanism,
            "diagnosis_succeeded" => DiagnosisTemplate::Succeeded,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DiagnosisTemplate::NotSeen => "diagnosis_not_seen",
            DiagnosisTemplate::User => "diagnosis_user",
            DiagnosisTemplate::BadPassword => "diagnosis_bad_password",
            DiagnosisTemplate::IpNotAuthorized => "diagnosis_ip_not_authorized",
            DiagnosisTemplate::Mechanism => "diagnosis_mechanism",
            DiagnosisTemplate::Succeeded => "diagnosis_succeeded",
        }
    }
}

impl Mail {
    /// The template's name: the outbox's `template` column and the file under `templates/email/`.
    pub fn name(&self) -> &'static str {
        match self {
            Mail::Acknowledgement => "acknowledgement",
            Mail::StatusUpdate => "status_update",
            Mail::UsernameDelivery { .. } => "username_delivery",
            Mail::UnconfirmedSignup => "unconfirmed_signup",
            Mail::TerminatedNotice { .. } => "terminated_notice",
            Mail::BalanceDue { .. } => "balance_due",
            Mail::BannedAnswer => "banned_answer",
            Mail::TryAllowlistedIps => "try_allowlisted_ips",
            Mail::EmailChallenge { .. } => "email_challenge",
            Mail::IpGranted { .. } => "ip_granted",
            Mail::AccountReactivated => "account_reactivated",
            Mail::VerificationFailed => "verification_failed",
            Mail::RedactionNotice { .. } => "redaction_notice",
            Mail::AgentReply { .. } => "agent_reply",
            Mail::RequestRefused { .. } => "request_refused",
            Mail::AssigneeActivity { .. } => "assignee_activity",
            Mail::DiagnosisGuidance { template, .. } => template.name(),
            Mail::DiagnosisChecklist { .. } => "diagnosis_checklist",
        }
    }

    /// The challenge whose link this mail carries, if it is a challenge.
    pub fn challenge_id(&self) -> Option<i64> {
        match self {
            Mail::EmailChallenge { challenge_id, .. } => Some(*challenge_id),
            _ => None,
        }
    }
}

/// A mail and what every template may add: the username of the account it is about (mail to
/// a registered address) and whether a second agent approved the change (four eyes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailParams {
    pub mail: Mail,
    pub username: Option<String>,
    pub four_eyes: bool,
}

impl From<Mail> for MailParams {
    fn from(mail: Mail) -> Self {
        MailParams {
            mail,
            username: None,
            four_eyes: false,
        }
    }
}

impl MailParams {
    /// The parameters as the outbox row keeps them (for the record, and for the sender, which
    /// reads `challenge_id` and `status_link`).
    pub fn to_json(&self) -> Value {
        let mut v = match &self.mail {
            Mail::UsernameDelivery {
                accounts,
                terminated_form_url,
            } => json!({"accounts": accounts, "terminated_form_url": terminated_form_url}),
            Mail::TerminatedNotice { terminated_form_url } => json!({"terminated_form_url": terminated_form_url}),
            Mail::BalanceDue { balance_due_cents } => json!({"balance_due_cents": balance_due_cents}),
            Mail::EmailChallenge {
                challenge_id,
                expires_in_hours,
            } => json!({"challenge_id": challenge_id, "expires_in_hours": expires_in_hours}),
            Mail::IpGranted { ip } => json!({"ip": ip}),
            Mail::RedactionNotice { kinds } => json!({"kinds": kinds}),
            Mail::AgentReply { body } => json!({"body": body}),
            Mail::RequestRefused { refusal } => json!({"refusal": refusal}),
            Mail::AssigneeActivity { activity, ticket_url } => json!({"activity": activity, "ticket_url": ticket_url}),
            Mail::DiagnosisGuidance { diagnosis, .. } => json!({"diagnosis": diagnosis}),
            Mail::DiagnosisChecklist {
                channel,
                typed_has_at,
                typed_whitespace,
            } => json!({"diagnosis": {"channel": channel, "typed_has_at": typed_has_at,
                                      "typed_whitespace": typed_whitespace}}),
            _ => json!({}),
        };
        if let Some(username) = &self.username {
            v["username"] = json!(username);
        }
        if self.four_eyes {
            v["four_eyes"] = json!(true);
        }
        v
    }
}

/// What the diagnosis mails may use (docs/reference.md#kinds-and-states). The checklist gets only `channel` and the
/// `typed_…` notes: nothing that depends on the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiagnosisMail {
    pub channel: String,
    pub finding: String,
    pub username: String,
    pub events: i64,
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    pub client_ips: Vec<String>,
    pub mechanisms: Vec<String>,
    pub succeeded_at: Option<String>,
    pub failed_at: Option<String>,
    pub time_given: bool,
    /// Failures came before the success (`succeeded_since`).
    pub recovered: bool,
    pub typed_has_at: bool,
    pub typed_whitespace: bool,
}

impl DiagnosisMail {
    pub fn is_api(&self) -> bool {
        self.channel == "api"
    }

    /// The username with control and invisible characters written as escapes, so that a
    /// stray one shows (and never breaks a line).
    pub fn shown_username(&self) -> String {
        let mut out = String::with_capacity(self.username.len());
        for c in self.username.chars() {
            if crate::domain::diagnosis::is_invisible(c) {
                out.push_str(&format!("\\u{{{:04X}}}", c as u32));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// "SMTP user" / "API user".
    pub fn user_label(&self) -> &'static str {
        if self.is_api() { "API user" } else { "SMTP user" }
    }

    /// Whose logs were read.
    pub fn logs(&self) -> &'static str {
        if self.is_api() {
            "API gateway logs"
        } else {
            "SMTP relay logs"
        }
    }

    /// The secret half of the credentials.
    pub fn secret_name(&self) -> &'static str {
        if self.is_api() { "API key" } else { "password" }
    }

    /// "a password" / "an API key".
    pub fn a_secret(&self) -> &'static str {
        if self.is_api() { "an API key" } else { "a password" }
    }

    /// Which period was read, in words.
    pub fn period(&self) -> String {
        match (&self.failed_at, self.time_given) {
            (Some(at), true) => format!("within 15 minutes either side of {at}, the time you gave us"),
            (Some(at), false) => format!("around {at}, the latest failed attempt of the last 24 hours"),
            (None, _) => "over the last 24 hours".to_string(),
        }
    }

    /// "3 login attempts between … and …" / "1 login attempt at …".
    pub fn evidence(&self) -> String {
        let attempts = if self.events == 1 {
            "1 login attempt".to_string()
        } else {
            format!("{} login attempts", self.events)
        };
        match (&self.first_at, &self.last_at) {
            (Some(first), Some(last)) if first != last => format!("{attempts} between {first} and {last}"),
            (Some(first), _) => format!("{attempts} at {first}"),
            _ => attempts,
        }
    }

    /// "203.0.113.7", "203.0.113.7 and 198.51.100.4", "a, b and c".
    pub fn addresses(&self) -> String {
        join_words(&self.client_ips)
    }

    pub fn mechanisms_used(&self) -> String {
        join_words(&self.mechanisms)
    }
}

fn join_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedAccount {
    pub username: String,
    pub status: String,
}
