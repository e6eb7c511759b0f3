//! What the agent console shows of a ticket's credential-failure diagnosis.

use super::super::ServiceError;
use super::super::loaded::Loaded;
use super::latest_for;
use crate::db::AnyConnection;
use crate::domain::diagnosis::{AuthResult, Finding, is_invisible};
use crate::domain::time_text;
use crate::domain::workflow::{self, ActionName};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A ticket's latest diagnosis, ready to render: the finding in plain words, the matching
/// events as a short timeline, and the defaults of the form that runs `diagnose_auth` again.
/// Every field is plain text (escape it like any other text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosisPanel {
    /// the reference's name of the finding (`bad_password`, `succeeded_since`, …), for a CSS class.
    pub finding: String,
    /// The finding in plain words, for an agent.
    pub summary: String,
    /// The other kinds of failure seen in the window, in plain words, latest first.
    pub others: Vec<String>,
    /// The username exactly as diagnosed.
    pub username: String,
    /// The same with whitespace at its ends and invisible characters made visible (`␠`,
    /// `\u{200B}`), so an agent can see a stray space.
    pub username_visible: String,
    /// "SMTP relay" or "API gateway".
    pub channel: String,
    /// Which period was read and why, in plain words.
    pub window: String,
    /// Events of this username in the window (the timeline shows the latest of them).
    pub events: usize,
    /// Events of the window the timeline leaves out (the oldest).
    pub events_not_shown: usize,
    pub timeline: Vec<PanelEvent>,
    /// The account owning the username according to the logs, if they say.
    pub account_id: Option<String>,
    /// `Some("resolve")` when it works again and the ticket is open: offer one click.
    pub suggested_action: Option<String>,
    /// The note to resolve with (for the one-click form's hidden `note` field).
    pub suggested_note: Option<String>,
    /// When the diagnosis was made ("2026-11-23 09:31 UTC") and by whom (`system`, an agent).
    pub diagnosed_at: String,
    pub diagnosed_by: String,
    /// Whether the engine allows `diagnose_auth` now (login_help, awaiting agent or customer,
    /// not a banned account): show the re-run form only then.
    pub can_rerun: bool,
    pub rerun: RerunDefaults,
}

/// One logged attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelEvent {
    /// "2026-11-23 09:14:03 UTC"
    pub at: String,
    pub client_ip: String,
    /// "PLAIN", "CRAM-MD5", or "—" when the log has none.
    pub mechanism: String,
    pub tls: bool,
    /// the reference's result (`ok`, `bad_password`, …).
    pub result: String,
    /// The result in a few words ("wrong password").
    pub result_words: String,
    pub failed: bool,
}

/// The values the re-run form starts with (the fields of `diagnose_auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerunDefaults {
    pub username: String,
    /// `YYYY-MM-DDTHH:MM` in UTC, as an `<input type="datetime-local">` takes it; empty when no
    /// time was given.
    pub failed_at: String,
    /// `smtp` or `api`.
    pub channel: String,
}

