//! Row and key locks for PostgreSQL, where transactions run side by side. On SQLite every
//! write transaction starts with `BEGIN IMMEDIATE` and holds the one write lock to its end, so
//! these functions do nothing there: the transaction is already alone.
//!
//! The order every transaction takes them in (see `docs/architecture.md`, "Locks and their
//! order"): keys (throttles, the inbound message), then tickets (by id), then accounts (by id),
//! then the outbox's recipient keys. A transaction never takes a lock of an earlier kind after
//! one of a later kind. The queue's counters take no lock at all (their triggers only insert).
//!
//! Rows are locked `FOR NO KEY UPDATE`: it excludes every other locker and writer of the row
//! as `FOR UPDATE` does, but not the `FOR KEY SHARE` lock PostgreSQL takes on a ticket or an
//! account when a row referencing it (an event, a message, a ticket) is inserted. So inserting
//! a ticket's event never waits for the ticket's lock, and a transaction that inserted one
//! before locking the ticket cannot deadlock with another doing the same.

use super::AnyConnection;
use super::kept::{Kept, Value};
use super::schema::{accounts, tickets};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// What a key lock protects; part of the key, so two namespaces never share a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLock {
    /// Customer form submissions from one client network.
    FormClient,
    /// Customer form submissions for one email address.
    FormEmail,
    /// Sign-in attempts from one client network (all emails).
    SignInClient,
    /// Workflow mail and acknowledgements to one recipient address.
    Recipient,
    /// One inbound message (its Message-ID, its content hash): two deliveries of the same
    /// message, at the same moment, store it once.
    Delivery,
    /// The fold of the queue's count deltas: one instance at a time.
    CountFold,
}

impl KeyLock {
    fn name(self) -> &'static str {
        match self {
            KeyLock::FormClient => "form-client",
            KeyLock::FormEmail => "form-email",
            KeyLock::SignInClient => "sign-in-client",
            KeyLock::Recipient => "recipient",
            KeyLock::Delivery => "delivery",
            KeyLock::CountFold => "count-fold",
        }
    }
}

/// The advisory-lock number of a key: the first 8 bytes of SHA-256 over the namespace and the
/// key. A collision only makes two keys wait for each other, never lets one slip.
fn key_number(lock: KeyLock, key: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(lock.name().as_bytes())
        .chain_update([0u8])
        .chain_update(key.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Takes the transaction-scoped lock of `key` (released at commit or rollback): writers that
/// count and then record under the same key run one after the other, so a burst cannot read
/// the same count before any of them records.
pub fn lock_key(conn: &mut AnyConnection, lock: KeyLock, key: &str) -> QueryResult<()> {
    lock_keys(conn, lock, &[key])
}

/// Takes the locks of several keys of one namespace in the order of their lock numbers (the
/// one order, so two transactions locking overlapping sets cannot deadlock).
pub fn lock_keys(conn: &mut AnyConnection, lock: KeyLock, keys: &[&str]) -> QueryResult<()> {
    if let AnyConnection::Postgresql(pg) = conn {
        let mut numbers: Vec<i64> = keys.iter().map(|k| key_number(lock, k)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        // One and two keys (a delivery's content hash and Message-ID) are statements kept
        // prepared (`Kept`): their plans read no table, so a kept plan never goes stale, and
        // parsing and planning them again was 90 µs of the server's time per received message
        // (docs/benchmarks.md, "Search documents from what the transaction stored").
        // Several in one round trip: PostgreSQL evaluates a volatile function of the select
        // list after the sort, so the locks are taken in ascending order.
        match *numbers.as_slice() {
            [] => {}
            [number] => {
                Kept::default()
                    .sql("SELECT pg_advisory_xact_lock(")
                    .bind(Value::BigInt(number))
                    .sql(")")
                    .execute(pg)?;
            }
            [low, high] => {
                Kept::default()
                    .sql("SELECT pg_advisory_xact_lock(k) FROM (VALUES (")
                    .bind(Value::BigInt(low))
                    .sql("), (")
                    .bind(Value::BigInt(high))
                    .sql(")) AS u(k) ORDER BY k")
                    .execute(pg)?;
            }
            _ => {
                diesel::sql_query("SELECT pg_advisory_xact_lock(k) FROM unnest($1) AS u(k) ORDER BY k")
                    .bind::<diesel::sql_types::Array<BigInt>, _>(numbers)
                    .execute(pg)?;
            }
        }
    }
    Ok(())
}

/// Locks a ticket's row for the rest of the transaction (`FOR NO KEY UPDATE`); a ticket this
/// transaction has locked already is not asked for again.
pub fn lock_ticket(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    if super::memo::ticket_locked(conn, id) {
        return Ok(());
    }
    if let AnyConnection::Postgresql(pg) = conn {
        tickets::table
            .find(id)
            .select(tickets::id)
            .for_no_key_update()
            .load::<i64>(pg)?;
        super::memo::tickets_locked(conn, &[id]);
    }
    Ok(())
}

/// Locks ticket rows in id order (the one order, so two such transactions cannot deadlock).
pub fn lock_tickets(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<()> {
    if let AnyConnection::Postgresql(pg) = conn
        && !ids.is_empty()
    {
        tickets::table
            .filter(tickets::id.eq_any(ids))
            .order(tickets::id.asc())
            .select(tickets::id)
            .for_no_key_update()
            .load::<i64>(pg)?;
        super::memo::tickets_locked(conn, ids);
    }
    Ok(())
}

/// Locks account rows in id order. Reads after this see their latest committed state (each
/// statement under READ COMMITTED takes a fresh snapshot) and nobody changes them until the
/// transaction ends.
pub fn lock_accounts(conn: &mut AnyConnection, ids: &[&str]) -> QueryResult<()> {
    if let AnyConnection::Postgresql(pg) = conn
        && !ids.is_empty()
    {
        accounts::table
            .filter(accounts::id.eq_any(ids))
            .order(accounts::id.asc())
            .select(accounts::id)
            .for_no_key_update()
            .load::<String>(pg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_keys_give_different_lock_numbers() {
        let a = key_number(KeyLock::FormClient, "203.0.113.7");
        assert_eq!(a, key_number(KeyLock::FormClient, "203.0.113.7"));
        assert_ne!(a, key_number(KeyLock::FormEmail, "203.0.113.7"));
        assert_ne!(a, key_number(KeyLock::FormClient, "203.0.113.8"));
        assert_ne!(a, key_number(KeyLock::Delivery, "203.0.113.7"));
        assert_ne!(
            key_number(KeyLock::Delivery, "<a@example.test>"),
            key_number(KeyLock::CountFold, "<a@example.test>")
        );
    }
}
