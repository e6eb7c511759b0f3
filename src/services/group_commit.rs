//! Group commit: in `serve`, every received message (the local socket of `mailgate`, the
//! webhook) is written by the mail writers. On SQLite one writer thread: messages that arrive
//! while it is writing wait and are then written together, one transaction, each message in a
//! savepoint of its own, one durable commit (docs/reference.md#inbound-mail). On PostgreSQL
//! several writers, each message in a transaction of its own, whose commits PostgreSQL
//! flushes together. Each caller is answered only after its commit, so a crash before it
//! loses nothing that was acknowledged.
//!
//! Parsing and scanning (`intake::prepare`) stay on the caller's thread: the CPU work of many
//! deliveries runs in parallel, and only the writes queue.

use super::inbound::{IngestError, Ingested, Prepared, store_prepared};
use super::{Desk, ServiceError};
use crate::db::checkpoint::Checkpointer;
use crate::db::{self, Pool};
use std::sync::mpsc;

mod connection;
use connection::WriterConnection;

/// At most this many messages share a transaction on SQLite: enough to pay one `fsync` for
/// many, few enough that the first of them is not kept waiting long.
pub const MAX_GROUP: usize = 64;

/// Writers on PostgreSQL, each writing one message per transaction.
///
/// Why several, and why one message each: SQLite has one write lock, so one writer grouping
/// messages is all it can use. PostgreSQL writes transactions side by side and flushes the
/// commits that wait at the same moment with one WAL write (its own group commit), so
/// concurrent deliveries go faster on several connections; one writer made every delivery
/// wait for the one before it (throughput flat from 1 to 8 clients, docs/benchmarks.md). One
/// message per transaction keeps every transaction in the lock order of docs/architecture.md
/// ("Locks and their order"): a group of several messages takes a second message's delivery
/// key after the first one's ticket, and two such groups side by side can deadlock.
pub const POSTGRES_WRITERS: usize = 4;

/// How many writer threads, and how many messages each puts in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    writers: usize,
    max_group: usize,
}

impl Shape {
    /// From the database's address, not a connection: a database that is down at start-up
    /// must not leave PostgreSQL with SQLite's groups.
    fn of(url: &db::DatabaseUrl) -> Shape {
        if !url.is_sqlite() {
            Shape {
                writers: POSTGRES_WRITERS,
                max_group: 1,
            }
        } else {
            Shape {
                writers: 1,
                max_group: MAX_GROUP,
            }
        }
    }
}

/// The answer to one delivery, sent after the commit (or the failure) of its group.
pub type Answer = Result<Ingested, IngestError>;

struct Job {
    prepared: Prepared,
    channel: &'static str,
    answer: tokio::sync::oneshot::Sender<Answer>,
    /// The caller's span (a request's id): the writer's log lines about this message carry it.
    span: tracing::Span,
}

/// A handle on the writer; clones share it. The writer stops when the last handle is gone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("group_commit::Writer")
    }
}

/// Starts the writer threads on `pool`, a pool of `url` (one on SQLite, [`POSTGRES_WRITERS`]
/// on PostgreSQL).
#[tracing::instrument(level = "debug", skip_all)]
pub fn start(pool: Pool, url: &db::DatabaseUrl, desk: Desk) -> std::io::Result<Writer> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let shape = Shape::of(url);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
    let checkpointer = Checkpointer::spawn(url)?;
    for n in 0..shape.writers {
        let (pool, desk, queue, checkpointer) = (pool.clone(), desk.clone(), queue.clone(), checkpointer.clone());
        std::thread::Builder::new()
            .name(if shape.writers == 1 {
                "mail-writer".into()
            } else {
                format!("mail-writer-{n}")
            })
            .spawn(move || {
                let mut conn = WriterConnection::new(pool);
                while let Some(group) = next_group(&queue, shape.max_group) {
                    write_group(&mut conn, &desk, checkpointer.as_ref(), group);
                }
            })?;
    }
    Ok(Writer { jobs })
}

