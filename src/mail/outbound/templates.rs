//! The text of every message the desk sends (askama, `templates/email/<name>.txt`).

use crate::domain::redact::SecretKind;
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

/// Everything a mail template may use, read from the outbox row's parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MailContext {
    #[serde(rename = "ref")]
    pub ticket_ref: String,
    #[serde(rename = "subject")]
    pub ticket_subject: String,
    pub status_url: Option<String>,
    pub support_address: String,
    pub requester: String,
    pub username: Option<String>,
    pub accounts: Vec<ListedAccount>,
    pub ip: String,
    pub balance_due_cents: i64,
    #[serde(skip)]
    pub balance_due: String,
    pub terminated_form_url: String,
    /// The change was approved by a second agent (four eyes).
    pub four_eyes: bool,
    pub verify_url: String,
    pub expires_in_hours: i64,
    pub body: String,
    /// Why an agent refused the request, in the customer's words (`request_refused`).
    pub refusal: String,
    pub kinds: Vec<SecretKind>,
    /// (label, advice) per kind of secret removed.
    #[serde(skip)]
    pub secrets: Vec<(&'static str, &'static str)>,
    /// Rendering the copy kept on the ticket's thread: no footer (links, signature).
    #[serde(skip)]
    pub in_thread: bool,
    /// What a customer did, in the assignee's notice (`assignee_activity`).
    pub activity: String,
    /// The ticket's console page, in the assignee's notice.
    pub ticket_url: String,
    /// A credential-failure diagnosis (the guidance mails) or what the requester typed (the
    /// checklist).
    pub diagnosis: DiagnosisMail,
}

/// What the diagnosis mails may use (docs/reference.md#kinds-and-states). The checklist gets only `channel` and the
/// `typed_…` notes: nothing that depends on the logs.
#[derive(Debug, Clone, Default, Deserialize)]
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

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListedAccount {
    pub username: String,
    pub status: String,
}

impl MailContext {
    pub fn from_params(params: &Value, support_address: &str) -> Self {
        let mut c: MailContext = serde_json::from_value(params.clone()).unwrap_or_default();
        c.support_address = support_address.to_string();
        c.balance_due = crate::domain::workflow::format_cents(c.balance_due_cents);
        c.secrets = c.kinds.iter().map(|k| (k.label(), k.rotate_advice())).collect();
        if c.expires_in_hours == 0 {
            c.expires_in_hours = 24;
        }
        c
    }

    /// "acme-mailer" in quotes when known, else a neutral phrase.
    pub fn username_or_account(&self) -> String {
        match &self.username {
            Some(u) => format!("\"{u}\""),
            None => "concerned".to_string(),
        }
    }
}

macro_rules! mail_templates {
    ($($name:literal => $ty:ident),* $(,)?) => {
        $(
            #[derive(Template)]
            #[template(path = $name, escape = "none")]
            struct $ty<'a> {
                c: &'a MailContext,
            }
        )*
    };
}

mail_templates! {
    "email/acknowledgement.txt" => Acknowledgement,
    "email/status_update.txt" => StatusUpdate,
    "email/username_delivery.txt" => UsernameDelivery,
    "email/unconfirmed_signup.txt" => UnconfirmedSignup,
    "email/terminated_notice.txt" => TerminatedNotice,
    "email/balance_due.txt" => BalanceDue,
    "email/banned_answer.txt" => BannedAnswer,
    "email/try_allowlisted_ips.txt" => TryAllowlistedIps,
    "email/email_challenge.txt" => EmailChallenge,
    "email/ip_granted.txt" => IpGranted,
    "email/account_reactivated.txt" => AccountReactivated,
    "email/verification_failed.txt" => VerificationFailed,
    "email/redaction_notice.txt" => RedactionNotice,
    "email/agent_reply.txt" => AgentReply,
    "email/request_refused.txt" => RequestRefused,
    "email/assignee_activity.txt" => AssigneeActivity,
    "email/diagnosis_checklist.txt" => DiagnosisChecklist,
    "email/diagnosis_not_seen.txt" => DiagnosisNotSeen,
    "email/diagnosis_user.txt" => DiagnosisUser,
    "email/diagnosis_bad_password.txt" => DiagnosisBadPassword,
    "email/diagnosis_ip_not_authorized.txt" => DiagnosisIpNotAuthorized,
    "email/diagnosis_mechanism.txt" => DiagnosisMechanism,
    "email/diagnosis_succeeded.txt" => DiagnosisSucceeded,
}

