//! Opening tickets, applying actions, replies and the email-challenge confirmation.

use super::action_text::{action_details, scrub_action};
use super::decision::{Loaded, commit};
use super::diagnosis::{self, Diagnosed};
use super::messages::CustomerMessage;
use super::redaction::{Scrubbed, Scrubber};
use super::{Actor, Desk, ServiceError};
use crate::db::tickets::{self as ticket_rows, NewMessage, NewTicket, TicketRow};
use crate::db::{self, AnyConnection, accounts};
use crate::domain::account::AccountView;
use crate::domain::diagnosis::parse_failed_at;
use crate::domain::redact::REDACTED;
use crate::domain::ticket::{Kind, Problem};
use crate::domain::workflow::conversation;
use crate::domain::workflow::conversation::Sender;
use crate::domain::workflow::creation::{CreationFacts, on_create};
use crate::domain::workflow::{self, Action, ActionName, Context, Refusal};
use serde_json::{Value, json};

pub use super::request::{Channel, OpenTicket, RequestFields};

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
    let subject = if req.subject.is_empty() {
        Scrubbed::not_from_customer(req.kind.label())
    } else {
        req.subject.clone()
    };
    let body = &req.body;
    let tried_from = req.tried_from.as_ref().map(Scrubbed::as_str);
    let attempts_outcome = req.attempts_outcome.as_ref().map(Scrubbed::as_str);
    let smtp_username = req.smtp_username.as_ref().map(Scrubbed::as_str);
    let opt = |v: &Option<Scrubbed>| v.as_ref().map(|s| s.as_str().to_string());

    {
        let account = match req
            .account
            .as_ref()
            .map(|a| a.as_str().trim())
            .filter(|a| !a.is_empty())
        {
            Some(reference) => accounts::resolve(conn, reference)?,
            None => None,
        };
        // A forged `From:` (sender_auth fail) is nobody's: no account is looked up for it.
        let forged = req.inbound.as_ref().is_some_and(super::messages::MailExtras::forged);
        let requester_accounts = if forged {
            vec![]
        } else {
            accounts::views_by_email(conn, req.requester.as_str())?
        };
        let account = account.or_else(|| requester_accounts.first().cloned());
        // What the creation rules decide on (a ban, above all) must not change before commit:
        // lock those accounts, then read them again as they are now.
        let (account, requester_accounts) = lock_and_reread(conn, account, requester_accounts)?;

        // No status token is made here: each mail to the requester gets its own link when it
        // is sent, and only the link's hash is stored.
        let row = ticket_rows::insert(
            conn,
            &NewTicket {
                kind: req.kind,
                state: req.kind.initial_state(),
                subject: &subject,
                requester: req.requester.as_str(),
                channel: req.channel,
                auto_generated: req.inbound.as_ref().is_some_and(|i| i.auto_generated.is_some()),
            },
        )?;

        let actor = req.actor.label();
        let mut created = json!({"kind": req.kind.as_str(), "channel": req.channel.as_str(),
                                 "requester": req.requester.as_str(), "subject": subject.as_str()});
        // Only scrubbed values reach the event: the request's fields are `Scrubbed`.
        for (key, value) in [
            ("account", opt(&req.account)),
            ("current_ip", opt(&req.current_ip)),
            ("problem", req.problem.map(|p| p.as_str().to_string())),
            ("smtp_username", opt(&req.smtp_username)),
            ("failed_at", opt(&req.failed_at)),
            ("error_text", opt(&req.error_text)),
            ("tried_from", opt(&req.tried_from)),
            ("outcome", opt(&req.attempts_outcome)),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                created[key] = json!(v);
            }
        }
        if let Some(name) = smtp_username {
            let flags = workflow::creation::smtp_username_flags(name);
            if !flags.is_empty() {
                created["flags"] = json!(flags);
            }
        }
        ticket_rows::insert_event(conn, row.id, EventType::Created, &actor, &created, None)?;
        let first = CustomerMessage {
            subject: subject.clone(),
            body: body.clone(),
            html: req.html.clone(),
            mail: req.inbound.clone(),
            secrets_found: req.secrets_found.clone(),
            event_data: json!({}),
            uploads: vec![],
        };
        super::messages::store_message(
            conn,
            row.id,
            req.requester.as_str(),
            Sender::Requester,
            &first,
            req.channel.as_str(),
            &req.actor,
        )?;
        let source = if req.inbound.is_some() { "mail" } else { "customer" };
        let robot = req.inbound.as_ref().is_some_and(|i| i.auto_generated.is_some());
        let notify = (!robot).then_some(row.requester.as_str());
        super::redaction::record_removed_secrets(conn, desk, &row, &req.secrets_found, source, notify)?;

        let loaded = Loaded {
            row: row.clone(),
            account: account.clone(),
            checks: vec![],
            pending: vec![],
        };
        let attempts = tried_from
            .filter(|t| !t.trim().is_empty())
            .map(|t| (t.to_string(), attempts_outcome.unwrap_or_default().to_string()));
        // A login_help ticket that names a username is diagnosed from the authentication logs
        // at once (docs/reference.md#kinds-and-states); the same lookups run whatever the directory or the logs hold.
        let diagnosed: Option<Diagnosed> = match smtp_username {
            Some(name) if req.kind == Kind::LoginHelp && !name.is_empty() && !name.contains(REDACTED) => {
                let failed_at = req.failed_at.as_ref().and_then(|f| parse_failed_at(f.as_str()));
                let channel = Problem::auth_channel(req.problem);
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
            smtp_username,
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

/// What an action did: applied, or (four eyes) held for a second agent's approval.
#[derive(Debug, Clone)]
pub enum Applied {
    Done(TicketRow),
    Held(crate::db::approvals::ApprovalRow),
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
) -> Result<Applied, ServiceError> {
    let (outcome, expired) = db::write_transaction(conn, |conn| {
        // Requests older than 24 hours stop holding their action before anything is decided.
        let expired = super::approvals::expire_stale(conn, ticket_id)?;
        apply_action_in_transaction(conn, desk, ticket_id, name, params, actor).map(|o| (o, expired))
    })?;
    // Counted once the transaction is over: a retried transaction must not count twice.
    for _ in 0..expired {
        desk.metrics.approval("expired");
    }
    match &outcome {
        Err(refusal) => desk.metrics.refusal(refusal.code.as_str()),
        Ok(Applied::Held(_)) => desk.metrics.approval("requested"),
        Ok(Applied::Done(_)) => {}
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
) -> Result<Result<Applied, Refusal>, ServiceError> {
    let loaded = Loaded::load(conn, ticket_id)?;
    let name = match ActionName::parse(name) {
        Ok(n) => n,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let view = loaded.view();
    if let Err(refusal) = workflow::closing::check_role(name, actor.is_admin()) {
        log_refusal(conn, &loaded, name.as_str(), &refusal, actor)?;
        return Ok(Err(refusal));
    }
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
        Action::Reclassify { kind: Kind::LoginHelp } => diagnosis_from_thread(conn, loaded.row.id)?,
        _ => None,
    };
    let ctx = Context {
        target_account: target.as_ref(),
        requester_accounts: &requester_accounts,
        diagnosis: diagnosed.as_ref().map(Diagnosed::facts),
    };
    match workflow::decide_or_hold(&view, &action, &ctx, desk.settings.four_eyes) {
        Ok(workflow::Step::Apply(decision)) => {
            let details = action_details(&action);
            commit(conn, desk, &loaded, decision, name.as_str(), actor, details).map(|row| Ok(Applied::Done(row)))
        }
        Ok(workflow::Step::Hold) => {
            let details = action_details(&action);
            super::approvals::hold(conn, desk, &loaded, name, &details, actor).map(|row| Ok(Applied::Held(row)))
        }
        Err(refusal) => {
            if refusal.code.is_policy_refusal() {
                log_refusal(conn, &loaded, name.as_str(), &refusal, actor)?;
            }
            Ok(Err(refusal))
        }
    }
}

/// The diagnosis a ticket reclassified to `login_help` gets: from the newest customer message
/// that names a username ("username: crm-mailer"), with the time of the failure it gives.
fn diagnosis_from_thread(conn: &mut AnyConnection, ticket_id: i64) -> Result<Option<Diagnosed>, ServiceError> {
    let messages = ticket_rows::messages_of(conn, ticket_id)?;
    let named = messages.iter().rev().filter(|m| m.direction == "in").find_map(|m| {
        let (name, channel) = crate::domain::diagnosis::phrases::named_username(&m.body)?;
        (!name.contains(REDACTED)).then(|| (name, channel, crate::domain::diagnosis::phrases::failed_at_in(&m.body)))
    });
    let Some((name, channel, failed_at)) = named else {
        return Ok(None);
    };
    let failed_at = failed_at.as_deref().and_then(parse_failed_at);
    Ok(Some(diagnosis::diagnose(
        conn,
        &name,
        channel,
        failed_at,
        chrono::Utc::now(),
    )?))
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
        EventType::Refusal,
        &actor.label(),
        &json!({"action": action, "code": refusal.code.as_str(), "message": refusal.message, "state": loaded.row.state}),
        None,
    )?;
    Ok(())
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
        super::redaction::record_removed_secrets(conn, desk, row, scrub.found(), "agent", None)?;
        if internal {
            let message_id = ticket_rows::insert_message(conn, &NewMessage::note(row.id, &body))?;
            ticket_rows::insert_event(
                conn,
                row.id,
                EventType::Note,
                &actor_label,
                &json!({"internal": true}),
                Some(message_id),
            )?;
            super::activity::record(conn, row, workflow::Activity::Note, false)?;
            return ticket_rows::find(conn, row.id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()));
        }
        let request = crate::mail::outbound::compose::MailRequest {
            ticket: row,
            to: &row.requester,
            automatic: false,
            params: crate::mail::outbound::templates::Mail::AgentReply {
                body: body.as_str().to_string(),
            }
            .into(),
            actor: &actor_label,
        };
        crate::mail::outbound::compose::queue_mail(conn, desk, request)?;
        let row = match conversation::after_agent_reply(loaded.kind(), loaded.state()) {
            Some(next) => {
                let decision = workflow::Decision {
                    kind: loaded.kind(),
                    state: next,
                    state_reason: None,
                    effects: vec![],
                };
                commit(conn, desk, &loaded, decision, "reply", actor, json!({}))?
            }
            None => row.clone(),
        };
        super::activity::record(conn, &row, workflow::Activity::AgentReply, false)?;
        ticket_rows::find(conn, row.id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))
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

pub use super::messages::customer_reply;
pub(crate) use super::messages::reply_subject;
use crate::domain::event::EventType;

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
