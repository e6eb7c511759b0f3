//! Opening tickets, applying actions, replies and the email-challenge confirmation.

use super::decision::{Loaded, commit};
use super::diagnosis::{self, Diagnosed, channel_of_problem};
use super::redaction::Scrubber;
use super::{Actor, Desk, ServiceError};
use crate::db::tickets::{self as ticket_rows, NewMessage, NewTicket, TicketRow};
use crate::db::{self, AnyConnection, accounts};
use crate::domain::account::AccountView;
use crate::domain::diagnosis::parse_failed_at;
use crate::domain::email_address::EmailAddress;
use crate::domain::redact::REDACTED;
use crate::domain::ticket::Kind;
use crate::domain::workflow::conversation;
use crate::domain::workflow::creation::{CreationFacts, on_create};
use crate::domain::workflow::{self, Action, ActionName, Context, MailTemplate, Refusal};
use serde_json::{Value, json};

/// Where a ticket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Web,
    Mail,
    Api,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Mail => "mail",
            Channel::Api => "api",
        }
    }
}

/// A request for help, parsed at the edge (form, mail, API).
#[derive(Debug, Clone)]
pub struct OpenTicket {
    pub kind: Kind,
    pub requester: EmailAddress,
    pub subject: String,
    pub body: String,
    /// An account id, username or registered email the customer named.
    pub account: Option<String>,
    pub current_ip: Option<String>,
    /// Allowlisted networks already tried (ip_lockout), with what happened.
    pub tried_from: Option<String>,
    pub attempts_outcome: Option<String>,
    pub smtp_username: Option<String>,
    pub failed_at: Option<String>,
    pub problem: Option<String>,
    pub error_text: Option<String>,
    pub channel: Channel,
    pub actor: Actor,
    /// What came with an inbound mail (already redacted by the ingestion service).
    pub inbound: Option<InboundParts>,
}

/// The parts of an inbound mail stored with its first message.
#[derive(Debug, Clone, Default)]
pub struct InboundParts {
    pub message_id: Option<String>,
    pub content_hash: String,
    pub from: String,
    pub html: Option<String>,
    pub auto_generated: Option<String>,
    pub raw: Vec<u8>,
    pub attachments: Vec<crate::mail::inbound::parse::Attachment>,
    /// Secrets the ingestion service already removed (for the redaction event and notice).
    pub secrets_found: Vec<crate::domain::redact::SecretKind>,
}

pub struct Opened {
    pub ticket: TicketRow,
}

pub fn open_ticket(conn: &mut AnyConnection, desk: &Desk, req: OpenTicket) -> Result<Opened, ServiceError> {
    db::write_transaction(conn, |conn| open_ticket_in_transaction(conn, desk, req.clone()))
}

