//! Credential-failure diagnosis (docs/reference.md#kinds-and-states): reading the authentication logs for a username,
//! the ticket JSON's `diagnosis`, and the agent console's panel. Loading and purging the logs
//! is in [`import`]. The finding itself is named by the pure `domain::diagnosis`.

pub mod import;
mod panel;

pub use panel::{DiagnosisPanel, PanelEvent, RerunDefaults, diagnosis_panel};

use super::ServiceError;
use crate::db::tickets::TicketRow;
use crate::db::{AnyConnection, accounts, auth_events};
use crate::domain::account::AccountView;
use crate::domain::diagnosis::{self, AuthChannel, Diagnosis, Finding, Question, When, lookback};
use crate::domain::workflow::DiagnosisFacts;
use crate::mail::outbound::templates::{DiagnosisMail, DiagnosisTemplate, Mail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A diagnosis and the directory account owning the username, as the engine takes them.
#[derive(Debug, Clone)]
pub struct Diagnosed {
    pub diagnosis: Diagnosis,
    pub owner: Option<AccountView>,
}

impl Diagnosed {
    pub fn facts(&self) -> DiagnosisFacts<'_> {
        DiagnosisFacts {
            diagnosis: &self.diagnosis,
            owner: self.owner.as_ref(),
        }
    }
}

/// Reads the logs of `username` (byte-exact) on `channel` within ±15 minutes of `failed_at`
/// (without one: of the latest failure in the 24 hours up to `now`, else those whole 24 hours)
/// and names the finding.
#[tracing::instrument(level = "debug", skip_all, fields(channel = channel.as_str()))]
pub fn diagnose(
    conn: &mut AnyConnection,
    username: &str,
    channel: AuthChannel,
    failed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Diagnosed, ServiceError> {
    let when = match failed_at {
        Some(at) => When::Given(at),
        None => {
            match auth_events::latest_failure(conn, username, channel, (now - lookback()).naive_utc(), now.naive_utc())?
            {
                Some(at) => When::LatestFailure(at.and_utc()),
                None => When::Last24Hours,
            }
        }
    };
    let (from, to) = when.window(now);
    let mut rows = auth_events::between(conn, username, channel, from.naive_utc(), to.naive_utc())?;
    let truncated = rows.len() as i64 == auth_events::WINDOW_ROWS;
    // A success after the last failure may come after the window ("up to now").
    if let Some(last_failure) = rows.iter().rev().find(|r| r.result != "ok").map(|r| r.at)
        && !rows.iter().any(|r| r.result == "ok" && r.at > last_failure)
        && to < now
        && let Some(ok) = auth_events::first_success_after(conn, username, channel, to.naive_utc(), now.naive_utc())?
    {
        rows.push(ok);
    }
    let known_to_logs = auth_events::known_as_user(conn, username, channel)?;
    let events: Vec<_> = rows.iter().filter_map(|r| r.to_event()).collect();
    let mut diagnosis = diagnosis::diagnose(
        &Question {
            username,
            channel,
            when,
            now,
            known_to_logs,
        },
        &events,
    );
    if truncated {
        let (count, first) = auth_events::count_between(conn, username, channel, from.naive_utc(), to.naive_utc())?;
        diagnosis.events = count as usize;
        diagnosis.first_at = first.map(|t| t.and_utc());
    }
    if diagnosis.account_id.is_none() {
        diagnosis.account_id = auth_events::owner_of(conn, username, channel)?;
    }
    let owner = match &diagnosis.account_id {
        Some(id) => accounts::load_view(conn, id)?,
        None => None,
    };
    Ok(Diagnosed { diagnosis, owner })
}

/// The ticket JSON's `diagnosis` (docs/reference.md#json-api) for each of these tickets that has one: the latest
/// `diagnosis` event's data, when and by whom it was made, and — when it works again and the
/// ticket is still open — `"suggested_action": "resolve"` with a note for one-click resolving.
#[tracing::instrument(level = "debug", skip_all, fields(tickets = rows.len()))]
pub fn latest_for(conn: &mut AnyConnection, rows: &[&TicketRow]) -> Result<HashMap<i64, Value>, ServiceError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut latest = auth_events::latest_diagnoses(conn, &ids)?;
    let mut out = HashMap::new();
    for row in rows {
        let Some((data, actor, at)) = latest.remove(&row.id) else {
            continue;
        };
        let mut value: Value = serde_json::from_str(&data).unwrap_or_else(|_| json!({}));
        let open = !row.state.is_terminal();
        let works_again = value["finding"] == json!(Finding::SucceededSince.as_str());
        value["diagnosed_at"] = json!(crate::domain::time_text::rfc3339(at));
        value["diagnosed_by"] = json!(actor);
        if works_again && open {
            value["suggested_action"] = json!("resolve");
            value["suggested_note"] = json!(resolve_note(&value));
        } else {
            value["suggested_action"] = Value::Null;
        }
        out.insert(row.id, value);
    }
    Ok(out)
}

/// The note a one-click resolve carries.
fn resolve_note(diagnosis: &Value) -> String {
    match diagnosis["succeeded_at"].as_str() {
        Some(at) => format!("Works again: the authentication logs show a successful login at {at} after the failure."),
        None => "Works again: the authentication logs show a successful login.".to_string(),
    }
}

/// "2026-11-23 09:14:03 UTC", as mail says times.
fn mail_time(t: DateTime<Utc>) -> String {
    crate::domain::time_text::seconds_utc(t.naive_utc())
}

/// What the guidance mail (to the owner's registered address, who asked) may say. A finding
/// that has no guidance of its own gets the plain checklist, as the workflow names it (the
/// engine sends guidance only for findings that have it).
pub(crate) fn guidance_mail(d: &Diagnosis) -> Mail {
    let Some(template) = crate::domain::workflow::guidance_template(d.finding).and_then(DiagnosisTemplate::named)
    else {
        return Mail::DiagnosisChecklist {
            channel: d.channel.as_str().to_string(),
            typed_has_at: false,
            typed_whitespace: false,
        };
    };
    let (failed_at, time_given) = match d.when {
        When::Given(at) => (Some(at), true),
        When::LatestFailure(at) => (Some(at), false),
        When::Last24Hours => (None, false),
    };
    Mail::DiagnosisGuidance {
        template,
        diagnosis: DiagnosisMail {
            channel: d.channel.as_str().to_string(),
            finding: d.finding.as_str().to_string(),
            username: d.username.clone(),
            events: d.events as i64,
            first_at: d.first_at.map(mail_time),
            last_at: d.last_at.map(mail_time),
            client_ips: d.client_ips.clone(),
            mechanisms: d.mechanisms.clone(),
            succeeded_at: d.succeeded_at.map(mail_time),
            failed_at: failed_at.map(mail_time),
            time_given,
            recovered: d.finding == Finding::SucceededSince && !d.others.is_empty(),
            typed_has_at: false,
            typed_whitespace: false,
        },
    }
}

/// What the checklist mail may say: only what the requester typed, never what the logs hold.
pub(crate) fn checklist_mail(typed_username: &str, channel: AuthChannel) -> Mail {
    let smtp = channel == AuthChannel::Smtp;
    Mail::DiagnosisChecklist {
        channel: channel.as_str().to_string(),
        typed_has_at: smtp && diagnosis::has_at(typed_username),
        typed_whitespace: smtp && diagnosis::has_stray_characters(typed_username),
    }
}
