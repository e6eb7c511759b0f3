//! Received mail: the record of every delivery, raw copies, attachments, quarantine.

use super::kept::{Kept, Value};
use super::schema::{attachments, inbound_messages, messages, outbox, quarantine, raw_messages};
use super::{AnyConnection, now};
use crate::domain::scrubbed::{Scrubbed, ScrubbedBytes};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// What an earlier arrival of the same message left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    /// An earlier delivery: same Message-ID and content, or (without a Message-ID) the same
    /// content. Its ticket (none for a message that opened none) and its outcome.
    pub delivery: Option<(Option<i64>, String)>,
    /// The first copy with this content still waiting in quarantine (a re-delivery).
    pub quarantined: Option<String>,
}

#[derive(QueryableByName)]
struct EarlierRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    place: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    ticket_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    outcome: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    quarantine_id: Option<String>,
}

/// Looks for an earlier delivery and a quarantined copy in one statement. `content_hashes`
/// are the two ways the content may have been hashed when it was stored (the current rule
/// and an older one).
///
/// One statement of fixed text (no `IN` list, no bound `LIMIT`), so it is prepared once and
/// stays in the statement cache; two statements were a round trip more for every message on
/// PostgreSQL (docs/benchmarks.md, "One look for an earlier arrival").
pub fn find_earlier(
    conn: &mut AnyConnection,
    message_id: Option<&str>,
    content_hashes: &[&str; 2],
) -> QueryResult<Earlier> {
    let [current, legacy] = *content_hashes;
    let same_message = Kept::default()
        .sql(
            "SELECT 0 AS place, ticket_id, outcome, CAST(NULL AS TEXT) AS quarantine_id, id AS delivery_id \
             FROM inbound_messages WHERE (content_hash = ",
        )
        .bind(Value::Text(current))
        .sql(" OR content_hash = ")
        .bind(Value::Text(legacy))
        .sql(")");
    let same_message = match message_id {
        Some(id) => same_message.sql(" AND message_id = ").bind(Value::Text(id)),
        None => same_message.sql(" AND message_id IS NULL"),
    };
    let both = same_message
        .sql(
            " UNION ALL SELECT 1, CAST(NULL AS BIGINT), CAST(NULL AS TEXT), id, CAST(NULL AS BIGINT) \
             FROM quarantine WHERE (content_hash = ",
        )
        .bind(Value::Text(current))
        .sql(" OR content_hash = ")
        .bind(Value::Text(legacy))
        .sql(") AND released_at IS NULL ORDER BY place, delivery_id, quarantine_id");
    // On the backend's own connection: through `AnyConnection` the text is written out again
    // at every message (`on_backend!`).
    let rows: Vec<EarlierRow> = on_backend!(&mut *conn, |c| both.load(c))?;
    let mut earlier = Earlier {
        delivery: None,
        quarantined: None,
    };
    for row in rows {
        match row.place {
            0 if earlier.delivery.is_none() => {
                earlier.delivery = Some((row.ticket_id, row.outcome.unwrap_or_default()));
            }
            1 if earlier.quarantined.is_none() => earlier.quarantined = row.quarantine_id,
            _ => {}
        }
    }
    Ok(earlier)
}

pub struct NewDelivery<'a> {
    pub message_id: Option<&'a str>,
    pub content_hash: &'a str,
    pub ticket_id: Option<i64>,
    pub message_ref: Option<i64>,
    pub outcome: &'a str,
    pub channel: &'a str,
    pub size: i64,
}

pub fn record_delivery(conn: &mut AnyConnection, d: &NewDelivery) -> QueryResult<()> {
    on_backend!(&mut *conn, |c| diesel::insert_into(inbound_messages::table)
        .values((
            inbound_messages::message_id.eq(d.message_id),
            inbound_messages::content_hash.eq(d.content_hash),
            inbound_messages::ticket_id.eq(d.ticket_id),
            inbound_messages::message_ref.eq(d.message_ref),
            inbound_messages::outcome.eq(d.outcome),
            inbound_messages::channel.eq(d.channel),
            inbound_messages::size.eq(d.size),
            inbound_messages::received_at.eq(now()),
        ))
        .execute(c))
    .map(|_| ())
}

