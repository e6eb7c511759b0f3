//! The sender: claims due outbox rows, delivers them, records the outcome. Several senders
//! (threads or instances) can share one database: a row is claimed by exactly one of them
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), under a lease so a
//! sender that dies mid-delivery does not strand its rows.

use super::transport::{Outgoing, SendError, Transport, build_message};
use crate::db::outbox::OutboxRow;
use crate::db::schema::outbox;
use crate::db::{self, AnyConnection, Pool};
use crate::services::{Desk, ServiceError};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

/// First retry after 30 s, doubling, at most 10 minutes apart; given up after 24 hours.
pub const FIRST_RETRY_SECS: i64 = 30;
pub const MAX_RETRY_SECS: i64 = 600;
pub const GIVE_UP_AFTER_HOURS: i64 = 24;
/// A claimed row not finished within this time is claimed again.
pub const LEASE_SECS: i64 = 300;

pub fn retry_delay(attempts: i32) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    Duration::seconds((FIRST_RETRY_SECS.saturating_mul(1 << exponent)).min(MAX_RETRY_SECS))
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl DeliveryReport {
    pub fn claimed(&self) -> usize {
        self.sent + self.retrying + self.failed
    }
}

pub struct Sender {
    pool: Pool,
    desk: Desk,
    transport: Transport,
    /// Names this sender in `claimed_by`, so only it records the outcome of its claims.
    worker: String,
}

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

impl Sender {
    pub fn new(pool: Pool, desk: Desk, transport: Transport) -> Sender {
        let worker = format!(
            "{}-{}",
            std::process::id(),
            crate::crypto::random_token().get(..8).unwrap_or("x")
        );
        Sender {
            pool,
            desk,
            transport,
            worker,
        }
    }

    /// Delivers every row due at `now`, `batch` at a time, until none is left.
    pub async fn deliver_due(&self, now: NaiveDateTime, batch: i64) -> Result<DeliveryReport, ServiceError> {
        let mut report = DeliveryReport::default();
        loop {
            let rows = self.claim(now, batch)?;
            if rows.is_empty() {
                return Ok(report);
            }
            for row in rows {
                let outcome = self.deliver(&row).await;
                self.record(&row, now, outcome, &mut report)?;
            }
        }
    }

    fn conn(&self) -> Result<db::PooledConnection, ServiceError> {
        self.pool.get().map_err(|e| db::DbError::Connect(e.to_string()).into())
    }

