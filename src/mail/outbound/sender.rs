//! The sender: claims due outbox rows, delivers them, records the outcome. Several senders
//! (threads or instances) can share one database: a row is claimed by exactly one of them
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), under a lease so a
//! sender that dies mid-delivery does not strand its rows.

use super::transport::{Outgoing, OutgoingFile, SendError, Transport, build_message_with_files};
use crate::db::outbox::{self, Delivered, OutboxRow};
use crate::db::{self, AnyConnection, KeptConnection, Pool};
use crate::services::{Desk, ServiceError};
use chrono::{Duration, NaiveDateTime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Set when the process is asked to stop: no new delivery starts after it.
    stopping: Arc<AtomicBool>,
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
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The flag that stops this sender between two deliveries (see [`SenderHandle`]).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }

    /// Delivers every row due at `now`, `batch` at a time, until none is left.
    ///
    /// One connection serves the whole run (`db::KeptConnection`): taken from the pool for
    /// each step, it was tested with a round trip twice per mail, now once, after the SMTP
    /// exchange. It is held through the exchanges too: one of the pool's connections for as
    /// long as due mail lasts.
    pub async fn deliver_due(&self, now: NaiveDateTime, batch: i64) -> Result<DeliveryReport, ServiceError> {
        let mut report = DeliveryReport::default();
        let mut kept = KeptConnection::new(self.pool.clone(), "mail sender", |_| {});
        loop {
            let rows = on_kept(&mut kept, |conn| self.claim(conn, now, batch))?;
            if rows.is_empty() {
                return Ok(report);
            }
            for (done, row) in rows.iter().enumerate() {
                if self.stopping.load(Ordering::SeqCst) {
                    // Asked to stop: the rows claimed but not begun go back to the queue at
                    // once, rather than waiting out the lease (or being sent twice by then).
                    on_kept(&mut kept, |conn| self.release(conn, &rows[done..]))?;
                    return Ok(report);
                }
                // The row's links are made now, just before it leaves (never stored in plain).
                let (filled, files) = on_kept(&mut kept, |conn| {
                    let filled = super::links::fill(conn, &self.desk, row)?;
                    Ok((filled, files_of(conn, row)?))
                })?;
                let outcome = self.deliver(row, &filled.body, &files).await;
                // Once the mail is out, its outcome must be recorded, or the mail goes out again
                // after the lease: the connection is tested before that, however short the
                // exchange was (the database may have restarted meanwhile).
                kept.test_before_next_use();
                if outcome.is_err()
                    && let Some(link) = filled.status_link_id
                {
                    // That mail did not go out: its link must not stay live.
                    on_kept(&mut kept, |conn| {
                        Ok(crate::db::tickets::remove_status_link(conn, link)?)
                    })?;
                }
                on_kept(&mut kept, |conn| self.record(conn, row, now, outcome, &mut report))?;
            }
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(report);
            }
        }
    }

    /// Gives claimed rows back unchanged (still due, attempts untouched).
    fn release(&self, conn: &mut AnyConnection, rows: &[OutboxRow]) -> Result<(), ServiceError> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let released = outbox::release_claims(conn, &self.worker, &ids)?;
        tracing::info!(released, "mail sender stopping: released the mail it had not begun");
        Ok(())
    }

    fn claim(&self, conn: &mut AnyConnection, now: NaiveDateTime, batch: i64) -> Result<Vec<OutboxRow>, ServiceError> {
        let lease_expired = now - Duration::seconds(LEASE_SECS);
        Ok(outbox::claim(conn, &self.worker, now, lease_expired, batch)?)
    }

    async fn deliver(&self, row: &OutboxRow, body: &str, files: &[OutgoingFile]) -> Result<(), SendError> {
        let message = build_message_with_files(
            &Outgoing {
                from: &self.desk.settings.support_address,
                to: &row.recipient,
                subject: &row.subject,
                body,
                message_id: row.message_id.as_deref().unwrap_or_default(),
                in_reply_to: row.in_reply_to.as_deref(),
                references: row.references_header.as_deref(),
                auto_submitted: row.auto_submitted.as_deref(),
            },
            files,
        )?;
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
        conn: &mut AnyConnection,
        row: &OutboxRow,
        now: NaiveDateTime,
        outcome: Result<(), SendError>,
        report: &mut DeliveryReport,
    ) -> Result<(), ServiceError> {
        match outcome {
            Ok(()) => {
                outbox::record_delivery(conn, &self.worker, row, Delivered::Sent)?;
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
                let retry = Delivered::Retry {
                    status,
                    next_attempt_at: now + retry_delay(attempts),
                    error: &error,
                };
                outbox::record_delivery(conn, &self.worker, row, retry)?;
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
                outbox::record_delivery(conn, &self.worker, row, Delivered::Failed { error: &reason })?;
                report.failed += 1;
                self.desk.metrics.outbound("failed");
                tracing::warn!(outbox = row.id, error = %reason, "mail delivery failed for good");
            }
        }
        Ok(())
    }
}

/// Runs one step on the sender's kept connection; after a failure the connection goes back to
/// the pool, and the next step takes another.
fn on_kept<T>(
    kept: &mut KeptConnection,
    step: impl FnOnce(&mut AnyConnection) -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    let conn = kept.get(|_| Ok(()), |e| ServiceError::from(db::DbError::Connect(e.to_string())))?;
    let done = step(conn);
    match done {
        Ok(_) => kept.succeeded(),
        Err(_) => kept.failed(),
    }
    done
}

/// The files an outbox row names, read from the ticket's stored (scanned) attachments. One
/// erased since is left out: an erasure wins over a mail not yet sent.
fn files_of(conn: &mut AnyConnection, row: &OutboxRow) -> Result<Vec<OutgoingFile>, ServiceError> {
    let mut files = vec![];
    for id in crate::db::outbox::attachment_ids(row) {
        if let Some(a) = crate::db::inbound::attachment(conn, id)? {
            files.push(OutgoingFile {
                filename: a.filename,
                content_type: a.content_type,
                data: a.data,
            });
        }
    }
    Ok(files)
}

/// The running background sender, to stop it when the process is asked to (SIGTERM).
pub struct SenderHandle {
    stopping: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl SenderHandle {
    /// Stops the sender and waits for it: a delivery in progress is finished and recorded
    /// (bounded by the SMTP timeout), so it is never sent again after a restart; rows claimed
    /// but not begun are released.
    pub fn stop_and_wait(self) {
        self.stopping.store(true, Ordering::SeqCst);
        if self.thread.join().is_err() {
            tracing::error!("the mail sender ended with a panic");
        }
    }
}

/// Runs the sender on a thread of its own until [`SenderHandle::stop_and_wait`].
pub fn spawn_background(pool: Pool, desk: Desk) -> Result<SenderHandle, String> {
    let transport = Transport::from_settings(&desk.settings)?;
    tracing::info!(transport = %transport.describe(), "mail sender started");
    let sender = Sender::new(pool, desk, transport);
    let stopping = sender.stop_flag();
    let thread = std::thread::Builder::new()
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
                let stop = sender.stop_flag();
                while !stop.load(Ordering::SeqCst) {
                    match sender.deliver_due(db::now(), 20).await {
                        Ok(report) if report.claimed() > 0 => continue,
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "mail sender: database error; retrying"),
                    }
                    // Short naps, so a stop request is seen within a tenth of a second.
                    for _ in 0..5 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
                tracing::info!("mail sender stopped");
            });
        })
        .map_err(|e| format!("cannot start the mail sender: {e}"))?;
    Ok(SenderHandle { stopping, thread })
}