/// The templates of the workflows (the diagnosis mails, which need a diagnosis to say anything,
/// are [`DIAGNOSIS_TEMPLATE_NAMES`]).
pub const TEMPLATE_NAMES: [&str; 16] = [
    "acknowledgement",
    "status_update",
    "username_delivery",
    "unconfirmed_signup",
    "terminated_notice",
    "balance_due",
    "banned_answer",
    "try_allowlisted_ips",
    "email_challenge",
    "ip_granted",
    "account_reactivated",
    "verification_failed",
    "redaction_notice",
    "agent_reply",
    "request_refused",
    "assignee_activity",
];

/// The credential-failure diagnosis mails (docs/reference.md#kinds-and-states): the checklist, then one per group of
/// findings.
pub const DIAGNOSIS_TEMPLATE_NAMES: [&str; 7] = [
    "diagnosis_checklist",
    "diagnosis_not_seen",
    "diagnosis_user",
    "diagnosis_bad_password",
    "diagnosis_ip_not_authorized",
    "diagnosis_mechanism",
    "diagnosis_succeeded",
];

/// A rendered mail: the subject (already tagged `[RD-n]`) and the text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
}

pub fn render(template: &str, c: &MailContext) -> Result<Rendered, String> {
    render_at_width(template, c, WRAP_WIDTH)
}

/// The copy of a mail kept on the ticket's thread: no footer, paragraphs unwrapped so pages
/// wrap them to their own width.
pub fn render_for_thread(template: &str, c: &MailContext) -> Result<Rendered, String> {
    let c = MailContext {
        in_thread: true,
        ..c.clone()
    };
    render_at_width(template, &c, usize::MAX / 2)
}

fn render_at_width(template: &str, c: &MailContext, width: usize) -> Result<Rendered, String> {
    let text = match template {
        "acknowledgement" => Acknowledgement { c }.render(),
        "status_update" => StatusUpdate { c }.render(),
        "username_delivery" => UsernameDelivery { c }.render(),
        "unconfirmed_signup" => UnconfirmedSignup { c }.render(),
        "terminated_notice" => TerminatedNotice { c }.render(),
        "balance_due" => BalanceDue { c }.render(),
        "banned_answer" => BannedAnswer { c }.render(),
        "try_allowlisted_ips" => TryAllowlistedIps { c }.render(),
        "email_challenge" => EmailChallenge { c }.render(),
        "ip_granted" => IpGranted { c }.render(),
        "account_reactivated" => AccountReactivated { c }.render(),
        "verification_failed" => VerificationFailed { c }.render(),
        "redaction_notice" => RedactionNotice { c }.render(),
        "agent_reply" => AgentReply { c }.render(),
        "request_refused" => RequestRefused { c }.render(),
        "assignee_activity" => AssigneeActivity { c }.render(),
        "diagnosis_checklist" => DiagnosisChecklist { c }.render(),
        "diagnosis_not_seen" => DiagnosisNotSeen { c }.render(),
        "diagnosis_user" => DiagnosisUser { c }.render(),
        "diagnosis_bad_password" => DiagnosisBadPassword { c }.render(),
        "diagnosis_ip_not_authorized" => DiagnosisIpNotAuthorized { c }.render(),
        "diagnosis_mechanism" => DiagnosisMechanism { c }.render(),
        "diagnosis_succeeded" => DiagnosisSucceeded { c }.render(),
        other => return Err(format!("no mail template called {other:?}")),
    }
    .map_err(|e| format!("template {template}: {e}"))?;
    let title = match template {
        "acknowledgement" => format!("We received your request: {}", c.ticket_subject),
        "status_update" => "There is news on your request".to_string(),
        "username_delivery" => "Your username".to_string(),
        "unconfirmed_signup" => "Your account was never created: the email address was not confirmed".to_string(),
        "terminated_notice" => "Your account was terminated for non-payment".to_string(),
        "balance_due" => "Outstanding balance on your terminated account".to_string(),
        "banned_answer" => "About your banned account".to_string(),
        "try_allowlisted_ips" => {
            "Locked out by IP access management: please try your allowlisted IPs first".to_string()
        }
        "email_challenge" => "Please confirm: did you ask us to restore access?".to_string(),
        "ip_granted" => format!("IP access restored for {}", c.ip),
        "account_reactivated" => "Your account is active again".to_string(),
        "request_refused" => "We cannot take your request further".to_string(),
        "assignee_activity" => format!("The customer {} on your ticket", c.activity),
        "verification_failed" => "We could not verify ownership of the account".to_string(),
        "redaction_notice" => "We removed a secret from your message: please rotate it".to_string(),
        "diagnosis_checklist" if c.diagnosis.is_api() => "Bad username/password: what to check".to_string(),
        "diagnosis_checklist" => "535 Authentication failed: what to check".to_string(),
        "diagnosis_not_seen" => "Your login attempt never reached us".to_string(),
        "diagnosis_user" if c.diagnosis.finding == "user_disabled" => {
            format!("The {} is disabled", c.diagnosis.user_label())
        }
        "diagnosis_user" => format!("The {} was not found", c.diagnosis.user_label()),
        "diagnosis_bad_password" => format!("The {} did not match", c.diagnosis.secret_name()),
        "diagnosis_ip_not_authorized" => "The sending address is not on the allow list".to_string(),
        "diagnosis_mechanism" => "Authenticate with PLAIN or LOGIN over TLS".to_string(),
        "diagnosis_succeeded" => "Your login works again".to_string(),
        _ => format!("Re: {}", c.ticket_subject),
    };
    let text = tidy(&text);
    // An agent's words keep the agent's line breaks; our own prose is wrapped so mail stays
    // plain 7-bit text that every client (and a newcomer's text editor) shows as written.
    let text = if template == "agent_reply" {
        text
    } else {
        reflow(&text, width)
    };
    Ok(Rendered {
        subject: format!("[{}] {}", c.ticket_ref, title),
        text,
    })
}

