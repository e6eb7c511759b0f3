//! Applying actions, agents' replies and the email-challenge confirmation (opening a ticket: `opening`).

use super::action_text::{action_details, scrub_action};
use super::decision::{commit, record_refusal};
use super::diagnosis::{self, Diagnosed};
use super::loaded::Loaded;
use super::redaction::Scrubber;
use super::{Actor, Desk, ServiceError};
use crate::db::tickets::{self as ticket_rows, NewMessage, TicketRow};
use crate::db::{self, AnyConnection, accounts};
use crate::domain::account::AccountView;
use crate::domain::diagnosis::parse_failed_at;
use crate::domain::redact::REDACTED;
use crate::domain::ticket::Kind;
use crate::domain::workflow::conversation;
use crate::domain::workflow::{self, Accepted, Action, Context, Refusal};
use serde_json::{Value, json};

pub(crate) use super::opening::open_ticket_in_transaction;
pub use super::opening::{Opened, open_ticket};
pub use super::request::{Channel, OpenTicket, RequestFields};

/// What an action did: applied, or (four eyes) held for a second agent's approval.
#[derive(Debug, Clone)]
pub enum Applied {
    Done(TicketRow),
    Held(crate::db::approvals::ApprovalRow),
}

/// Applies a named action with JSON parameters. Policy refusals are written to the event log
/// (and the write is kept) before the refusal is returned.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id, action = workflow::ActionName::parse(name).map_or("unknown", workflow::ActionName::as_str)))]
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
    name: impl workflow::Named,
    params: &Value,
    actor: &Actor,
) -> Result<Result<Applied, Refusal>, ServiceError> {
    let loaded = Loaded::load(conn, ticket_id)?;
    let view = loaded.view();
    let role = workflow::Role::of(actor.is_admin());
    let outcome = workflow::apply_with(&view, name, params, role, |action| {
        *action = scrub_action(action.clone());
        ActionFacts::load(conn, &loaded, action)
    })?;
    let Accepted { action, decision } = match outcome {
        Ok(accepted) => accepted,
        Err(refused) => {
            if refused.belongs_on_record() {
                let name = refused.name.map_or("", workflow::ActionName::as_str);
                record_refusal(
                    conn,
                    loaded.row.id,
                    name,
                    &refused.refusal,
                    actor,
                    Some(loaded.row.state.as_str()),
                )?;
            }
            return Ok(Err(refused.refusal));
        }
    };
    let name = action.name();
    let details = action_details(&action);
    match workflow::Step::of(decision, name, desk.settings.four_eyes) {
        workflow::Step::Apply(decision) => {
            commit(conn, desk, &loaded, decision, name.as_str(), actor, details).map(|row| Ok(Applied::Done(row)))
        }
        workflow::Step::Hold => {
            super::approvals::hold(conn, desk, &loaded, name, &details, actor).map(|row| Ok(Applied::Held(row)))
        }
    }
}

/// What an action may need besides its ticket, loaded only once it passed its guards and
/// parameters: the account it names, the requester's accounts, a diagnosis.
struct ActionFacts {
    target: Option<AccountView>,
    requester_accounts: Vec<AccountView>,
    diagnosed: Option<Diagnosed>,
}

impl ActionFacts {
    fn load(conn: &mut AnyConnection, loaded: &Loaded, action: &Action) -> Result<ActionFacts, ServiceError> {
        let target = match action {
            Action::LinkAccount { account_id } | Action::SendUsername { account_id } => {
                accounts::load_view_locked(conn, account_id)?
            }
            _ => None,
        };
        let requester_accounts = match action {
            Action::Reclassify { .. } | Action::DiagnoseAuth { .. } => {
                accounts::views_by_email(conn, &loaded.row.requester)?
            }
            _ => vec![],
        };
        let diagnosed = match action {
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
        Ok(ActionFacts {
            target,
            requester_accounts,
            diagnosed,
        })
    }
}

impl workflow::Facts for ActionFacts {
    fn context(&self) -> Context<'_> {
        Context {
            target_account: self.target.as_ref(),
            requester_accounts: &self.requester_accounts,
            diagnosis: self.diagnosed.as_ref().map(Diagnosed::facts),
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

/// An agent's reply (mailed to the requester) or internal note.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id, internal = internal))]
pub fn add_reply(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    body: &str,
    internal: bool,
    actor: &Actor,
) -> Result<TicketRow, ServiceError> {
    add_reply_with_files(conn, desk, ticket_id, body, internal, vec![], actor)
}

/// The same with files, scanned before the transaction as a customer's are. A reply's files
/// go out with its mail and show on the status page; a note's stay on the note, never mailed.
#[tracing::instrument(level = "debug", skip_all, fields(ticket_id = ticket_id, internal = internal, files = files.len()))]
pub fn add_reply_with_files(
    conn: &mut AnyConnection,
    desk: &Desk,
    ticket_id: i64,
    body: &str,
    internal: bool,
    files: Vec<super::messages::Upload>,
    actor: &Actor,
) -> Result<TicketRow, ServiceError> {
    if body.trim().is_empty() {
        return Err(ServiceError::Invalid("body: a reply needs some text".into()));
    }
    let mut scrub = Scrubber::default();
    let body = scrub.scrub(body);
    let files = super::messages::scan_uploads(&mut scrub, files);
    db::write_transaction(conn, |conn| {
        let loaded = Loaded::load(conn, ticket_id)?;
        let row = &loaded.row;
        let actor_label = actor.label();
        // An agent's own paste is removed and recorded; the customer has nothing to rotate.
        super::redaction::record_removed_secrets(conn, desk, row, scrub.found(), "agent", None)?;
        if internal {
            let message_id = ticket_rows::insert_message(conn, &NewMessage::note(row.id, &body))?;
            let mut data = json!({"internal": true});
            if !files.is_empty() {
                data["attachments"] = json!(crate::mail::files::store_files(conn, message_id, &files)?);
            }
            ticket_rows::insert_event(
                conn,
                row.id,
                crate::domain::event::EventType::Note,
                &actor_label,
                &data,
                Some(message_id),
            )?;
            return super::activity::record(conn, row, workflow::Activity::Note, false);
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
        crate::mail::outbound::compose::queue_mail_with_files(conn, desk, request, &files)?;
        let row = match conversation::after_agent_reply(loaded.kind(), loaded.state()) {
            Some(next) => {
                let decision = workflow::Decision::to(&loaded.view(), next);
                commit(conn, desk, &loaded, decision, "reply", actor, json!({}))?
            }
            None => row.clone(),
        };
        super::activity::record(conn, &row, workflow::Activity::AgentReply, false)
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
#[tracing::instrument(level = "debug", skip_all, fields(passed = passed))]
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
#[tracing::instrument(level = "debug", skip_all, fields(accounts = account_ids.len()))]
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

/// What the email-challenge page shows before any answer: the request and the address that
/// asked, so the mailbox owner can tell whether it was them. Reading it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengePreview {
    Open { ticket_ref: String, requester: String },
    Closed(ChallengeOutcome),
}

#[tracing::instrument(level = "debug", skip_all)]
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