/// The ticket holding any of these Message-IDs (ours or the customer's), newest first.
pub fn ticket_of_message_ids(conn: &mut AnyConnection, ids: &[String]) -> QueryResult<Option<i64>> {
    if ids.is_empty() {
        return Ok(None);
    }
    // Few rows (one per Message-ID, normally): read them all rather than bind a `LIMIT`.
    if let AnyConnection::Postgresql(c) = conn {
        // Planned at every use on PostgreSQL (`sql_query` is never kept prepared). Kept
        // prepared, its plan was fixed after five uses: on a new desk's nearly empty table, a
        // scan of the whole table, which it then went on doing at every reply as the table
        // grew (690 full scans of `messages` in an ingestion of 2,000 messages, 17 % of the
        // database's time: docs/benchmarks.md). Planned with the Message-IDs, it reads the
        // index whatever the table's size.
        #[derive(QueryableByName)]
        struct Ticket {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            ticket_id: i64,
        }
        return super::at_most_one(
            diesel::sql_query("SELECT ticket_id FROM messages WHERE message_id = ANY($1) ORDER BY id DESC")
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(ids)
                .load::<Ticket>(c)
                .map(|rows| rows.into_iter().map(|r| r.ticket_id).collect()),
        );
    }
    // On SQLite the same statement (one Message-ID, kept prepared by Diesel) run once per
    // Message-ID: an `IN` list's text changes with its length, so Diesel compiled that
    // statement again at every message (1.8 % of the mail writer's time,
    // docs/benchmarks.md). The lists are short: at most `MAX_THREAD_IDS` index lookups, each
    // Message-ID once.
    let mut newest: Option<(i64, i64)> = None;
    for id in ids {
        let rows: Vec<(i64, i64)> = on_backend!(&mut *conn, |c| messages::table
            .filter(messages::message_id.eq(id))
            .select((messages::id, messages::ticket_id))
            .load(c))?;
        newest = rows.into_iter().chain(newest).max_by_key(|(message, _)| *message);
    }
    Ok(newest.map(|(_, ticket)| ticket))
}

/// The Message-ID of the customer's latest message on the ticket (what our mail answers in
/// its thread). A kept statement with its `LIMIT` written out: Diesel's `.first()` binds the
/// `LIMIT`, and SQLite compiles such a statement again at every use (this one ran for every
/// mail the desk sends, most of them from the mail writer).
pub fn latest_customer_message_id(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Latest {
        #[diesel(sql_type = diesel::sql_types::Text)]
        message_id: String,
    }
    let rows: Vec<Latest> = on_backend!(&mut *conn, |c| Kept::default()
        .sql("SELECT message_id FROM messages WHERE ticket_id = ")
        .bind(Value::BigInt(ticket_id))
        .sql(" AND direction = 'in' AND message_id IS NOT NULL ORDER BY id DESC LIMIT 1")
        .load(c))?;
    Ok(rows.into_iter().next().map(|r| r.message_id))
}

/// The raw copy of a received message: the original bytes only when the scan found nothing,
/// else a copy rebuilt from the scrubbed parts (the type says which can be written).
pub fn store_raw(conn: &mut AnyConnection, message_ref: i64, raw: &ScrubbedBytes) -> QueryResult<()> {
    on_backend!(&mut *conn, |c| diesel::insert_into(raw_messages::table)
        .values((
            raw_messages::message_ref.eq(message_ref),
            raw_messages::raw.eq(raw.as_bytes()),
        ))
        .execute(c))
    .map(|_| ())
}

pub fn store_attachment(
    conn: &mut AnyConnection,
    message_ref: i64,
    filename: &Scrubbed,
    content_type: &Scrubbed,
    data: &ScrubbedBytes,
) -> QueryResult<i64> {
    insert_returning_id!(&mut *conn, attachments::id, |c| diesel::insert_into(attachments::table)
        .values((
            attachments::message_ref.eq(message_ref),
            attachments::filename.eq(filename.as_str()),
            attachments::content_type.eq(content_type.as_str()),
            attachments::size.eq(data.len() as i64),
            attachments::data.eq(data.as_bytes()),
            attachments::created_at.eq(now()),
        )))
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = attachments)]
pub struct AttachmentRow {
    pub id: i64,
    pub message_ref: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub data: Vec<u8>,
    pub created_at: NaiveDateTime,
}