/// Lines of our own mail text stay within this width (RFC 5322 recommends 78).
pub const WRAP_WIDTH: usize = 72;

/// Rewraps each paragraph to `width`. A list item ("- ", "1. ") starts a new item whose
/// continuation lines are indented under its text; a link stands on a line of its own, so it is
/// never broken or joined to prose.
pub fn reflow(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut item: Vec<&str> = vec![];
    let mut indent = 0usize;
    let mut previous_stands_alone = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || line == "-- " {
            wrap_item(&mut item, indent, width, &mut out);
            out.push_str(line);
            out.push('\n');
            previous_stands_alone = line == "-- ";
            continue;
        }
        let marker = list_marker(trimmed);
        let is_link = trimmed.starts_with("http://") || trimmed.starts_with("https://");
        if marker.is_some() || is_link || previous_stands_alone || item.is_empty() {
            wrap_item(&mut item, indent, width, &mut out);
            indent = line.len() - trimmed.len() + marker.unwrap_or(0);
        }
        item.push(line);
        previous_stands_alone = is_link;
        if previous_stands_alone {
            wrap_item(&mut item, indent, width, &mut out);
        }
    }
    wrap_item(&mut item, indent, width, &mut out);
    out
}

/// Writes the lines of one paragraph or list item, rewrapped, and empties `item`.
fn wrap_item(item: &mut Vec<&str>, indent: usize, width: usize, out: &mut String) {
    let Some(first) = item.first() else { return };
    let mut line = first[..first.len() - first.trim_start().len()].to_string();
    let mut line_has_word = false;
    for word in item.iter().flat_map(|l| l.split_whitespace()) {
        if line_has_word && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat(indent);
            line_has_word = false;
        }
        if line_has_word {
            line.push(' ');
        }
        line.push_str(word);
        line_has_word = true;
    }
    out.push_str(&line);
    out.push('\n');
    item.clear();
}

/// The width of a list marker ("- ", "12. ") at the start of a line, if there is one.
fn list_marker(line: &str) -> Option<usize> {
    if line.starts_with("- ") {
        return Some(2);
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    (digits > 0 && line[digits..].starts_with(". ")).then_some(digits + 2)
}

/// Template control lines leave blank runs; mail reads better with at most one blank line.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        // "-- " (with its space) is the signature separator mail clients recognise.
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_start_matches('\n').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflow_wraps_prose_and_keeps_links_lists_and_signature() {
        let text = "A fairly long sentence that goes on and on, well past the width we allow for mail lines,\nand continues here.\n\n1. A list item that is also long enough to need wrapping when the width is small.\n- Dash item\n\nSee:\nhttps://desk.example/t/AVeryLongTokenThatMustNeverBeBrokenAcrossLinesBecauseItIsALink\n-- \nSupport\n";
        let out = reflow(text, 40);
        assert!(
            out.lines()
                .all(|l| l.chars().count() <= 40 || l.starts_with("https://")),
            "{out}"
        );
        assert!(
            out.contains("\nhttps://desk.example/t/AVeryLongTokenThatMustNeverBeBrokenAcrossLinesBecauseItIsALink\n")
        );
        assert!(
            out.contains("\n   to need"),
            "list continuation indented under its text: {out}"
        );
        assert!(out.contains("\n-- \nSupport\n"), "{out}");
        assert!(out.contains("See:\n"), "{out}");
        assert_eq!(reflow(&out, 40), out, "reflowing is stable");
    }
}
