//! Carrying out what the engine decided ([`Loaded`] is what it decided on).

use super::loaded::Loaded;
use super::{Actor, Desk, ServiceError};
use crate::db::tickets::{TicketChange, TicketRow};
use crate::db::{self, AnyConnection, accounts, agents, tickets};
use crate::domain::account::AccountView;
use crate::domain::event::EventType;
use crate::domain::workflow::{Activity, Decision, Effect, Mail, MailTemplate, Recipient};
use crate::mail::outbound::compose::{MailRequest, queue_mail};
use crate::mail::outbound::templates::{ListedAccount, Mail as Outgoing, MailParams};
use serde_json::{Value, json};

/// Events written after the transition that caused them.
enum AfterEvent {
    /// A `diagnosis`: written before the transition it may cause (a suspended account).
    Diagnosis(Value),
    Logged(EventType, Value),
    /// An internal note whose text lives in `messages`.
    Note(i64),
}

/// Writes a decision: the ticket (compare-and-set on its version), the events, the directory
/// changes and the outbox mail, all in the caller's transaction.
pub(crate) fn commit(
    conn: &mut AnyConnection,
    desk: &Desk,
    loaded: &Loaded,
    decision: Decision,
    action: &str,
    actor: &Actor,
    details: Value,
) -> Result<TicketRow, ServiceError> {
    let row = &loaded.row;
    let mut writes = Writes::new(desk, loaded, &decision, actor, &details);
    for effect in &decision.effects {
        writes.carry_out(conn, effect)?;
    }
    // The row as written (`RETURNING`): nothing after this in the decision writes it again.
    let updated = tickets::update_if_version(conn, row, &writes.change)?.ok_or(ServiceError::Conflict)?;
    let changed = writes.change.state != row.state || writes.change.kind != row.kind;
    write_events(conn, &writes, action, details)?;
    let asks_customer = !writes.challenge_mails.is_empty() || writes.mails.iter().any(|m| m.template.asks_customer());
    let activity = Activity::of_decision(matches!(actor, Actor::Customer { .. }), asks_customer, changed);
    let reassigned = writes.change.assignee_id != row.assignee_id;
    super::activity::record_at(conn, &updated, activity, reassigned, updated.updated_at)?;
    if activity.is_customer() {
        super::activity::notify_assignee(conn, desk, &updated, actor, super::activity::customer_did(action))?;
    }
    // The outbox comes last in the lock order: mail is queued after the ticket's write.
    for (address, params) in &writes.challenge_mails {
        enqueue(conn, desk, row, address, params.clone())?;
    }
    for mail in &writes.mails {
        let four_eyes = writes.approved_by.is_some();
        send_workflow_mail(conn, desk, &updated, writes.account.as_ref(), mail, four_eyes)?;
    }
    Ok(updated)
}

/// What a decision writes, gathered effect by effect before the ticket's row is written.
struct Writes<'a> {
    desk: &'a Desk,
    loaded: &'a Loaded,
    actor_label: String,
    /// Four eyes: an approved request is applied as its requester's, naming the approver too.
    approved_by: Option<String>,
    change: TicketChange,
    /// Accounts the effects refer to: the linked one, or the one an effect links.
    account: Option<AccountView>,
    flags: Vec<String>,
    mails: Vec<Mail>,
    after: Vec<AfterEvent>,
    challenge_mails: Vec<(String, MailParams)>,
}

