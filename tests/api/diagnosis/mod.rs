//! Credential-failure diagnosis (docs/reference.md#kinds-and-states), black-box: the authentication logs loaded, then
//! login_help tickets through the API, the login form, mail and the agent's action.

mod auth_log;
mod findings;
mod mail_templates;
mod window;

use crate::helpers::{TestApp, account};
use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The registered address of acc_1001, which owns most usernames below.
pub const OWNER: &str = "ops@acme.test";
/// Nobody's registered address.
pub const STRANGER: &str = "someone@elsewhere.test";

/// The customer's "failed at": two hours ago, on a whole minute (as forms and mail write it).
/// Two hours ago to the minute, fixed once per test run: a test that reads it again after a
/// minute boundary (a slow machine) must get the same moment its events were made at.
pub fn failed_at() -> DateTime<Utc> {
    static AT: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        let t = Utc::now() - Duration::hours(2);
        t.with_second(0).unwrap().with_nanosecond(0).unwrap()
    })
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One logged attempt, from 203.0.113.7 with PLAIN over TLS unless changed.
pub fn event(at: DateTime<Utc>, username: &str, result: &str, account_id: Option<&str>) -> Value {
    json!({"at": rfc3339(at), "channel": "smtp", "username": username, "account_id": account_id,
           "client_ip": "203.0.113.7", "mechanism": "PLAIN", "tls": true, "result": result})
}

/// Loads events through `POST /api/v1/auth-events` (the test app's token is an admin's).
pub async fn load(app: &TestApp, events: &[Value]) -> Value {
    let (status, report) = app.post("/api/v1/auth-events", &json!(events)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// acc_1001 (active, ops@acme.test), acc_2002 (terminated, owes 42.00), acc_3003 (banned).
pub fn directory(app: &TestApp) {
    let mut late = account("acc_2002", "late-payer", "billing@late.test", "terminated");
    late["balance_due_cents"] = json!(4200);
    app.import_accounts(&[
        account("acc_1001", "acme-mailer", OWNER, "active"),
        late,
        account("acc_3003", "spam-cannon", "owner@banned.test", "banned"),
    ]);
}

/// A log with one username per finding around `failed_at()`.
pub fn the_log() -> Vec<Value> {
    let t = failed_at();
    let m = Duration::minutes;
    let mut office = event(t, "office-mailer", "ip_not_authorized", Some("acc_1001"));
    office["client_ip"] = json!("198.51.100.99");
    let mut old = event(t, "old-client", "mechanism_not_supported", Some("acc_1001"));
    old["mechanism"] = json!("CRAM-MD5");
    let mut plain = event(t, "plain-client", "tls_required", Some("acc_1001"));
    plain["tls"] = json!(false);
    let mut api = event(t, "souk-app", "user_disabled", Some("acc_1001"));
    api["channel"] = json!("api");
    api["mechanism"] = json!("");
    vec![
        event(t - m(1), "crm-mailer", "bad_password", Some("acc_1001")),
        event(t - m(3), "crm-mailer", "bad_password", Some("acc_1001")),
        event(t, "disabled-user", "user_disabled", Some("acc_1001")),
        // Deleted a few days ago: the relay no longer knows it, the older events say whose it was.
        event(t - Duration::days(3), "gone-user", "ok", Some("acc_1001")),
        event(t + m(1), "gone-user", "unknown_user", None),
        office,
        old,
        plain,
        event(t - m(5), "fixed-mailer", "bad_password", Some("acc_1001")),
        event(t + m(40), "fixed-mailer", "ok", Some("acc_1001")),
        // Known, but nothing around the time given.
        event(t - Duration::days(2), "quiet-mailer", "ok", Some("acc_1001")),
        event(t, "crm mailer", "bad_password", Some("acc_1001")),
        api,
        event(t, "late-mailer", "account_suspended", Some("acc_2002")),
        event(t, "banned-mailer", "account_suspended", Some("acc_3003")),
        // Other people's noise in the same minutes.
        event(t, "someone-else", "bad_password", Some("acc_9999")),
        event(t, "CRM-MAILER", "unknown_user", None),
    ]
}

/// The mails of a ticket as (template, recipient).
pub fn mailed(app: &TestApp, reference: &str) -> Vec<(String, String)> {
    app.outbox_of(reference).into_iter().map(|(t, to, _)| (t, to)).collect()
}

/// The `diagnosis` events of a ticket, oldest first.
pub fn diagnosis_events(ticket: &Value) -> Vec<Value> {
    ticket["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "diagnosis")
        .cloned()
        .collect()
}

pub use crate::helpers::reference_on_page as reference_from;

/// As if an hour had passed for the web forms: a new login form from the same address opens a
/// new ticket instead of attaching to the last one.
pub fn forget_form_submissions(app: &TestApp) {
    use diesel::RunQueryDsl;
    let mut conn = app.conn();
    diesel::delete(recoverydesk::db::schema::form_submissions::table)
        .execute(&mut conn)
        .expect("form submissions forgotten");
}
