//! The text of every message the desk sends (askama, `templates/email/<name>.txt`). Each mail
//! is asked for with the parameters its template needs ([`Mail`]), so a mail cannot be queued
//! without them or with one misspelt: what used to be a bag of JSON read with defaults (where a
//! missing parameter rendered a blank line) is now a type.

pub use super::params::{DiagnosisMail, DiagnosisTemplate, ListedAccount, Mail, MailParams};
use askama::Template;

/// What a mail says about its ticket and the links it carries, as the composer knows them.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub ticket_ref: &'a str,
    pub ticket_subject: &'a str,
    pub requester: &'a str,
    pub support_address: &'a str,
    /// The status link (a marker the sender fills, or words standing for it) of mail to the
    /// requester; none for anyone else.
    pub status_url: Option<&'a str>,
    /// The challenge link (or what stands for it) of an email challenge.
    pub verify_url: &'a str,
}

/// Everything a template reads. Built only from a [`MailParams`] and an [`Envelope`].
#[derive(Debug, Clone, Default)]
struct MailContext {
    ticket_ref: String,
    ticket_subject: String,
    status_url: Option<String>,
    support_address: String,
    requester: String,
    username: Option<String>,
    accounts: Vec<ListedAccount>,
    ip: String,
    balance_due: String,
    terminated_form_url: String,
    four_eyes: bool,
    verify_url: String,
    expires_in_hours: i64,
    body: String,
    refusal: String,
    /// What a customer did, in the assignee's notice (`assignee_activity`).
    activity: String,
    /// The ticket's console page, in the assignee's notice.
    ticket_url: String,
    /// (label, advice) per kind of secret removed.
    secrets: Vec<(&'static str, &'static str)>,
    /// Rendering the copy kept on the ticket's thread: no footer (links, signature).
    in_thread: bool,
    diagnosis: DiagnosisMail,
}

impl MailContext {
    fn new(params: &MailParams, envelope: &Envelope, in_thread: bool) -> Self {
        let mut c = MailContext {
            ticket_ref: envelope.ticket_ref.to_string(),
            ticket_subject: envelope.ticket_subject.to_string(),
            status_url: envelope.status_url.map(str::to_string),
            support_address: envelope.support_address.to_string(),
            requester: envelope.requester.to_string(),
            username: params.username.clone(),
            four_eyes: params.four_eyes,
            in_thread,
            ..MailContext::default()
        };
        match &params.mail {
            Mail::UsernameDelivery {
                accounts,
                terminated_form_url,
            } => {
                c.accounts = accounts.clone();
                c.terminated_form_url = terminated_form_url.clone();
            }
            Mail::TerminatedNotice { terminated_form_url } => c.terminated_form_url = terminated_form_url.clone(),
            Mail::BalanceDue { balance_due_cents } => {
                c.balance_due = crate::domain::workflow::format_cents(*balance_due_cents)
            }
            Mail::EmailChallenge { expires_in_hours, .. } => {
                c.verify_url = envelope.verify_url.to_string();
                c.expires_in_hours = *expires_in_hours;
            }
            Mail::IpGranted { ip } => c.ip = ip.clone(),
            Mail::RedactionNotice { kinds } => {
                c.secrets = kinds.iter().map(|k| (k.label(), k.rotate_advice())).collect()
            }
            Mail::AgentReply { body } => c.body = body.clone(),
            Mail::RequestRefused { refusal } => c.refusal = refusal.clone(),
            Mail::AssigneeActivity { activity, ticket_url } => {
                c.activity = activity.clone();
                c.ticket_url = ticket_url.clone();
            }
            Mail::DiagnosisGuidance { diagnosis, .. } => c.diagnosis = diagnosis.clone(),
            Mail::DiagnosisChecklist {
                channel,
                typed_has_at,
                typed_whitespace,
            } => {
                c.diagnosis = DiagnosisMail {
                    channel: channel.clone(),
                    typed_has_at: *typed_has_at,
                    typed_whitespace: *typed_whitespace,
                    ..DiagnosisMail::default()
                }
            }
            Mail::Acknowledgement
            | Mail::StatusUpdate
            | Mail::UnconfirmedSignup
            | Mail::BannedAnswer
            | Mail::TryAllowlistedIps
            | Mail::AccountReactivated
            | Mail::VerificationFailed => {}
        }
        c
    }

    /// "acme-mailer" in quotes when known, else a neutral phrase.
    fn username_or_account(&self) -> String {
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

/// The mail as it is sent.
pub fn render(params: &MailParams, envelope: &Envelope) -> Result<Rendered, String> {
    render_at_width(params, &MailContext::new(params, envelope, false), WRAP_WIDTH)
}

/// The copy of a mail kept on the ticket's thread: no footer, paragraphs unwrapped so pages
/// wrap them to their own width.
pub fn render_for_thread(params: &MailParams, envelope: &Envelope) -> Result<Rendered, String> {
    render_at_width(params, &MailContext::new(params, envelope, true), usize::MAX / 2)
}

fn render_at_width(params: &MailParams, c: &MailContext, width: usize) -> Result<Rendered, String> {
    let template = params.mail.name();
    let text = match &params.mail {
        Mail::Acknowledgement => Acknowledgement { c }.render(),
        Mail::StatusUpdate => StatusUpdate { c }.render(),
        Mail::UsernameDelivery { .. } => UsernameDelivery { c }.render(),
        Mail::UnconfirmedSignup => UnconfirmedSignup { c }.render(),
        Mail::TerminatedNotice { .. } => TerminatedNotice { c }.render(),
        Mail::BalanceDue { .. } => BalanceDue { c }.render(),
        Mail::BannedAnswer => BannedAnswer { c }.render(),
        Mail::TryAllowlistedIps => TryAllowlistedIps { c }.render(),
        Mail::EmailChallenge { .. } => EmailChallenge { c }.render(),
        Mail::IpGranted { .. } => IpGranted { c }.render(),
        Mail::AccountReactivated => AccountReactivated { c }.render(),
        Mail::VerificationFailed => VerificationFailed { c }.render(),
        Mail::RedactionNotice { .. } => RedactionNotice { c }.render(),
        Mail::AgentReply { .. } => AgentReply { c }.render(),
        Mail::RequestRefused { .. } => RequestRefused { c }.render(),
        Mail::AssigneeActivity { .. } => AssigneeActivity { c }.render(),
        Mail::DiagnosisChecklist { .. } => DiagnosisChecklist { c }.render(),
        Mail::DiagnosisGuidance { template, .. } => match template {
            DiagnosisTemplate::NotSeen => DiagnosisNotSeen { c }.render(),
            DiagnosisTemplate::User => DiagnosisUser { c }.render(),
            DiagnosisTemplate::BadPassword => DiagnosisBadPassword { c }.render(),
            DiagnosisTemplate::IpNotAuthorized => DiagnosisIpNotAuthorized { c }.render(),
            DiagnosisTemplate::Mechanism => DiagnosisMechanism { c }.render(),
            DiagnosisTemplate::Succeeded => DiagnosisSucceeded { c }.render(),
        },
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