/// Opens a ticket inside the caller's transaction.
pub(crate) fn open_ticket_in_transaction(
    conn: &mut AnyConnection,
    desk: &Desk,
    req: OpenTicket,
) -> Result<Opened, ServiceError> {
    let mut scrub = Scrubber::default();
    let subject = {
        let s = scrub.scrub(req.subject.trim());
        if s.is_empty() { req.kind.label().to_string() } else { s }
    };
    let body = scrub.scrub(&req.body);
    let tried_from = scrub.scrub_opt(req.tried_from.as_deref());
    let attempts_outcome = scrub.scrub_opt(req.attempts_outcome.as_deref());
    let error_text = scrub.scrub_opt(req.error_text.as_deref());
    // The SMTP username is kept byte-exact (usernames can be anything) but still scanned: a
    // customer may paste "user:password" into it.
    let smtp_username = scrub.scrub_opt(req.smtp_username.as_deref());

    {
        let account = match req.account.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(reference) => accounts::resolve(conn, reference)?,
            None => None,
        };
        let requester_accounts = accounts::views_by_email(conn, req.requester.as_str())?;
        let account = account.or_else(|| requester_accounts.first().cloned());
        // What the creation rules decide on (a ban, above all) must not change before commit:
        // lock those accounts, then read them again as they are now.
        let (account, requester_accounts) = lock_and_reread(conn, account, requester_accounts)?;

        // No status token is made here: each mail to the requester gets its own link when it
        // is sent, and only the link's hash is stored.
        let row = ticket_rows::insert(
            conn,
            &NewTicket {
                kind: req.kind.as_str(),
                state: req.kind.initial_state().as_str(),
                subject: &subject,
                requester: req.requester.as_str(),
                channel: req.channel.as_str(),
                auto_generated: req.inbound.as_ref().is_some_and(|i| i.auto_generated.is_some()),
            },
        )?;

        let actor = req.actor.label();
        let mut created = json!({"kind": req.kind.as_str(), "channel": req.channel.as_str(),
                                 "requester": req.requester.as_str(), "subject": subject});
        for (key, value) in [
            ("account", req.account.as_deref()),
            ("current_ip", req.current_ip.as_deref()),
            ("problem", req.problem.as_deref()),
            ("smtp_username", smtp_username.as_deref()),
            ("failed_at", req.failed_at.as_deref()),
            ("error_text", error_text.as_deref()),
            ("tried_from", tried_from.as_deref()),
            ("outcome", attempts_outcome.as_deref()),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                created[key] = json!(v);
            }
        }
        if let Some(name) = smtp_username.as_deref() {
            let flags = workflow::creation::smtp_username_flags(name);
            if !flags.is_empty() {
                created["flags"] = json!(flags);
            }
        }
        ticket_rows::insert_event(conn, row.id, "created", &actor, &created, None)?;
        let mut first = NewMessage::from_requester(row.id, req.requester.as_str(), &subject, &body);
        let mut message_in = json!({"channel": req.channel.as_str()});
        if let Some(inbound) = &req.inbound {
            first.message_id = inbound.message_id.as_deref();
            first.content_hash = Some(&inbound.content_hash);
            first.body_html = inbound.html.as_deref();
            first.auto_generated = inbound.auto_generated.is_some();
            for kind in &inbound.secrets_found {
                if !scrub.found.contains(kind) {
                    scrub.found.push(*kind);
                }
            }
        }
        let message_id = ticket_rows::insert_message(conn, &first)?;
        if let Some(inbound) = &req.inbound {
            super::inbound::store_mail_parts(conn, message_id, inbound, &mut message_in)?;
        }
        ticket_rows::insert_event(conn, row.id, "message_in", &actor, &message_in, Some(message_id))?;
        super::redaction::record_removed_secrets(conn, desk, &row, &scrub.kinds(), "customer", Some(&row.requester))?;

        let loaded = Loaded {
            row: row.clone(),
            account: account.clone(),
            checks: vec![],
        };
        let attempts = tried_from
            .clone()
            .filter(|t| !t.trim().is_empty())
            .map(|t| (t, attempts_outcome.clone().unwrap_or_default()));
        // A login_help ticket that names a username is diagnosed from the authentication logs
        // at once (SPEC §2.4); the same lookups run whatever the directory or the logs hold.
        let diagnosed: Option<Diagnosed> = match smtp_username.as_deref() {
            Some(name) if req.kind == Kind::LoginHelp && !name.is_empty() && !name.contains(REDACTED) => {
                let failed_at = req.failed_at.as_deref().and_then(parse_failed_at);
                let channel = channel_of_problem(req.problem.as_deref());
                Some(diagnosis::diagnose(conn, name, channel, failed_at, chrono::Utc::now())?)
            }
            _ => None,
        };
        let decision = on_create(&CreationFacts {
            kind: req.kind,
            requester: req.requester.as_str(),
            account: account.as_ref(),
            requester_accounts: &requester_accounts,
            attempts,
            attempts_on_record: false,
            smtp_username: smtp_username.as_deref(),
            diagnosis: diagnosed.as_ref().map(Diagnosed::facts),
        });
        let ticket = commit(conn, desk, &loaded, decision, "open", &req.actor, json!({}))?;
        Ok(Opened { ticket })
    }
}

/// Locks the accounts a new ticket's rules read (in id order) and reads them again: a read
/// before the lock may predate a ban committed meanwhile.
fn lock_and_reread(
    conn: &mut AnyConnection,
    account: Option<AccountView>,
    requester_accounts: Vec<AccountView>,
) -> Result<(Option<AccountView>, Vec<AccountView>), ServiceError> {
    if !matches!(conn, AnyConnection::Postgresql(_)) {
        // SQLite: the write transaction is alone already; what was read is current.
        return Ok((account, requester_accounts));
    }
    let mut ids: Vec<&str> = requester_accounts.iter().map(|a| a.id.as_str()).collect();
    ids.extend(account.as_ref().map(|a| a.id.as_str()));
    crate::db::locks::lock_accounts(conn, &ids)?;
    let account = match account {
        Some(a) => accounts::load_view(conn, &a.id)?,
        None => None,
    };
    let mut fresh = Vec::with_capacity(requester_accounts.len());
    for a in requester_accounts {
        fresh.extend(accounts::load_view(conn, &a.id)?);
    }
    Ok((account, fresh))
}

