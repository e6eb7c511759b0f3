//! Snapshots of every mail the desk sends, rendered from fixed parameters.

use recoverydesk::mail::outbound::templates::{MailContext, TEMPLATE_NAMES, render};
use serde_json::json;

#[test]
fn every_template_renders_as_its_snapshot() {
    let params = json!({
        "ref": "RD-42",
        "subject": "Locked out after moving office",
        "requester": "ops@acme.test",
        "status_url": "https://desk.example/t/STATUS-TOKEN",
        "username": "acme-mailer",
        "accounts": [
            {"username": "acme-mailer", "status": "active"},
            {"username": "old-shop", "status": "terminated"},
            {"username": "trial-2019", "status": "pending_confirmation"},
            {"username": "spam-cannon", "status": "banned"}
        ],
        "ip": "198.51.100.77",
        "balance_due_cents": 12345,
        "terminated_form_url": "https://desk.example/help/account-terminated",
        "verify_url": "https://desk.example/verify/CHALLENGE-TOKEN",
        "expires_in_hours": 24,
        "body": "Hello,\n\nWe looked at your account and everything is in order now.\n\nBest,\nSam",
        "kinds": ["password", "sendgrid_api_key"],
        "refusal": "This request repeats another one we are already handling; we will answer you there.",
        "activity": "wrote",
        "ticket_url": "https://desk.example/agent/tickets/RD-42"
    });
    let context = MailContext::from_params(&params, "support@desk.example");
    for name in TEMPLATE_NAMES {
        let mail = render(name, &context).unwrap();
        insta::assert_snapshot!(name, format!("Subject: {}\n\n{}", mail.subject, mail.text));
    }
}

#[test]
fn mail_to_someone_else_than_the_requester_has_no_status_link() {
    let context = MailContext::from_params(
        &json!({"ref": "RD-1", "subject": "s", "username": "u"}),
        "support@desk.example",
    );
    for name in TEMPLATE_NAMES {
        let mail = render(name, &context).unwrap();
        assert!(!mail.text.contains("/t/"), "{name}");
        assert!(!mail.text.contains("here (this link is yours alone"), "{name}");
    }
}
