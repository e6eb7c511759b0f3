//! The API rate limit: one row per request of the last minute, per token hash. Counting and
//! recording happen in one step under a lock (SQLite's `BEGIN IMMEDIATE`, a transaction-level
//! advisory lock per token on PostgreSQL), so parallel requests cannot all slip under it, and
//! every instance sharing the database shares the count.

use super::schema::api_requests;
use super::{AnyConnection, write_transaction};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::Text;

pub const WINDOW_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit: the oldest request of the window leaves it in this many seconds.
    Limited {
        retry_after_secs: u64,
    },
}

/// Counts the token's requests of the last minute and, under `limit`, records this one.
pub fn admit(conn: &mut AnyConnection, token_hash: &str, limit: u32, now: NaiveDateTime) -> QueryResult<Admission> {
    let window_start = now - Duration::seconds(WINDOW_SECS);
    write_transaction(conn, |conn| {
        if let AnyConnection::Postgresql(pg) = conn {
            // A count lost in a crash costs nothing, so this commit need not wait for the disk
            // (it would otherwise add a WAL flush to every API request).
            diesel::sql_query("SET LOCAL synchronous_commit = off").execute(pg)?;
            // Serialises the requests of one token only; released at commit.
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind::<Text, _>(token_hash)
                .execute(pg)?;
        }
        let recent = api_requests::table
            .filter(api_requests::token_hash.eq(token_hash))
            .filter(api_requests::created_at.gt(window_start));
        let count: i64 = recent.count().get_result(conn)?;
        if count >= i64::from(limit) {
            let oldest: NaiveDateTime = recent
                .select(api_requests::created_at)
                .order(api_requests::created_at.asc())
                .first(conn)?;
            let wait = (oldest + Duration::seconds(WINDOW_SECS) - now).num_milliseconds();
            let secs = u64::try_from((wait + 999) / 1000).unwrap_or(1).max(1);
            return Ok(Admission::Limited { retry_after_secs: secs });
        }
        // Requests that left the window are purged as new ones come in (index on created_at).
        diesel::delete(api_requests::table.filter(api_requests::created_at.le(window_start))).execute(conn)?;
        diesel::insert_into(api_requests::table)
            .values((
                api_requests::token_hash.eq(token_hash),
                api_requests::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(Admission::Allowed)
    })
}
