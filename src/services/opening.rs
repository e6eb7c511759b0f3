//! Opening a ticket, in named steps: the accounts its rules read, the row and its `created`
//! event, the first message, the diagnosis a login request gets at once, then the creation
//! rules of the engine and their commit.

use super::decision::commit;
use super::diagnosis::{self, Diagnosed};
use super::loaded::Loaded;
use super::messages::{CustomerMessage, MailExtras};
use super::redaction::Scrubbed;
use super::request::OpenTicket;
use super::{Desk, ServiceError};
use crate::db::tickets::{self as ticket_rows, NewTicket, TicketRow};
use crate::db::{self, AnyConnection, accounts};
use crate::domain::account::AccountView;
use crate::domain::diagnosis::parse_failed_at;
use crate::domain::event::EventType;
use crate::domain::redact::REDACTED;
use crate::domain::ticket::Kind;
use crate::domain::ticket::Problem;
use crate::domain::workflow::conversation::Sender;
use crate::domain::workflow::creation::{self, CreationFacts, on_create};
use serde_json::{Value, json};

pub struct Opened {
    pub ticket: TicketRow,
    /// The thread's first message: the request's own words.
    pub first_message: i64,
}

#[tracing::instrument(level = "debug", skip_all, fields(kind = req.kind.as_str(), channel = req.channel.as_str()))]
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
    // The ticket's own subject is cut; the first message and the `created` event keep it whole.
    let ticket_subject = subject.cut_to(crate::domain::ticket::MAX_SUBJECT_CHARS);
    let (account, requester_accounts) = accounts_for(conn, &req)?;
    // No status token is made here: each mail to the requester gets its own link when it
    // is sent, and only the link's hash is stored.
    let row = ticket_rows::insert(
        conn,
        &NewTicket {
            kind: req.kind,
            state: req.kind.initial_state(),
            subject: &ticket_subject,
            requester: req.requester.as_str(),
            channel: req.channel,
            auto_generated: robot(&req),
        },
    )?;
    ticket_rows::insert_event(
        conn,
        row.id,
        EventType::Created,
        &req.actor.label(),
        &created_event(&req, &subject),
        None,
    )?;
    let first_message = store_first_message(conn, desk, &row, &req, subject)?;
    let loaded = Loaded {
        row: row.clone(),
        account: account.clone(),
        checks: vec![],
        pending: vec![],
    };
    let diagnosed = diagnose_at_creation(conn, &req)?;
    let smtp_username = req.smtp_username.as_ref().map(Scrubbed::as_str);
    let attempts = req
        .tried_from
        .as_ref()
        .map(Scrubbed::as_str)
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let outcome = req.attempts_outcome.as_ref().map(Scrubbed::as_str);
            (t.to_string(), outcome.unwrap_or_default().to_string())
        });
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
    Ok(Opened { ticket, first_message })
}

/// A mail a robot sent (an auto-reply, a bounce): no advice goes back to it.
fn robot(req: &OpenTicket) -> bool {
    req.inbound.as_ref().is_some_and(|i| i.auto_generated.is_some())
}

/// The account the request names (or the requester's own) and every account registered to the
/// requester's address, as they are once locked.
fn accounts_for(
    conn: &mut AnyConnection,
    req: &OpenTicket,
) -> Result<(Option<AccountView>, Vec<AccountView>), ServiceError> {
    let named = req
        .account
        .as_ref()
        .map(|a| a.as_str().trim())
        .filter(|a| !a.is_empty());
    let account = match named {
        Some(reference) => accounts::resolve(conn, reference)?,
        None => None,
    };
    // A forged `From:` (sender_auth fail) is nobody's: no account is looked up for it.
    let forged = req.inbound.as_ref().is_some_and(MailExtras::forged);
    let requester_accounts = if forged {
        vec![]
    } else {
        accounts::views_by_email(conn, req.requester.as_str())?
    };
    let account = account.or_else(|| requester_accounts.first().cloned());
    // What the creation rules decide on (a ban, above all) must not change before commit:
    // lock those accounts, then read them again as they are now.
    lock_and_reread(conn, account, requester_accounts)
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
    let ids: Vec<&str> = requester_accounts.iter().map(|a| a.id.as_str()).collect();
    let fresh = accounts::views_by_ids(conn, &ids)?;
    Ok((account, fresh))
}

/// The `created` event: the request's fields, every one of them scrubbed (they are
/// `Scrubbed`), and the flags an odd SMTP username raises.
fn created_event(req: &OpenTicket, subject: &Scrubbed) -> Value {
    let opt = |v: &Option<Scrubbed>| v.as_ref().map(|s| s.as_str().to_string());
    let mut created = json!({"kind": req.kind.as_str(), "channel": req.channel.as_str(),
                             "requester": req.requester.as_str(), "subject": subject.as_str()});
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
    if let Some(name) = req.smtp_username.as_ref().map(Scrubbed::as_str) {
        let flags = creation::smtp_username_flags(name);
        if !flags.is_empty() {
            created["flags"] = json!(flags);
        }
    }
    created
}

/// The request's own words, as the thread's first message, and the secrets removed from it
/// recorded (the requester told to rotate them, unless a robot sent it). Returns the message's id.
fn store_first_message(
    conn: &mut AnyConnection,
    desk: &Desk,
    row: &TicketRow,
    req: &OpenTicket,
    subject: Scrubbed,
) -> Result<i64, ServiceError> {
    let first = CustomerMessage {
        subject,
        body: req.body.clone(),
        html: req.html.clone(),
        mail: req.inbound.clone(),
        secrets_found: req.secrets_found.clone(),
        event_data: json!({}),
        uploads: vec![],
    };
    let message = super::messages::store_message(
        conn,
        row.id,
        req.requester.as_str(),
        Sender::Requester,
        &first,
        req.channel.as_str(),
        &req.actor,
    )?;
    let source = if req.inbound.is_some() { "mail" } else { "customer" };
    let notify = (!robot(req)).then_some(row.requester.as_str());
    super::redaction::record_removed_secrets(conn, desk, row, &req.secrets_found, source, notify)?;
    Ok(message)
}

/// A login_help ticket that names a username is diagnosed from the authentication logs at once
/// (docs/reference.md#kinds-and-states); the same lookups run whatever the directory or the
/// logs hold.
fn diagnose_at_creation(conn: &mut AnyConnection, req: &OpenTicket) -> Result<Option<Diagnosed>, ServiceError> {
    match req.smtp_username.as_ref().map(Scrubbed::as_str) {
        Some(name) if req.kind == Kind::LoginHelp && !name.is_empty() && !name.contains(REDACTED) => {
            let failed_at = req.failed_at.as_ref().and_then(|f| parse_failed_at(f.as_str()));
            let channel = Problem::auth_channel(req.problem);
            Ok(Some(diagnosis::diagnose(
                conn,
                name,
                channel,
                failed_at,
                chrono::Utc::now(),
            )?))
        }
        _ => Ok(None),
    }
}
