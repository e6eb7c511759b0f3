//! Loading what the engine needs, and carrying out what it decided.

use super::{Actor, Desk, ServiceError};
use crate::db::tickets::{TicketChange, TicketRow};
use crate::db::{self, AnyConnection, accounts, agents, tickets};
use crate::domain::account::AccountView;
use crate::domain::event::EventType;
use crate::domain::ticket::{Kind, State};
use crate::domain::verification::{CheckRecord, Method};
use crate::domain::workflow::{Activity, Decision, Effect, Mail, MailTemplate, Recipient, TicketView};
use crate::mail::outbound::compose::{MailRequest, queue_mail};
use crate::mail::outbound::templates::{ListedAccount, Mail as Outgoing, MailParams};
use serde_json::{Value, json};

/// A ticket as loaded for a decision.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub row: TicketRow,
    pub account: Option<AccountView>,
    pub checks: Vec<CheckRecord>,
    /// Actions waiting for a second agent on this ticket (four eyes), still live.
    pub pending: Vec<crate::domain::workflow::ActionName>,
}

impl Loaded {
    /// Loads a ticket to decide on it and write: on PostgreSQL its row, then its account's row,
    /// are locked (`FOR NO KEY UPDATE`) for the rest of the transaction before they are read, so the
    /// guards and the writes see one state (an import that bans the account waits, or goes
    /// first). Call it inside the write transaction; screens that only show use [`Loaded::read`].
    pub fn load(conn: &mut AnyConnection, id: i64) -> Result<Loaded, ServiceError> {
        db::locks::lock_ticket(conn, id)?;
        let row = tickets::find(conn, id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
        if let Some(account_id) = &row.account_id {
            db::locks::lock_accounts(conn, &[account_id.as_str()])?;
        }
        Loaded::from_row(conn, row)
    }

    /// Loads a ticket to show it: no lock.
    pub fn read(conn: &mut AnyConnection, id: i64) -> Result<Loaded, ServiceError> {
        let row = tickets::find(conn, id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
        Loaded::from_row(conn, row)
    }

    pub fn from_row(conn: &mut AnyConnection, row: TicketRow) -> Result<Loaded, ServiceError> {
        let account = match &row.account_id {
            Some(id) => accounts::load_view(conn, id)?,
            None => None,
        };
        let checks = tickets::checks_of_round(conn, row.id, row.verification_round)?
            .into_iter()
            .filter_map(|(method, passed)| Method::parse(&method).map(|method| CheckRecord { method, passed }))
            .collect();
        let now = db::now();
        let pending = db::approvals::pending_of(conn, row.id)?
            .iter()
            .filter(|a| super::approvals::request_view(a).is_live(now))
            .filter_map(|a| crate::domain::workflow::ActionName::parse(&a.action).ok())
            .collect();
        Ok(Loaded {
            row,
            account,
            checks,
            pending,
        })
    }

    pub fn kind(&self) -> Kind {
        self.row.kind
    }

    pub fn state(&self) -> State {
        self.row.state
    }

    pub fn view(&self) -> TicketView<'_> {
        TicketView {
            kind: self.kind(),
            state: self.state(),
            state_reason: self.row.state_reason.as_deref(),
            requester: &self.row.requester,
            account: self.account.as_ref(),
            checks: &self.checks,
            attempts_on_record: self.row.attempts_on_record,
            pending_approvals: &self.pending,
        }
    }
}

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
    let actor_label = actor.label();
    // Four eyes: an approved request is applied as its requester's, naming the approver too.
    let approved_by = details.get("approved_by").and_then(Value::as_str).map(str::to_string);
    let mut change = TicketChange::from_row(row);
    change.kind = decision.kind;
    change.state = decision.state;
    if decision.state != loaded.state() || decision.kind != loaded.kind() {
        change.state_reason = decision.state_reason.clone();
        change.waiting_since = db::now();
    } else if decision.state_reason.is_some() {
        change.state_reason = decision.state_reason.clone();
    }
    // Accounts the effects refer to: the linked one, and any another effect names.
    let mut account = loaded.account.clone();
    let mut flags = vec![];
    let mut mails: Vec<Mail> = vec![];
    let mut after: Vec<AfterEvent> = vec![];
    let mut challenge_mails: Vec<(String, MailParams)> = vec![];
    for effect in &decision.effects {
        match effect {
            Effect::Mail(mail) => mails.push(mail.clone()),
            Effect::LinkAccount { account_id } => {
                change.account_id = Some(account_id.clone());
                account = accounts::load_view_locked(conn, account_id)?;
            }
            Effect::Assign { agent_email } => {
                let agent = agents::find_by_email(conn, agent_email)?
                    .filter(|a| a.active)
                    .ok_or_else(|| ServiceError::Invalid(format!("agent_email: no active agent {agent_email}")))?;
                change.assignee_id = Some(agent.id);
            }
            Effect::RecordAttempts { .. } => change.attempts_on_record = true,
            Effect::StartVerificationRound => change.verification_round += 1,
            Effect::RecordCheck {
                method,
                passed,
                evidence,
            } => {
                tickets::insert_check(
                    conn,
                    row.id,
                    change.verification_round,
                    method.as_str(),
                    *passed,
                    evidence,
                    &actor_label,
                )?;
                after.push(AfterEvent::Logged(
                    EventType::Check,
                    json!({"method": method.as_str(), "passed": passed, "evidence": evidence, "round": change.verification_round}),
                ));
            }
            Effect::IssueEmailChallenge { account_id } => {
                let target =
                    accounts::load_view(conn, account_id)?.ok_or_else(|| ServiceError::NotFound("account".into()))?;
                // The link's token is made by the sender when the mail goes out; the row
                // waits for it with a filler hash that opens nothing.
                let challenge_id = tickets::insert_challenge(
                    conn,
                    row.id,
                    account_id,
                    change.verification_round,
                    db::now() + chrono::Duration::hours(crate::mail::outbound::links::CHALLENGE_VALID_HOURS),
                )?;
                let params = MailParams::from(Outgoing::EmailChallenge {
                    challenge_id,
                    expires_in_hours: crate::mail::outbound::links::CHALLENGE_VALID_HOURS,
                });
                // Queued with the other mail, after the ticket's write: the outbox comes last
                // in the lock order.
                challenge_mails.push((target.email, params));
            }
            Effect::AddAllowlistEntry { account_id, ip } => {
                let source = match &approved_by {
                    Some(approver) => format!(
                        "ticket {}, requested by {actor_label}, approved by {approver}",
                        desk.ticket_ref(row.id)
                    ),
                    None => format!("ticket {}", desk.ticket_ref(row.id)),
                };
                let added = accounts::add_allowlist_entry(conn, account_id, ip, &source)?;
                after.push(AfterEvent::Logged(
                    EventType::DirectoryChange,
                    json!({"account_id": account_id, "change": "allowlist_add", "entry": ip, "already_present": !added,
                           "ticket": desk.ticket_ref(row.id), "by": actor_label}),
                ));
            }
            Effect::RecordPayment {
                account_id,
                amount_cents,
                reference,
                new_balance_cents,
            } => {
                let before = account.as_ref().map(|a| a.balance_due_cents);
                let balance = accounts::pay(conn, account_id, *amount_cents)?;
                if balance != *new_balance_cents {
                    // The account row is locked for this transaction, so the balance the
                    // engine decided on is the one the database just paid down.
                    tracing::warn!(
                        account_id,
                        balance,
                        expected = new_balance_cents,
                        "balance moved under a lock"
                    );
                }
                after.push(AfterEvent::Logged(
                    EventType::DirectoryChange,
                    json!({"account_id": account_id, "change": "payment", "amount_cents": amount_cents,
                           "reference": reference, "balance_before_cents": before,
                           "balance_due_cents": balance, "ticket": desk.ticket_ref(row.id), "by": actor_label}),
                ));
            }
            Effect::ReactivateAccount { account_id } => {
                if !accounts::reactivate(conn, account_id)? {
                    // The engine refuses banned accounts; the filter in the query is the
                    // second lock on the same door.
                    return Err(crate::domain::workflow::banned_refusal().into());
                }
                after.push(AfterEvent::Logged(
                    EventType::DirectoryChange,
                    json!({"account_id": account_id, "change": "reactivated", "status": "active",
                           "ticket": desk.ticket_ref(row.id), "by": actor_label}),
                ));
            }
            Effect::Note { body } => {
                // An engine note holds an agent's action text, which `scrub_action` scanned.
                let body = crate::domain::scrubbed::Scrubbed::not_from_customer(body.clone());
                let message_id = tickets::insert_message(conn, &tickets::NewMessage::note(row.id, &body))?;
                after.push(AfterEvent::Note(message_id));
            }
            Effect::Flag { reason } => {
                change.flagged = true;
                flags.push(reason.clone());
            }
            Effect::RecordDiagnosis { diagnosis } => after.push(AfterEvent::Diagnosis(diagnosis.to_json())),
        }
    }

