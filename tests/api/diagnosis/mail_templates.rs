//! Snapshots of the diagnosis mails, rendered from fixed parameters: the guidance for each
//! finding group (SMTP and API), and the checklist with and without notes on what was typed.

use recoverydesk::mail::outbound::templates::{
    DIAGNOSIS_TEMPLATE_NAMES, DiagnosisTemplate, Envelope, Mail, MailParams, Rendered, render,
};
use serde_json::{Value, json};

/// A diagnosis mail as the desk builds it: the checklist takes only what was typed (`channel`
/// and the `typed_…` notes), a guidance mail the whole diagnosis.
fn mail(template: &str, diagnosis: &Value) -> MailParams {
    let mail = match DiagnosisTemplate::named(template) {
        Some(template) => Mail::DiagnosisGuidance {
            template,
            diagnosis: serde_json::from_value(diagnosis.clone()).unwrap(),
        },
        None => {
            assert_eq!(template, "diagnosis_checklist");
            Mail::DiagnosisChecklist {
                channel: diagnosis["channel"].as_str().unwrap().to_string(),
                typed_has_at: diagnosis["typed_has_at"].as_bool().unwrap_or(false),
                typed_whitespace: diagnosis["typed_whitespace"].as_bool().unwrap_or(false),
            }
        }
    };
    assert_eq!(mail.name(), template);
    mail.into()
}

fn envelope(to_requester: bool) -> Envelope<'static> {
    Envelope {
        ticket_ref: "RD-42",
        ticket_subject: "SMTP 535 Authentication failed",
        requester: "ops@acme.test",
        support_address: "support@desk.example",
        status_url: to_requester.then_some("https://desk.example/t/STATUS-TOKEN"),
        verify_url: "",
    }
}

/// Renders `template` with this diagnosis, to the requester or to someone else.
fn rendered(template: &str, diagnosis: &Value, to_requester: bool) -> Rendered {
    render(&mail(template, diagnosis), &envelope(to_requester)).unwrap()
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

fn snapshot(name: &str, template: &str, diagnosis: &Value) {
    let mail = rendered(template, diagnosis, true);
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
        snapshot(name, template, &guidance(finding));
    }

    let mut works = guidance("succeeded_since");
    works["succeeded_at"] = json!("2026-11-23 09:40:00 UTC");
    works["recovered"] = json!(true);
    snapshot("succeeded_since", "diagnosis_succeeded", &works);

    let mut no_time = guidance("request_not_seen");
    no_time["failed_at"] = Value::Null;
    no_time["time_given"] = json!(false);
    snapshot("not_seen_without_a_time", "diagnosis_not_seen", &no_time);

    let mut api = guidance("bad_password");
    api["channel"] = json!("api");
    api["username"] = json!("souk-digital-app");
    api["mechanisms"] = json!([]);
    snapshot("bad_password_api", "diagnosis_bad_password", &api.clone());
    api["finding"] = json!("unknown_user");
    snapshot("unknown_user_api", "diagnosis_user", &api);

    let mut invisible = guidance("bad_password");
    invisible["username"] = json!("crm-mailer\u{200B}");
    snapshot("bad_password_invisible_character", "diagnosis_bad_password", &invisible);

    let checklist = |channel: &str, at: bool, whitespace: bool| json!({"channel": channel, "typed_has_at": at, "typed_whitespace": whitespace});
    snapshot("checklist", "diagnosis_checklist", &checklist("smtp", false, false));
    snapshot(
        "checklist_with_notes_on_what_was_typed",
        "diagnosis_checklist",
        &checklist("smtp", true, true),
    );
    snapshot("checklist_api", "diagnosis_checklist", &checklist("api", false, false));
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
    // The checklist's parameters have no place for log facts (`Mail::DiagnosisChecklist`):
    // built from a diagnosis holding them, it renders as from what was typed alone.
    let plain = rendered("diagnosis_checklist", &typed, true);
    let fed = rendered("diagnosis_checklist", &with_log_facts, true);
    assert_eq!(plain, fed, "the checklist must not use what the logs say");
}

#[test]
fn diagnosis_mail_to_someone_else_than_the_requester_has_no_status_link() {
    for name in DIAGNOSIS_TEMPLATE_NAMES {
        let mail = rendered(name, &guidance("bad_password"), false);
        assert!(!mail.text.contains("/t/"), "{name}");
        let mail = rendered(name, &guidance("bad_password"), true);
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
        let text = rendered(template, &diagnosis, true).text.replace('\n', " ");
        assert!(text.contains("break"), "{template}: {text}");
        assert!(text.contains("integrations"), "{template}: {text}");
    }
}
