//! Snapshots of every mail the desk sends, rendered from fixed parameters.

use recoverydesk::domain::redact::SecretKind;
use recoverydesk::mail::outbound::templates::{Envelope, ListedAccount, Mail, MailParams, TEMPLATE_NAMES, render};

/// Each workflow template with the parameters its mail carries, all with the same values.
fn sample(name: &str) -> Mail {
    let form = "https://desk.example/help/account-terminated".to_string();
    match name {
        "acknowledgement" => Mail::Acknowledgement,
        "status_update" => Mail::StatusUpdate,
        "username_delivery" => Mail::UsernameDelivery {
            accounts: [
                ("acme-mailer", "active"),
                ("old-shop", "terminated"),
                ("trial-2019", "pending_confirmation"),
                ("spam-cannon", "banned"),
            ]
            .map(|(username, status)| ListedAccount {
                username: username.into(),
                status: status.into(),
            })
            .to_vec(),
            terminated_form_url: form,
        },
        "unconfirmed_signup" => Mail::UnconfirmedSignup,
        "terminated_notice" => Mail::TerminatedNotice {
            terminated_form_url: form,
        },
        "balance_due" => Mail::BalanceDue {
            balance_due_cents: 12345,
        },
        "banned_answer" => Mail::BannedAnswer,
        "try_allowlisted_ips" => Mail::TryAllowlistedIps,
        "email_challenge" => Mail::EmailChallenge {
            challenge_id: 7,
            expires_in_hours: 24,
        },
        "ip_granted" => Mail::IpGranted {
            ip: "198.51.100.77".into(),
        },
        "account_reactivated" => Mail::AccountReactivated,
        "verification_failed" => Mail::VerificationFailed,
        "redaction_notice" => Mail::RedactionNotice {
            kinds: vec![SecretKind::Password, SecretKind::SendgridApiKey],
        },
        "agent_reply" => Mail::AgentReply {
            body: "Hello,\n\nWe looked at your account and everything is in order now.\n\nBest,\nSam".into(),
        },
        "request_refused" => Mail::RequestRefused {
            refusal: "This request repeats another one we are already handling; we will answer you there.".into(),
        },
        "assignee_activity" => Mail::AssigneeActivity {
            activity: "wrote".into(),
            ticket_url: "https://desk.example/agent/tickets/RD-42".into(),
        },
        other => panic!("no sample for the template {other}"),
    }
}

fn params(name: &str) -> MailParams {
    let mail = sample(name);
    assert_eq!(mail.name(), name);
    MailParams {
        mail,
        username: Some("acme-mailer".into()),
        four_eyes: false,
    }
}

const TO_REQUESTER: Envelope<'static> = Envelope {
    ticket_ref: "RD-42",
    ticket_subject: "Locked out after moving office",
    requester: "ops@acme.test",
    support_address: "support@desk.example",
    status_url: Some("https://desk.example/t/STATUS-TOKEN"),
    verify_url: "https://desk.example/verify/CHALLENGE-TOKEN",
};

#[test]
fn every_template_renders_as_its_snapshot() {
    for name in TEMPLATE_NAMES {
        let mail = render(&params(name), &TO_REQUESTER).unwrap();
        insta::assert_snapshot!(name, format!("Subject: {}\n\n{}", mail.subject, mail.text));
    }
}

#[test]
fn mail_to_someone_else_than_the_requester_has_no_status_link() {
    let elsewhere = Envelope {
        ticket_ref: "RD-1",
        ticket_subject: "s",
        status_url: None,
        ..TO_REQUESTER
    };
    for name in TEMPLATE_NAMES {
        let mail = render(&params(name), &elsewhere).unwrap();
        assert!(!mail.text.contains("/t/"), "{name}");
        assert!(!mail.text.contains("here (this link is yours alone"), "{name}");
    }
}

#[test]
fn every_parameter_a_mail_carries_is_in_its_text() {
    // The typed parameters replace a JSON bag whose missing entries rendered as blanks: each
    // one given must show in the mail it was given for.
    for (name, words) in [
        ("ip_granted", "198.51.100.77"),
        ("balance_due", "$123.45"),
        ("terminated_notice", "https://desk.example/help/account-terminated"),
        ("username_delivery", "https://desk.example/help/account-terminated"),
        ("username_delivery", "spam-cannon"),
        ("email_challenge", "https://desk.example/verify/CHALLENGE-TOKEN"),
        ("email_challenge", "for 24 hours"),
        ("email_challenge", "\"acme-mailer\""),
        ("request_refused", "we will answer you there"),
        ("assignee_activity", "https://desk.example/agent/tickets/RD-42"),
        ("agent_reply", "everything is in order now"),
        ("redaction_notice", "SendGrid"),
    ] {
        let text = render(&params(name), &TO_REQUESTER).unwrap().text.replace('\n', " ");
        assert!(text.contains(words), "{name} does not say {words:?}: {text}");
    }
}
