//! Credential-failure diagnosis (docs/reference.md#kinds-and-states, the help articles on `535 Authentication failed` and on login troubleshooting), as a pure function.
//!
//! The `535 Authentication failed` help article promises that with the SMTP username and the time of a failed attempt, "logs on
//! our side will show whether the request reached us and which check failed". Given the
//! username (byte-exact), the channel, the time, the logged events around it and whether the
//! logs know the username at all, [`diagnose`] names one finding of the reference's table and sums up
//! the evidence. The service reads the events; nothing here touches a database.

pub mod event;
pub mod phrases;

pub use event::{AuthChannel, AuthEvent, AuthResult};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// Events this far either side of the failed attempt are read.
pub fn window_half_width() -> Duration {
    Duration::minutes(15)
}

/// Without a time, the latest failure of the last 24 hours is looked for.
pub fn lookback() -> Duration {
    Duration::hours(24)
}

/// At most this many events are kept in the diagnosis as its timeline (the latest ones).
pub const TIMELINE_LIMIT: usize = 20;

/// What the logs say, one of the reference's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Finding {
    UsernameHasAt,
    UsernameWhitespace,
    RequestNotSeen,
    UnknownUser,
    UserDisabled,
    BadPassword,
    AccountSuspended,
    IpNotAuthorized,
    MechanismNotSupported,
    TlsRequired,
    SucceededSince,
}

impl Finding {
    pub const ALL: [Finding; 11] = [
        Finding::UsernameHasAt,
        Finding::UsernameWhitespace,
        Finding::RequestNotSeen,
        Finding::UnknownUser,
        Finding::UserDisabled,
        Finding::BadPassword,
        Finding::AccountSuspended,
        Finding::IpNotAuthorized,
        Finding::MechanismNotSupported,
        Finding::TlsRequired,
        Finding::SucceededSince,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Finding::UsernameHasAt => "username_has_at",
            Finding::UsernameWhitespace => "username_whitespace",
            Finding::RequestNotSeen => "request_not_seen",
            Finding::UnknownUser => "unknown_user",
            Finding::UserDisabled => "user_disabled",
            Finding::BadPassword => "bad_password",
            Finding::AccountSuspended => "account_suspended",
            Finding::IpNotAuthorized => "ip_not_authorized",
            Finding::MechanismNotSupported => "mechanism_not_supported",
            Finding::TlsRequired => "tls_required",
            Finding::SucceededSince => "succeeded_since",
        }
    }

    pub fn parse(text: &str) -> Option<Finding> {
        Finding::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The finding a failed attempt's result names.
    pub fn of_failure(result: AuthResult) -> Option<Finding> {
        Some(match result {
            AuthResult::Ok => return None,
            AuthResult::UnknownUser => Finding::UnknownUser,
            AuthResult::UserDisabled => Finding::UserDisabled,
            AuthResult::BadPassword => Finding::BadPassword,
            AuthResult::AccountSuspended => Finding::AccountSuspended,
            AuthResult::IpNotAuthorized => Finding::IpNotAuthorized,
            AuthResult::MechanismNotSupported => Finding::MechanismNotSupported,
            AuthResult::TlsRequired => Finding::TlsRequired,
        })
    }

    /// The finding in plain words, for an agent.
    pub fn agent_summary(self) -> &'static str {
        match self {
            Finding::UsernameHasAt => {
                "The username contains @ and our logs have never accepted it as a user: the customer is most likely typing an email address where the literal SMTP username belongs."
            }
            Finding::UsernameWhitespace => {
                "The username starts or ends with whitespace, or holds invisible characters, and our logs have never accepted it as typed: it was probably pasted with extra characters."
            }
            Finding::RequestNotSeen => {
                "No attempt with this username reached us around that time: the customer's server is probably talking to another host or port, failing before authentication (TLS), or sending another username."
            }
            Finding::UnknownUser => {
                "The attempts reached us, but no user has this username: it was deleted (which invalidates it at once) or is mistyped."
            }
            Finding::UserDisabled => "The attempts reached us and the user exists, but it is disabled.",
            Finding::BadPassword => {
                "The username was recognised but the password did not match: a stale password after a rotation, or a typo."
            }
            Finding::AccountSuspended => {
                "The account is suspended, so every attempt fails whatever the credentials: this is a billing (termination) matter, or a ban."
            }
            Finding::IpNotAuthorized => {
                "The client's address is not on the user's allow list: an IP problem, not a credential problem."
            }
            Finding::MechanismNotSupported => {
                "The client used an authentication mechanism we do not accept: only PLAIN and LOGIN, over TLS."
            }
            Finding::TlsRequired => {
                "The client tried to authenticate without TLS: PLAIN or LOGIN are accepted over TLS only."
            }
            Finding::SucceededSince => {
                "A successful login came after the last failure: it works again, and the ticket can be resolved."
            }
        }
    }
}