impl<'a> Writes<'a> {
    fn new(desk: &'a Desk, loaded: &'a Loaded, decision: &Decision, actor: &Actor, details: &Value) -> Writes<'a> {
        let mut change = TicketChange::from_row(&loaded.row);
        change.kind = decision.kind;
        change.state = decision.state;
        if decision.state != loaded.state() || decision.kind != loaded.kind() {
            change.state_reason = decision.state_reason.clone();
            change.waiting_since = db::now();
        } else if decision.state_reason.is_some() {
            change.state_reason = decision.state_reason.clone();
        }
        Writes {
            desk,
            loaded,
            actor_label: actor.label(),
            approved_by: details.get("approved_by").and_then(Value::as_str).map(str::to_string),
            change,
            account: loaded.account.clone(),
            flags: vec![],
            mails: vec![],
            after: vec![],
            challenge_mails: vec![],
        }
    }

    fn ticket_ref(&self) -> String {
        self.desk.ticket_ref(self.loaded.row.id)
    }

    /// One effect: a change to the ticket's row, a write elsewhere, or something to write after
    /// the row (an event, a mail).
    fn carry_out(&mut self, conn: &mut AnyConnection, effect: &Effect) -> Result<(), ServiceError> {
        let ticket_id = self.loaded.row.id;
        match effect {
            Effect::Mail(mail) => self.mails.push(mail.clone()),
            Effect::LinkAccount { account_id } => {
                self.change.account_id = Some(account_id.clone());
                self.account = accounts::load_view_locked(conn, account_id)?;
            }
            Effect::Assign { agent_email } => {
                let agent = agents::find_by_email(conn, agent_email)?
                    .filter(|a| a.active)
                    .ok_or_else(|| ServiceError::Invalid(format!("agent_email: no active agent {agent_email}")))?;
                self.change.assignee_id = Some(agent.id);
            }
            Effect::RecordAttempts { .. } => self.change.attempts_on_record = true,
            Effect::StartVerificationRound => self.change.verification_round += 1,
            Effect::RecordCheck {
                method,
                passed,
                evidence,
            } => {
                let round = self.change.verification_round;
                tickets::insert_check(
                    conn,
                    ticket_id,
                    round,
                    method.as_str(),
                    *passed,
                    evidence,
                    &self.actor_label,
                )?;
                self.after.push(AfterEvent::Logged(
                    EventType::Check,
                    json!({"method": method.as_str(), "passed": passed, "evidence": evidence, "round": round}),
                ));
            }
            Effect::IssueEmailChallenge { account_id } => self.issue_challenge(conn, account_id)?,
            Effect::AddAllowlistEntry { account_id, ip } => {
                let source = match &self.approved_by {
                    Some(approver) => format!(
                        "ticket {}, requested by {}, approved by {approver}",
                        self.ticket_ref(),
                        self.actor_label
                    ),
                    None => format!("ticket {}", self.ticket_ref()),
                };
                let added = accounts::add_allowlist_entry(conn, account_id, ip, &source)?;
                self.after.push(AfterEvent::Logged(
                    EventType::DirectoryChange,
                    json!({"account_id": account_id, "change": "allowlist_add", "entry": ip, "already_present": !added,
                           "ticket": self.ticket_ref(), "by": self.actor_label}),
                ));
            }
            Effect::RecordPayment {
                account_id,
                amount_cents,
                reference,
                new_balance_cents,
            } => self.record_payment(conn, account_id, *amount_cents, reference, *new_balance_cents)?,
            Effect::ReactivateAccount { account_id } => {
                if !accounts::reactivate(conn, account_id)? {
                    // The engine refuses banned accounts; the filter in the query is the
                    // second lock on the same door.
                    return Err(crate::domain::workflow::banned_refusal().into());
                }
                self.after.push(AfterEvent::Logged(
                    EventType::DirectoryChange,
                    json!({"account_id": account_id, "change": "reactivated", "status": "active",
                           "ticket": self.ticket_ref(), "by": self.actor_label}),
                ));
            }
            Effect::Note { body } => {
                // An engine note holds an agent's action text, which `scrub_action` scanned.
                let body = crate::domain::scrubbed::Scrubbed::not_from_customer(body.clone());
                let message_id = tickets::insert_message(conn, &tickets::NewMessage::note(ticket_id, &body))?;
                self.after.push(AfterEvent::Note(message_id));
            }
            Effect::Flag { reason } => {
                self.change.flagged = true;
                self.flags.push(reason.clone());
            }
            Effect::RecordDiagnosis { diagnosis } => self.after.push(AfterEvent::Diagnosis(diagnosis.to_json())),
        }
        Ok(())
    }

    /// The challenge's row, and its mail to the account's registered address. The link's token
    /// is made by the sender when the mail goes out; the row waits for it with a filler hash
    /// that opens nothing.
    fn issue_challenge(&mut self, conn: &mut AnyConnection, account_id: &str) -> Result<(), ServiceError> {
        let target = accounts::load_view(conn, account_id)?.ok_or_else(|| ServiceError::NotFound("account".into()))?;
        let hours = crate::mail::outbound::links::CHALLENGE_VALID_HOURS;
        let challenge_id = tickets::insert_challenge(
            conn,
            self.loaded.row.id,
            account_id,
            self.change.verification_round,
            db::now() + chrono::Duration::hours(hours),
        )?;
        let params = MailParams::from(Outgoing::EmailChallenge {
            challenge_id,
            expires_in_hours: hours,
        });
        self.challenge_mails.push((target.email, params));
        Ok(())
    }

    fn record_payment(
        &mut self,
        conn: &mut AnyConnection,
        account_id: &str,
        amount_cents: i64,
        reference: &str,
        expected: i64,
    ) -> Result<(), ServiceError> {
        let before = self.account.as_ref().map(|a| a.balance_due_cents);
        let balance = accounts::pay(conn, account_id, amount_cents)?;
        if balance != expected {
            // The account row is locked for this transaction, so the balance the engine
            // decided on is the one the database just paid down.
            tracing::warn!(account_id, balance, expected, "balance moved under a lock");
        }
        self.after.push(AfterEvent::Logged(
            EventType::DirectoryChange,
            json!({"account_id": account_id, "change": "payment", "amount_cents": amount_cents,
                   "reference": reference, "balance_before_cents": before,
                   "balance_due_cents": balance, "ticket": self.ticket_ref(), "by": self.actor_label}),
        ));
        Ok(())
    }
}

