//! A ticket's verification: the checks of each round and the email challenges.

use crate::db::schema::{email_challenges, verification_checks};
use crate::db::{AnyConnection, now};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub fn insert_check(
    conn: &mut AnyConnection,
    ticket_id: i64,
    round: i32,
    method: &str,
    passed: bool,
    evidence: &str,
    actor: &str,
) -> QueryResult<()> {
    diesel::insert_into(verification_checks::table)
        .values((
            verification_checks::ticket_id.eq(ticket_id),
            verification_checks::round.eq(round),
            verification_checks::method.eq(method),
            verification_checks::passed.eq(passed),
            verification_checks::evidence.eq(evidence),
            verification_checks::actor.eq(actor),
            verification_checks::created_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// (method, passed) of the checks of one verification round, oldest first.
pub fn checks_of_round(conn: &mut AnyConnection, ticket_id: i64, round: i32) -> QueryResult<Vec<(String, bool)>> {
    on_backend!(conn, |c| verification_checks::table
        .filter(verification_checks::ticket_id.eq(ticket_id))
        .filter(verification_checks::round.eq(round))
        .order(verification_checks::id.asc())
        .select((verification_checks::method, verification_checks::passed))
        .load(c))
}

/// Records a challenge to be mailed. It has no token yet: the sender makes one when the mail
/// goes out ([`arm_challenge`]); until then its hash column holds a filler that opens nothing.
pub fn insert_challenge(
    conn: &mut AnyConnection,
    ticket_id: i64,
    account_id: &str,
    round: i32,
    expires_at: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(email_challenges::table)
        .values((
            email_challenges::ticket_id.eq(ticket_id),
            email_challenges::account_id.eq(account_id),
            email_challenges::token_hash.eq(format!("none:{}", hex::encode(crate::crypto::random_bytes::<16>()))),
            email_challenges::round.eq(round),
            email_challenges::expires_at.eq(expires_at),
            email_challenges::created_at.eq(now()),
        ))
        .returning(email_challenges::id)
        .get_result(conn)
}

/// Gives an unused challenge the hash of the token its mail is about to carry, valid from
/// now until `expires_at`. A new send replaces the hash (the earlier mail's link stops
/// working). False when the challenge was used (or is gone): the mail then carries no link.
pub fn arm_challenge(
    conn: &mut AnyConnection,
    id: i64,
    token_hash: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<bool> {
    let rows = diesel::update(
        email_challenges::table
            .filter(email_challenges::id.eq(id))
            .filter(email_challenges::used_at.is_null()),
    )
    .set((
        email_challenges::token_hash.eq(token_hash),
        email_challenges::expires_at.eq(expires_at),
    ))
    .execute(conn)?;
    Ok(rows == 1)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_challenges)]
pub struct ChallengeRow {
    pub id: i64,
    pub ticket_id: i64,
    pub account_id: String,
    pub token_hash: String,
    pub round: i32,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn find_challenge(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<Option<ChallengeRow>> {
    email_challenges::table
        .filter(email_challenges::token_hash.eq(token_hash))
        .select(ChallengeRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a challenge used; false if it already was (single use, even under a race).
pub fn use_challenge(conn: &mut AnyConnection, id: i64) -> QueryResult<bool> {
    let rows = diesel::update(
        email_challenges::table
            .filter(email_challenges::id.eq(id))
            .filter(email_challenges::used_at.is_null()),
    )
    .set(email_challenges::used_at.eq(now()))
    .execute(conn)?;
    Ok(rows == 1)
}

/// The latest challenge of a ticket's verification round, if one was made.
pub fn latest_challenge(conn: &mut AnyConnection, ticket_id: i64, round: i32) -> QueryResult<Option<ChallengeRow>> {
    email_challenges::table
        .filter(email_challenges::ticket_id.eq(ticket_id))
        .filter(email_challenges::round.eq(round))
        .order(email_challenges::id.desc())
        .select(ChallengeRow::as_select())
        .first(conn)
        .optional()
}