/// Which time the window is centred on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The customer (or the agent) gave the time of the failed attempt.
    Given(DateTime<Utc>),
    /// No time was given: the latest failure of the username in the last 24 hours.
    LatestFailure(DateTime<Utc>),
    /// No time was given and no failure was logged in the last 24 hours: that whole period.
    Last24Hours,
}

impl When {
    /// Without a time, the latest failure of `username` on `channel` in the 24 hours up to
    /// `now` among `events` (the service asks the database the same question).
    pub fn resolve(
        failed_at: Option<DateTime<Utc>>,
        username: &str,
        channel: AuthChannel,
        now: DateTime<Utc>,
        events: &[AuthEvent],
    ) -> When {
        if let Some(at) = failed_at {
            return When::Given(at);
        }
        events
            .iter()
            .filter(|e| e.username == username && e.channel == channel && e.result.is_failure())
            .filter(|e| e.at >= now - lookback() && e.at <= now)
            .map(|e| e.at)
            .max()
            .map_or(When::Last24Hours, When::LatestFailure)
    }

    /// The period whose events are read, both ends included.
    pub fn window(self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            When::Given(at) | When::LatestFailure(at) => (at - window_half_width(), at + window_half_width()),
            When::Last24Hours => (now - lookback(), now),
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            When::Given(_) => "given",
            When::LatestFailure(_) => "latest_failure",
            When::Last24Hours => "last_24_hours",
        }
    }

    fn centre(self) -> Option<DateTime<Utc>> {
        match self {
            When::Given(at) | When::LatestFailure(at) => Some(at),
            When::Last24Hours => None,
        }
    }
}

/// What is asked: this username (as typed), on this channel, at this time.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub username: &'a str,
    pub channel: AuthChannel,
    pub when: When,
    pub now: DateTime<Utc>,
    /// Whether the relay or gateway ever accepted this exact username as a user (an event
    /// other than `unknown_user`, at any time the logs still hold). The static checks (`@`,
    /// whitespace, invisible characters) apply only to SMTP usernames the logs do not know.
    pub known_to_logs: bool,
}

/// One row of the timeline an agent sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub client_ip: String,
    pub mechanism: String,
    pub tls: bool,
    pub result: AuthResult,
}

/// One finding and its evidence: the `diagnosis` event of docs/reference.md#kinds-and-states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub finding: Finding,
    pub username: String,
    pub channel: AuthChannel,
    pub when: When,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub known_to_logs: bool,
    /// Events of this username and channel in the window.
    pub events: usize,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    /// Distinct, in the order they first appear.
    pub client_ips: Vec<String>,
    pub mechanisms: Vec<String>,
    /// The other kinds of failure in the window, latest first (and, for a username with both
    /// static problems, the second one).
    pub others: Vec<Finding>,
    /// The first success after the last failure (for `succeeded_since`).
    pub succeeded_at: Option<DateTime<Utc>>,
    /// The account owning the username according to the events, when they say.
    pub account_id: Option<String>,
    /// The latest events of the window (at most [`TIMELINE_LIMIT`]), then the success that
    /// followed if it came later.
    pub timeline: Vec<TimelineEntry>,
}

/// An SMTP username with `@`: the articles' "wrong field used".
pub fn has_at(username: &str) -> bool {
    username.contains('@')
}

/// Characters that do not show: zero-width spaces and joiners, the byte-order mark, soft
/// hyphens, bidirectional marks, and control characters.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
        )
}

/// Leading or trailing whitespace, or an invisible character anywhere. Spaces inside a
/// username are fine: usernames can be anything.
pub fn has_stray_characters(username: &str) -> bool {
    username.starts_with(char::is_whitespace)
        || username.ends_with(char::is_whitespace)
        || username.chars().any(is_invisible)
}

