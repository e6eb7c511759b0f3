//! The outbox: mail waiting for the sender, written in the transaction that decided it.

use super::kept::{Kept, Value};
use super::schema::outbox;
use super::{AnyConnection, DbError, now, write_transaction};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

pub struct NewOutboxMail<'a> {
    pub ticket_id: Option<i64>,
    pub template: &'a str,
    pub recipient: &'a str,
    pub params: &'a serde_json::Value,
    pub automatic: bool,
    pub subject: &'a str,
    pub body: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    /// `auto-replied`, `auto-generated`, or none for an agent's own words.
    pub auto_submitted: Option<&'a str>,
}

/// Mails per recipient address per hour the workflows may send; more wait for an agent
/// (`held`), so spoofed requests cannot flood a registered address (docs/reference.md#policy).
pub const WORKFLOW_MAILS_PER_RECIPIENT_PER_HOUR: i64 = 20;

pub fn enqueue(conn: &mut AnyConnection, mail: &NewOutboxMail) -> QueryResult<i64> {
    let at = now();
    let recipient_normalized = crate::domain::email_address::normalize(mail.recipient);
    let recent: i64 = on_backend!(&mut *conn, |c| outbox::table
        .filter(outbox::recipient_normalized.eq(&recipient_normalized))
        .filter(outbox::automatic.eq(true))
        .filter(outbox::created_at.gt(at - Duration::hours(1)))
        .count()
        .get_result(c))?;
    let status = if mail.automatic && recent >= WORKFLOW_MAILS_PER_RECIPIENT_PER_HOUR {
        "held"
    } else {
        "pending"
    };
    let id = insert_returning_id!(conn, outbox::id, |c| diesel::insert_into(outbox::table).values((
        outbox::ticket_id.eq(mail.ticket_id),
        outbox::template.eq(mail.template),
        outbox::recipient.eq(mail.recipient.trim()),
        outbox::recipient_normalized.eq(&recipient_normalized),
        outbox::params.eq(mail.params.to_string()),
        outbox::automatic.eq(mail.automatic),
        outbox::status.eq(status),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(at),
        outbox::in_reply_to.eq(mail.in_reply_to),
        outbox::references_header.eq(mail.in_reply_to),
        outbox::subject.eq(mail.subject),
        outbox::body.eq(mail.body),
        outbox::message_id.eq(mail.message_id),
        outbox::auto_submitted.eq(mail.auto_submitted),
        outbox::created_at.eq(at),
    )))?;
    Ok(id)
}

/// When the ticket's latest mail of `template` was queued, if ever.
pub fn latest_of_template(
    conn: &mut AnyConnection,
    ticket_id: i64,
    template: &str,
) -> QueryResult<Option<NaiveDateTime>> {
    on_backend!(conn, |c| outbox::table
        .filter(outbox::ticket_id.eq(ticket_id))
        .filter(outbox::template.eq(template))
        .select(diesel::dsl::max(outbox::created_at))
        // An aggregate is one row: no `LIMIT` to bind (SQLite would prepare it at every use).
        .get_result(c))
}

/// Names the stored attachments (`attachments.id`) that go out with a queued mail, in its
/// parameters: ids only, never the bytes. In the transaction that queued it.
pub fn name_attachments(conn: &mut AnyConnection, id: i64, attachment_ids: &[i64]) -> QueryResult<()> {
    let params: String = outbox::table.find(id).select(outbox::params).first(conn)?;
    let mut params: serde_json::Value = serde_json::from_str(&params).unwrap_or_else(|_| serde_json::json!({}));
    params["attachment_ids"] = serde_json::json!(attachment_ids);
    diesel::update(outbox::table.find(id))
        .set(outbox::params.eq(params.to_string()))
        .execute(conn)?;
    Ok(())
}