/// The events of a decision, in order: a diagnosis, the transition (unless an opening stays in
/// its first state: `created` tells it), then what the effects logged.
fn write_events(conn: &mut AnyConnection, writes: &Writes, action: &str, details: Value) -> Result<(), ServiceError> {
    let row = &writes.loaded.row;
    let change = &writes.change;
    let actor_label = writes.actor_label.as_str();
    let mut transition = json!({"from": writes.loaded.state().as_str(), "to": change.state, "action": action});
    if let Value::Object(extra) = details
        && let Value::Object(map) = &mut transition
    {
        for (k, v) in extra {
            map.insert(k, v);
        }
    }
    if change.kind != row.kind {
        transition["from_kind"] = json!(row.kind);
        transition["to_kind"] = json!(change.kind);
    }
    if let Some(reason) = &change.state_reason.as_ref().filter(|_| change.state != row.state) {
        transition["reason"] = json!(reason);
    }
    if !writes.flags.is_empty() {
        transition["flags"] = json!(writes.flags);
    }
    // The automatic diagnosis at opening is the desk's own; an agent's is that agent's.
    for event in &writes.after {
        if let AfterEvent::Diagnosis(data) = event {
            let by = if action == "open" { "system" } else { actor_label };
            tickets::insert_event(conn, row.id, EventType::Diagnosis, by, data, None)?;
        }
    }
    let changed = change.state != row.state || change.kind != row.kind;
    if changed || action != "open" {
        tickets::insert_event(conn, row.id, EventType::Transition, actor_label, &transition, None)?;
    }
    for event in &writes.after {
        match event {
            AfterEvent::Logged(event_type, data) => {
                let mut data = data.clone();
                if *event_type == EventType::DirectoryChange
                    && let Some(approver) = &writes.approved_by
                {
                    data["requested_by"] = json!(actor_label);
                    data["approved_by"] = json!(approver);
                }
                tickets::insert_event(conn, row.id, *event_type, actor_label, &data, None)?;
            }
            AfterEvent::Diagnosis(_) => {}
            AfterEvent::Note(message_id) => {
                let data = json!({"internal": true});
                tickets::insert_event(conn, row.id, EventType::Note, actor_label, &data, Some(*message_id))?;
            }
        }
    }
    Ok(())
}

/// A refusal of the policy, on the ticket's record: what was asked, the code and words, and the
/// state the ticket was in when the action itself was refused (a request about an approval
/// names none).
pub(crate) fn record_refusal(
    conn: &mut AnyConnection,
    ticket_id: i64,
    action: &str,
    refusal: &crate::domain::workflow::Refusal,
    actor: &Actor,
    state: Option<&str>,
) -> Result<(), ServiceError> {
    let mut data = json!({"action": action, "code": refusal.code.as_str(), "message": refusal.message});
    if let Some(state) = state {
        data["state"] = json!(state);
    }
    tickets::insert_event(conn, ticket_id, EventType::Refusal, &actor.label(), &data, None)?;
    Ok(())
}

