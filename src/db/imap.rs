//! The IMAP lease: one poller at a time across instances sharing a database, and what
//! `/healthz` says about the mailbox (docs/reference.md#imap).

use super::AnyConnection;
use super::schema::imap_leases;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable)]
pub struct LeaseRow {
    pub mailbox: String,
    pub holder: String,
    pub expires_at: NaiveDateTime,
    pub uid_validity: Option<i64>,
    pub last_ok_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<NaiveDateTime>,
}

/// Takes or renews the lease of `mailbox` for `holder` until `until`, when it is free (never
/// taken, expired, or already `holder`'s). Returns whether `holder` now holds it. One UPDATE
/// with the condition in its WHERE: two instances racing for it cannot both win.
pub fn acquire(
    conn: &mut AnyConnection,
    mailbox: &str,
    holder: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    ensure_row(conn, mailbox, now)?;
    let taken = diesel::update(
        imap_leases::table
            .filter(imap_leases::mailbox.eq(mailbox))
            .filter(imap_leases::holder.eq(holder).or(imap_leases::expires_at.le(now))),
    )
    .set((imap_leases::holder.eq(holder), imap_leases::expires_at.eq(until)))
    .execute(conn)?;
    Ok(taken == 1)
}

/// The mailbox's row, created free when it is missing.
fn ensure_row(conn: &mut AnyConnection, mailbox: &str, now: NaiveDateTime) -> QueryResult<()> {
    let row = (
        imap_leases::mailbox.eq(mailbox),
        imap_leases::holder.eq(""),
        imap_leases::expires_at.eq(now),
    );
    match conn {
        AnyConnection::Sqlite(lite) => {
            diesel::insert_or_ignore_into(imap_leases::table)
                .values(row)
                .execute(lite)?;
        }
        AnyConnection::Postgresql(pg) => {
            diesel::insert_into(imap_leases::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(pg)?;
        }
    }
    Ok(())
}

/// Takes the lease from `old` (a holder known to be gone), if `old` still has it.
pub fn take_over(
    conn: &mut AnyConnection,
    mailbox: &str,
    old: &str,
    holder: &str,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let taken = diesel::update(
        imap_leases::table
            .filter(imap_leases::mailbox.eq(mailbox))
            .filter(imap_leases::holder.eq(old)),
    )
    .set((imap_leases::holder.eq(holder), imap_leases::expires_at.eq(until)))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Gives the lease up (only if `holder` still has it), so another instance need not wait.
pub fn release(conn: &mut AnyConnection, mailbox: &str, holder: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(
        imap_leases::table
            .filter(imap_leases::mailbox.eq(mailbox))
            .filter(imap_leases::holder.eq(holder)),
    )
    .set(imap_leases::expires_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// A round ended well: the error is cleared.
pub fn record_ok(
    conn: &mut AnyConnection,
    mailbox: &str,
    uid_validity: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(imap_leases::table.filter(imap_leases::mailbox.eq(mailbox)))
        .set((
            imap_leases::uid_validity.eq(uid_validity),
            imap_leases::last_ok_at.eq(Some(now)),
            imap_leases::last_error.eq(None::<String>),
            imap_leases::last_error_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// A round failed (the server unreachable, the login refused…): kept for `/healthz`.
pub fn record_error(conn: &mut AnyConnection, mailbox: &str, error: &str, now: NaiveDateTime) -> QueryResult<()> {
    ensure_row(conn, mailbox, now)?;
    diesel::update(imap_leases::table.filter(imap_leases::mailbox.eq(mailbox)))
        .set((
            imap_leases::last_error.eq(Some(error)),
            imap_leases::last_error_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut AnyConnection, mailbox: &str) -> QueryResult<Option<LeaseRow>> {
    imap_leases::table
        .filter(imap_leases::mailbox.eq(mailbox))
        .first(conn)
        .optional()
}
