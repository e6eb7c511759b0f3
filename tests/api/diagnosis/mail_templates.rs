//! Snapshots of the diagnosis mails, rendered from fixed parameters: the guidance for each
//! finding group (SMTP and API), and the checklist with and without notes on what was typed.

use recoverydesk::mail::outbound::templates::{DIAGNOSIS_TEMPLATE_NAMES, MailContext, render};
use serde_json::{Value, json};

fn context(diagnosis: Value, to_requester: bool) -> MailContext {
    let mut params = json!({
        "ref": "RD-42",
        "subject": "SMTP 535 Authentication failed",
        "requester": "ops@acme.test",
        "diagnosis": diagnosis,
    });
    if to_requester {
        params["status_url"] = json!("https://desk.example/t/STATUS-TOKEN");
    }
    MailContext::from_params(&params, "support@desk.example")
}

fn guidance(finding: &str) -> Value {
    json!({
        "channel": "smtp",
        "finding": finding,
        "username": "crm-mailer",
        "events": 3,
        "first_at": "2026-11-23 09:12:41 UTC",
        "last_at": "2026-11-23 09:14:03 UTC",
        "client_ips": ["203.0.113.7", "198.51.100.4"],
        "mechanisms": ["CRAM-MD5"],
        "succeeded_at": null,
        "failed_at": "2026-11-23 09:14:00 UTC",
        "time_given": true,
        "recovered": false,
    })
}

fn snapshot(name: &str, template: &str, c: &MailContext) {
    let mail = render(template, c).unwrap();
    for line in mail.text.lines() {
        assert!(
            line.chars().count() <= 72 || line.starts_with("https://"),
            "{name}: a line longer than 72: {line:?}"
        );
    }
    insta::assert_snapshot!(name, format!("Subject: {}\n\n{}", mail.subject, mail.text));
}

#[test]
fn every_diagnosis_mail_renders_as_its_snapshot() {
    for (name, template, finding) in [
        ("not_seen", "diagnosis_not_seen", "request_not_seen"),
        ("unknown_user", "diagnosis_user", "unknown_user"),
        ("user_disabled", "diagnosis_user", "user_disabled"),
        ("bad_password", "diagnosis_bad_password", "bad_password"),
        ("ip_not_authorized", "diagnosis_ip_not_authorized", "ip_not_authorized"),
        (
            "mechanism_not_supported",
            "diagnosis_mechanism",
            "mechanism_not_supported",
        ),
        ("tls_required", "diagnosis_mechanism", "tls_required"),
    ] {
        snapshot(name, template, &context(guidance(finding), true));
    }

    let mut works = guidance("succeeded_since");
    works["succeeded_at"] = json!("2026-11-23 09:40:00 UTC");
    works["recovered"] = json!(true);
    snapshot("succeeded_since", "diagnosis_succeeded", &context(works, true));

    let mut no_time = guidance("request_not_seen");
    no_time["failed_at"] = Value::Null;
    no_time["time_given"] = json!(false);
    snapshot("not_seen_without_a_time", "diagnosis_not_seen", &context(no_time, true));

    let mut api = guidance("bad_password");
    api["channel"] = json!("api");
    api["username"] = json!("souk-digital-app");
    api["mechanisms"] = json!([]);
    snapshot(
        "bad_password_api",
        "diagnosis_bad_password",
        &context(api.clone(), true),
    );
    api["finding"] = json!("unknown_user");
    snapshot("unknown_user_api", "diagnosis_user", &context(api, true));

    let mut invisible = guidance("bad_password");
    invisible["username"] = json!("crm-mailer\u{200B}");
    snapshot(
        "bad_password_invisible_character",
        "diagnosis_bad_password",
        &context(invisible, true),
    );

    let checklist = |channel: &str, at: bool, whitespace: bool| json!({"channel": channel, "typed_has_at": at, "typed_whitespace": whitespace});
    snapshot(
        "checklist",
        "diagnosis_checklist",
        &context(checklist("smtp", false, false), true),
    );
    snapshot(
        "checklist_with_notes_on_what_was_typed",
        "diagnosis_checklist",
        &context(checklist("smtp", true, true), true),
    );
    snapshot(
        "checklist_api",
        "diagnosis_checklist",
        &context(checklist("api", false, false), true),
    );
}

#[test]
fn the_checklist_knows_nothing_of_the_logs() {
    let typed = json!({"channel": "smtp", "typed_has_at": false, "typed_whitespace": false});
    let mut with_log_facts = typed.clone();
    for (key, value) in guidance("account_suspended").as_object().unwrap() {
        if key != "channel" {
            with_log_facts[key] = value.clone();
        }
    }
    let plain = render("diagnosis_checklist", &context(typed, true)).unwrap();
    let fed = render("diagnosis_checklist", &context(with_log_facts, true)).unwrap();
    assert_eq!(plain, fed, "the checklist must not use what the logs say");
}

#[test]
fn diagnosis_mail_to_someone_else_than_the_requester_has_no_status_link() {
    for name in DIAGNOSIS_TEMPLATE_NAMES {
        let mail = render(name, &context(guidance("bad_password"), false)).unwrap();
        assert!(!mail.text.contains("/t/"), "{name}");
        let mail = render(name, &context(guidance("bad_password"), true)).unwrap();
        assert!(mail.text.contains("https://desk.example/t/STATUS-TOKEN"), "{name}");
        assert!(mail.text.contains("never send us"), "{name}: the footer's warning");
    }
}

#[test]
fn where_a_password_change_is_advised_the_mail_warns_about_integrations() {
    for (template, diagnosis) in [
        ("diagnosis_bad_password", guidance("bad_password")),
        (
            "diagnosis_checklist",
            json!({"channel": "smtp", "typed_has_at": false, "typed_whitespace": false}),
        ),
        (
            "diagnosis_checklist",
            json!({"channel": "api", "typed_has_at": false, "typed_whitespace": false}),
        ),
    ] {
        let text = render(template, &context(diagnosis, true))
            .unwrap()
            .text
            .replace('\n', " ");
        assert!(text.contains("break"), "{template}: {text}");
        assert!(text.contains("integrations"), "{template}: {text}");
    }
}