pub fn attachment(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<AttachmentRow>> {
    attachments::table
        .find(id)
        .select(AttachmentRow::as_select())
        .first(conn)
        .optional()
}

/// An attachment's id, message, filename, content type and size (not its bytes).
pub type AttachmentInfo = (i64, i64, String, String, i64);

/// The attachments of these messages, by id. The ids are asked in slices: a ticket may hold
/// more messages than SQLite binds in one statement (32,766).
pub fn attachments_of(conn: &mut AnyConnection, message_refs: &[i64]) -> QueryResult<Vec<AttachmentInfo>> {
    let mut found: Vec<AttachmentInfo> = Vec::new();
    for slice in message_refs.chunks(super::MAX_BOUND_IDS) {
        found.extend(
            attachments::table
                .filter(attachments::message_ref.eq_any(slice))
                .select((
                    attachments::id,
                    attachments::message_ref,
                    attachments::filename,
                    attachments::content_type,
                    attachments::size,
                ))
                .load::<AttachmentInfo>(conn)?,
        );
    }
    found.sort_unstable_by_key(|a| a.0);
    Ok(found)
}

/// Marks our outbound messages with these Message-IDs as bounced; returns how many.
pub fn mark_bounced(conn: &mut AnyConnection, message_ids: &[String], reason: &Scrubbed) -> QueryResult<Vec<Bounced>> {
    if message_ids.is_empty() {
        return Ok(vec![]);
    }
    let hit: Vec<(i64, Option<i64>, Option<String>)> = outbox::table
        .filter(outbox::message_id.eq_any(message_ids))
        .select((outbox::id, outbox::ticket_id, outbox::message_id))
        .load(conn)?;
    let ids: Vec<i64> = hit.iter().map(|(id, _, _)| *id).collect();
    // Tickets before outbox rows (docs/architecture.md, "Locks and their order"): the message
    // is appended to the bounced mail's ticket afterwards.
    let mut tickets: Vec<i64> = hit.iter().filter_map(|(_, ticket, _)| *ticket).collect();
    tickets.sort_unstable();
    tickets.dedup();
    super::locks::lock_tickets(conn, &tickets)?;
    diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
        .set((outbox::bounced_at.eq(now()), outbox::bounce_reason.eq(reason.as_str())))
        .execute(conn)?;
    let mut bounced = Vec::with_capacity(hit.len());
    for (outbox_id, ticket_id, message_id) in hit {
        // The thread's copy of the mail that bounced, so the event shows what was not delivered.
        let message_ref = match (ticket_id, message_id) {
            (Some(ticket), Some(message_id)) => messages::table
                .filter(messages::ticket_id.eq(ticket))
                .filter(messages::message_id.eq(message_id))
                .select(messages::id)
                .first::<i64>(conn)
                .optional()?,
            _ => None,
        };
        bounced.push(Bounced {
            outbox_id,
            ticket_id,
            message_ref,
        });
    }
    Ok(bounced)
}

/// An outgoing mail a bounce named: its outbox row, its ticket, and the thread's copy of it.
pub struct Bounced {
    pub outbox_id: i64,
    pub ticket_id: Option<i64>,
    pub message_ref: Option<i64>,
}

// ---------------------------------------------------------------------------------------
// Quarantine

pub struct NewQuarantined<'a> {
    pub id: &'a str,
    /// Reasons can quote the message (its declared type): scrubbed like the rest.
    pub reason: &'a Scrubbed,
    pub from_address: Option<&'a Scrubbed>,
    pub subject: Option<&'a Scrubbed>,
    pub raw: &'a ScrubbedBytes,
    pub size: i64,
    pub channel: &'a str,
    pub content_hash: &'a str,
}

pub fn quarantine(conn: &mut AnyConnection, q: &NewQuarantined) -> QueryResult<()> {
    diesel::insert_into(quarantine::table)
        .values((
            quarantine::id.eq(q.id),
            quarantine::reason.eq(q.reason.as_str()),
            quarantine::from_address.eq(q.from_address.map(Scrubbed::as_str)),
            quarantine::subject.eq(q.subject.map(Scrubbed::as_str)),
            quarantine::size.eq(q.size),
            quarantine::raw.eq(q.raw.as_bytes()),
            quarantine::channel.eq(q.channel),
            quarantine::content_hash.eq(q.content_hash),
            quarantine::received_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = quarantine)]
pub struct QuarantineRow {
    pub id: String,
    pub reason: String,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub size: i64,
    pub raw: Vec<u8>,
    pub channel: String,
    pub content_hash: String,
    pub received_at: NaiveDateTime,
    pub released_ticket_id: Option<i64>,
    pub released_at: Option<NaiveDateTime>,
}

pub fn quarantined(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<QuarantineRow>> {
    quarantine::table
        .find(id)
        .select(QuarantineRow::as_select())
        .first(conn)
        .optional()
}

/// How many messages wait in quarantine (for `/metrics`).
pub fn count_quarantined(conn: &mut AnyConnection) -> QueryResult<i64> {
    quarantine::table
        .filter(quarantine::released_at.is_null())
        .count()
        .get_result(conn)
}

/// Newest first, keyset by (received_at, id); the row data without the raw bytes' weight is
/// not worth a second query at these sizes.
pub fn list_quarantine(
    conn: &mut AnyConnection,
    before: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<QuarantineRow>> {
    let mut query = quarantine::table.filter(quarantine::released_at.is_null()).into_boxed();
    if let Some((at, id)) = before {
        query = query.filter(
            quarantine::received_at
                .lt(at)
                .or(quarantine::received_at.eq(at).and(quarantine::id.lt(id))),
        );
    }
    query
        .order((quarantine::received_at.desc(), quarantine::id.desc()))
        .limit(limit)
        .select(QuarantineRow::as_select())
        .load(conn)
}

pub fn release(conn: &mut AnyConnection, id: &str, ticket_id: Option<i64>) -> QueryResult<()> {
    diesel::update(quarantine::table.find(id))
        .set((
            quarantine::released_at.eq(now()),
            quarantine::released_ticket_id.eq(ticket_id),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn set_quarantine_reason(conn: &mut AnyConnection, id: &str, reason: &Scrubbed) -> QueryResult<()> {
    diesel::update(quarantine::table.find(id))
        .set(quarantine::reason.eq(reason.as_str()))
        .execute(conn)
        .map(|_| ())
}