    fn claim(&self, now: NaiveDateTime, batch: i64) -> Result<Vec<OutboxRow>, ServiceError> {
        let mut conn = self.conn()?;
        let lease_expired = now - Duration::seconds(LEASE_SECS);
        let ids: Vec<i64> = db::write_transaction(&mut conn, |conn| -> Result<Vec<i64>, ServiceError> {
            let pick = "SELECT id FROM outbox WHERE (status = 'pending' AND next_attempt_at <= $1) \
                        OR (status = 'sending' AND claimed_at < $3) ORDER BY id LIMIT $4";
            let claimed: Vec<ClaimedId> = match conn {
                AnyConnection::Postgresql(pg) => diesel::sql_query(format!(
                    "UPDATE outbox SET status = 'sending', claimed_at = $1, claimed_by = $2 \
                     WHERE id IN ({pick} FOR UPDATE SKIP LOCKED) RETURNING id"
                ))
                .bind::<Timestamp, _>(now)
                .bind::<Text, _>(&self.worker)
                .bind::<Timestamp, _>(lease_expired)
                .bind::<BigInt, _>(batch)
                .load(pg)?,
                AnyConnection::Sqlite(lite) => diesel::sql_query(format!(
                    "UPDATE outbox SET status = 'sending', claimed_at = $1, claimed_by = $2 WHERE id IN ({pick}) RETURNING id"
                ))
                .bind::<Timestamp, _>(now)
                .bind::<Text, _>(&self.worker)
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
            .filter(outbox::claimed_by.eq(&self.worker))
            .order(outbox::id.asc())
            .select(OutboxRow::as_select())
            .load(&mut conn)?)
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<(), SendError> {
        let message = build_message(&Outgoing {
            from: &self.desk.settings.support_address,
            to: &row.recipient,
            subject: &row.subject,
            body: &row.body,
            message_id: row.message_id.as_deref().unwrap_or_default(),
            in_reply_to: row.in_reply_to.as_deref(),
            references: row.references_header.as_deref(),
            auto_submitted: row.auto_submitted.as_deref(),
        })?;
        let stem = format!(
            "{}-{}-{}",
            row.created_at.format("%Y%m%d-%H%M%S"),
            row.ticket_id
                .map(|t| self.desk.ticket_ref(t))
                .unwrap_or_else(|| "mail".into()),
            row.id
        );
        self.transport.send(&message, &format!("{stem}-{}", row.template)).await
    }

    fn record(
        &self,
        row: &OutboxRow,
        now: NaiveDateTime,
        outcome: Result<(), SendError>,
        report: &mut DeliveryReport,
    ) -> Result<(), ServiceError> {
        let mut conn = self.conn()?;
        let mine = outbox::table
            .filter(outbox::id.eq(row.id))
            .filter(outbox::claimed_by.eq(&self.worker));
        let no_claim = (
            outbox::claimed_at.eq(None::<NaiveDateTime>),
            outbox::claimed_by.eq(None::<String>),
        );
        match outcome {
            Ok(()) => {
                // The live links in the body have done their job; the thread keeps a masked copy.
                diesel::update(mine)
                    .set((
                        outbox::status.eq("sent"),
                        outbox::sent_at.eq(db::now()),
                        outbox::body.eq(""),
                        no_claim,
                    ))
                    .execute(&mut conn)?;
                report.sent += 1;
                self.desk.metrics.outbound("sent");
                tracing::info!(outbox = row.id, template = %row.template, "mail delivered");
            }
            Err(SendError::Temporary(reason)) => {
                let attempts = row.attempts + 1;
                let gave_up = now - row.created_at >= Duration::hours(GIVE_UP_AFTER_HOURS);
                let (status, error) = if gave_up {
                    ("failed", format!("gave up after {GIVE_UP_AFTER_HOURS} hours: {reason}"))
                } else {
                    ("pending", reason)
                };
                diesel::update(mine)
                    .set((
                        outbox::status.eq(status),
                        outbox::attempts.eq(attempts),
                        outbox::next_attempt_at.eq(now + retry_delay(attempts)),
                        outbox::last_error.eq(&error),
                        no_claim,
                    ))
                    .execute(&mut conn)?;
                if gave_up {
                    report.failed += 1;
                    self.desk.metrics.outbound("failed");
                } else {
                    report.retrying += 1;
                    self.desk.metrics.outbound("retrying");
                }
                tracing::warn!(outbox = row.id, attempts, error = %error, "mail delivery failed for now");
            }
            Err(SendError::Permanent(reason)) => {
                diesel::update(mine)
                    .set((
                        outbox::status.eq("failed"),
                        outbox::attempts.eq(row.attempts + 1),
                        outbox::last_error.eq(&reason),
                        no_claim,
                    ))
                    .execute(&mut conn)?;
                report.failed += 1;
                self.desk.metrics.outbound("failed");
                tracing::warn!(outbox = row.id, error = %reason, "mail delivery failed for good");
            }
        }
        Ok(())
    }
}

/// Runs the sender for the life of the process on a thread of its own.
pub fn spawn_background(pool: Pool, desk: Desk) -> Result<(), String> {
    let transport = Transport::from_settings(&desk.settings)?;
    tracing::info!(transport = %transport.describe(), "mail sender started");
    let sender = Sender::new(pool, desk, transport);
    std::thread::Builder::new()
        .name("mail-sender".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "the mail sender could not start");
                    return;
                }
            };
            runtime.block_on(async move {
                loop {
                    match sender.deliver_due(db::now(), 20).await {
                        Ok(report) if report.claimed() > 0 => continue,
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "mail sender: database error; retrying"),
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            });
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the mail sender: {e}"))
}
