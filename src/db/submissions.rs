//! Web form submissions, for rate limits and for attaching repeats to their ticket.

use super::schema::form_submissions;
use super::{AnyConnection, now};
use chrono::Duration;
use diesel::prelude::*;

/// Submissions in the last hour from this client address, and for this email address.
pub fn recent_counts(conn: &mut AnyConnection, client_ip: &str, email_normalized: &str) -> QueryResult<(i64, i64)> {
    let since = now() - Duration::hours(1);
    let by_client = form_submissions::table
        .filter(form_submissions::client_ip.eq(client_ip))
        .filter(form_submissions::created_at.gt(since))
        .count()
        .get_result(conn)?;
    let by_email = form_submissions::table
        .filter(form_submissions::email_normalized.eq(email_normalized))
        .filter(form_submissions::created_at.gt(since))
        .count()
        .get_result(conn)?;
    Ok((by_client, by_email))
}

/// The times of the newest `limit` submissions within the hour under each key (client
/// address, email address), newest first: what says when a full count frees a place.
pub fn recent_times(
    conn: &mut AnyConnection,
    client_ip: &str,
    email_normalized: &str,
    limit: i64,
) -> QueryResult<(Vec<chrono::NaiveDateTime>, Vec<chrono::NaiveDateTime>)> {
    let since = now() - Duration::hours(1);
    let by_client = form_submissions::table
        .filter(form_submissions::client_ip.eq(client_ip))
        .filter(form_submissions::created_at.gt(since))
        .order(form_submissions::created_at.desc())
        .select(form_submissions::created_at)
        .limit(limit)
        .load(conn)?;
    let by_email = form_submissions::table
        .filter(form_submissions::email_normalized.eq(email_normalized))
        .filter(form_submissions::created_at.gt(since))
        .order(form_submissions::created_at.desc())
        .select(form_submissions::created_at)
        .limit(limit)
        .load(conn)?;
    Ok((by_client, by_email))
}

/// The ticket of the latest submission of this kind for this address within the hour.
pub fn recent_ticket(conn: &mut AnyConnection, kind: &str, email_normalized: &str) -> QueryResult<Option<i64>> {
    form_submissions::table
        .filter(form_submissions::kind.eq(kind))
        .filter(form_submissions::email_normalized.eq(email_normalized))
        .filter(form_submissions::created_at.gt(now() - Duration::hours(1)))
        .order(form_submissions::id.desc())
        .select(form_submissions::ticket_id)
        .first(conn)
        .optional()
}

pub fn record(
    conn: &mut AnyConnection,
    kind: &str,
    client_ip: &str,
    email_normalized: &str,
    ticket_id: i64,
    attached: bool,
) -> QueryResult<()> {
    diesel::insert_into(form_submissions::table)
        .values((
            form_submissions::kind.eq(kind),
            form_submissions::client_ip.eq(client_ip),
            form_submissions::email_normalized.eq(email_normalized),
            form_submissions::ticket_id.eq(ticket_id),
            form_submissions::attached.eq(attached),
            form_submissions::created_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Rows older than this are read by no rate limit or throttle: the longest window that reads
/// `form_submissions` is an hour, and sign-in throttling looks back minutes. A day leaves
/// room for any window to grow without the purge silently weakening it.
pub const RATE_LIMIT_ROWS_KEPT_HOURS: i64 = 24;

/// Deletes rate-limit rows created before `before`: (form submissions, sign-in attempts).
pub fn purge_rate_limit_rows(conn: &mut AnyConnection, before: chrono::NaiveDateTime) -> QueryResult<(usize, usize)> {
    use super::schema::login_attempts;
    let forms =
        diesel::delete(form_submissions::table.filter(form_submissions::created_at.lt(before))).execute(conn)?;
    let logins = diesel::delete(login_attempts::table.filter(login_attempts::created_at.lt(before))).execute(conn)?;
    Ok((forms, logins))
}