/// The attachment ids an outbox row names (see [`name_attachments`]).
pub fn attachment_ids(row: &OutboxRow) -> Vec<i64> {
    serde_json::from_str::<serde_json::Value>(&row.params)
        .ok()
        .and_then(|p| p["attachment_ids"].as_array().cloned())
        .map(|ids| ids.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub template: String,
    pub recipient: String,
    pub recipient_normalized: String,
    pub params: String,
    pub automatic: bool,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub subject: String,
    pub body: String,
    pub auto_submitted: Option<String>,
    pub references_header: Option<String>,
    pub claimed_at: Option<NaiveDateTime>,
    pub claimed_by: Option<String>,
    pub bounced_at: Option<NaiveDateTime>,
    pub bounce_reason: Option<String>,
}

pub fn of_ticket(conn: &mut AnyConnection, ticket_id: i64) -> QueryResult<Vec<OutboxRow>> {
    outbox::table
        .filter(outbox::ticket_id.eq(ticket_id))
        .order(outbox::id.asc())
        .select(OutboxRow::as_select())
        .load(conn)
}

pub fn all(conn: &mut AnyConnection) -> QueryResult<Vec<OutboxRow>> {
    outbox::table
        .order(outbox::id.asc())
        .select(OutboxRow::as_select())
        .load(conn)
}

/// How many mails are at each delivery status (for `/metrics`).
pub fn count_by_status(conn: &mut AnyConnection) -> QueryResult<Vec<(String, i64)>> {
    outbox::table
        .group_by(outbox::status)
        .select((outbox::status, diesel::dsl::count_star()))
        .load(conn)
}

/// An agent lets a held mail go (it waited because of the per-recipient hourly cap): the row
/// as it was, or none when it is not a held mail of that ticket.
pub fn release_held(conn: &mut AnyConnection, id: i64, ticket_id: i64) -> QueryResult<Option<OutboxRow>> {
    let held = outbox::table
        .filter(outbox::id.eq(id))
        .filter(outbox::ticket_id.eq(ticket_id))
        .filter(outbox::status.eq("held"));
    let Some(row) = held.select(OutboxRow::as_select()).first(conn).optional()? else {
        return Ok(None);
    };
    let rows = diesel::update(held)
        .set((outbox::status.eq("pending"), outbox::next_attempt_at.eq(now())))
        .execute(conn)?;
    Ok((rows == 1).then_some(row))
}

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Claims up to `batch` rows for the sender `worker`: those due at `now`, and those another
/// sender claimed before `lease_expired` and never finished. Exactly one sender gets a row
/// (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the write transaction's `BEGIN IMMEDIATE`).
pub fn claim(
    conn: &mut AnyConnection,
    worker: &str,
    now: NaiveDateTime,
    lease_expired: NaiveDateTime,
    batch: i64,
) -> Result<Vec<OutboxRow>, DbError> {
    let ids: Vec<i64> = write_transaction(conn, |conn| -> Result<Vec<i64>, DbError> {
        let pick = "SELECT id FROM outbox WHERE (status = 'pending' AND next_attempt_at <= $1) \
                    OR (status = 'sending' AND claimed_at < $3) ORDER BY id LIMIT $4";
        let claimed: Vec<ClaimedId> = match conn {
            AnyConnection::Postgresql(pg) => diesel::sql_query(format!(
                "UPDATE outbox SET status = 'sending', claimed_at = $1, claimed_by = $2 \
                 WHERE id IN ({pick} FOR UPDATE SKIP LOCKED) RETURNING id"
            ))
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(worker)
            .bind::<Timestamp, _>(lease_expired)
            .bind::<BigInt, _>(batch)
            .load(pg)?,
            AnyConnection::Sqlite(lite) => diesel::sql_query(format!(
                "UPDATE outbox SET status = 'sending', claimed_at = $1, claimed_by = $2 WHERE id IN ({pick}) RETURNING id"
            ))
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(worker)
            .bind::<Timestamp, _>(lease_expired)
            .bind::<BigInt, _>(batch)
            .load(lite)?,
        };
        Ok(claimed.into_iter().map(|c| c.id).collect())
    })?;
    if ids.is_empty() {
        return Ok(vec![]);
    }
    Ok(outbox::table
        .filter(outbox::id.eq_any(&ids))
        .filter(outbox::claimed_by.eq(worker))
        .order(outbox::id.asc())
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// Gives `worker`'s claimed rows back unchanged (still due, attempts untouched); how many.
pub fn release_claims(conn: &mut AnyConnection, worker: &str, ids: &[i64]) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(ids))
            .filter(outbox::claimed_by.eq(worker))
            .filter(outbox::status.eq("sending")),
    )
    .set((
        outbox::status.eq("pending"),
        outbox::claimed_at.eq(None::<NaiveDateTime>),
        outbox::claimed_by.eq(None::<String>),
    ))
    .execute(conn)
}

/// What became of one delivery try, as the row records it.
pub enum Delivered<'a> {
    /// Sent: the body (markers, never live links) has done its job and is emptied; the thread
    /// keeps a masked copy.
    Sent,
    /// Tried again at `next_attempt_at` (`status` `pending`), or given up (`failed`).
    Retry {
        status: &'a str,
        next_attempt_at: NaiveDateTime,
        error: &'a str,
    },
    Failed {
        error: &'a str,
    },
}

/// Records the outcome of `worker`'s try of `row` and ends its claim. Attempts count every
/// try, the one that worked included. A row whose claim passed to another sender is left as
/// that sender has it.
pub fn record_delivery(conn: &mut AnyConnection, worker: &str, row: &OutboxRow, outcome: Delivered) -> QueryResult<()> {
    let mine = outbox::table
        .filter(outbox::id.eq(row.id))
        .filter(outbox::claimed_by.eq(worker));
    let no_claim = (
        outbox::claimed_at.eq(None::<NaiveDateTime>),
        outbox::claimed_by.eq(None::<String>),
    );
    let attempts = outbox::attempts.eq(row.attempts + 1);
    match outcome {
        // One for every mail sent: kept prepared (Diesel plans each `UPDATE` anew, 90 µs of
        // PostgreSQL's time here).
        Delivered::Sent => Kept::default()
            .sql("UPDATE outbox SET status = 'sent', attempts = ")
            .bind(Value::Integer(row.attempts + 1))
            .sql(", sent_at = ")
            .bind(Value::Timestamp(now()))
            .sql(", body = '', claimed_at = NULL, claimed_by = NULL WHERE id = ")
            .bind(Value::BigInt(row.id))
            .sql(" AND claimed_by = ")
            .bind(Value::Text(worker))
            .execute(conn),
        Delivered::Retry {
            status,
            next_attempt_at,
            error,
        } => diesel::update(mine)
            .set((
                outbox::status.eq(status),
                attempts,
                outbox::next_attempt_at.eq(next_attempt_at),
                outbox::last_error.eq(error),
                no_claim,
            ))
            .execute(conn),
        Delivered::Failed { error } => diesel::update(mine)
            .set((
                outbox::status.eq("failed"),
                attempts,
                outbox::last_error.eq(error),
                no_claim,
            ))
            .execute(conn),
    }
    .map(drop)
}