/// Applies a named action with JSON parameters. Policy refusals are written to the event log
/// (and the write is kept) before the refusal is returned.
pub fn apply_action(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    name: &str,
    params: &Value,
    actor: &Actor,
) -> Result<TicketRow, ServiceError> {
    let outcome = db::write_transaction(conn, |conn| {
        apply_action_in_transaction(conn, desk, ticket_id, name, params, actor)
    })?;
    // Counted once the transaction is over: a retried transaction must not count twice.
    if let Err(refusal) = &outcome {
        desk.metrics.refusal(refusal.code.as_str());
    }
    outcome.map_err(ServiceError::Refused)
}

/// Applies an action inside the caller's transaction. A refusal is an `Ok(Err(_))` so that the
/// refusal event written here is committed with the rest.
pub(crate) fn apply_action_in_transaction(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    name: &str,
    params: &Value,
    actor: &Actor,
) -> Result<Result<TicketRow, Refusal>, ServiceError> {
    let loaded = Loaded::load(conn, ticket_id)?;
    let name = match ActionName::parse(name) {
        Ok(n) => n,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let view = loaded.view();
    if let Err(refusal) = workflow::check(&view, name) {
        log_refusal(conn, &loaded, name.as_str(), &refusal, actor)?;
        return Ok(Err(refusal));
    }
    let action = match Action::parse(name, params) {
        Ok(a) => a,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let action = scrub_action(action);
    let target = match &action {
        Action::LinkAccount { account_id } | Action::SendUsername { account_id } => {
            accounts::load_view_locked(conn, account_id)?
        }
        _ => None,
    };
    let requester_accounts: Vec<AccountView> = match &action {
        Action::Reclassify { .. } | Action::DiagnoseAuth { .. } => {
            accounts::views_by_email(conn, &loaded.row.requester)?
        }
        _ => vec![],
    };
    let diagnosed: Option<Diagnosed> = match &action {
        Action::DiagnoseAuth {
            username,
            failed_at,
            channel,
            ..
        } => Some(diagnosis::diagnose(
            conn,
            username,
            *channel,
            *failed_at,
            chrono::Utc::now(),
        )?),
        _ => None,
    };
    let ctx = Context {
        target_account: target.as_ref(),
        requester_accounts: &requester_accounts,
        diagnosis: diagnosed.as_ref().map(Diagnosed::facts),
    };
    match workflow::decide(&view, &action, &ctx) {
        Ok(decision) => {
            let details = action_details(&action);
            commit(conn, desk, &loaded, decision, name.as_str(), actor, details).map(Ok)
        }
        Err(refusal) => {
            if refusal.code.is_policy_refusal() {
                log_refusal(conn, &loaded, name.as_str(), &refusal, actor)?;
            }
            Ok(Err(refusal))
        }
    }
}

fn log_refusal(
    conn: &mut AnyConnection,
    loaded: &Loaded,
    action: &str,
    refusal: &Refusal,
    actor: &Actor,
) -> Result<(), ServiceError> {
    ticket_rows::insert_event(
        conn,
        loaded.row.id,
        "refusal",
        &actor.label(),
        &json!({"action": action, "code": refusal.code.as_str(), "message": refusal.message, "state": loaded.row.state}),
        None,
    )?;
    Ok(())
}

/// Free text in action parameters is stored too, so it is scanned like everything else.
fn scrub_action(action: Action) -> Action {
    let mut s = Scrubber::default();
    match action {
        Action::RecordAllowlistedAttempts { tried_from, outcome } => Action::RecordAllowlistedAttempts {
            tried_from: s.scrub(&tried_from),
            outcome: s.scrub(&outcome),
        },
        Action::RecordVerificationCheck {
            method,
            passed,
            evidence,
        } => Action::RecordVerificationCheck {
            method,
            passed,
            evidence: s.scrub(&evidence),
        },
        Action::Resolve { note } => Action::Resolve { note: s.scrub(&note) },
        Action::Refuse { reason } => Action::Refuse {
            reason: s.scrub(&reason),
        },
        Action::RecordPayment {
            amount_cents,
            reference,
        } => Action::RecordPayment {
            amount_cents,
            reference: s.scrub(&reference),
        },
        Action::DiagnoseAuth {
            username,
            failed_at,
            channel,
            notify,
        } => Action::DiagnoseAuth {
            username: s.scrub(&username),
            failed_at,
            channel,
            notify,
        },
        other => other,
    }
}

/// The parameters worth keeping in the transition event.
fn action_details(action: &Action) -> Value {
    match action {
        Action::Assign { agent_email } => json!({"agent_email": agent_email.as_str()}),
        Action::Reclassify { kind } => json!({"kind": kind.as_str()}),
        Action::LinkAccount { account_id } | Action::SendUsername { account_id } => json!({"account_id": account_id}),
        Action::Resolve { note } if !note.is_empty() => json!({"note": note}),
        Action::Refuse { reason } => json!({"reason": reason}),
        Action::RecordAllowlistedAttempts { tried_from, outcome } => {
            json!({"tried_from": tried_from, "outcome": outcome})
        }
        Action::GrantIpAccess { ip } => json!({"ip": ip.as_str()}),
        Action::RecordPayment {
            amount_cents,
            reference,
        } => json!({"amount_cents": amount_cents, "reference": reference}),
        Action::DiagnoseAuth {
            username,
            failed_at,
            channel,
            notify,
        } => json!({"username": username, "failed_at": failed_at.map(crate::domain::diagnosis::rfc3339),
                    "channel": channel.as_str(), "notify": notify}),
        _ => json!({}),
    }
}

/// An agent's reply (mailed to the requester) or internal note.
pub fn add_reply(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    body: &str,
    internal: bool,
    actor: &Actor,
) -> Result<TicketRow, ServiceError> {
    if body.trim().is_empty() {
        return Err(ServiceError::Invalid("body: a reply needs some text".into()));
    }
    let mut scrub = Scrubber::default();
    let body = scrub.scrub(body);
    db::write_transaction(conn, |conn| {
        let loaded = Loaded::load(conn, ticket_id)?;
        let row = &loaded.row;
        let actor_label = actor.label();
        // An agent's own paste is removed and recorded; the customer has nothing to rotate.
        super::redaction::record_removed_secrets(conn, desk, row, &scrub.kinds(), "agent", None)?;
        if internal {
            let message_id = ticket_rows::insert_message(conn, &NewMessage::note(row.id, &body))?;
            ticket_rows::insert_event(
                conn,
                row.id,
                "note",
                &actor_label,
                &json!({"internal": true}),
                Some(message_id),
            )?;
            return Ok(row.clone());
        }
        let request = crate::mail::outbound::compose::MailRequest {
            ticket: row,
            to: &row.requester,
            template: MailTemplate::AgentReply.name(),
            automatic: false,
            params: json!({"body": body}),
            actor: &actor_label,
        };
        crate::mail::outbound::compose::queue_mail(conn, desk, request)?;
        match conversation::after_agent_reply(loaded.kind(), loaded.state()) {
            Some(next) => {
                let decision = workflow::Decision {
                    kind: loaded.kind(),
                    state: next,
                    state_reason: None,
                    effects: vec![],
                };
                commit(conn, desk, &loaded, decision, "reply", actor, json!({}))
            }
            None => Ok(row.clone()),
        }
    })
}

/// What happened to an email-challenge link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeOutcome {
    Recorded {
        ticket_ref: String,
        passed: bool,
    },
    UnknownToken,
    Expired,
    AlreadyUsed,
    /// The ticket moved on (or its account was banned) since the link was mailed.
    NoLongerApplies(Refusal),
}

/// The customer followed the mailed link and confirmed (or said "this was not me").
pub fn confirm_email_challenge(
    conn: &mut AnyConnection,
    desk: &Desk,
    token: &str,
    passed: bool,
) -> Result<ChallengeOutcome, ServiceError> {
    if !crate::crypto::looks_like_token(token) {
        return Ok(ChallengeOutcome::UnknownToken);
    }
    let hash = crate::crypto::sha256_hex(token);
    db::write_transaction(conn, |conn| {
        let Some(challenge) = ticket_rows::find_challenge(conn, &hash)? else {
            return Ok(ChallengeOutcome::UnknownToken);
        };
        if challenge.used_at.is_some() {
            return Ok(ChallengeOutcome::AlreadyUsed);
        }
        if challenge.expires_at < db::now() {
            return Ok(ChallengeOutcome::Expired);
        }
        let loaded = Loaded::load(conn, challenge.ticket_id)?;
        if loaded.row.verification_round != challenge.round
            || loaded.row.account_id.as_deref() != Some(challenge.account_id.as_str())
        {
            return Ok(ChallengeOutcome::NoLongerApplies(Refusal::new(
                workflow::ErrorCode::InvalidTransition,
                "this link belongs to an earlier verification of the request",
            )));
        }
        let decision = match workflow::confirm_email_challenge(&loaded.view(), passed) {
            Ok(d) => d,
            Err(refusal) => return Ok(ChallengeOutcome::NoLongerApplies(refusal)),
        };
        if !ticket_rows::use_challenge(conn, challenge.id)? {
            return Ok(ChallengeOutcome::AlreadyUsed);
        }
        let actor = Actor::Customer {
            email: format!("registered address of {}", challenge.account_id),
        };
        let row = commit(
            conn,
            desk,
            &loaded,
            decision,
            "confirm_email_challenge",
            &actor,
            json!({"passed": passed}),
        )?;
        Ok(ChallengeOutcome::Recorded {
            ticket_ref: desk.ticket_ref(row.id),
            passed,
        })
    })
}

/// Refuses every open ticket of accounts that just became banned, with the banned answer.
pub fn refuse_tickets_of_banned(
    conn: &mut AnyConnection,
    desk: &Desk,
    account_ids: &[String],
) -> Result<usize, ServiceError> {
    let mut refused = 0;
    for id in ticket_rows::open_ids_for_accounts(conn, account_ids)? {
        let loaded = Loaded::load(conn, id)?;
        let Some(account) = loaded.account.clone() else {
            continue;
        };
        if let Some(decision) = workflow::on_account_banned(&loaded.view(), &account) {
            commit(
                conn,
                desk,
                &loaded,
                decision,
                "account_banned",
                &Actor::System,
                json!({"account_id": account.id}),
            )?;
            refused += 1;
        }
    }
    Ok(refused)
}

/// The customer's own reply (status page). Reopens a resolved ticket as SPEC §3 step 4 says;
/// a refused one keeps its state.
pub fn customer_reply(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    body: &str,
) -> Result<TicketRow, ServiceError> {
    if body.trim().is_empty() {
        return Err(ServiceError::Invalid("body: write a few words".into()));
    }
    db::write_transaction(conn, |conn| append_customer_words(conn, desk, ticket_id, body, "web"))
}

/// Appends the requester's words to a ticket (a reply, or a repeated form) with redaction and
/// the reopen rules, inside the caller's transaction.
pub(crate) fn append_customer_words(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    body: &str,
    channel: &str,
) -> Result<TicketRow, ServiceError> {
    let mut scrub = Scrubber::default();
    let body = scrub.scrub(body);
    let loaded = Loaded::load(conn, ticket_id)?;
    let row = &loaded.row;
    let actor = Actor::Customer {
        email: row.requester.clone(),
    };
    let subject = format!("Re: {}", row.subject);
    let message_id = ticket_rows::insert_message(
        conn,
        &NewMessage::from_requester(row.id, &row.requester, &subject, &body),
    )?;
    ticket_rows::insert_event(
        conn,
        row.id,
        "message_in",
        &actor.label(),
        &json!({"channel": channel}),
        Some(message_id),
    )?;
    super::redaction::record_removed_secrets(conn, desk, row, &scrub.kinds(), "customer", Some(&row.requester))?;
    let next = conversation::after_customer_message(
        loaded.kind(),
        loaded.state(),
        conversation::Sender::Requester,
        false,
        row.attempts_on_record,
    );
    match next {
        Some(state) => {
            let decision = workflow::Decision {
                kind: loaded.kind(),
                state,
                state_reason: None,
                effects: vec![],
            };
            commit(conn, desk, &loaded, decision, "customer_reply", &actor, json!({}))
        }
        None => Ok(row.clone()),
    }
}

/// What the email-challenge page shows before any answer: the request and the address that
/// asked, so the mailbox owner can tell whether it was them. Reading it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengePreview {
    Open { ticket_ref: String, requester: String },
    Closed(ChallengeOutcome),
}

pub fn preview_email_challenge(
    conn: &mut AnyConnection,
    desk: &Desk,
    token: &str,
) -> Result<ChallengePreview, ServiceError> {
    if !crate::crypto::looks_like_token(token) {
        return Ok(ChallengePreview::Closed(ChallengeOutcome::UnknownToken));
    }
    let Some(challenge) = ticket_rows::find_challenge(conn, &crate::crypto::sha256_hex(token))? else {
        return Ok(ChallengePreview::Closed(ChallengeOutcome::UnknownToken));
    };
    if challenge.used_at.is_some() {
        return Ok(ChallengePreview::Closed(ChallengeOutcome::AlreadyUsed));
    }
    if challenge.expires_at < db::now() {
        return Ok(ChallengePreview::Closed(ChallengeOutcome::Expired));
    }
    let row = ticket_rows::find(conn, challenge.ticket_id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
    Ok(ChallengePreview::Open {
        ticket_ref: desk.ticket_ref(row.id),
        requester: row.requester,
    })
}
