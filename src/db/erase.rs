//! Erasing a stored message or note (an admin's after-the-fact redaction), and leaving no
//! copy of it in the database files afterwards.

use super::schema::{attachments, events, messages, outbox, quarantine, raw_messages};
use super::tickets::{EventRow, MessageRow};
use super::{AnyConnection, now};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// What an erased message's text becomes.
pub const ERASED: &str = "[erased]";

/// The event `event_id` of ticket `ticket_id` (an event of another ticket is not found).
pub fn event_of_ticket(conn: &mut AnyConnection, ticket_id: i64, event_id: i64) -> QueryResult<Option<EventRow>> {
    events::table
        .filter(events::id.eq(event_id))
        .filter(events::ticket_id.eq(ticket_id))
        .select(EventRow::as_select())
        .first(conn)
        .optional()
}

pub fn message(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<MessageRow>> {
    messages::table
        .find(id)
        .select(MessageRow::as_select())
        .first(conn)
        .optional()
}

/// Blanks the message's subject, text and HTML, deletes its attachments and raw copy, and
/// empties the copies kept elsewhere: the outbox row that carried it (a mail not sent yet is
/// not sent any more) and a quarantined original released into this ticket.
pub fn blank_message(conn: &mut AnyConnection, m: &MessageRow) -> QueryResult<()> {
    let at = now();
    diesel::update(messages::table.find(m.id))
        .set((
            messages::subject.eq(""),
            messages::body.eq(ERASED),
            messages::body_html.eq(None::<String>),
            messages::redacted_at.eq(at),
        ))
        .execute(conn)?;
    // The ticket's search document is written again without the erased words.
    super::search::reindex(conn, m.ticket_id)?;
    diesel::delete(attachments::table.filter(attachments::message_ref.eq(m.id))).execute(conn)?;
    diesel::delete(raw_messages::table.filter(raw_messages::message_ref.eq(m.id))).execute(conn)?;
    if let Some(message_id) = &m.message_id {
        diesel::update(
            outbox::table
                .filter(outbox::message_id.eq(message_id))
                .filter(outbox::status.eq_any(["pending", "held"])),
        )
        .set((
            outbox::status.eq("failed"),
            outbox::last_error.eq("erased by an admin before it was sent"),
        ))
        .execute(conn)?;
        diesel::update(outbox::table.filter(outbox::message_id.eq(message_id)))
            .set((outbox::body.eq(ERASED), outbox::params.eq("{}")))
            .execute(conn)?;
    }
    if let Some(hash) = &m.content_hash {
        diesel::update(
            quarantine::table
                .filter(quarantine::content_hash.eq(hash))
                .filter(quarantine::released_ticket_id.eq(m.ticket_id)),
        )
        .set((
            quarantine::raw.eq(Vec::<u8>::new()),
            quarantine::subject.eq(None::<String>),
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// Runs `f` with SQLite's `secure_delete` on for this connection: content deleted or
/// overwritten is zeroed in the file, not left in free space. Only erasing pays for it.
pub fn with_secure_delete<T>(conn: &mut AnyConnection, f: impl FnOnce(&mut AnyConnection) -> T) -> T {
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    if sqlite {
        let _ = conn.batch_execute("PRAGMA secure_delete = ON;");
    }
    let result = f(conn);
    if sqlite {
        let _ = conn.batch_execute("PRAGMA secure_delete = OFF;");
    }
    result
}

#[derive(QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
}

/// After an erase commits: on SQLite, copies the WAL into the database file and truncates it
/// (the WAL holds the old page images, with the text, until then); on PostgreSQL, vacuums the
/// tables so the old row versions are gone (it cannot run inside a transaction). Returns
/// whether the WAL was fully checkpointed (a long reader can hold it back a while).
pub fn purge_old_copies(conn: &mut AnyConnection) -> QueryResult<bool> {
    match conn {
        AnyConnection::Sqlite(c) => {
            for _ in 0..50 {
                let rows: Vec<Checkpoint> = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").load(c)?;
                if rows.first().is_none_or(|r| r.busy == 0) {
                    return Ok(true);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(false)
        }
        AnyConnection::Postgresql(c) => {
            c.batch_execute("VACUUM messages, raw_messages, attachments, outbox, quarantine, ticket_search")?;
            Ok(true)
        }
    }
}