/// Waits for a message, then takes those already waiting behind it, up to `max_group`. The
/// queue's lock is held while waiting: one writer waits on the queue, the others on the lock.
/// `None` when the last handle is gone.
fn next_group(queue: &std::sync::Mutex<mpsc::Receiver<Job>>, max_group: usize) -> Option<Vec<Job>> {
    // A writer that panicked while holding the lock left the queue itself intact.
    let queue = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut group = vec![queue.recv().ok()?];
    while group.len() < max_group {
        match queue.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
    Some(group)
}

impl Writer {
    /// Queues a prepared message; the receiver gets the answer after the durable commit.
    pub fn submit(&self, prepared: Prepared, channel: &'static str) -> tokio::sync::oneshot::Receiver<Answer> {
        let (answer, receiver) = tokio::sync::oneshot::channel();
        if let Err(mpsc::SendError(job)) = self.jobs.send(Job {
            prepared,
            channel,
            answer,
            span: tracing::Span::current(),
        }) {
            let _ = job
                .answer
                .send(Err(IngestError::Temporary("the desk is stopping".into())));
        }
        receiver
    }

    /// Prepares `raw` on this thread, then waits for its group's commit (not from async code).
    pub fn ingest_blocking(&self, desk: &Desk, raw: &[u8], channel: &'static str) -> Answer {
        let started = std::time::Instant::now();
        let answer = super::inbound::prepare(desk, raw).and_then(|prepared| {
            self.submit(prepared, channel)
                .blocking_recv()
                .unwrap_or_else(|_| Err(IngestError::Temporary("the writer stopped".into())))
        });
        record(desk, channel, &answer, started);
        answer
    }
}

/// Counts a delivery in the desk's metrics, as `inbound::ingest` does.
pub fn record(desk: &Desk, channel: &str, answer: &Answer, started: std::time::Instant) {
    let outcome = match answer {
        Ok(ingested) => ingested.outcome.as_str(),
        Err(IngestError::TooLarge { .. }) => "too_large",
        Err(IngestError::Temporary(_)) => "failed",
    };
    desk.metrics.inbound(channel, outcome, started.elapsed().as_secs_f64());
}

/// Counts the sender verdict of a committed message that became or joined a ticket, as
/// `inbound::ingest` does.
fn count_sender_auth(desk: &Desk, prepared: &Prepared, answer: &Answer) {
    if let (Ok(i), Some(verdict)) = (answer, prepared.sender_auth())
        && matches!(
            i.outcome,
            super::inbound::Outcome::Created | super::inbound::Outcome::Appended
        )
    {
        desk.metrics.sender_auth(verdict);
    }
}

/// One transaction for the whole group, each message in a savepoint (`store_prepared` nests);
/// the answers go out after the commit. A message whose own writes failed is tried once more
/// alone, in a transaction of its own, after the group. A message alone in its group (every
/// group on PostgreSQL, and most when mail comes one at a time) is written in its own
/// transaction straight away: a savepoint around it would only cost two statements. On SQLite
/// the commit leaves the WAL's checkpoint to `checkpointer`'s thread, so that no group waits
/// for one.
fn write_group(writer: &mut WriterConnection, desk: &Desk, checkpointer: Option<&Checkpointer>, group: Vec<Job>) {
    let conn = match writer.get() {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!(error = %e, "no database connection for received mail");
            for job in group {
                let _ = job
                    .answer
                    .send(Err(IngestError::Temporary(format!("no database connection: {e}"))));
            }
            return;
        }
    };
    if let [job] = group.as_slice() {
        let answer = {
            let _caller = job.span.enter();
            store_prepared(conn, desk, &job.prepared, job.channel, None)
        };
        if let Some(checkpointer) = checkpointer {
            checkpointer.nudge();
        }
        match &answer {
            Err(IngestError::Temporary(_)) => writer.failed(),
            _ => writer.succeeded(),
        }
        let job = group.into_iter().next().expect("a group of one");
        count_sender_auth(desk, &job.prepared, &answer);
        let _ = job.answer.send(answer);
        return;
    }
    let committed = db::write_transaction(conn, |conn| -> Result<Vec<Answer>, ServiceError> {
        Ok(group
            .iter()
            .map(|job| {
                let _caller = job.span.enter();
                store_prepared(conn, desk, &job.prepared, job.channel, None)
            })
            .collect())
    });
    if let Some(checkpointer) = checkpointer {
        checkpointer.nudge();
    }
    match committed {
        Ok(answers) => {
            // A failed message is tried once more in a transaction of its own, outside the
            // group's: there a deadlock or serialization failure is retried (`write_transaction`
            // retries only the outermost transaction).
            let mut failed = vec![];
            for (job, answer) in group.into_iter().zip(answers) {
                match answer {
                    Err(IngestError::Temporary(reason)) => failed.push((job, reason)),
                    answer => {
                        count_sender_auth(desk, &job.prepared, &answer);
                        let _ = job.answer.send(answer);
                    }
                }
            }
            let retried = !failed.is_empty();
            let mut all_stored = true;
            for (job, reason) in failed {
                let _caller = job.span.enter();
                tracing::warn!(%reason, "a received message failed in its group; trying it alone");
                let answer = store_prepared(conn, desk, &job.prepared, job.channel, None);
                all_stored &= !matches!(answer, Err(IngestError::Temporary(_)));
                count_sender_auth(desk, &job.prepared, &answer);
                let _ = job.answer.send(answer);
            }
            if retried && let Some(checkpointer) = checkpointer {
                checkpointer.nudge();
            }
            if all_stored {
                writer.succeeded();
            } else {
                writer.failed();
            }
        }
        Err(e) => {
            writer.failed();
            tracing::error!(error = %e, messages = group.len(), "received mail not stored: the commit failed");
            for job in group {
                let _ = job.answer.send(Err(IngestError::Temporary(format!("not stored: {e}"))));
            }
        }
    }
}