/// The console panel of a ticket's latest credential-failure diagnosis, or `None` when the
/// ticket has none yet. It reads the `diagnosis` event only (never the logs again), so it still
/// shows after the logs are purged.
///
/// Render on a login_help ticket (and on one a suspended account moved to account_terminated):
/// `summary` (plus `others`), `username_visible` and `channel`, `window`, the `timeline` rows
/// (time, client IP, mechanism, TLS, result — `failed` marks the failures), `events_not_shown`
/// when non-zero, and when `suggested_action` is `Some("resolve")` a one-click form posting the
/// `resolve` action with `suggested_note`. When `can_rerun`, a form posting `diagnose_auth` with
/// `username`, `failed_at`, `channel` (`smtp`/`api`) and a `notify` checkbox, prefilled from
/// `rerun`. Agents see every finding; nothing here goes to customers.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id))]
pub fn diagnosis_panel(conn: &mut AnyConnection, ticket_id: i64) -> Result<Option<DiagnosisPanel>, ServiceError> {
    let loaded = Loaded::read(conn, ticket_id)?;
    let Some(data) = latest_for(conn, &[&loaded.row])?.remove(&ticket_id) else {
        return Ok(None);
    };
    let can_rerun = workflow::check(&loaded.view(), ActionName::DiagnoseAuth).is_ok();
    Ok(Some(panel_of(&data, can_rerun)))
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn words(value: &Value) -> String {
    parse_time(value)
        .map(|t| time_text::seconds_utc(t.naive_utc()))
        .unwrap_or_default()
}

fn panel_of(data: &Value, can_rerun: bool) -> DiagnosisPanel {
    let finding = Finding::parse(data["finding"].as_str().unwrap_or_default());
    let username = text(data, "username");
    let channel = text(data, "channel");
    let failed_at = parse_time(&data["failed_at"]);
    let window = match (data["failed_at_source"].as_str(), failed_at) {
        (Some("given"), Some(at)) => format!(
            "±15 minutes around the time given, {}",
            time_text::seconds_utc(at.naive_utc())
        ),
        (Some("latest_failure"), Some(at)) => format!(
            "No time was given: ±15 minutes around the latest failure of the last 24 hours, {}",
            time_text::seconds_utc(at.naive_utc())
        ),
        _ => "No time was given and no failure was logged in the last 24 hours: that whole day".to_string(),
    };
    let timeline: Vec<PanelEvent> = data["timeline"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    let result = AuthResult::parse(row["result"].as_str().unwrap_or_default());
                    let mechanism = text(row, "mechanism");
                    PanelEvent {
                        at: words(&row["at"]),
                        client_ip: text(row, "client_ip"),
                        mechanism: if mechanism.is_empty() { "—".into() } else { mechanism },
                        tls: row["tls"].as_bool().unwrap_or(false),
                        result: text(row, "result"),
                        result_words: result.map(|r| r.words().to_string()).unwrap_or_default(),
                        failed: result.is_some_and(AuthResult::is_failure),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let events = data["events"].as_u64().unwrap_or(0) as usize;
    // The timeline may end with the success that came after the window.
    let window_to = parse_time(&data["window"]["to"]);
    let in_window_shown = data["timeline"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|row| match (window_to, parse_time(&row["at"])) {
                    (Some(to), Some(at)) => at <= to,
                    _ => true,
                })
                .count()
        })
        .unwrap_or(0);
    DiagnosisPanel {
        finding: finding.map(|f| f.as_str().to_string()).unwrap_or_default(),
        summary: finding.map(|f| f.agent_summary().to_string()).unwrap_or_default(),
        others: data["others"]
            .as_array()
            .map(|others| {
                others
                    .iter()
                    .filter_map(|o| Finding::parse(o.as_str().unwrap_or_default()))
                    .map(|f| f.agent_summary().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        username_visible: visible(&username),
        channel: match channel.as_str() {
            "api" => "API gateway".into(),
            _ => "SMTP relay".into(),
        },
        window,
        events,
        events_not_shown: events.saturating_sub(in_window_shown),
        timeline,
        account_id: data["account_id"].as_str().map(str::to_string),
        suggested_action: data["suggested_action"].as_str().map(str::to_string),
        suggested_note: data["suggested_note"].as_str().map(str::to_string),
        diagnosed_at: parse_time(&data["diagnosed_at"])
            .map(|t| time_text::minutes_utc(t.naive_utc()))
            .unwrap_or_default(),
        diagnosed_by: text(data, "diagnosed_by"),
        can_rerun,
        rerun: RerunDefaults {
            username: username.clone(),
            failed_at: failed_at
                .filter(|_| data["failed_at_source"] == "given")
                .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default(),
            channel: if channel == "api" { "api".into() } else { "smtp".into() },
        },
        username,
    }
}

/// Leading and trailing whitespace as `␠` (or its escape), invisible characters as escapes.
fn visible(username: &str) -> String {
    let chars: Vec<char> = username.chars().collect();
    let leading = chars.iter().take_while(|c| c.is_whitespace()).count();
    let trailing = chars.iter().rev().take_while(|c| c.is_whitespace()).count();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let at_edge = i < leading || i >= chars.len() - trailing;
        match c {
            ' ' if at_edge => out.push('␠'),
            c if (at_edge && c.is_whitespace()) || is_invisible(c) => {
                out.push_str(&format!("\\u{{{:04X}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stray_characters_are_made_visible_and_inner_spaces_kept() {
        assert_eq!(visible("crm mailer"), "crm mailer");
        assert_eq!(visible(" crm-mailer "), "␠crm-mailer␠");
        assert_eq!(visible("crm-mailer\t"), "crm-mailer\\u{0009}");
        assert_eq!(visible("crm\u{200B}mailer"), "crm\\u{200B}mailer");
        assert_eq!(visible("Ünïcode"), "Ünïcode");
    }

    #[test]
    fn the_panel_reads_the_diagnosis_event() {
        let data = json!({"finding": "succeeded_since", "username": "crm-mailer", "channel": "smtp",
        "events": 3, "failed_at": "2026-11-23T09:14:00Z", "failed_at_source": "given",
        "others": ["bad_password"], "account_id": "acc_1001",
        "suggested_action": "resolve", "suggested_note": "Works again.",
        "diagnosed_at": "2026-11-23T09:31:18Z", "diagnosed_by": "system",
        "timeline": [
            {"at": "2026-11-23T09:13:00Z", "client_ip": "203.0.113.7", "mechanism": "PLAIN", "tls": true, "result": "bad_password"},
            {"at": "2026-11-23T09:20:00Z", "client_ip": "203.0.113.7", "mechanism": "", "tls": true, "result": "ok"}
        ]});
        let panel = panel_of(&data, true);
        assert_eq!(panel.finding, "succeeded_since");
        assert!(panel.summary.contains("works again"), "{}", panel.summary);
        assert_eq!(panel.others.len(), 1);
        assert_eq!(panel.timeline[0].result_words, "wrong password");
        assert!(panel.timeline[0].failed && !panel.timeline[1].failed);
        assert_eq!(panel.timeline[1].mechanism, "—");
        assert_eq!(panel.events_not_shown, 1);
        assert_eq!(panel.rerun.failed_at, "2026-11-23T09:14");
        assert_eq!(panel.suggested_action.as_deref(), Some("resolve"));
        assert!(panel.window.contains("2026-11-23 09:14:00 UTC"));
        assert_eq!(panel.diagnosed_at, "2026-11-23 09:31 UTC");
    }
}
