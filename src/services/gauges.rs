//! What `/metrics` reports of the stored data (tickets per kind and state, the outbox per
//! status: held and failed mail need people, quarantined mail), and what `/healthz` checks.

use super::{Desk, ServiceError};
use crate::db::{AnyConnection, console, inbound, outbox};
use crate::domain::ticket::{Kind, State};

pub struct Gauges {
    pub tickets: Vec<(Kind, State, i64)>,
    pub mail: Vec<(String, i64)>,
    pub quarantined: i64,
}

#[tracing::instrument(level = "debug", skip_all)]
pub fn read(conn: &mut AnyConnection, desk: &Desk) -> Result<Gauges, ServiceError> {
    // Tickets of the last minute are left out of the per-state counts: one anonymous form
    // post then moves no (kind, state) figure while its reader watches.
    let settled_before = desk.settings.clock.naive_now() - chrono::Duration::minutes(1);
    Ok(Gauges {
        tickets: console::settled_counts(conn, settled_before)?,
        mail: outbox::count_by_status(conn)?,
        quarantined: inbound::count_quarantined(conn)?,
    })
}

/// Whether the database answers and, with an IMAP mailbox configured, that mailbox's lease
/// (how its last fetch went); the lease is not read from a database that does not answer.
#[tracing::instrument(level = "debug", skip_all)]
pub fn health(conn: &mut AnyConnection, mailbox: Option<&str>) -> (bool, Option<crate::db::imap::LeaseRow>) {
    let reachable = crate::db::ping(conn);
    let lease = match mailbox {
        Some(name) if reachable => crate::db::imap::find(conn, name).ok().flatten(),
        _ => None,
    };
    (reachable, lease)
}
