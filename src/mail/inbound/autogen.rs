//! Is this mail from a robot? Auto-generated mail is stored but never answered automatically
//! and never reopens a ticket (docs/reference.md#robots, RFC 3834).

use super::parse::InboundMail;
use crate::domain::email_address::is_automated_mailbox;

const ROBOT_SUBJECT_PREFIXES: &[&str] = &[
    "auto:",
    "automatic reply",
    "autoreply",
    "auto-reply",
    "out of office",
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "returned mail",
];

/// Why the mail is auto-generated, or `None` for a person's mail. `is_ours` recognises a
/// Message-ID the desk itself generated (our own mail coming back).
pub fn robot_reason(mail: &InboundMail, is_ours: impl Fn(&str) -> bool) -> Option<String> {
    if let Some(value) = mail.header("auto-submitted") {
        let value = value.trim().to_ascii_lowercase();
        if !value.is_empty() && !value.starts_with("no") {
            return Some(format!("Auto-Submitted: {value}"));
        }
    }
    if let Some(value) = mail.header("precedence") {
        let value = value.trim().to_ascii_lowercase();
        if matches!(value.as_str(), "bulk" | "junk" | "list" | "auto_reply") {
            return Some(format!("Precedence: {value}"));
        }
    }
    for header in [
        "x-auto-response-suppress",
        "x-autoreply",
        "x-autorespond",
        "x-autoresponse",
        "list-id",
        "list-unsubscribe",
    ] {
        if mail.has_header(header) {
            return Some(format!("{header} header"));
        }
    }
    if mail.header("return-path").is_some_and(|v| v.trim() == "<>") {
        return Some("empty Return-Path".into());
    }
    if mail.content_type == "multipart/report" {
        return Some("delivery report (multipart/report)".into());
    }
    if let Some(from) = mail.from.as_deref().filter(|f| is_automated_mailbox(f)) {
        return Some(format!("sent by {from}"));
    }
    if let Some(id) = mail.message_id.as_deref().filter(|id| is_ours(id)) {
        return Some(format!("our own Message-ID {id}"));
    }
    let subject = mail.subject.trim().to_lowercase();
    if let Some(prefix) = ROBOT_SUBJECT_PREFIXES.iter().find(|p| subject.starts_with(*p)) {
        return Some(format!("subject starts with {prefix:?}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(headers: &[(&str, &str)], from: &str, subject: &str) -> InboundMail {
        InboundMail {
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            from: Some(from.into()),
            subject: subject.into(),
            content_type: "text/plain".into(),
            ..InboundMail::default()
        }
    }

    #[test]
    fn each_robot_marker_is_recognised() {
        let never = |_: &str| false;
        let robots = [
            mail(&[("auto-submitted", "auto-replied")], "a@x.test", "Re: hi"),
            mail(&[("precedence", "bulk")], "a@x.test", "news"),
            mail(&[("x-autoreply", "yes")], "a@x.test", "Re: your request"),
            mail(&[("x-autorespond", "1")], "a@x.test", "hi"),
            mail(&[("list-id", "<l.x.test>")], "a@x.test", "hi"),
            mail(&[("list-unsubscribe", "<mailto:u@x.test>")], "a@x.test", "hi"),
            mail(&[("return-path", "<>")], "a@x.test", "hi"),
            mail(&[], "MAILER-DAEMON@x.test", "failure"),
            mail(&[], "no-reply@x.test", "hello"),
            mail(&[], "a@x.test", "Out of Office: away"),
            mail(&[], "a@x.test", "AUTOMATIC REPLY: away"),
            mail(&[], "a@x.test", "Undelivered Mail Returned to Sender"),
        ];
        for m in &robots {
            assert!(robot_reason(m, never).is_some(), "{:?} {:?}", m.headers, m.subject);
        }
        let mut report = mail(&[], "a@x.test", "hi");
        report.content_type = "multipart/report".into();
        assert!(robot_reason(&report, never).is_some());
        let mut ours = mail(&[], "a@x.test", "hi");
        ours.message_id = Some("<rd.x.y@desk.test>".into());
        assert!(robot_reason(&ours, |id| id.starts_with("<rd.")).is_some());
    }

    #[test]
    fn people_are_not_robots() {
        let person = mail(
            &[("auto-submitted", "no"), ("precedence", "first-class")],
            "ann@x.test",
            "Re: [RD-1] Out of ideas",
        );
        assert_eq!(robot_reason(&person, |_| false), None);
    }
}