/// Resolves the recipient and puts the mail in the outbox. Account-dependent mail goes to the
/// registered address named by the effect; nothing here can redirect it to the requester.
fn send_workflow_mail(
    conn: &mut AnyConnection,
    desk: &Desk,
    row: &TicketRow,
    linked: Option<&AccountView>,
    mail: &Mail,
    four_eyes: bool,
) -> Result<(), ServiceError> {
    let (address, account) = match &mail.to {
        Recipient::Requester => (row.requester.clone(), linked.cloned()),
        Recipient::RegisteredEmail { account_id } => {
            let account = match linked.filter(|a| &a.id == account_id) {
                Some(a) => a.clone(),
                None => {
                    accounts::load_view(conn, account_id)?.ok_or_else(|| ServiceError::NotFound("account".into()))?
                }
            };
            (account.email.clone(), Some(account))
        }
    };
    let terminated_form_url = || format!("{}/help/account-terminated", desk.settings.base_url);
    let outgoing = match &mail.template {
        MailTemplate::Acknowledgement => Outgoing::Acknowledgement,
        MailTemplate::StatusUpdate => Outgoing::StatusUpdate,
        MailTemplate::UsernameDelivery { account_ids } => {
            let mut listed = vec![];
            // Read together: an address may be registered to thousands of sub-users.
            let ids: Vec<&str> = account_ids.iter().map(String::as_str).collect();
            let views: std::collections::HashMap<String, AccountView> = accounts::views_by_ids(conn, &ids)?
                .into_iter()
                .map(|a| (a.id.clone(), a))
                .collect();
            for id in account_ids {
                let a = views.get(id).ok_or_else(|| ServiceError::NotFound("account".into()))?;
                // A username only ever goes to the address it is registered to.
                if !a.is_registered_email(&address) {
                    return Err(ServiceError::Invalid(format!(
                        "refusing to mail the username of {} to an address it is not registered to",
                        a.id
                    )));
                }
                listed.push(ListedAccount {
                    username: a.username.clone(),
                    status: a.effective_status().as_str().to_string(),
                });
            }
            // A terminated account among them is told where to settle the balance.
            Outgoing::UsernameDelivery {
                accounts: listed,
                terminated_form_url: terminated_form_url(),
            }
        }
        MailTemplate::UnconfirmedSignup => Outgoing::UnconfirmedSignup,
        MailTemplate::TerminatedNotice => Outgoing::TerminatedNotice {
            terminated_form_url: terminated_form_url(),
        },
        MailTemplate::BalanceDue => Outgoing::BalanceDue {
            balance_due_cents: account
                .as_ref()
                .ok_or_else(|| ServiceError::Invalid("a balance-due mail must name its account".into()))?
                .balance_due_cents,
        },
        MailTemplate::BannedAnswer => Outgoing::BannedAnswer,
        MailTemplate::TryAllowlistedIps => Outgoing::TryAllowlistedIps,
        MailTemplate::IpGranted { ip } => Outgoing::IpGranted { ip: ip.clone() },
        MailTemplate::AccountReactivated => Outgoing::AccountReactivated,
        MailTemplate::VerificationFailed => Outgoing::VerificationFailed,
        MailTemplate::RequestRefused { reason } => Outgoing::RequestRefused {
            refusal: reason.customer_words().to_string(),
        },
        MailTemplate::DiagnosisGuidance { diagnosis } => super::diagnosis::guidance_mail(diagnosis),
        MailTemplate::DiagnosisChecklist {
            typed_username,
            channel,
        } => super::diagnosis::checklist_mail(typed_username, *channel),
    };
    // The banned answer names no username: the mailbox may not be the only reader, and a ban
    // is told about "the account", never by its login.
    let username = account
        .as_ref()
        .filter(|_| matches!(mail.to, Recipient::RegisteredEmail { .. }) && outgoing != Outgoing::BannedAnswer)
        .map(|a| a.username.clone());
    // "approved by two members of our team": the grant and reactivation mails say so.
    enqueue(
        conn,
        desk,
        row,
        &address,
        MailParams {
            mail: outgoing,
            username,
            four_eyes,
        },
    )
}

/// Queues a workflow mail (automatic unless it is an agent's reply).
pub(crate) fn enqueue(
    conn: &mut AnyConnection,
    desk: &Desk,
    row: &TicketRow,
    address: &str,
    params: MailParams,
) -> Result<(), ServiceError> {
    let request = MailRequest {
        ticket: row,
        to: address,
        automatic: !matches!(params.mail, Outgoing::AgentReply { .. }),
        params,
        actor: "system",
    };
    queue_mail(conn, desk, request)?;
    Ok(())
}
