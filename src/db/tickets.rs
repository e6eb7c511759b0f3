//! Tickets, their append-only events, messages, verification checks and email challenges.

use super::audit::Content;
use super::kept::{Kept, Value};
use super::schema::{events, messages, status_links, tickets};
use super::{AnyConnection, now};
use crate::domain::event::EventType;
use crate::domain::ticket::{Channel, Kind, State};

pub use super::rows::{EventRow, TicketRow};
pub use verification::{
    ChallengeRow, arm_challenge, checks_of_round, find_challenge, insert_challenge, insert_check, latest_challenge,
    use_challenge,
};

mod verification;
use crate::domain::scrubbed::Scrubbed;
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub struct NewTicket<'a> {
    pub kind: Kind,
    pub state: State,
    /// Customer words: only scrubbed text can be written.
    pub subject: &'a Scrubbed,
    pub requester: &'a str,
    pub channel: Channel,
    pub auto_generated: bool,
}

pub fn insert(conn: &mut AnyConnection, t: &NewTicket) -> QueryResult<TicketRow> {
    let at = now();
    on_backend!(&mut *conn, |c| diesel::insert_into(tickets::table)
        .values((
            tickets::kind.eq(t.kind.as_str()),
            tickets::state.eq(t.state.as_str()),
            tickets::subject.eq(t.subject.as_str()),
            tickets::requester.eq(t.requester.trim()),
            tickets::requester_normalized.eq(crate::domain::email_address::normalize(t.requester)),
            // Status links live in `status_links` (hashes only); these old columns keep a
            // unique filler that opens nothing.
            tickets::status_token_hash.eq(format!("none:{}", hex::encode(crate::crypto::random_bytes::<16>()))),
            tickets::status_token_salt.eq(""),
            tickets::channel.eq(t.channel.as_str()),
            tickets::verification_round.eq(0),
            tickets::attempts_on_record.eq(false),
            tickets::flagged.eq(false),
            tickets::auto_generated.eq(t.auto_generated),
            tickets::version.eq(0),
            tickets::waiting_since.eq(at),
            tickets::created_at.eq(at),
            tickets::updated_at.eq(at),
        ))
        .returning(TicketRow::as_returning())
        .get_result::<TicketRow>(c))
    .and_then(|row| {
        super::search::index_opened(conn, row.id, &row.requester_normalized, &row.subject)?;
        // Its chain has no link yet, and no other transaction sees the row before the
        // commit: the first event needs neither a lock nor a read of the chain.
        super::memo::tickets_locked(conn, &[row.id]);
        super::memo::set_chain_head(conn, row.id, super::memo::ChainHead::Empty);
        super::memo::set_opened(conn, row.id);
        Ok(row)
    })
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<TicketRow>> {
    super::at_most_one(on_backend!(conn, |c| tickets::table
        .find(id)
        .select(TicketRow::as_select())
        .load(c)))
}

/// The ticket, its row locked for the rest of the transaction as [`super::locks::lock_ticket`]
/// locks it: on PostgreSQL one statement that locks and reads (unless this transaction holds
/// the lock already), on SQLite a read (the write transaction is alone).
pub fn find_locked(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<TicketRow>> {
    if super::memo::ticket_locked(conn, id) {
        return find(conn, id);
    }
    let AnyConnection::Postgresql(pg) = conn else {
        return find(conn, id);
    };
    let row = super::at_most_one(
        tickets::table
            .find(id)
            .select(TicketRow::as_select())
            .for_no_key_update()
            .load(pg),
    )?;
    super::memo::tickets_locked(conn, &[id]);
    Ok(row)
}

/// The ticket one of whose mailed status links has this token hash.
pub fn find_by_token_hash(conn: &mut AnyConnection, hash: &str) -> QueryResult<Option<TicketRow>> {
    tickets::table
        .inner_join(status_links::table)
        .filter(status_links::token_hash.eq(hash))
        .select(TicketRow::as_select())
        .first(conn)
        .optional()
}

/// Records the hash of a status link the sender is about to mail; returns its row id.
pub fn add_status_link(conn: &mut AnyConnection, ticket_id: i64, token_hash: &str) -> QueryResult<i64> {
    insert_returning_id!(conn, status_links::id, |c| diesel::insert_into(status_links::table)
        .values((
            status_links::ticket_id.eq(ticket_id),
            status_links::token_hash.eq(token_hash),
            status_links::created_at.eq(now()),
        )))
}

/// Forgets a status link whose mail did not go out.
pub fn remove_status_link(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    diesel::delete(status_links::table.find(id)).execute(conn).map(|_| ())
}

/// Open tickets linked to any of these accounts (for the ban cascade), ascending. Asked in
/// slices: a banned account may have more sub-accounts than SQLite binds in one statement.
pub fn open_ids_for_accounts(conn: &mut AnyConnection, account_ids: &[String]) -> QueryResult<Vec<i64>> {
    let mut ids: Vec<i64> = Vec::new();
    for slice in account_ids.chunks(super::MAX_BOUND_IDS) {
        ids.extend(
            tickets::table
                .filter(tickets::account_id.eq_any(slice))
                .filter(tickets::state.ne_all([State::Resolved.as_str(), State::Refused.as_str()]))
                .select(tickets::id)
                .load::<i64>(conn)?,
        );
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The fields a decision may change, written with a compare-and-set on `version`.
#[derive(Debug, Clone)]
pub struct TicketChange {
    pub kind: Kind,
    pub state: State,
    pub state_reason: Option<String>,
    pub account_id: Option<String>,
    pub assignee_id: Option<i64>,
    pub verification_round: i32,
    pub attempts_on_record: bool,
    pub flagged: bool,
    pub waiting_since: NaiveDateTime,
}

impl TicketChange {
    pub fn from_row(row: &TicketRow) -> Self {
        TicketChange {
            kind: row.kind,
            state: row.state,
            state_reason: row.state_reason.clone(),
            account_id: row.account_id.clone(),
            assignee_id: row.assignee_id,
            verification_round: row.verification_round,
            attempts_on_record: row.attempts_on_record,
            flagged: row.flagged,
            waiting_since: row.waiting_since,
        }
    }
}

/// Raises the ticket's flag (a forged sender, say), inside the caller's transaction.
pub fn raise_flag(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    diesel::update(tickets::table.filter(tickets::id.eq(id)))
        .set((tickets::flagged.eq(true), tickets::version.eq(tickets::version + 1)))
        .execute(conn)?;
    Ok(())
}

/// Writes `change` over the ticket as it was loaded (`row`): the ticket as written, or `None`
/// when someone else changed it since (its version moved). One statement, kept prepared
/// ([`Kept`]: Diesel would compile an `UPDATE` again at every use, SQLite with the triggers on
/// `tickets`); the row is not read back, it is `row` with the change, its next version and
/// its new `updated_at`.
pub fn update_if_version(
    conn: &mut AnyConnection,
    row: &TicketRow,
    change: &TicketChange,
) -> QueryResult<Option<TicketRow>> {
    let at = now();
    let version = row.version + 1;
    let written = on_backend!(&mut *conn, |c| Kept::default()
        .sql("UPDATE tickets SET kind = ")
        .bind(Value::Text(change.kind.as_str()))
        .sql(", state = ")
        .bind(Value::Text(change.state.as_str()))
        .sql(", state_reason = ")
        .bind(Value::OptionalText(change.state_reason.as_deref()))
        .sql(", account_id = ")
        .bind(Value::OptionalText(change.account_id.as_deref()))
        .sql(", assignee_id = ")
        .bind(Value::OptionalBigInt(change.assignee_id))
        .sql(", verification_round = ")
        .bind(Value::Integer(change.verification_round))
        .sql(", attempts_on_record = ")
        .bind(Value::Bool(change.attempts_on_record))
        .sql(", flagged = ")
        .bind(Value::Bool(change.flagged))
        .sql(", waiting_since = ")
        .bind(Value::Timestamp(change.waiting_since))
        .sql(", version = ")
        .bind(Value::BigInt(version))
        .sql(", updated_at = ")
        .bind(Value::Timestamp(at))
        .sql(" WHERE id = ")
        .bind(Value::BigInt(row.id))
        .sql(" AND version = ")
        .bind(Value::BigInt(row.version))
        .execute(c))?;
    Ok((written == 1).then(|| TicketRow {
        kind: change.kind,
        state: change.state,
        state_reason: change.state_reason.clone(),
        account_id: change.account_id.clone(),
        assignee_id: change.assignee_id,
        verification_round: change.verification_round,
        attempts_on_record: change.attempts_on_record,
        flagged: change.flagged,
        waiting_since: change.waiting_since,
        version,
        updated_at: at,
        ..row.clone()
    }))
}

/// Moves the ticket's `updated_at` (a reply or a note changes no other column).
pub fn touch(conn: &mut AnyConnection, id: i64, at: NaiveDateTime) -> QueryResult<()> {
    Kept::default()
        .sql("UPDATE tickets SET updated_at = ")
        .bind(Value::Timestamp(at))
        .sql(" WHERE id = ")
        .bind(Value::BigInt(id))
        .execute(conn)
        .map(drop)
}

#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub kind: Option<Kind>,
    pub state: Option<State>,
    pub assignee_id: Option<i64>,
    /// A reference already resolved to its number, if `q` was one.
    pub q_ticket_id: Option<i64>,
    pub q: Option<String>,
    /// Keyset pagination: only tickets with a smaller id (lists are newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
    /// `agent`, `customer` or `none` (docs/reference.md#who-acts-next).
    pub waiting_on: Option<String>,
}

/// The tickets a search finds ([`super::search::ids`]), newest first.
pub fn search(
    conn: &mut AnyConnection,
    text: &crate::domain::search::SearchText,
    ticket_id: Option<i64>,
    f: &super::search::SearchFilter,
) -> QueryResult<Vec<TicketRow>> {
    let ids = super::search::ids(conn, text, ticket_id, f)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    tickets::table
        .filter(tickets::id.eq_any(ids))
        .order(tickets::id.desc())
        .select(TicketRow::as_select())
        .load(conn)
}

/// Newest first. With a search (`q`), the tickets it finds (docs/reference.md#search).
pub fn list(conn: &mut AnyConnection, f: &TicketFilter) -> QueryResult<Vec<TicketRow>> {
    if let Some(text) = f.q.as_deref().and_then(crate::domain::search::SearchText::parse) {
        let filter = super::search::SearchFilter {
            kind: f.kind,
            state: f.state,
            assignee: f.assignee_id.map(Some),
            before_id: f.before_id,
            limit: f.limit,
            waiting_on: f.waiting_on.clone(),
        };
        return search(conn, &text, f.q_ticket_id, &filter);
    }
    let mut query = tickets::table.select(TicketRow::as_select()).into_boxed();
    if let Some(kind) = f.kind {
        query = query.filter(tickets::kind.eq(kind.as_str()));
    }
    if let Some(state) = f.state {
        query = query.filter(tickets::state.eq(state.as_str()));
    }
    if let Some(assignee) = f.assignee_id {
        query = query.filter(tickets::assignee_id.eq(assignee));
    }
    if let Some(before) = f.before_id {
        query = query.filter(tickets::id.lt(before));
    }
    if let Some(waiting_on) = &f.waiting_on {
        use super::schema::ticket_activity;
        query = query.filter(
            tickets::id.eq_any(
                ticket_activity::table
                    .filter(ticket_activity::waiting_on.eq(waiting_on.clone()))
                    .select(ticket_activity::ticket_id),
            ),
        );
    }
    query.order(tickets::id.desc()).limit(f.limit).load(conn)
}

// ---------------------------------------------------------------------------------------
// Messages and events

static NO_SUBJECT: std::sync::LazyLock<Scrubbed> = std::sync::LazyLock::new(|| Scrubbed::not_from_customer(""));

pub struct NewMessage<'a> {
    pub ticket_id: i64,
    pub direction: &'a str,
    pub sender_role: &'a str,
    pub from_address: Option<&'a str>,
    pub to_address: Option<&'a str>,
    /// Subject, body and HTML are customer words (or the desk's own, said so explicitly).
    pub subject: &'a Scrubbed,
    pub body: &'a Scrubbed,
    pub body_html: Option<&'a Scrubbed>,
    pub message_id: Option<&'a str>,
    pub content_hash: Option<&'a str>,
    pub auto_generated: bool,
}

impl<'a> NewMessage<'a> {
    /// An internal note: agents only, never mailed.
    pub fn note(ticket_id: i64, body: &'a Scrubbed) -> Self {
        NewMessage {
            ticket_id,
            direction: "note",
            sender_role: "agent",
            from_address: None,
            to_address: None,
            subject: &NO_SUBJECT,
            body,
            body_html: None,
            message_id: None,
            content_hash: None,
            auto_generated: false,
        }
    }

    /// The customer's own words (a form, or an agent typing what a customer said on the phone).
    pub fn from_requester(ticket_id: i64, from: &'a str, subject: &'a Scrubbed, body: &'a Scrubbed) -> Self {
        NewMessage {
            ticket_id,
            direction: "in",
            sender_role: "requester",
            from_address: Some(from),
            to_address: None,
            subject,
            body,
            body_html: None,
            message_id: None,
            content_hash: None,
            auto_generated: false,
        }
    }
}

/// Stores a message and adds its words to its ticket's search document (same transaction).
pub fn insert_message(conn: &mut AnyConnection, m: &NewMessage) -> QueryResult<i64> {
    let id = insert_returning_id!(&mut *conn, messages::id, |c| diesel::insert_into(messages::table)
        .values((
            messages::ticket_id.eq(m.ticket_id),
            messages::direction.eq(m.direction),
            messages::sender_role.eq(m.sender_role),
            messages::from_address.eq(m.from_address),
            messages::to_address.eq(m.to_address),
            messages::subject.eq(m.subject.as_str()),
            messages::body.eq(m.body.as_str()),
            messages::body_html.eq(m.body_html.map(Scrubbed::as_str)),
            messages::message_id.eq(m.message_id),
            messages::content_hash.eq(m.content_hash),
            messages::auto_generated.eq(m.auto_generated),
            messages::created_at.eq(now()),
        )))?;
    // The desk's automatic mail is not in the document (every ticket would hold its words).
    if m.sender_role != "system" {
        super::search::index_message(conn, m.ticket_id, id, m.subject.as_str(), m.body.as_str())?;
    }
    Ok(id)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: i64,
    pub ticket_id: i64,
    pub direction: String,
    pub sender_role: String,
    pub from_address: Option<String>,
    pub to_address: Option<String>,
    pub subject: String,
    pub body: String,
    pub body_html: Option<String>,
    pub message_id: Option<String>,
    pub content_hash: Option<String>,
    pub auto_generated: bool,
    pub redacted_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn messages_of(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<Vec<MessageRow>> {
    messages::table
        .filter(messages::ticket_id.eq(ticket_id))
        .order(messages::id.asc())
        .select(MessageRow::as_select())
        .load(conn)
}

/// Appends an event and its link in the ticket's hash chain, in the caller's transaction. On
/// PostgreSQL the ticket's row is locked first (`FOR NO KEY UPDATE`; a no-op when the caller holds
/// it already), so concurrent writers on one ticket append one after the other and never
/// fork the chain. The chain hashes the text of the message `message_ref` names, read back.
pub fn insert_event(
    conn: &mut AnyConnection,
    ticket_id: i64,
    event_type: EventType,
    actor: &str,
    data: &serde_json::Value,
    message_ref: Option<i64>,
) -> QueryResult<i64> {
    let content = match message_ref {
        Some(id) => Content::Stored(id),
        None => Content::None,
    };
    insert_event_about(conn, ticket_id, event_type, actor, data, content)
}

/// [`insert_event`] for a message the caller has just stored with this subject and body: the
/// chain hashes them as given, without reading the message back.
pub fn insert_event_on_written(
    conn: &mut AnyConnection,
    ticket_id: i64,
    event_type: EventType,
    actor: &str,
    data: &serde_json::Value,
    message: &NewMessage,
    message_ref: i64,
) -> QueryResult<i64> {
    let content = Content::Written {
        id: message_ref,
        subject: message.subject.as_str(),
        body: message.body.as_str(),
    };
    insert_event_about(conn, ticket_id, event_type, actor, data, content)
}

fn insert_event_about(
    conn: &mut AnyConnection,
    ticket_id: i64,
    event_type: EventType,
    actor: &str,
    data: &serde_json::Value,
    content: Content,
) -> QueryResult<i64> {
    super::locks::lock_ticket(conn, ticket_id)?;
    let at = now();
    let data_text = data.to_string();
    let id = insert_returning_id!(&mut *conn, events::id, |c| diesel::insert_into(events::table).values((
        events::ticket_id.eq(ticket_id),
        events::event_type.eq(event_type.as_str()),
        events::actor.eq(actor),
        events::data.eq(&data_text),
        events::message_ref.eq(content.message_ref()),
        events::created_at.eq(at),
    )))?;
    super::audit::append(
        conn,
        &super::audit::Appended {
            id,
            ticket_id,
            event_type: event_type.as_str(),
            actor,
            data,
            content,
            at,
        },
    )?;
    Ok(id)
}

pub fn events_of(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<Vec<EventRow>> {
    events::table
        .filter(events::ticket_id.eq(ticket_id))
        .order(events::id.asc())
        .select(EventRow::as_select())
        .load(conn)
}
