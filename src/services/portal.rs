//! What the customer forms do: rate limits, attaching a repeat to its ticket, opening tickets.
//! The answer is the same whatever the directory says (no account enumeration): every
//! account-dependent outcome travels by mail, through the outbox.

use super::messages::CustomerMessage;
use super::redaction::Scrubbed;
use super::status_page::{self, AttachmentLink};
use super::tickets::{self, OpenTicket};
use super::{Actor, Desk, ServiceError};
use crate::db::locks::{self, KeyLock};
use crate::db::tickets::TicketRow;
use crate::db::{self, AnyConnection, submissions};
use crate::domain::ticket::Kind;
use crate::domain::time_text;
use crate::domain::workflow::customer_step::{self, ChallengeFact, ReportOutcome, StatusFacts, Step};
use crate::domain::workflow::{ActionName, Refusal};
use crate::mail::outbound::templates::Mail;
use serde_json::json;

/// What the customer sees next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// A ticket was opened, or the same request within the hour was attached to its ticket:
    /// the customer cannot tell which (the answer page is the same).
    Accepted { ticket_ref: String },
    /// Too many submissions from this client address or for this email address; a place frees
    /// in `retry_after_secs` (at least 1).
    RateLimited { retry_after_secs: u64 },
}

/// Accepts one valid form submission from `client_ip`.
#[tracing::instrument(level = "debug", skip_all, fields(kind = request.kind.as_str()))]
pub fn submit_form(
    conn: &mut AnyConnection,
    desk: &Desk,
    request: OpenTicket,
    client_ip: &str,
) -> Result<Submitted, ServiceError> {
    let limit = i64::from(desk.settings.form_rate_limit);
    let email = request.requester.normalized();
    let kind = request.kind;
    let words = repeat_words(&request);
    let client_ip = crate::domain::throttle::client_key(client_ip);
    let client_ip = client_ip.as_str();
    db::write_transaction(conn, |conn| {
        // Count and record under both keys' locks, taken in this order by every submission.
        locks::lock_key(conn, KeyLock::FormClient, client_ip)?;
        locks::lock_key(conn, KeyLock::FormEmail, &email)?;
        let (by_client, by_email) = submissions::recent_counts(conn, client_ip, &email)?;
        if by_client >= limit || by_email >= limit {
            let (client_times, email_times) = submissions::recent_times(conn, client_ip, &email, limit)?;
            let window = chrono::Duration::hours(1);
            let free_at = [client_times, email_times]
                .iter()
                .filter_map(|times| crate::domain::throttle::below_limit_at(times, limit as usize, window))
                .max()
                .unwrap_or_else(|| db::now() + window);
            let seconds = (free_at - db::now()).num_seconds().max(0) as u64 + 1;
            return Ok(Submitted::RateLimited {
                retry_after_secs: seconds,
            });
        }
        let (ticket_id, attached) = match submissions::recent_ticket(conn, kind.as_str(), &email)? {
            Some(id) => {
                attach(conn, desk, id, &request, words.clone())?;
                (id, true)
            }
            None => (
                tickets::open_ticket_in_transaction(conn, desk, request.clone())?
                    .ticket
                    .id,
                false,
            ),
        };
        submissions::record(conn, kind.as_str(), client_ip, &email, ticket_id, attached)?;
        Ok(Submitted::Accepted {
            ticket_ref: desk.ticket_ref(ticket_id),
        })
    })
}

/// The words a repeated form adds to its ticket: the fields under their labels, scanned once
/// more as a whole (before the transaction) so that no joint between two fields can spell a
/// secret.
fn repeat_words(request: &OpenTicket) -> Scrubbed {
    let mut words = request.body.as_str().to_string();
    for (label, value) in [
        ("Account", &request.account),
        ("Tried from", &request.tried_from),
        ("What happened", &request.attempts_outcome),
        ("SMTP username", &request.smtp_username),
        ("Failed at", &request.failed_at),
        ("Error", &request.error_text),
    ] {
        if let Some(v) = value.as_ref().map(Scrubbed::as_str).filter(|v| !v.trim().is_empty()) {
            words.push_str(&format!("\n{label}: {v}"));
        }
    }
    let words = if words.trim().is_empty() {
        "(the same request, sent again)".to_string()
    } else {
        words.trim().to_string()
    };
    super::redaction::Scrubber::default().scrub(&words)
}