/// Names the finding for `question` from `events` (any events: those of other usernames,
/// channels or times are left aside here).
pub fn diagnose(question: &Question, events: &[AuthEvent]) -> Diagnosis {
    let (from, to) = question.when.window(question.now);
    let mine: Vec<&AuthEvent> = events
        .iter()
        .filter(|e| e.username == question.username && e.channel == question.channel)
        .collect();
    let mut window: Vec<&AuthEvent> = mine.iter().copied().filter(|e| e.at >= from && e.at <= to).collect();
    window.sort_by_key(|e| e.at);

    let mut client_ips: Vec<String> = vec![];
    let mut mechanisms: Vec<String> = vec![];
    for e in &window {
        push_distinct(&mut client_ips, e.client_ip.to_string());
        if !e.mechanism.is_empty() {
            push_distinct(&mut mechanisms, e.mechanism.clone());
        }
    }
    // Failure kinds, latest first (a stable sort keeps the log's order for equal times).
    let mut failure_kinds: Vec<Finding> = vec![];
    for e in window.iter().rev() {
        if let Some(kind) = Finding::of_failure(e.result) {
            push_distinct(&mut failure_kinds, kind);
        }
    }
    let last_failure = window.iter().rev().find(|e| e.result.is_failure()).copied();
    let first_success = |after: Option<DateTime<Utc>>| {
        mine.iter()
            .copied()
            .filter(|e| e.result == AuthResult::Ok && e.at <= question.now)
            .filter(|e| match after {
                Some(t) => e.at > t,
                None => e.at >= from && e.at <= to,
            })
            .min_by_key(|e| e.at)
    };

    let static_findings: Vec<Finding> = if question.channel == AuthChannel::Smtp && !question.known_to_logs {
        [
            has_at(question.username).then_some(Finding::UsernameHasAt),
            has_stray_characters(question.username).then_some(Finding::UsernameWhitespace),
        ]
        .into_iter()
        .flatten()
        .collect()
    } else {
        vec![]
    };

    let mut succeeded = None;
    let finding = if let Some(&first) = static_findings.first() {
        first
    } else if window.is_empty() {
        Finding::RequestNotSeen
    } else {
        succeeded = first_success(last_failure.map(|e| e.at));
        match (last_failure, succeeded) {
            (_, Some(_)) => Finding::SucceededSince,
            (Some(failure), None) => Finding::of_failure(failure.result).unwrap_or(Finding::RequestNotSeen),
            // Only successes, and none "up to now" (they lie in the future of `now`).
            (None, None) => Finding::RequestNotSeen,
        }
    };
    let mut others: Vec<Finding> = static_findings.iter().skip(1).copied().collect();
    others.extend(failure_kinds.into_iter().filter(|k| *k != finding));

    let entry = |e: &AuthEvent| TimelineEntry {
        at: e.at,
        client_ip: e.client_ip.to_string(),
        mechanism: e.mechanism.clone(),
        tls: e.tls,
        result: e.result,
    };
    let mut timeline: Vec<TimelineEntry> = window
        .iter()
        .skip(window.len().saturating_sub(TIMELINE_LIMIT))
        .map(|e| entry(e))
        .collect();
    if let Some(ok) = succeeded.filter(|ok| ok.at > to) {
        timeline.push(entry(ok));
    }
    let account_id = window
        .iter()
        .rev()
        .chain(succeeded.iter())
        .find_map(|e| e.account_id.clone());

    Diagnosis {
        finding,
        username: question.username.to_string(),
        channel: question.channel,
        when: question.when,
        window_from: from,
        window_to: to,
        known_to_logs: question.known_to_logs,
        events: window.len(),
        first_at: window.first().map(|e| e.at),
        last_at: window.last().map(|e| e.at),
        client_ips,
        mechanisms,
        others,
        succeeded_at: succeeded.map(|e| e.at),
        account_id,
        timeline,
    }
}

fn push_distinct<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// RFC 3339 in UTC, to the second (or finer when the log was finer).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    crate::domain::time_text::rfc3339_utc(t)
}

impl Diagnosis {
    /// The `diagnosis` event's data: the reference's fields, then what an agent needs to judge them.
    pub fn to_json(&self) -> Value {
        let mut data = json!({
            "finding": self.finding.as_str(),
            "username": self.username,
            "channel": self.channel.as_str(),
            "events": self.events,
            "first_at": self.first_at.map(rfc3339),
            "last_at": self.last_at.map(rfc3339),
            "client_ips": self.client_ips,
            "mechanisms": self.mechanisms,
            "failed_at": self.when.centre().map(rfc3339),
            "failed_at_source": self.when.source(),
            "window": {"from": rfc3339(self.window_from), "to": rfc3339(self.window_to)},
            "known_to_logs": self.known_to_logs,
            "account_id": self.account_id,
            "timeline": self.timeline.iter().map(|t| json!({
                "at": rfc3339(t.at), "client_ip": t.client_ip, "mechanism": t.mechanism,
                "tls": t.tls, "result": t.result.as_str(),
            })).collect::<Vec<_>>(),
        });
        if !self.others.is_empty() {
            data["others"] = json!(self.others.iter().map(|f| f.as_str()).collect::<Vec<_>>());
        }
        if let Some(at) = self.succeeded_at {
            data["succeeded_at"] = json!(rfc3339(at));
        }
        match self.when {
            When::LatestFailure(at) => {
                data["note"] = json!(format!(
                    "No time was given: the latest failure of this username in the last 24 hours ({}) was taken.",
                    rfc3339(at)
                ));
            }
            When::Last24Hours => {
                data["note"] = json!(
                    "No time was given and no failure of this username was logged in the last 24 hours: that whole period was read."
                );
            }
            When::Given(_) => {}
        }
        data
    }
}

/// The time of a failed attempt as people write it, read on UTC where it names no offset: the
/// one parser of these times, [`local_time::parse_failed_at`](crate::domain::local_time::parse_failed_at).
pub fn parse_failed_at(text: &str) -> Option<DateTime<Utc>> {
    crate::domain::local_time::parse_failed_at(text, crate::domain::local_time::Zone::Utc).ok()
}

#[cfg(test)]
mod tests;