    if !tickets::update_if_version(conn, row.id, row.version, &change)? {
        return Err(ServiceError::Conflict);
    }

    let mut transition = json!({"from": loaded.state().as_str(), "to": change.state, "action": action});
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
    if !flags.is_empty() {
        transition["flags"] = json!(flags);
    }
    // The automatic diagnosis at opening is the desk's own; an agent's is that agent's.
    for event in &after {
        if let AfterEvent::Diagnosis(data) = event {
            let by = if action == "open" {
                "system"
            } else {
                actor_label.as_str()
            };
            tickets::insert_event(conn, row.id, EventType::Diagnosis, by, data, None)?;
        }
    }
    // Opening a ticket that stays in its first state is already told by `created`.
    let changed = change.state != row.state || change.kind != row.kind;
    if changed || action != "open" {
        tickets::insert_event(conn, row.id, EventType::Transition, &actor_label, &transition, None)?;
    }
    for event in after {
        match event {
            AfterEvent::Logged(event_type, mut data) => {
                if event_type == EventType::DirectoryChange
                    && let Some(approver) = &approved_by
                {
                    data["requested_by"] = json!(actor_label);
                    data["approved_by"] = json!(approver);
                }
                tickets::insert_event(conn, row.id, event_type, &actor_label, &data, None)?;
            }
            AfterEvent::Diagnosis(_) => {}
            AfterEvent::Note(message_id) => {
                tickets::insert_event(
                    conn,
                    row.id,
                    EventType::Note,
                    &actor_label,
                    &json!({"internal": true}),
                    Some(message_id),
                )?;
            }
        }
    }
    let asks_customer = !challenge_mails.is_empty() || mails.iter().any(|m| m.template.asks_customer());
    let activity = Activity::of_decision(matches!(actor, Actor::Customer { .. }), asks_customer, changed);
    let updated = tickets::find(conn, row.id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
    super::activity::record(conn, &updated, activity, change.assignee_id != row.assignee_id)?;
    let updated = tickets::find(conn, row.id)?.ok_or_else(|| ServiceError::NotFound("ticket".into()))?;
    for (address, params) in challenge_mails {
        enqueue(conn, desk, row, &address, params)?;
    }
    for mail in mails {
        send_workflow_mail(conn, desk, &updated, account.as_ref(), &mail, approved_by.is_some())?;
    }
    Ok(updated)
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
            for id in account_ids {
                let a = accounts::load_view(conn, id)?.ok_or_else(|| ServiceError::NotFound("account".into()))?;
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
        MailTemplate::EmailChallenge => {
            return Err(ServiceError::Invalid(
                "an email challenge is mailed by its IssueEmailChallenge effect".into(),
            ));
        }
        MailTemplate::IpGranted { ip } => Outgoing::IpGranted { ip: ip.clone() },
        MailTemplate::AccountReactivated => Outgoing::AccountReactivated,
        MailTemplate::VerificationFailed => Outgoing::VerificationFailed,
        MailTemplate::RedactionNotice => {
            return Err(ServiceError::Invalid(
                "a redaction notice is mailed where the secrets were found".into(),
            ));
        }
        MailTemplate::AgentReply => {
            return Err(ServiceError::Invalid(
                "an agent's reply is mailed with its words".into(),
            ));
        }
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