/// A repeated login form with new facts (another username, channel or time) re-runs the
/// diagnosis on them, through the engine as an agent's run would, and mails nothing: the
/// account-dependent answer is not sent again for a repeat. The ticket page's re-run form then
/// starts from these newest facts.
fn rediagnose(conn: &mut AnyConnection, desk: &Desk, ticket_id: i64, request: &OpenTicket) -> Result<(), ServiceError> {
    use crate::domain::diagnosis::parse_failed_at;
    use crate::domain::workflow::login_help::{Diagnosed, repeat_rediagnoses};
    let row = crate::db::tickets::find(conn, ticket_id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
    let typed = request.smtp_username.as_ref().map(Scrubbed::as_str);
    let typed_at = request.failed_at.as_ref().and_then(|f| parse_failed_at(f.as_str()));
    let channel = crate::domain::ticket::Problem::auth_channel(request.problem);
    let latest = super::diagnosis::latest_for(conn, &[&row])?.remove(&ticket_id);
    let last = latest.as_ref().map(|d| Diagnosed {
        username: d["username"].as_str().unwrap_or_default(),
        channel: crate::domain::diagnosis::AuthChannel::parse(d["channel"].as_str().unwrap_or_default())
            .unwrap_or(crate::domain::diagnosis::AuthChannel::Smtp),
        failed_at: (d["failed_at_source"] == "given")
            .then(|| d["failed_at"].as_str().and_then(parse_failed_at))
            .flatten(),
    });
    if !repeat_rediagnoses(typed, typed_at, channel, last) {
        return Ok(());
    }
    let mut params = json!({"username": typed.unwrap_or_default(), "channel": channel.as_str(), "notify": false});
    if let Some(at) = typed_at {
        params["failed_at"] = json!(crate::domain::diagnosis::rfc3339(at));
    }
    let actor = Actor::Customer {
        email: row.requester.clone(),
    };
    // Refused when the ticket is past diagnosing (closed, another kind): the words are on the
    // ticket anyway.
    let _ = tickets::apply_action_in_transaction(conn, desk, ticket_id, ActionName::DiagnoseAuth, &params, &actor)?;
    Ok(())
}

/// The same request again: its words join the ticket, an ip_lockout learns the reported
/// attempts, and the requester gets a neutral acknowledgement. Account-dependent mail is not
/// sent again.
fn attach(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    request: &OpenTicket,
    words: Scrubbed,
) -> Result<(), ServiceError> {
    let subject = tickets::reply_subject(conn, ticket_id)?;
    let message = CustomerMessage::typed(subject, words, request.secrets_found.clone());
    let row = super::messages::append_customer_message(conn, desk, ticket_id, None, &message, "web")?.ticket;
    if request.kind == Kind::IpLockout
        && let Some(tried_from) = request.tried_from.as_ref().filter(|t| !t.as_str().trim().is_empty())
    {
        let outcome = request
            .attempts_outcome
            .as_ref()
            .map(Scrubbed::as_str)
            .unwrap_or_default();
        // Refused when the ticket is past that step: the words are on the ticket anyway.
        let _ = record_reported_attempts(conn, desk, &row, tried_from.as_str(), outcome)?;
    }
    if request.kind == Kind::LoginHelp {
        rediagnose(conn, desk, ticket_id, request)?;
    }
    let row = crate::db::tickets::find(conn, ticket_id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
    super::decision::enqueue(conn, desk, &row, &row.requester, Mail::Acknowledgement.into())
}

/// The requester's report of the allowlisted networks they tried, decided by the engine as an
/// agent's `record_allowlisted_attempts` is, with the customer as the actor (in the caller's
/// transaction; a refusal is written to the record as any other).
fn record_reported_attempts(
    conn: &mut AnyConnection,
    desk: &Desk,
    row: &TicketRow,
    tried_from: &str,
    outcome: &str,
) -> Result<Result<(), Refusal>, ServiceError> {
    let actor = Actor::Customer {
        email: row.requester.clone(),
    };
    let params = json!({"tried_from": tried_from, "outcome": outcome});
    let decided = tickets::apply_action_in_transaction(
        conn,
        desk,
        row.id,
        ActionName::RecordAllowlistedAttempts,
        &params,
        &actor,
    )?;
    Ok(decided.map(|_| ()))
}

/// What the customer's status page shows: only their own messages and the mail sent to them,
/// never internal notes, never what went to the account's registered address.
#[derive(Debug, Clone)]
pub struct StatusView {
    pub ticket_id: i64,
    pub ticket_ref: String,
    pub subject: String,
    pub kind: Kind,
    pub state: crate::domain::ticket::State,
    /// The requester is not the linked account's registered address: states that depend on
    /// the account are told in neutral words.
    pub neutral: bool,
    pub attempts_on_record: bool,
    /// Where the request is, as the customer reads it (docs/reference.md#customer-pages).
    pub step: Step,
    /// The customer's own request, first: the form's fields and their words.
    pub request_fields: Vec<(&'static str, String)>,
    pub request: Option<ThreadEntry>,
    /// Everything after the request, oldest first.
    pub thread: Vec<ThreadEntry>,
    pub created_at: String,
    /// An agent refused the request: why, in words that reveal nothing about an account.
    pub refusal: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct ThreadEntry {
    pub from_you: bool,
    /// Written by the desk on its own (an acknowledgement, a checklist), not by a person.
    pub automatic: bool,
    pub at: String,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<AttachmentLink>,
}

/// The ticket a status-page token opens, if any (unknown and malformed tokens alike: none).
#[tracing::instrument(level = "debug", skip_all)]
pub fn status_view(conn: &mut AnyConnection, desk: &Desk, token: &str) -> Result<Option<StatusView>, ServiceError> {
    let Some(row) = ticket_of_token(conn, token)? else {
        return Ok(None);
    };
    // Only the registered address of the linked account reads the states in plain words;
    // anyone else (no account found included) reads them all alike, so the page cannot tell
    // whether an account exists, is terminated or is banned.
    let neutral = reads_neutral_words(conn, &row)?;
    let messages = visible_messages(conn, &row)?;
    let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    // Grouped by message once: taking each message's files out of one list was messages ×
    // files work, which a ticket of many messages with files made quadratic.
    let mut files: std::collections::HashMap<i64, Vec<AttachmentLink>> = std::collections::HashMap::new();
    for (message_ref, link) in status_page::attachments(conn, &ids)? {
        files.entry(message_ref).or_default().push(link);
    }
    let first_id = crate::db::tickets::messages_of(conn, row.id)?.first().map(|m| m.id);
    let mut request = None;
    let mut thread = vec![];
    for m in messages {
        let entry = ThreadEntry {
            from_you: m.direction == "in",
            automatic: m.direction == "out" && m.auto_generated,
            at: time_text::minutes_utc(m.created_at),
            subject: m.subject,
            attachments: files.remove(&m.id).unwrap_or_default(),
            body: m.body,
        };
        if Some(m.id) == first_id && entry.from_you {
            request = Some(entry);
        } else if !entry.body.trim().is_empty() || !entry.attachments.is_empty() {
            thread.push(entry);
        }
    }
    // The customer wrote last when their latest message came after anything a person of ours
    // (or a mail that asks something) wrote; their first request alone does not count.
    let customer_wrote_last = thread
        .iter()
        .rev()
        .find(|e| e.from_you || !e.automatic)
        .is_some_and(|e| e.from_you);
    let state = row.state;
    let step = customer_step::step(StatusFacts {
        state,
        neutral,
        challenge: if neutral {
            ChallengeFact::None
        } else {
            status_page::challenge(conn, &row)?
        },
        customer_wrote_last,
    });
    let request_fields = status_page::request_fields(conn, row.id)?;
    Ok(Some(StatusView {
        ticket_id: row.id,
        ticket_ref: desk.ticket_ref(row.id),
        subject: row.subject.clone(),
        kind: row.kind,
        state,
        neutral,
        attempts_on_record: row.attempts_on_record,
        step,
        request_fields,
        request,
        thread,
        created_at: time_text::minutes_utc(row.created_at),
        refusal: (row.state == crate::domain::ticket::State::Refused)
            .then(|| crate::domain::workflow::RefuseReason::words_for(row.state_reason.as_deref()))
            .flatten(),
    }))
}

/// Whether this ticket's requester reads it in neutral words ([`customer_step::is_neutral`]).
fn reads_neutral_words(conn: &mut AnyConnection, row: &crate::db::tickets::TicketRow) -> Result<bool, ServiceError> {
    let registered = match &row.account_id {
        Some(id) => crate::db::accounts::find(conn, id)?.map(|a| a.email),
        None => None,
    };
    Ok(customer_step::is_neutral(
        registered.as_deref(),
        &row.requester_normalized,
    ))
}

fn ticket_of_token(
    conn: &mut AnyConnection,
    token: &str,
) -> Result<Option<crate::db::tickets::TicketRow>, ServiceError> {
    if !crate::crypto::looks_like_token(token) {
        return Ok(None);
    }
    Ok(crate::db::tickets::find_by_token_hash(
        conn,
        &crate::crypto::sha256_hex(token),
    )?)
}

/// The requester's own messages and the mail sent to them: nothing else of the ticket.
fn visible_messages(
    conn: &mut AnyConnection,
    row: &crate::db::tickets::TicketRow,
) -> Result<Vec<crate::db::tickets::MessageRow>, ServiceError> {
    let requester = &row.requester_normalized;
    Ok(crate::db::tickets::messages_of(conn, row.id)?
        .into_iter()
        .filter(|m| {
            let from = m.from_address.as_deref().map(crate::domain::email_address::normalize);
            let to = m.to_address.as_deref().map(crate::domain::email_address::normalize);
            let theirs = m.direction == "in" && m.sender_role == "requester" && from.as_ref() == Some(requester);
            let to_them = m.direction == "out" && to.as_ref() == Some(requester);
            theirs || to_them
        })
        .collect())
}

/// An attachment of a message the status page of `token` shows; `None` for any other (an
/// unknown token, another ticket's file, a file on a note or on mail to someone else).
#[tracing::instrument(level = "debug", skip_all, fields(attachment_id = id))]
pub fn status_attachment(
    conn: &mut AnyConnection,
    token: &str,
    id: i64,
) -> Result<Option<crate::db::inbound::AttachmentRow>, ServiceError> {
    let Some(row) = ticket_of_token(conn, token)? else {
        return Ok(None);
    };
    let Some(file) = crate::db::inbound::attachment(conn, id)? else {
        return Ok(None);
    };
    let shown = visible_messages(conn, &row)?.iter().any(|m| m.id == file.message_ref);
    Ok(shown.then_some(file))
}

/// The customer reports, from their status page, which allowlisted networks they tried. The
/// engine decides exactly as for an agent's `record_allowlisted_attempts`; the report also
/// joins the thread in the customer's words. A refusal is hidden from a requester who reads
/// neutral words ([`customer_step::report_outcome`]): their words join the thread all the same.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id))]
pub fn report_attempts(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    tried_from: &str,
    outcome: &str,
) -> Result<ReportOutcome, ServiceError> {
    // Scanned before the transaction; the engine and the thread get the same scrubbed words.
    let mut scrub = super::redaction::Scrubber::default();
    let tried_from = scrub.scrub(tried_from);
    let outcome = scrub.scrub(outcome);
    let words = Scrubbed::join(
        &[
            &Scrubbed::not_from_customer("Allowlisted networks I tried: "),
            &tried_from,
            &Scrubbed::not_from_customer("\nWhat happened: "),
            &outcome,
        ],
        "",
    );
    let (reported, refused) = db::write_transaction(conn, |conn| -> Result<_, ServiceError> {
        let row = crate::db::tickets::find(conn, ticket_id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
        let decided = record_reported_attempts(conn, desk, &row, tried_from.as_str(), outcome.as_str())?;
        let refused = decided.as_ref().err().map(|r| r.code);
        let neutral = reads_neutral_words(conn, &row)?;
        let reported = customer_step::report_outcome(decided, neutral);
        let subject = tickets::reply_subject(conn, ticket_id)?;
        let mut message = CustomerMessage::typed(subject, words.clone(), scrub.found().to_vec());
        match reported {
            ReportOutcome::Recorded => message.event_data = json!({"report": "allowlisted_attempts"}),
            // Told as a plain reply: what the page shows reads the same as a recorded report.
            ReportOutcome::JoinsThread => {}
            ReportOutcome::Refused(_) => return Ok((reported, refused)),
        }
        super::messages::append_customer_message(conn, desk, ticket_id, None, &message, "web")?;
        Ok((reported, refused))
    })?;
    if let Some(code) = refused {
        desk.metrics.refusal(code.as_str());
    }
    Ok(reported)
}
